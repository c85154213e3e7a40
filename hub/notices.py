"""Notices: the hub telling a sender, in its inbox, that a package it sent did not get through.

A notice is a delivery of kind ``notice`` to whoever sent the package (the document's sender,
or the reporter of a status package), with a plain-language ``reason`` and a link to the
document's trace, where the undelivered delivery shows its state and every attempt. It is
queued in the same transaction as the state change it reports, so a sender is told exactly once.
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


def reason(recipient: str, what: str, delivery_id: str) -> str:
    """The notice's text: who did not get it, why, and what can be done. Fits ``note``."""
    text = (
        f"Not delivered to {recipient}: {what}. An operator can send it again "
        f"(delivery {delivery_id})."
    )
    if len(text) <= REASON_MAX:
        return text
    # The cause is the part that can be long (an error message): shorten it, keep the rest.
    fixed = len(text) - len(what)
    return reason(recipient, what[: REASON_MAX - fixed - 1] + "…", delivery_id)


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
    ctx: HubContext, session: AsyncSession, delivery: Delivery, what: str, now: datetime
) -> Delivery | None:
    """Queue a notice about *delivery* (just made dead or expired) to its sender, inside the
    caller's write transaction; the notice, or None when there is no sender to tell. The caller
    wakes the sender's long poll (and the dispatcher) after the commit."""
    sender = await _sender_of(session, delivery)
    if sender is None or ctx.directory.local(sender) is None:
        # A sender behind a peer hub has no inbox here, and a notice is nothing a peer takes:
        # the alert (trace and log) is all there is.
        return None
    text = reason(delivery.recipient_code, what, delivery.id)
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
