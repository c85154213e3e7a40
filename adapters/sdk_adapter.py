"""The ``sdk`` adapter: an agency system written in Python plugs in with calls and callbacks.

Sending is a call, ``await adapter.send(pkg)``: the package is written and signed with the
agency's key *once*, and those bytes are queued; the runner sends them and resends the very same
bytes after any failure, so the hub's duplicate rule makes every resend harmless. Receiving is
callbacks: ``on_document(document, received)`` and ``on_status(status, received)`` (and
optionally ``on_receipt`` / ``on_notice``), each awaited before the hub is told the delivery
arrived. A delivery handed over once is not handed over again (the lease of a crashed runner
runs out and the hub offers it again with the same ``delivery_id``).

With a *state_file* the queue, the outcomes and the handed-over delivery ids survive a restart
(one small JSON file, replaced atomically); without it they live in memory, and a document queued
but not yet sent is lost with the process. Callbacks run at least once per delivery: should the
process die between a callback and the state being written, the next run calls it again with the
same ``received.delivery_id``, which is what to de-duplicate on.

Usage::

    adapter = SdkAdapter(creds, on_document=file_it, on_status=note_it, state_file=path)
    await adapter.send(document_package)          # queued, signed
    async with AgencyClient(hub_url, creds) as client:
        await run(adapter, client, stop=stop)     # the receive loop: adapters.runner
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from adapters.base import Adapter, Outgoing, Received, Settled
from adapters.config import AdapterConfig
from adapters.sdk import Credentials
from hub.edxml.model import DocumentPackage, StatusPackage
from hub.edxml.reader import read_document, read_status
from hub.edxml.writer import write_document, write_status
from hub.xmlsafe import parse
from tracking.files import write_atomically

__all__ = ["SdkAdapter"]

DocumentCallback = Callable[[DocumentPackage, Received], Awaitable[None]]
StatusCallback = Callable[[StatusPackage, Received], Awaitable[None]]
ItemCallback = Callable[[Received], Awaitable[None]]
SettledCallback = Callable[[Outgoing, Settled], Awaitable[None]]


async def _ignore(*_: Any) -> None:
    """A receipt or notice nobody asked to see is still acknowledged (it is in the trace)."""


@dataclass
class _State:
    """What the adapter must remember: queued items, outcomes, handed-over delivery ids."""

    queued: dict[str, Outgoing] = field(default_factory=dict)
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    delivered: set[str] = field(default_factory=set)

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "queued": [
                    {"key": o.key, "kind": o.kind, "package": base64.b64encode(o.package).decode()}
                    for o in self.queued.values()
                ],
                "outcomes": self.outcomes,
                "delivered": sorted(self.delivered),
            },
            ensure_ascii=False,
        ).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> _State:
        raw = json.loads(data)
        queued = {
            q["key"]: Outgoing(q["key"], q["kind"], base64.b64decode(q["package"]))
            for q in raw.get("queued", [])
        }
        return cls(queued, dict(raw.get("outcomes", {})), set(raw.get("delivered", [])))


def _outcome(result: Settled) -> dict[str, Any]:
    if result.accepted:
        return {"accepted": True, "receipt": dict(result.receipt or {})}
    problem = result.problem
    return {
        "accepted": False,
        "code": problem.code if problem else "",
        "detail": problem.detail if problem else "",
        "problems": list(problem.problems) if problem else [],
    }


class SdkAdapter(Adapter):
    """Outgoing items from :meth:`send`, deliveries to callbacks (see the module doc)."""

    name = "sdk"

    def __init__(
        self,
        credentials: Credentials,
        *,
        on_document: DocumentCallback,
        on_status: StatusCallback,
        on_receipt: ItemCallback = _ignore,
        on_notice: ItemCallback = _ignore,
        on_settled: SettledCallback = _ignore,
        state_file: Path | None = None,
    ) -> None:
        self.credentials = credentials
        self.on_document, self.on_status = on_document, on_status
        self.on_receipt, self.on_notice, self.on_settled = on_receipt, on_notice, on_settled
        self.state_file = state_file
        self._state = _State()
        self._lock = asyncio.Lock()
        if state_file is not None and state_file.exists():
            self._state = _State.from_json(state_file.read_bytes())

    @classmethod
    def from_config(cls, config: AdapterConfig) -> SdkAdapter:
        raise NotImplementedError(
            "the sdk adapter is used from Python (adapters.sdk_adapter.SdkAdapter), not from a "
            "configuration file; use the folder or webhook adapter from the command line"
        )

    def _save(self) -> None:
        """Write the state atomically: a crash leaves the old file or the new one."""
        if self.state_file is None:
            return
        write_atomically(self.state_file.parent, self.state_file.name, self._state.to_json())

    # -- the agency system's side ---------------------------------------------------------

    async def send(self, pkg: DocumentPackage | StatusPackage, *, key: str = "") -> Outgoing:
        """Queue *pkg*, signed now, once. *key* is its identity in the agency system (default:
        the SHA-256 of the signed bytes); queueing the same key again returns the first item
        and never signs anew."""
        kind: Literal["document", "status"]
        if isinstance(pkg, DocumentPackage):
            kind, unsigned = "document", write_document(pkg)
        else:
            kind, unsigned = "status", write_status(pkg)
        signed = self.credentials.sign(unsigned)
        item = Outgoing(key or hashlib.sha256(signed).hexdigest(), kind, signed)
        return await self.queue(item)

    async def queue(self, item: Outgoing) -> Outgoing:
        """Queue an already signed item (idempotent per key)."""
        async with self._lock:
            if item.key in self._state.outcomes:
                raise ValueError(f"{item.key} was already sent and settled")
            existing = self._state.queued.get(item.key)
            if existing is not None:
                return existing
            self._state.queued[item.key] = item
            self._save()
        return item

    def outcome(self, key: str) -> Mapping[str, Any] | None:
        """What the hub said about the item *key*, once settled: ``accepted`` and ``receipt``,
        or ``code``, ``detail`` and ``problems``."""
        return self._state.outcomes.get(key)

    # -- the contract ---------------------------------------------------------------------

    async def outgoing(self) -> Sequence[Outgoing]:
        return list(self._state.queued.values())

    async def settled(self, item: Outgoing, result: Settled) -> None:
        async with self._lock:
            self._state.queued.pop(item.key, None)
            self._state.outcomes[item.key] = _outcome(result)
            self._save()
        await self.on_settled(item, result)

    async def deliver(self, received: Received) -> None:
        if received.delivery_id in self._state.delivered:
            return  # handed over before; the hub offered it again
        await self._hand_over(received)
        async with self._lock:
            self._state.delivered.add(received.delivery_id)
            self._save()

    async def _hand_over(self, received: Received) -> None:
        if received.kind in ("document", "status"):
            if received.package is None:
                raise ValueError(f"delivery {received.delivery_id} came without its package")
            tree = parse(received.package)
            if received.kind == "document":
                await self.on_document(read_document(tree), received)
            else:
                await self.on_status(read_status(tree), received)
        elif received.kind == "receipt":
            await self.on_receipt(received)
        else:
            await self.on_notice(received)
