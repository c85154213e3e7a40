"""INTERIM: a minimal loop that sends due peer deliveries through hub.federation.PeerRouter.

This exists only so federation works end to end before the push dispatcher (``hub.dispatcher``,
issue 5) is merged. The dispatcher does the same job for every channel, with claiming across hub
nodes (``FOR UPDATE SKIP LOCKED``); when it is merged, register ``PeerRouter`` as its channel
for delivery mode ``"peer"`` and delete this module and its start-up in ``hub.server``.

What it does: every ``interval`` seconds, claim the due deliveries whose recipient's delivery
mode is ``peer`` (queued or retrying, ``next_attempt_at`` passed) by moving ``next_attempt_at``
past the attempt's timeout, send each, and apply the :class:`~hub.outbound.Outcome` with the
recipient's :class:`~hub.retry.RetryPolicy`: ``delivered``, ``retrying`` or ``dead``, with the
same trace events as the dispatcher (``delivered``, ``attempt_failed``, ``dead``). Unlike the
dispatcher it tells no sender about a dead delivery (no notices): the trace and the log say it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.context import HubContext
from hub.directory import Agency
from hub.federation import DELIVERY_MODE, PeerRouter
from hub.outbound import Outcome, Outgoing
from hub.retry import GiveUp
from hub.states import Transport
from tracking.models import Agency as AgencyRow
from tracking.models import Blob, Delivery, Document, StatusRecord, utcnow
from tracking.store import append_event

log = logging.getLogger(__name__)

BATCH = 20


async def _claim(ctx: HubContext, now: dt.datetime) -> list[Outgoing]:
    lease = dt.timedelta(seconds=ctx.delivery.push_timeout_seconds + 5)
    async with ctx.store.write() as session:
        rows = await session.execute(
            select(Delivery, Document, StatusRecord)
            .join(AgencyRow, AgencyRow.code == Delivery.recipient_code)
            .join(Document, Document.id == Delivery.document_id)
            .outerjoin(StatusRecord, StatusRecord.id == Delivery.status_id)
            .where(
                AgencyRow.delivery_mode == DELIVERY_MODE,
                Delivery.state.in_([Transport.QUEUED.value, Transport.RETRYING.value]),
                Delivery.next_attempt_at <= now,
            )
            .order_by(Delivery.priority.desc(), Delivery.next_attempt_at, Delivery.id)
            .limit(BATCH)
        )
        out = []
        for delivery, doc, status in rows:
            sha256 = status.package_sha256 if status is not None else doc.package_sha256
            blob = await session.get(Blob, sha256)
            assert blob is not None
            # Claimed: nobody else picks it up before this attempt has had its chance.
            delivery.next_attempt_at = now + lease
            out.append(
                Outgoing(
                    delivery_id=delivery.id,
                    kind=delivery.kind,
                    document_id=doc.id,
                    recipient=delivery.recipient_code,
                    priority=delivery.priority,
                    body=blob.data,
                    sha256=sha256,
                )
            )
    return out


async def _apply(ctx: HubContext, outgoing: Outgoing, outcome: Outcome) -> None:
    """Record one attempt. The events and their details are the push dispatcher's (``delivered``
    with ``how: "forwarded"`` and the peer's answer in ``far_side``; ``attempt_failed``; ``dead``),
    so traces read the same before and after it replaces this loop."""
    now = utcnow()
    async with ctx.store.write() as session:
        delivery = await session.get(Delivery, outgoing.delivery_id)
        assert delivery is not None
        delivery.attempts += 1
        where: dict[str, Any] = {
            "recipient": delivery.recipient_code,
            "kind": delivery.kind,
            "attempt": delivery.attempts,
            "channel": DELIVERY_MODE,
        }
        if outcome.delivered:
            delivery.state = Transport.DELIVERED
            delivery.delivered_at = now
            delivery.next_attempt_at = None
            delivery.last_error = None
            detail = {**where, "how": "forwarded", "answer": outcome.detail}
            if outcome.answer:
                detail["far_side"] = outcome.answer
            await _event(session, "delivered", delivery, detail)
            return
        # A code routed by pattern has no directory entry: the [delivery] defaults apply.
        agency = ctx.directory.get(delivery.recipient_code) or Agency(
            delivery.recipient_code, delivery.recipient_code, "agency"
        )
        decision = ctx.retry_policy_for(agency).decide(
            delivery.attempts, delivery.created_at, now, permanent=outcome.permanent
        )
        delivery.last_error = outcome.detail
        failed = {**where, "error": outcome.detail, "permanent": outcome.permanent}
        if isinstance(decision, GiveUp):
            delivery.state = Transport.DEAD
            delivery.next_attempt_at = None
            await _event(session, "attempt_failed", delivery, failed)
            dead = {
                **where,
                "delivery_id": delivery.id,
                "attempts": delivery.attempts,
                "reason": decision.reason,
                "last_error": outcome.detail,
                "alert": True,
            }
            await _event(session, "dead", delivery, dead)
            log.warning("delivery dead: the hub stopped forwarding it", extra=dead)
        else:
            delivery.state = Transport.RETRYING
            delivery.next_attempt_at = decision.at
            failed["next_attempt_at"] = decision.at.isoformat()
            await _event(session, "attempt_failed", delivery, failed)


async def _event(
    session: AsyncSession, kind: str, delivery: Delivery, detail: dict[str, Any]
) -> None:
    await append_event(
        session,
        kind,
        "hub",
        document_id=delivery.document_id,
        delivery_id=delivery.id,
        detail=detail,
    )


async def forward_due(ctx: HubContext, router: PeerRouter) -> int:
    """One round: send every due peer delivery once; how many were attempted."""
    batch = await _claim(ctx, utcnow())
    for outgoing in batch:
        outcome = await router.send(outgoing)
        await _apply(ctx, outgoing, outcome)
    return len(batch)


async def run(ctx: HubContext, router: PeerRouter, *, interval: float = 0.5) -> None:
    """Forward until cancelled; an error in one round is logged and the next round tries again."""
    while True:
        try:
            if await forward_due(ctx, router) >= BATCH:
                continue  # more may be due right now
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("forwarding round failed")
        await asyncio.sleep(interval)
