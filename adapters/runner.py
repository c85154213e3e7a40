"""The loop that drives an :class:`~adapters.base.Adapter` against the hub.

One step (:meth:`Runner.run_once`) does two things:

1. **send**: every item ``adapter.outgoing()`` returns is posted (``POST /v1/documents`` or
   ``POST /v1/status`` by its kind) and then settled. Transport errors, ``408``, ``429`` and
   ``5xx`` are tried again (by :class:`~adapters.sdk.HubClient`, then at the next step), always
   with the item's own bytes: the hub answers
   identical bytes with the original receipt (``duplicate: true``), so a resend (also one after
   a crash between sending and settling) never sends a document twice. Any other ``4xx`` is the
   hub refusing the item: it is settled as refused, with the problem, and never sent again.
   ``401`` is not about the item but about the credential, so it stops the runner instead.
2. **receive**: the inbox is long-polled with a lease; each item is fetched, verified when a
   :class:`~adapters.verify.PackageVerifier` is given, handed to ``adapter.deliver()``, and
   acknowledged only after ``deliver`` returned. If the runner dies in between, the lease runs
   out and the same delivery id comes again, which is why ``deliver`` is idempotent. A package
   whose signature does not verify is acknowledged ``fail`` with the reason, never delivered.

:func:`run` repeats the step until *stop* is set, backing off while the hub is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from adapters.base import Adapter, Outgoing, Received, Settled
from adapters.sdk import HubClient, HubError, is_transient
from adapters.verify import PackageVerifier

__all__ = ["Runner", "Step", "is_refusal", "received_from_item", "run"]

log = logging.getLogger(__name__)


def is_refusal(exc: BaseException) -> bool:
    """The hub refused this item itself; sending it again cannot help. ``401`` is excluded:
    a wrong credential refuses everything, and must not settle every item as refused."""
    return isinstance(exc, HubError) and not is_transient(exc) and exc.status != 401


@dataclass(frozen=True)
class Step:
    """What one :meth:`Runner.run_once` did."""

    sent: int = 0
    refused: int = 0
    delivered: int = 0
    rejected: int = 0  # received packages acknowledged ``fail`` (bad signature)
    pending: int = 0  # outgoing items left for the next step (the hub was unreachable)


def received_from_item(item: dict[str, Any], package: bytes | None) -> Received:
    """The :class:`Received` for one inbox item (pure). A status comes from its reporter."""
    kind = str(item["kind"])
    sender = item.get("reporter") if kind == "status" else item.get("sender")
    return Received(
        delivery_id=str(item["delivery_id"]),
        kind=kind,
        document_id=str(item["document_id"]),
        sender=str(sender or ""),
        package=package,
        item=item,
    )


class Runner:
    """Runs one adapter for one agency (*client* holds its credential)."""

    def __init__(
        self,
        adapter: Adapter,
        client: HubClient,
        *,
        lease: float = 300,
        limit: int = 100,
        verifier: PackageVerifier | None = None,
        receive: bool = True,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self.adapter = adapter
        self.client = client
        self.lease = lease
        self.limit = limit
        self.verifier = verifier
        # False for push-based adapters: deliveries arrive by HTTP, the inbox is not polled.
        self.receives = receive
        self.backoff = backoff
        self.max_backoff = max_backoff

    async def _post(self, item: Outgoing) -> dict[str, Any]:
        if item.kind == "document":
            return await self.client.send_document(item.package)
        return await self.client.send_status(item.package)

    async def send_pending(self) -> tuple[int, int, int]:
        """Send and settle every outgoing item: (accepted, refused, left pending)."""
        items = list(await self.adapter.outgoing())
        sent = refused = 0
        for index, item in enumerate(items):
            try:
                receipt = await self._post(item)
            except HubError as exc:
                if not is_refusal(exc):
                    if is_transient(exc):  # the hub is away: the rest waits for the next step
                        log.warning("could not send %s: %s", item.key, exc)
                        return sent, refused, len(items) - index
                    raise
                log.info("the hub refused %s: %s", item.key, exc)
                await self.adapter.settled(item, Settled(False, None, exc))
                refused += 1
                continue
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                log.warning("could not send %s: %s", item.key, exc)
                return sent, refused, len(items) - index
            await self.adapter.settled(item, Settled(True, receipt, None))
            sent += 1
        return sent, refused, 0

    async def _fetch(self, item: dict[str, Any]) -> bytes | None:
        if item["kind"] == "notice":  # the inbox item is the whole notice
            return None
        return await self.client.fetch(str(item["href"]))

    async def receive(self, *, wait: float = 0) -> tuple[int, int]:
        """One leased poll: deliver and acknowledge what came. (delivered, rejected)."""
        items = await self.client.inbox(wait=wait, limit=self.limit, lease=self.lease)
        delivered = rejected = 0
        for item in items:
            received = received_from_item(item, await self._fetch(item))
            if self.verifier is not None and received.kind in ("document", "status"):
                problem = self.verifier.problem(received)
                if problem is not None:
                    log.warning("refusing delivery %s: %s", received.delivery_id, problem)
                    await self.client.ack(received.delivery_id, "fail", problem)
                    rejected += 1
                    continue
            await self.adapter.deliver(received)  # raises: not acknowledged, comes again
            await self.client.ack(received.delivery_id, "done")
            delivered += 1
        return delivered, rejected

    async def run_once(self, *, wait: float = 0) -> Step:
        """One send step and one receive step (a long poll of up to *wait* seconds)."""
        sent, refused, pending = await self.send_pending()
        if not self.receives:
            return Step(sent, refused, 0, 0, pending)
        delivered, rejected = await self.receive(wait=wait)
        return Step(sent, refused, delivered, rejected, pending)

    async def run(self, stop: asyncio.Event, *, wait: float = 20) -> None:
        """Repeat :meth:`run_once` until *stop* is set; while the hub is unreachable, wait
        longer and longer (up to ``max_backoff``) between steps."""
        failures = 0
        while not stop.is_set():
            poll = asyncio.ensure_future(self.run_once(wait=wait))
            stopped = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({poll, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if poll not in done:  # stopping: a long poll is abandoned, its leases run out
                poll.cancel()
                await asyncio.gather(poll, return_exceptions=True)
                break
            stopped.cancel()
            try:
                step = poll.result()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                failures += 1
                delay = min(self.max_backoff, self.backoff * 2**failures)
                log.warning("hub unreachable (%s); next step in %.1f s", exc, delay)
                await _pause(stop, delay)
                continue
            failures = 0
            if step.pending:  # sends are waiting for the hub: do not spin
                await _pause(stop, self.backoff)
            elif not self.receives:  # no long poll paces the loop: look for new items now and then
                await _pause(stop, min(wait, 1.0))


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep *seconds*, or less if *stop* is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def run(
    adapter: Adapter,
    client: HubClient,
    *,
    stop: asyncio.Event,
    wait: float = 20,
    lease: float = 300,
    verifier: PackageVerifier | None = None,
    receive: bool = True,
) -> None:
    """Run *adapter* for the agency of *client* until *stop* is set (see the module doc).
    *receive* False: only send (a push-based adapter receives through its own server)."""
    await adapter.start()
    try:
        runner = Runner(adapter, client, lease=lease, verifier=verifier, receive=receive)
        await runner.run(stop, wait=wait)
    finally:
        await adapter.close()
