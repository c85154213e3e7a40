"""Routing codes to peer hubs (hub.routing): pure, no directory and no network."""

from __future__ import annotations

import pytest

from hub.routing import PeerRoutes, matches, pattern_problem, route

NATIONAL = PeerRoutes("truc.quocgia", ("*.*.*.G*",), default=True)
NGHE_AN = PeerRoutes("lienthong.nghean", ("*.*.*.H41",))


@pytest.mark.parametrize(
    ("pattern", "code", "expected"),
    [
        ("*.*.*.G*", "000.00.00.G22", True),
        ("*.*.*.G*", "000.00.18.G12", True),
        ("*.*.*.G*", "000.00.00.H26", False),
        ("*.*.*.H41", "000.01.02.H41", True),
        ("000.00.*.H26", "000.00.31.H26", True),
        ("000.00.*.H26", "000.01.31.H26", False),
        ("*.*.*.G??", "000.00.00.G22", True),
        ("*.*.*.G?", "000.00.00.G22", False),
        # '*' never crosses a dot: a four-group pattern never matches another shape of code.
        ("*.*.*.G*", "01.02.G22", False),
        ("*.*.*.G*", "000.00.00.00.G22", False),
        ("*.*.*.*", "vxp.saas.03", False),
        ("*.*.*.*", "000.00.00.H26", True),
        # Case matters: agency codes are upper case.
        ("*.*.*.g*", "000.00.00.G22", False),
    ],
)
def test_matches_group_by_group(pattern: str, code: str, expected: bool) -> None:
    assert matches(pattern, code) is expected


@pytest.mark.parametrize(
    "pattern",
    ["*", "*.*.G*", "*.*.*.*.G*", "*.*.*.[GH]*", "*.*..G*", "*.*.*.G-1", " *.*.*.G*"],
)
def test_bad_patterns_are_explained(pattern: str) -> None:
    problem = pattern_problem(pattern)
    assert problem is not None and repr(pattern) in problem


def test_good_patterns_have_no_problem() -> None:
    assert pattern_problem("*.*.*.G*") is None
    assert pattern_problem("000.0?.*.H26") is None


def test_first_matching_peer_wins_then_the_default() -> None:
    peers = (NATIONAL, NGHE_AN)
    assert route("000.00.00.G22", peers) == "truc.quocgia"
    assert route("000.01.02.H41", peers) == "lienthong.nghean"
    # Matched by no pattern: the default peer takes it, wherever it is listed.
    assert route("000.00.00.H49", peers) == "truc.quocgia"
    assert route("000.00.00.H49", (NGHE_AN, NATIONAL)) == "truc.quocgia"


def test_a_pattern_beats_a_default_listed_before_it() -> None:
    everything = PeerRoutes("catch-all", (), default=True)
    assert route("000.01.02.H41", (everything, NGHE_AN)) == "lienthong.nghean"


def test_no_route_without_a_match_or_a_default() -> None:
    assert route("000.00.00.H49", (NGHE_AN,)) is None
    assert route("000.00.00.G22", ()) is None
