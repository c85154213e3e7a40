"""What the hub hands to a receiver it delivers to itself (push, or a peer hub), and what comes
back. A *channel* is one way of carrying a package out of the hub; the dispatcher claims due
deliveries, asks the recipient's channel to send, and turns the :class:`Outcome` into a state
change with the recipient's :class:`hub.retry.RetryPolicy`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

PULL = "pull"  # the one delivery mode without a channel: the recipient fetches from its inbox


@dataclass(frozen=True)
class Outgoing:
    """One delivery on its way out: the exact bytes the hub received, and what identifies them.

    ``delivery_id`` is stable across attempts and operator resends, so a receiver de-duplicates
    on it.
    """

    delivery_id: str
    kind: str  # "document" | "status" | "receipt" | "notice"
    document_id: str
    recipient: str
    priority: int
    body: bytes
    sha256: str
    content_type: str = "application/xml"


@dataclass(frozen=True)
class Outcome:
    """What one attempt achieved. ``detail`` is for people (and the trace): "HTTP 503",
    "timed out after 10 s", "connection refused"."""

    delivered: bool
    detail: str
    # The receiver refused the package itself (a 4xx other than 408/429): retrying cannot help.
    permanent: bool = False
    # What the far side answered, when it matters (a peer hub's receipt), kept in the trace.
    answer: dict[str, Any] = field(default_factory=dict)


class Channel(Protocol):
    async def send(self, outgoing: Outgoing) -> Outcome: ...


def first_attempt_at(mode: str, queued_at: dt.datetime) -> dt.datetime | None:
    """When the dispatcher first tries a new delivery to a recipient of delivery *mode*: at
    once for anything the hub carries out itself (push, a peer hub), never for a recipient that
    pulls. Every place that queues a delivery sets ``next_attempt_at`` with this, so the
    dispatcher's look-up is one range of ``ix_deliveries_due``."""
    return None if mode == PULL else queued_at
