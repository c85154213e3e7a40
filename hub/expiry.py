"""Expiry: a delivery not acknowledged within ``[delivery] expire_after_seconds`` is ``expired``,
and its sender is told (a notice, ``hub.notices``). 0 means never.

The age counts from ``created_at``, when the delivery was queued (or queued again by an
operator's resend). Only packages expire, documents and status packages, whether pulled or
pushed; the hub's own receipts and notices wait in the inbox until they are acknowledged.
:func:`expire_overdue` does one pass; the hub runs it on an APScheduler interval job
(:func:`add_expiry_job`), a clock only: the state is in the database, so a missed run is
caught up by the next one, and several hub nodes running it at once expire each delivery once.
"""

from __future__ import annotations

import datetime as dt
import logging
from functools import partial
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import select

from hub import alerts, notices
from hub.cluster import every_once_per_cluster
from hub.context import HubContext
from hub.states import PENDING, Transport, on_expire
from tracking.models import Delivery, utcnow
from tracking.store import append_event

log = logging.getLogger(__name__)

EXPIRING_KINDS = ("document", "status")
BATCH = 200  # deliveries per write transaction: keeps intake waiting briefly at most
CHECK_SECONDS = 60  # how often the hub looks (at most; more often when the limit is shorter)


async def expire_overdue(ctx: HubContext, now: dt.datetime | None = None) -> int:
    """Expire every pending package delivery older than the limit; the number expired."""
    limit = ctx.delivery.expire_after_seconds
    if limit <= 0:
        return 0
    now = now or utcnow()
    cutoff = now - dt.timedelta(seconds=limit)
    total = 0
    while True:
        expired, told, raised = [], [], []
        async with ctx.store.write() as session:
            rows = (
                await session.execute(
                    select(Delivery)
                    .where(
                        Delivery.state.in_([s.value for s in PENDING]),
                        Delivery.kind.in_(EXPIRING_KINDS),
                        Delivery.created_at <= cutoff,
                    )
                    .order_by(Delivery.created_at, Delivery.id)
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
            for delivery in rows:
                before = delivery.state
                delivery.state = on_expire(Transport(before))
                delivery.next_attempt_at = None
                detail: dict[str, Any] = {
                    "recipient": delivery.recipient_code,
                    "kind": delivery.kind,
                    "delivery_id": delivery.id,
                    "state_before": before,
                    "attempts": delivery.attempts,
                    "expire_after_seconds": limit,
                }
                await append_event(
                    session,
                    "expired",
                    "hub",
                    document_id=delivery.document_id,
                    delivery_id=delivery.id,
                    detail={**detail, "alert": True},
                )
                text = notices.undelivered(
                    delivery.recipient_code,
                    f"not acknowledged within {notices.duration(limit)} ({_said(before)})",
                    delivery.id,
                )
                notice = await notices.tell_sender(ctx, session, delivery, text, now)
                expired.append(detail)
                raised.append(alerts.about(delivery, "expired", text, now))
                if notice is not None:
                    told.append(notice)
        for detail in expired:
            log.warning("delivery expired: not acknowledged in time", extra=detail)
        notices.wake(ctx, told)
        ctx.alerts.forward(raised)
        total += len(expired)
        if len(expired) < BATCH:
            return total


def _said(state: str) -> str:
    return {
        Transport.QUEUED: "never downloaded",
        Transport.DELIVERED: "delivered, never acknowledged",
        Transport.RETRYING: "its system kept failing",
    }.get(Transport(state), state)


def add_expiry_job(scheduler: AsyncIOScheduler, ctx: HubContext) -> None:
    """Run :func:`expire_overdue` on *scheduler*'s clock (nothing when expiry is off)."""
    limit = ctx.delivery.expire_after_seconds
    if limit <= 0:
        return
    every = max(1, min(CHECK_SECONDS, limit // 10 or 1))
    every_once_per_cluster(scheduler, ctx, partial(expire_overdue, ctx), every, "delivery-expiry")
