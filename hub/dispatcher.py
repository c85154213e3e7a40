"""The dispatcher: claims deliveries that are due and hands each to the channel that carries it
out of the hub (push today; a peer hub is one more channel), then records what came of it.

The database owns every bit of state. A delivery is due when it is ``queued`` or ``retrying``
and its ``next_attempt_at`` has come (intake sets it to the creation time for recipients that do
not pull; ``ix_deliveries_due`` covers the look-up). Claiming a delivery counts the attempt and
moves ``next_attempt_at`` past the attempt's longest possible duration (the *claim lease*), in
one short write transaction: another hub node, or this one after a restart, sees it as not due
while the attempt runs, and as due again if the process died during it. So an attempt in flight
at a crash is simply made again; receivers de-duplicate on the delivery id.

Each outcome is applied in one write transaction: the transport state (``hub.states.on_push``),
the retry decision (``hub.retry``), ``attempts``/``next_attempt_at``/``last_error``, one trace
event, and when the delivery is given up, its ``dead`` event and the notice to its sender.
An outcome whose delivery moved on meanwhile (acknowledged, downloaded, expired, resent, claimed
again after a lease ran out) is stale and changes nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, exists, func, or_, select
from sqlalchemy.orm import aliased

from hub import alerts, deliveries, notices, receipts
from hub.context import HubContext
from hub.directory import Agency
from hub.federation import Destination
from hub.outbound import Channel, Outcome, Outgoing
from hub.push import PushChannel
from hub.retry import GiveUp, Rng
from hub.states import PUSHABLE, PushResult, Transport, on_push
from tracking.models import Blob, Delivery, Document, Receipt, StatusRecord, UTCDateTime, utcnow
from tracking.store import append_event

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 8
# The longest the dispatcher sleeps without looking at the database: picks up what other
# processes (another node, `lienthong deliveries resend`) made due.
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Route:
    channel: Channel
    how: str  # the ``how`` of the ``delivered`` event: "pushed", "forwarded", …


class Channels:
    """Which channel carries deliveries to an agency, keyed by its ``delivery`` mode.

    ``pull`` has none (the recipient fetches from its inbox). Another way out of the hub is one
    more :meth:`register` call; the dispatcher's loop does not change.
    """

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}

    def register(self, mode: str, channel: Channel, *, how: str) -> None:
        self._routes[mode] = Route(channel, how)

    def route(self, where: Destination | None) -> Route | None:
        """The channel for a recipient's delivery mode (push, peer); None: it pulls."""
        return None if where is None else self._routes.get(where.mode)

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes.values())

    async def close(self) -> None:
        """Close every channel that holds resources (an HTTP session…)."""
        for route in self._routes.values():
            close = getattr(route.channel, "close", None)
            if close is not None:
                await close()


def standard_channels(ctx: HubContext, *, push_timeout: float | None = None) -> Channels:
    """The channels of a hub on its own: push (``delivery = "push"``)."""
    channels = Channels()
    channels.register(
        "push",
        PushChannel(
            ctx.directory,
            ctx.receipt_signer,
            ctx.hub_id,
            timeout=push_timeout or ctx.delivery.push_timeout_seconds,
        ),
        how="pushed",
    )
    return channels


@dataclass(frozen=True)
class Claim:
    delivery_id: str
    attempt: int  # the number of this attempt; also tells a stale outcome from a current one


