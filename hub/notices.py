"""Notices: the hub telling a sender, in its inbox, that something went wrong with a package it
sent: it did not get through (dead, expired), or its recipient is overdue (``hub.deadlines``).

A notice is a delivery of kind ``notice`` to whoever sent the package (the document's sender,
or the reporter of a status package), with a plain-language ``reason`` and a link to the
document's trace, where the delivery shows its state and every event. It is queued in the same
transaction as the state change it reports, so a sender is told exactly once.
Receipts and notices are the hub's own messages: when one of those cannot be delivered there is
nobody to tell but the operators (the log warning and the trace event).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from hub.context import HubContext
from hub.states import Transport
from tracking.models import Delivery, Document, StatusRecord
from tracking.store import append_event

REASON_MAX = 200  # Delivery.note's width


def duration(seconds: float) -> str:
    """A duration as people say it: whole days, hours or minutes where it is one (7 days),
    else days or hours with one decimal (2.5 days, 26.5 hours), else minutes or seconds."""
    whole = int(seconds)
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if whole >= size and whole % size == 0:
            count = whole // size
            return f"{count} {unit if count > 1 else unit[:-1]}"
    if whole >= 2 * 86400:
        return f"{whole / 86400:.1f} days"
    if whole >= 3600:
        return f"{whole / 3600:.1f} hours"
    return f"{whole // 60} minutes" if whole >= 60 else f"{whole} s"


def _fit(template: str, what: str) -> str:
    """*template* with ``{what}`` filled in, within ``note``'s width. The cause is the part that
    can be long (an error message): it is shortened, the rest is kept."""
    text = template.format(what=what)
    if len(text) <= REASON_MAX:
        return text
    room = REASON_MAX - (len(text) - len(what)) - 1
    return template.format(what=what[: max(room, 0)] + "…")


def undelivered(recipient: str, what: str, delivery_id: str) -> str:
    """A dead or expired delivery: who did not get it, why, and what can be done."""
    return _fit(
        f"Not delivered to {recipient}: {{what}}. An operator can send it again "
        f"(delivery {delivery_id}).",
        what,
    )


def overdue(recipient: str, what: str) -> str:
    """A recipient past a deadline: who, and which deadline (the trace has the rest)."""
    return _fit(f"Overdue at {recipient}: {{what}}.", what)


async def _sender_of(session: AsyncSession, delivery: Delivery) -> str | None:
    """Who sent the package *delivery* carries; None for the hub's own receipts and notices."""
    if delivery.kind == "document":
        doc = await session.get(Document, delivery.document_id)
        return doc.sender_code if doc is not None else None
    if delivery.kind == "status" and delivery.status_id is not None:
        record = await session.get(StatusRecord, delivery.status_id)
        return record.reporter_code if record is not None else None
    return None


async def tell_sender(
    ctx: HubContext, session: AsyncSession, delivery: Delivery, text: str, now: datetime
) -> Delivery | None:
    """Queue a notice about *delivery* (just made dead or expired, or flagged overdue) to its
    sender, saying *text* (:func:`undelivered`, :func:`overdue`), inside the caller's write
    transaction; the notice, or None when there is no sender to tell. The caller wakes the
    sender's long poll (and the dispatcher) after the commit: :func:`wake`."""
    sender = await _sender_of(session, delivery)
    if sender is None or ctx.directory.local(sender) is None:
        # A sender behind a peer hub has no inbox here, and a notice is nothing a peer takes:
        # the alert (trace and log) is all there is.
        return None
    notice = Delivery(
        id=str(uuid.uuid4()),
        kind="notice",
        document_id=delivery.document_id,
        recipient_code=sender,
        priority=delivery.priority,
        state=Transport.QUEUED,
        note=text,
        created_at=now,
        next_attempt_at=ctx.first_attempt_at(sender, now),
        attempts=0,
        recall_pending=False,
    )
    session.add(notice)
    await session.flush()
    await append_event(
        session,
        "queued",
        "hub",
        document_id=delivery.document_id,
        delivery_id=notice.id,
        detail={
            "recipient": sender,
            "kind": "notice",
            "about_delivery_id": delivery.id,
            "about_recipient": delivery.recipient_code,
            "state": delivery.state,
            "reason": text,
        },
    )
    return notice


def wake(ctx: HubContext, told: list[Delivery]) -> None:
    """After the commit: wake the long polls of the senders *told*, and the dispatcher for those
    the hub pushes to."""
    for notice in told:
        ctx.notifier.notify(notice.recipient_code)
        if notice.next_attempt_at is not None:
            ctx.outbox.ring()
