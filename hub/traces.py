"""The trace of a document as people read it: every recipient's states and every event."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from hub.context import HubContext
from hub.deadlines import ACK, DUE_DATE
from hub.directory import Agency
from hub.errors import NotFound
from hub.purged import raise_if_purged
from hub.states import CLOSED
from tracking.models import Delivery, Document, TraceEvent
from tracking.store import append_event


def document_facts(doc: Document) -> dict[str, Any]:
    """How a document is described to people and auditors, the same way everywhere (the trace,
    search results, evidence bundles)."""
    return {
        "document_id": doc.id,
        "sender": doc.sender_code,
        "edxml_document_id": doc.edxml_document_id,
        "code": f"{doc.code_number}/{doc.code_notation}",
        "subject": doc.subject,
        "priority": doc.priority,
        "received_at": doc.received_at.isoformat(),
    }


_SETTLED = ("done", "failed")


def summary(recipients: list[dict[str, Any]]) -> dict[str, Any]:
    """What the sender asks first: who has not acknowledged the document yet, who has not
    finished with it, who was flagged overdue (hub.deadlines)."""
    return {
        "recipients": len(recipients),
        "not_acknowledged": [r["recipient"] for r in recipients if r["transport"] not in _SETTLED],
        "not_finished": [r["recipient"] for r in recipients if r["business"] not in CLOSED],
        "overdue": [r["recipient"] for r in recipients if r["overdue"]],
    }


def overdue_flags(delivery: Delivery) -> list[str]:
    """The deadlines a document delivery was flagged for missing; a flag stays once raised."""
    flags = ((ACK, delivery.ack_overdue_at), (DUE_DATE, delivery.due_overdue_at))
    return [what for what, at in flags if at is not None]


async def document_trace(ctx: HubContext, caller: Agency, document_id: str) -> dict[str, Any]:
    """Sender and auditors see everything; a recipient sees the document's own events and those
    of its own deliveries, never what other recipients did."""
    async with ctx.store.read() as session:
        doc = await session.get(Document, document_id)
        if doc is None:
            await raise_if_purged(session, caller, document_id)
            raise NotFound(f"No document {document_id} is visible to you.")
        deliveries = list(
            (
                await session.execute(select(Delivery).where(Delivery.document_id == doc.id))
            ).scalars()
        )
        full_view = caller.role == "auditor" or caller.code == doc.sender_code
        mine = {d.id for d in deliveries if d.recipient_code == caller.code}
        if not full_view and not any(d.kind == "document" for d in deliveries if d.id in mine):
            raise NotFound(f"No document {document_id} is visible to you.")
        events = (
            await session.execute(
                select(TraceEvent).where(TraceEvent.document_id == doc.id).order_by(TraceEvent.seq)
            )
        ).scalars()

    def visible(delivery_id: str | None, detail: dict[str, Any]) -> bool:
        if full_view or delivery_id is None:
            return True
        return delivery_id in mine or detail.get("recipient") == caller.code

    recipients = [
        {
            "recipient": d.recipient_code,
            "delivery_id": d.id,
            "transport": d.state,
            "business": d.business_state,
            "recall_pending": d.recall_pending,
            "note": d.note,
            "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
            "acknowledged_at": d.acked_at.isoformat() if d.acked_at else None,
            "overdue": overdue_flags(d),
        }
        for d in deliveries
        if d.kind == "document" and (full_view or d.id in mine)
    ]
    out_events = []
    for e in events:
        detail = json.loads(e.detail)
        if visible(e.delivery_id, detail):
            out_events.append(
                {
                    "seq": e.seq,
                    "at": e.at.isoformat(),
                    "kind": e.kind,
                    "actor": e.actor,
                    "delivery_id": e.delivery_id,
                    "detail": detail,
                    "hash": e.hash,
                }
            )
    return {
        "summary": summary(recipients),
        "document": {**document_facts(doc), "package_sha256": doc.package_sha256},
        "recipients": recipients,
        "events": out_events,
    }


async def record_auditor_access(
    ctx: HubContext, caller: Agency, what: str, detail: dict[str, Any]
) -> None:
    """Every auditor read is itself an event of the audit chain: who looked at what, and when.

    The event names the document in its detail only, not as the event's ``document_id``: the
    document's own trace, which its sender and recipients read, does not show who audited it.
    """
    if caller.role != "auditor":
        return
    async with ctx.store.write() as session:
        await append_event(session, "audit_access", caller.code, detail={"what": what, **detail})
