"""What the hub hands to a receiver it delivers to itself (push, or a peer hub), and what comes
back. A *channel* is one way of carrying a package out of the hub; the dispatcher claims due
deliveries, asks the recipient's channel to send, and turns the :class:`Outcome` into a state
change with the recipient's :class:`hub.retry.RetryPolicy`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


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
