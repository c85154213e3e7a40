"""The receipts the hub signs (``signing.receipts``), issued inside the transactions they prove.

- A **submission receipt** answers every accepted document (``POST /v1/documents``): the hub
  received these exact bytes (SHA-256, size) from this sender, for these recipients, at this
  time. A retry gets the same receipt again.
- A **delivery receipt** is issued to the sender when a recipient acknowledges its delivery
  (``done`` or ``fail``), and put in the sender's inbox as an item of kind ``receipt``.

Each is stored as signed (``receipts`` table), so what the hub shows later is byte for byte
what it signed.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.context import HubContext
from hub.states import Transport
from signing.receipts import VERSION, receipt_time
from tracking.models import Delivery, Document, Receipt, utcnow
from tracking.store import append_event


def answer(row: Receipt) -> dict[str, Any]:
    """How the API shows a receipt (``SignedReceipt`` in openapi.json)."""
    return {"receipt_id": row.id, "kind": row.kind, "jws": row.jws}


def _payload(
    ctx: HubContext, receipt_id: str, kind: str, doc: Document, recipients: list[str], at: datetime
) -> dict[str, Any]:
    return {
        "v": VERSION,
        "kind": kind,
        "receipt_id": receipt_id,
        "hub": ctx.hub_id,
        "issued_at": receipt_time(at),
        "document_id": doc.id,
        "edxml_document_id": doc.edxml_document_id,
        "package_sha256": doc.package_sha256,
        "size": doc.size,
        "sender": doc.sender_code,
        "recipients": recipients,
    }


async def _recipients(session: AsyncSession, doc: Document) -> list[str]:
    rows = await session.execute(
        select(Delivery.recipient_code)
        .where(Delivery.document_id == doc.id, Delivery.kind == "document")
        .order_by(Delivery.created_at, Delivery.id)
    )
    return list(rows.scalars())


async def submission_receipt(
    ctx: HubContext, session: AsyncSession, doc: Document, recipients: list[str] | None = None
) -> Receipt:
    """The document's submission receipt, signed now if it has none yet (documents accepted
    before receipts existed get theirs on the sender's next retry)."""
    existing = (
        await session.execute(
            select(Receipt).where(Receipt.document_id == doc.id, Receipt.kind == "submission")
        )
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    if recipients is None:
        recipients = await _recipients(session, doc)
    receipt_id = str(uuid.uuid4())
    at = utcnow()
    payload = _payload(ctx, receipt_id, "submission", doc, recipients, at)
    payload["received_at"] = receipt_time(doc.received_at)
    row = Receipt(
        id=receipt_id,
        kind="submission",
        document_id=doc.id,
        delivery_id=None,
        issued_to=doc.sender_code,
        issued_at=at,
        jws=ctx.receipt_signer.sign(payload),
    )
    session.add(row)
    await session.flush()
    return row


async def issue_delivery_receipt(
    ctx: HubContext, session: AsyncSession, acked: Delivery, reason: str
) -> Receipt:
    """Sign the delivery receipt for *acked* (just acknowledged) and queue it to the sender."""
    doc = await session.get(Document, acked.document_id)
    assert doc is not None
    receipt_id = str(uuid.uuid4())
    at = utcnow()
    payload = _payload(ctx, receipt_id, "delivery", doc, await _recipients(session, doc), at)
    payload.update(
        {
            "recipient": acked.recipient_code,
            "delivery_id": acked.id,
            "result": "done" if acked.state == Transport.DONE else "fail",
            "reason": reason,
            "acknowledged_at": receipt_time(acked.acked_at or at),
        }
    )
    row = Receipt(
        id=receipt_id,
        kind="delivery",
        document_id=doc.id,
        delivery_id=acked.id,
        issued_to=doc.sender_code,
        issued_at=at,
        jws=ctx.receipt_signer.sign(payload),
    )
    session.add(row)
    await session.flush()
    sender = ctx.directory.get(doc.sender_code)
    if sender is not None and not sender.is_local:
        # The sender is served by a peer hub and has no inbox here; the peer recorded this
        # hub's submission receipt when it forwarded the document. The receipt stays here,
        # signed, for auditors (its id is in the acknowledgement's trace event).
        return row
    to_sender = Delivery(
        id=str(uuid.uuid4()),
        kind="receipt",
        document_id=doc.id,
        receipt_id=row.id,
        recipient_code=doc.sender_code,
        priority=doc.priority,
        state=Transport.QUEUED,
        created_at=at,
        next_attempt_at=ctx.first_attempt_at(doc.sender_code, at),
        attempts=0,
        recall_pending=False,
    )
    session.add(to_sender)
    await session.flush()
    await append_event(
        session,
        "queued",
        "hub",
        document_id=doc.id,
        delivery_id=to_sender.id,
        detail={
            "recipient": doc.sender_code,
            "kind": "receipt",
            "receipt_id": row.id,
            "about": acked.recipient_code,
            "result": payload["result"],
        },
    )
    return row