class Dispatcher:
    def __init__(
        self,
        ctx: HubContext,
        channels: Channels,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        poll_seconds: float = POLL_SECONDS,
        claim_lease: dt.timedelta | None = None,
        rng: Rng | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.ctx = ctx
        self.channels = channels
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        timeout = ctx.delivery.push_timeout_seconds
        self.claim_lease = claim_lease or dt.timedelta(seconds=timeout * 1.5 + 5)
        self.rng = rng
        self._loop: asyncio.Task[None] | None = None
        self._attempts: set[asyncio.Task[None]] = set()

    # --- running ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Its loop is alive (it survives database errors; only a stop or a crash ends it)."""
        return self._loop is not None and not self._loop.done()

    def start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.create_task(self._run(), name="lienthong-dispatcher")

    async def stop(self) -> None:
        """Stop claiming, abandon attempts in flight (their claim lease runs out and they are
        made again, here after a restart or on another node), close the channels."""
        tasks = [t for t in (self._loop, *self._attempts) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop = None
        self._attempts.clear()
        await self.channels.close()

    async def _run(self) -> None:
        while True:
            try:
                wait = await self._tick()
            except Exception:  # the database was away: log, and try again at the next poll
                log.exception("dispatcher: could not claim deliveries")
                wait = self.poll_seconds
            await self.ctx.outbox.wait(wait)

    async def _tick(self) -> float:
        """Claim what is due into the free slots; how long to sleep before looking again."""
        free = self.concurrency - len(self._attempts)
        if free > 0:
            for claim in await self._claim(free):
                task = asyncio.create_task(self._attempt(claim))
                self._attempts.add(task)
                task.add_done_callback(self._finished)
        if len(self._attempts) >= self.concurrency:
            return self.poll_seconds  # rung when a slot frees
        due = await self._next_due()
        if due is None:
            return self.poll_seconds
        # A short floor: rows due now but not claimable (locked by another node) must not spin.
        return min(max((due - utcnow()).total_seconds(), 0.01), self.poll_seconds)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._attempts.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("dispatcher: an attempt failed", exc_info=task.exception())
        self.ctx.outbox.ring()  # a slot is free

    async def run_once(self) -> int:
        """Claim everything due now (up to the concurrency), make those attempts and wait for
        them: one deterministic round, for tests and tools. The number of attempts made."""
        claims = await self._claim(self.concurrency)
        await asyncio.gather(*(self._attempt(c) for c in claims))
        return len(claims)

    # --- claiming --------------------------------------------------------------------------

    def _due(self, now: dt.datetime) -> Any:
        return _DUE.params(now=now)

    async def _claim(self, limit: int) -> list[Claim]:
        now = utcnow()
        async with self.ctx.store.read() as session:  # most looks find nothing: no write lock
            anything = (await session.execute(self._due(now).limit(1))).first()
        if anything is None:
            return []
        claims = []
        async with self.ctx.store.write() as session:
            rows = (
                await session.execute(
                    self._due(now)
                    # hỏa tốc before thượng khẩn before khẩn before thường; oldest first.
                    .order_by(Delivery.priority.desc(), Delivery.created_at, Delivery.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
            for delivery in rows:
                if self.channels.route(self.ctx.destination(delivery.recipient_code)) is None:
                    # The recipient pulls now (or left the directory): its inbox has it.
                    delivery.next_attempt_at = None
                    continue
                delivery.attempts += 1
                delivery.next_attempt_at = now + self.claim_lease
                claims.append(Claim(delivery.id, delivery.attempts))
        return claims

    async def _next_due(self) -> dt.datetime | None:
        async with self.ctx.store.read() as session:
            due: dt.datetime | None = (await session.execute(_NEXT_DUE)).scalar_one()
        if due is not None and due.tzinfo is None:  # func.min bypasses UTCDateTime
            due = due.replace(tzinfo=dt.UTC)
        return due

    # --- one attempt -----------------------------------------------------------------------

    async def _attempt(self, claim: Claim) -> None:
        async with self.ctx.store.read() as session:
            delivery = await session.get(Delivery, claim.delivery_id)
            assert delivery is not None
            outgoing = await outgoing_of(session, delivery)
        route = self.channels.route(self.ctx.destination(outgoing.recipient))
        if route is None:
            outcome = Outcome(delivered=False, detail="no channel for this recipient")
        else:
            try:
                outcome = await route.channel.send(outgoing)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a channel's bug must not stop the others
                log.exception(
                    "dispatcher: channel failed", extra={"delivery_id": claim.delivery_id}
                )
                outcome = Outcome(delivered=False, detail=f"hub error: {type(exc).__name__}")
        await self.apply(claim, outcome, how=route.how if route else "")

    async def apply(self, claim: Claim, outcome: Outcome, *, how: str) -> None:
        """Record one attempt's *outcome*, in one write transaction."""
        ctx = self.ctx
        alert: dict[str, Any] | None = None
        notice = None
        raised: alerts.Alert | None = None
        async with ctx.store.write() as session:
            delivery = await session.get(Delivery, claim.delivery_id)
            if (
                delivery is None
                or delivery.attempts != claim.attempt
                or Transport(delivery.state) not in PUSHABLE
            ):
                return  # stale: the delivery moved on while this attempt ran
            now = utcnow()
            code = delivery.recipient_code
            destination = ctx.destination(code)
            where = {
                "recipient": code,
                "kind": delivery.kind,
                "attempt": claim.attempt,
                "channel": destination.mode if destination else None,
            }
            if outcome.delivered:
                delivery.state = on_push(Transport(delivery.state), PushResult.DELIVERED)
                delivery.delivered_at = now
                delivery.next_attempt_at = None
                delivery.last_error = None
                detail = {**where, "how": how, "answer": outcome.detail}
                if outcome.answer:
                    detail["far_side"] = outcome.answer
                await _event(session, "delivered", delivery, detail)
            else:
                # A code reached through a peer by pattern has no directory entry of its own:
                # the hub's default retry limits apply to it.
                agency = ctx.directory.get(code) or Agency(code, code, "agency")
                policy = ctx.retry_policy_for(agency) if destination else None
                decision = (
                    policy.decide(
                        claim.attempt,
                        delivery.created_at,
                        now,
                        self.rng,
                        permanent=outcome.permanent,
                    )
                    if policy
                    else GiveUp("the recipient is no longer in the directory")
                )
                delivery.last_error = outcome.detail
                failed = {**where, "error": outcome.detail, "permanent": outcome.permanent}
                if isinstance(decision, GiveUp):
                    delivery.state = on_push(Transport(delivery.state), PushResult.GIVE_UP)
                    delivery.next_attempt_at = None
                    await _event(session, "attempt_failed", delivery, failed)
                    alert = {
                        **where,
                        "delivery_id": delivery.id,
                        "attempts": claim.attempt,
                        "reason": decision.reason,
                        "last_error": outcome.detail,
                    }
                    await _event(session, "dead", delivery, {**alert, "alert": True})
                    text = notices.undelivered(code, _why_dead(outcome, decision), delivery.id)
                    notice = await notices.tell_sender(ctx, session, delivery, text, now)
                    raised = alerts.about(delivery, "dead", text, now)
                else:
                    delivery.state = on_push(Transport(delivery.state), PushResult.RETRY)
                    delivery.next_attempt_at = decision.at
                    failed["next_attempt_at"] = decision.at.isoformat()
                    await _event(session, "attempt_failed", delivery, failed)
        if alert is not None:
            log.warning("delivery dead: the hub stopped trying", extra=alert)
        notices.wake(ctx, [notice] if notice is not None else [])
        if raised is not None:
            ctx.alerts.forward([raised])


def _first_in_line() -> ColumnElement[bool]:
    """No earlier delivery to the same recipient about the same document is still the hub's to
    send. What the hub sends about one document reaches each recipient in the order it was
    queued: a status 03 pushed or forwarded before the 01 it follows would be refused as going
    backwards. The rest of the queue goes on meanwhile."""
    earlier = aliased(Delivery)
    return ~exists().where(
        earlier.recipient_code == Delivery.recipient_code,
        earlier.document_id == Delivery.document_id,
        earlier.state.in_([s.value for s in PUSHABLE]),
        earlier.next_attempt_at.is_not(None),
        or_(
            earlier.created_at < Delivery.created_at,
            and_(earlier.created_at == Delivery.created_at, earlier.id < Delivery.id),
        ),
    )


# Built once: the dispatcher looks several times a second, and building these (an aliased
# subquery) costs more than running them.
_DUE = select(Delivery).where(
    Delivery.state.in_([s.value for s in PUSHABLE]),
    Delivery.next_attempt_at <= bindparam("now", type_=UTCDateTime()),
    _first_in_line(),
)
_NEXT_DUE = select(func.min(Delivery.next_attempt_at)).where(
    Delivery.state.in_([s.value for s in PUSHABLE]),
    Delivery.next_attempt_at.is_not(None),  # the hub's to send: an index range
    _first_in_line(),
)


def _why_dead(outcome: Outcome, decision: GiveUp) -> str:
    if outcome.permanent:
        return f"its system refused it ({outcome.detail})"
    return f"its system did not take it, {decision.reason}; last error: {outcome.detail}"


async def _event(session: Any, kind: str, delivery: Delivery, detail: dict[str, Any]) -> None:
    await append_event(
        session,
        kind,
        "hub",
        document_id=delivery.document_id,
        delivery_id=delivery.id,
        detail=detail,
    )


async def outgoing_of(session: Any, delivery: Delivery) -> Outgoing:
    """What any channel sends for *delivery*: a package's exact bytes (document, status), the
    signed receipt as ``GET /v1/receipts/{id}`` answers it, or a notice as the inbox shows it."""
    doc = await session.get(Document, delivery.document_id)
    assert doc is not None
    content_type = "application/xml"
    if delivery.kind == "document":
        body = (await session.get(Blob, doc.package_sha256)).data
    elif delivery.kind == "status":
        record = await session.get(StatusRecord, delivery.status_id)
        body = (await session.get(Blob, record.package_sha256)).data
    else:
        content_type = "application/json"
        if delivery.kind == "receipt":
            shown = receipts.answer(await session.get(Receipt, delivery.receipt_id))
        else:
            shown = deliveries.inbox_item(delivery, doc, None)
        body = json.dumps(shown, ensure_ascii=False).encode("utf-8")
    return Outgoing(
        delivery_id=delivery.id,
        kind=delivery.kind,
        document_id=delivery.document_id,
        recipient=delivery.recipient_code,
        priority=delivery.priority,
        body=body,
        sha256=hashlib.sha256(body).hexdigest(),
        content_type=content_type,
    )


def start_dispatcher(
    ctx: HubContext, channels: Channels | None = None, **options: Any
) -> Dispatcher:
    """A running dispatcher for *ctx* (the standard channels unless given); ``await stop()``."""
    dispatcher = Dispatcher(ctx, channels or standard_channels(ctx), **options)
    dispatcher.start()
    return dispatcher
