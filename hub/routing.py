"""Which peer hub a code this hub does not serve goes to (DESIGN §6, "Hubs federate").

Pure: patterns and codes in, a peer name out. No I/O, no directory, no configuration files, so
the rules can be read and tested alone.

A *code pattern* has the four groups of a QCVN 102 code (``V1V2V3.Z1Z2.Y1Y2.MX1X2``) and matches
group by group: ``*`` stands for any characters *within one group* (never across a dot), ``?`` for
exactly one. ``*.*.*.G*`` is "every central government body and everything under one";
``*.*.*.H41`` is "everything of Nghệ An province". A pattern never matches a code with another
number of groups, so a shortened code (``01.02.G22``) is matched by no four-group pattern.

Peers are tried in the order they are configured, their patterns in the order they are written;
the first match wins. Only when no pattern of any peer matches does the default peer (at most
one, ``default = true``) take the code. "First match" rather than "most specific match" because
an operator reading the configuration from the top can then say where a code goes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

GROUPS = 4
_GROUP = re.compile(r"[0-9A-Za-z*?]+")


def pattern_problem(pattern: str) -> str | None:
    """Why *pattern* is not a code pattern, or None if it is one."""
    groups = pattern.split(".")
    if len(groups) != GROUPS:
        return (
            f"{pattern!r} has {len(groups)} group(s); a code pattern has four, "
            "like '*.*.*.G*' or '000.00.*.H26'"
        )
    for group in groups:
        if not _GROUP.fullmatch(group):
            return (
                f"{pattern!r}: group {group!r} may hold only digits, letters, '*' (any "
                "characters within the group) and '?' (one character)"
            )
    return None


def matches(pattern: str, code: str) -> bool:
    """Whether *code* matches *pattern*, group by group (``*`` never crosses a dot)."""
    groups = pattern.split(".")
    parts = code.split(".")
    return len(groups) == len(parts) == GROUPS and all(
        fnmatchcase(part, group) for group, part in zip(groups, parts, strict=True)
    )


def matches_any(patterns: Iterable[str], code: str) -> bool:
    return any(matches(p, code) for p in patterns)


@dataclass(frozen=True)
class PeerRoutes:
    """What routing needs to know of one peer: its name, its patterns, whether it is the
    default (every code no pattern of any peer matches)."""

    name: str
    patterns: tuple[str, ...] = ()
    default: bool = False


def route(code: str, peers: Iterable[PeerRoutes]) -> str | None:
    """The name of the peer *code* goes to, or None (no pattern matches and no default).

    Call this only for codes this hub does not serve itself: a local agency is never routed
    away, whatever the patterns say (the caller checks the directory first).
    """
    fallback = None
    for peer in peers:
        if matches_any(peer.patterns, code):
            return peer.name
        if peer.default and fallback is None:
            fallback = peer.name
    return fallback
