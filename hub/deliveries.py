"""The recipient side: the inbox, downloading packages, and transport acknowledgements."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select

from hub import receipts
from hub.context import HubContext
from hub.directory import Agency
from hub.errors import BadRequest, Forbidden, NotFound
from hub.purged import raise_if_purged
from hub.states import PENDING, AckResult, Transport, on_ack, on_download
from tracking.models import Blob, Delivery, Document, Receipt, StatusRecord, utcnow
from tracking.store import append_event

MAX_WAIT_SECONDS = 60.0
MAX_INBOX_LIMIT = 500
MAX_LEASE_SECONDS = 3600.0


def _item(
    delivery: Delivery,
    doc: Document,
    status: StatusRecord | None,
    receipt: Receipt | None = None,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "delivery_id": delivery.id,
        "kind": delivery.kind,
        "document_id": doc.id,
        "priority": delivery.priority,
        "state": delivery.state,
        "created_at": delivery.created_at.isoformat(),
        "lease_until": delivery.lease_until.isoformat() if delivery.lease_until else None,
        "sender": doc.sender_code,
        "edxml_document_id": doc.edxml_document_id,
        "subject": doc.subject,
    }
    if delivery.kind == "notice":
        # The hub's own message to a sender: what became of a package it sent (hub.notices).
        item["reason"] = delivery.note or ""
        item["href"] = f"/v1/documents/{doc.id}/trace"
        item["package_sha256"] = doc.package_sha256
        return item
    if delivery.note:
        item["note"] = delivery.note
    if receipt is not None:
        item["href"] = f"/v1/receipts/{receipt.id}"
        item["receipt_id"] = receipt.id
        item["package_sha256"] = doc.package_sha256
    elif status is None:
        item["href"] = f"/v1/documents/{doc.id}"
        item["package_sha256"] = doc.package_sha256
    else:
        item["href"] = f"/v1/status/{status.id}"
        item["status_id"] = status.id
        item["status_code"] = status.status_code
        item["reporter"] = status.reporter_code
        item["package_sha256"] = status.package_sha256
    return item


# What the inbox shows of one delivery; also the body the hub pushes for a notice.
inbox_item = _item


def _inbox_query(
    caller: Agency, kinds: Collection[str] | None = None
) -> Select[Delivery, Document, StatusRecord, Receipt]:
    query = (
        select(Delivery, Document, StatusRecord, Receipt)
        .join(Document, Document.id == Delivery.document_id)
        .outerjoin(StatusRecord, StatusRecord.id == Delivery.status_id)
        .outerjoin(Receipt, Receipt.id == Delivery.receipt_id)
        .where(
            Delivery.recipient_code == caller.code,
            Delivery.state.in_([s.value for s in PENDING]),
        )
        # hỏa tốc before thượng khẩn before khẩn before thường; oldest first within each.
        .order_by(Delivery.priority.desc(), Delivery.created_at, Delivery.id)
    )
    return query if kinds is None else query.where(Delivery.kind.in_(list(kinds)))


def _not_leased(now: dt.datetime) -> ColumnElement[bool]:
    return or_(Delivery.lease_until.is_(None), Delivery.lease_until <= now)


async def _peek(
    ctx: HubContext, caller: Agency, limit: int, kinds: Collection[str] | None
) -> list[dict[str, Any]]:
    """Every pending delivery, leased or not; nothing changes."""
    async with ctx.store.read() as session:
        rows = await session.execute(_inbox_query(caller, kinds).limit(limit))
        return [_item(d, doc, st, rc) for d, doc, st, rc in rows]


async def _lease(
    ctx: HubContext, caller: Agency, limit: int, seconds: float, kinds: Collection[str] | None
) -> tuple[list[dict[str, Any]], dt.datetime | None]:
    """Hand out up to *limit* pending deliveries nobody holds, each for *seconds*.

    Returns them and, when there are none, the moment the earliest lease held by someone else
    runs out (the item then comes back, so a long poll must look again by then). The look-up
    and the lease are one write transaction, so two pollers never get the same delivery.
    """
    async with ctx.store.write() as session:
        now = utcnow()
        rows = list(
            await session.execute(_inbox_query(caller, kinds).where(_not_leased(now)).limit(limit))
        )
        until = now + dt.timedelta(seconds=seconds)
        for row in rows:
            row[0].lease_until = until
        if rows:
            return [_item(d, doc, st, rc) for d, doc, st, rc in rows], None
        next_back = (
            await session.execute(
                select(func.min(Delivery.lease_until)).where(
                    Delivery.recipient_code == caller.code,
                    Delivery.state.in_([s.value for s in PENDING]),
                    Delivery.lease_until > now,
                    *([] if kinds is None else [Delivery.kind.in_(list(kinds))]),
                )
            )
        ).scalar_one_or_none()
        return [], next_back


async def inbox(
    ctx: HubContext,
    caller: Agency,
    *,
    limit: int = 100,
    wait: float = 0,
    lease: float = 0,
    kinds: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """Pending deliveries for *caller*; with *wait*, hold the request until one arrives.

    Without *lease* the inbox is only looked at. With *lease* (seconds), the items returned are
    leased to this caller: hidden from other leasing polls until they are acknowledged or the
    lease runs out, when they come back (a poller that crashed loses nothing). *kinds* keeps
    only deliveries of those kinds (``document``, ``status``, ``receipt``, ``notice``).
    """
    if not 1 <= limit <= MAX_INBOX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_INBOX_LIMIT}.")
    if not 0 <= wait <= MAX_WAIT_SECONDS:
        raise BadRequest(f"wait must be between 0 and {MAX_WAIT_SECONDS:g} seconds.")
    if not 0 <= lease <= MAX_LEASE_SECONDS:
        raise BadRequest(f"lease must be between 0 and {MAX_LEASE_SECONDS:g} seconds.")
    deadline = time.monotonic() + wait
    while True:
        ticket = ctx.notifier.ticket(caller.code)
        comes_back: dt.datetime | None = None
        if lease:
            items, comes_back = await _lease(ctx, caller, limit, lease, kinds)
        else:
            items = await _peek(ctx, caller, limit, kinds)
        remaining = deadline - time.monotonic()
        if items or remaining <= 0:
            return items
        if comes_back is not None:
            # A lease held by another poller runs out before our wait does: look again then.
            remaining = min(remaining, max((comes_back - utcnow()).total_seconds(), 0.01))
        await ctx.notifier.wait(ticket, remaining)
        if time.monotonic() >= deadline:
            return []


async def _mark_downloaded(ctx: HubContext, delivery: Delivery, actor: str) -> None:
    """A recipient's first download moves its delivery to ``delivered``.

    Downloads are reads: the write transaction (serialised with intake) is only opened when the
    state actually changes, and the state is read again inside it so two concurrent first
    downloads record one event.
    """
    if on_download(Transport(delivery.state)) == delivery.state:
        return
    async with ctx.store.write() as session:
        current = await session.get(Delivery, delivery.id)
        assert current is not None
        new_state = on_download(Transport(current.state))
        if new_state == current.state:
            return
        current.state = new_state
        current.delivered_at = utcnow()
        await append_event(
            session,
            "delivered",
            actor,
            document_id=current.document_id,
            delivery_id=current.id,
            detail={
                "recipient": current.recipient_code,
                "how": "downloaded",
                "kind": current.kind,
            },
        )


def _require_body_right(auditor: Agency) -> None:
    if not auditor.read_bodies:
        raise Forbidden(
            f"{auditor.code} is an auditor account without the right to read package bodies: "
            "it reads every trace (GET /v1/documents/{id}/trace), not the documents themselves. "
            "The hub's operators grant that right with read_bodies = true in agencies.toml."
        )


def _not_found(what: str, ident: str) -> NotFound:
    # Same answer for "does not exist" and "not yours": ids are not an oracle.
    return NotFound(f"No {what} {ident} is visible to you.")


async def own_delivery(ctx: HubContext, caller: Agency, ident: str) -> Delivery | None:
    """*caller*'s delivery *ident*, or else its delivery of the document *ident*; None if it
    has neither (another agency's ids find nothing)."""
    async with ctx.store.read() as session:
        delivery = await session.get(Delivery, ident)
        if delivery is not None and delivery.recipient_code == caller.code:
            return delivery
        return (
            await session.execute(
                select(Delivery).where(
                    Delivery.document_id == ident,
                    Delivery.kind == "document",
                    Delivery.recipient_code == caller.code,
                )
            )
        ).scalar_one_or_none()


async def fetch_document(ctx: HubContext, caller: Agency, document_id: str) -> bytes:
    """The exact bytes received, for the sender, a recipient or an auditor."""
    async with ctx.store.read() as session:
        doc = await session.get(Document, document_id)
        if doc is None:
            await raise_if_purged(session, caller, document_id)
            raise _not_found("document", document_id)
        delivery = None
        if caller.role == "agency" and caller.code != doc.sender_code:
            delivery = (
                await session.execute(
                    select(Delivery).where(
                        Delivery.document_id == doc.id,
                        Delivery.kind == "document",
                        Delivery.recipient_code == caller.code,
                    )
                )
            ).scalar_one_or_none()
            if delivery is None:
                raise _not_found("document", document_id)
        elif caller.role in ("admin", "hub"):
            # Operators read no packages; a peer hub's account only ever sends to this hub.
            raise _not_found("document", document_id)
        elif caller.role == "auditor":
            _require_body_right(caller)
        blob = await session.get(Blob, doc.package_sha256)
        assert blob is not None
        data = blob.data
    if delivery is not None:
        await _mark_downloaded(ctx, delivery, caller.code)
    return data


async def fetch_status(ctx: HubContext, caller: Agency, status_id: str) -> bytes:
    """A status package, for its reporter, the party it was routed to, or an auditor."""
    async with ctx.store.read() as session:
        record = await session.get(StatusRecord, status_id)
        allowed = record is not None and (
            caller.role == "auditor" or caller.code in (record.reporter_code, record.target_code)
        )
        if record is None or not allowed:
            raise _not_found("status package", status_id)
        if caller.role == "auditor":
            _require_body_right(caller)
        blob = await session.get(Blob, record.package_sha256)
        assert blob is not None
        data = blob.data
        delivery = None
        if caller.code == record.target_code:
            delivery = (
                await session.execute(select(Delivery).where(Delivery.status_id == record.id))
            ).scalar_one()
    if delivery is not None:
        await _mark_downloaded(ctx, delivery, caller.code)
    return data


async def fetch_receipt(ctx: HubContext, caller: Agency, receipt_id: str) -> dict[str, Any]:
    """A signed receipt, for the agency it was issued to (the sender) and auditors. Fetching a
    delivery receipt from the inbox marks that inbox item ``delivered``."""
    async with ctx.store.read() as session:
        row = await session.get(Receipt, receipt_id)
        if row is None or not (caller.role == "auditor" or caller.code == row.issued_to):
            raise _not_found("receipt", receipt_id)
        delivery = (
            await session.execute(
                select(Delivery).where(
                    Delivery.receipt_id == row.id, Delivery.recipient_code == caller.code
                )
            )
        ).scalar_one_or_none()
        answer = receipts.answer(row)
    if delivery is not None:
        await _mark_downloaded(ctx, delivery, caller.code)
    return answer


async def acknowledge(
    ctx: HubContext, caller: Agency, delivery_id: str, result: str, reason: str = ""
) -> dict[str, Any]:
    """Transport acknowledgement: ``done`` (stored) or ``fail`` (could not, with a reason)."""
    try:
        ack = AckResult(result)
    except ValueError:
        raise BadRequest("result must be 'done' or 'fail'.", code="request.invalid") from None
    if ack is AckResult.FAIL and not reason.strip():
        raise BadRequest("A 'fail' acknowledgement needs a reason.", code="request.invalid")
    async with ctx.store.write() as session:
        delivery = await session.get(Delivery, delivery_id)
        if delivery is None or delivery.recipient_code != caller.code:
            raise _not_found("delivery", delivery_id)
        before = Transport(delivery.state)
        after = on_ack(before, ack)  # raises Conflict on done-after-fail and the like
        notify = ""
        latency: float | None = None  # seconds from queued to acknowledged, if this ack counts
        answer: dict[str, Any] = {
            "delivery_id": delivery.id,
            "state": delivery.state,
            "changed": after != before,
        }
        if after != before:
            delivery.state = after
            delivery.lease_until = None
            delivery.acked_at = utcnow()
            delivery.ack_reason = reason.strip() or None
            latency = (delivery.acked_at - delivery.created_at).total_seconds()
            detail: dict[str, Any] = {
                "recipient": caller.code,
                "kind": delivery.kind,
                "result": ack.value,
                "reason": reason.strip(),
            }
            if delivery.kind == "document":
                # The sender's proof that this recipient took (or refused) the document.
                receipt = await receipts.issue_delivery_receipt(
                    ctx, session, delivery, reason.strip()
                )
                detail["receipt_id"] = receipt.id
                notify = receipt.issued_to
            await append_event(
                session,
                "acknowledged" if ack is AckResult.DONE else "failed",
                caller.code,
                document_id=delivery.document_id,
                delivery_id=delivery.id,
                detail=detail,
            )
            answer["state"] = delivery.state
    if latency is not None:  # observed once committed: a rolled-back ack was never one
        ctx.metrics.delivery_latency.observe(max(0.0, latency), kind=delivery.kind)
    if notify:
        ctx.notifier.notify(notify)  # the sender's long poll: a receipt arrived
        if ctx.first_attempt_at(notify, utcnow()) is not None:
            ctx.outbox.ring()  # the sender takes its receipts by push
    return answer
