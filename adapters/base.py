"""The adapter contract: how an agency's system plugs into the hub.

An *adapter* stands between one agency's document-management system and the hub. It answers
three questions, and nothing else:

* :meth:`Adapter.outgoing`: what has the agency system handed over that is not settled yet?
  Each item carries the signed package bytes exactly as they will be sent, and resent: the hub
  answers the same bytes sent twice with the original receipt (``duplicate: true``), which is
  what makes a resend after a crash safe.
* :meth:`Adapter.settled`: record, durably, what the hub said about one item. After this,
  ``outgoing()`` never returns that item again.
* :meth:`Adapter.deliver`: hand a received document, status, receipt or notice to the agency
  system, durably, before the hub is told it arrived. It must be idempotent per
  ``delivery_id``: a lease can run out (or a push be repeated) and the same delivery come again.

The loop that drives an adapter against the hub (send, settle, poll, deliver, acknowledge) is
:mod:`adapters.runner`; push-based adapters (:mod:`adapters.webhook`) call ``deliver`` from
their HTTP handler instead of polling. Built-in and third-party adapters are found by name
through :mod:`adapters.registry`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

from adapters.sdk import HubError

if TYPE_CHECKING:
    from adapters.config import AdapterConfig

__all__ = ["Adapter", "Outgoing", "Received", "Settled"]


@dataclass(frozen=True)
class Outgoing:
    """One item the agency system handed over for sending."""

    key: str
    """The item's stable identity in the agency system (a file name, a row id)."""
    kind: Literal["document", "status"]
    package: bytes
    """The signed edXML bytes, exactly as they will be sent (and resent)."""


@dataclass(frozen=True)
class Settled:
    """What became of one outgoing item."""

    accepted: bool
    receipt: Mapping[str, Any] | None
    """The hub's answer when accepted (``duplicate`` is true on a resend)."""
    problem: HubError | None
    """Why the hub refused it: ``code``, ``detail`` and ``problems``."""


@dataclass(frozen=True)
class Received:
    """One delivery from the hub, as the agency system is handed it."""

    delivery_id: str
    kind: str
    """``document``, ``status``, ``receipt`` or ``notice``, as the inbox item says."""
    document_id: str
    """The hub's id of the document it is about."""
    sender: str
    """Who it comes from: the document's sender, a status's reporter; for a receipt or a
    notice, the sender of the document it is about (the agency itself)."""
    package: bytes | None
    """The package bytes for documents and statuses; the receipt JSON for a receipt; None for
    a notice (the inbox item says everything)."""
    item: Mapping[str, Any]
    """The inbox item (or the push headers) as the hub gave it."""


class Adapter(ABC):
    """The base class of every adapter; see the module documentation for the contract."""

    name: ClassVar[str]
    """The registry name, e.g. ``"folder"``."""

    @classmethod
    def from_config(cls, config: AdapterConfig) -> Self:
        """The adapter as ``lienthong adapter NAME --config FILE`` makes it: the common keys are
        in *config*, the adapter's own table (``[NAME]``) in ``config.section``."""
        raise NotImplementedError(f"the {cls.name!r} adapter cannot be started from a file")

    async def start(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Open what the adapter needs (a database, a folder); called once before use."""

    async def close(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Release it; called once at the end, also after an error."""

    @abstractmethod
    async def outgoing(self) -> Sequence[Outgoing]:
        """What the agency system handed over and is not settled yet, oldest first."""

    @abstractmethod
    async def settled(self, item: Outgoing, result: Settled) -> None:
        """Record the outcome of *item* durably; afterwards ``outgoing()`` never returns
        ``item.key`` again."""

    @abstractmethod
    async def deliver(self, received: Received) -> None:
        """Hand *received* over to the agency system durably (idempotent per delivery id).
        Raising means "not handed over": the hub is not told, and the delivery comes again."""
