"""Finding documents: ``GET /v1/documents?sender=&recipient=&state=&status=&since=&until=&q=``.

What a caller may find is what it may read: an agency, the documents it sent or was sent; an
auditor, every document; an operator (admin), none (operators work on deliveries, not on what
agencies wrote). Results are newest first and paged with an opaque cursor (keyset pagination on
``received_at, id``), so a page costs the same at the end of a large hub as at the start and a
document arriving meanwhile neither repeats nor skips a result.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.sql.elements import ColumnElement

from hub.context import HubContext
from hub.directory import Agency
from hub.errors import BadRequest, Forbidden
from hub.states import Transport
from hub.traces import document_facts, overdue_flags
from tracking.models import Delivery, Document

MAX_LIMIT = 200
STATUS_CODES = ("01", "02", "03", "04", "05", "06", "15")


@dataclass(frozen=True)
class Query:
    sender: str | None = None
    recipient: str | None = None
    state: Transport | None = None  # a recipient's transport state
    status: str | None = None  # a recipient's business state (last status code)
    since: dt.datetime | None = None  # received at or after
    until: dt.datetime | None = None  # received before
    q: str | None = None  # words in the subject, DocumentId or number
    limit: int = 50
    after: tuple[dt.datetime, str] | None = None  # the cursor: the last result of the page before
    document_id: str | None = None  # one document (not a /v1 parameter: the facade's docId)

    def as_dict(self) -> dict[str, Any]:
        """The query as given, for the audit trail of auditor searches."""
        out: dict[str, Any] = {}
        for key in ("sender", "recipient", "state", "status", "q"):
            if getattr(self, key):
                out[key] = str(getattr(self, key))
        for key in ("since", "until"):
            when = getattr(self, key)
            if when is not None:
                out[key] = when.isoformat()
        return out


def _time(name: str, raw: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(
            f"{name} must be a date or time in ISO 8601 (2026-11-30 or 2026-11-30T08:00:00+07:00), "
            f"not {raw!r}."
        ) from None
    if when.tzinfo is None:  # a bare date or local time: Vietnam time, as people mean it
        when = when.replace(tzinfo=dt.timezone(dt.timedelta(hours=7)))
    return when.astimezone(dt.UTC)


def encode_cursor(received_at: dt.datetime, document_id: str) -> str:
    raw = json.dumps([received_at.isoformat(), document_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, document_id = json.loads(raw)
        return dt.datetime.fromisoformat(at).astimezone(dt.UTC), str(document_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise BadRequest("cursor is not one this hub gave out; start again without it.") from None


def parse_query(params: Mapping[str, str]) -> Query:
    """The query parameters, checked; :class:`BadRequest` names the one that is wrong."""
    known = {"sender", "recipient", "state", "status", "since", "until", "q", "limit", "cursor"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise BadRequest(f"unknown parameter {unknown[0]!r}; the parameters are {sorted(known)}.")
    state = params.get("state") or None
    if state is not None and state not in {t.value for t in Transport}:
        raise BadRequest(
            f"state must be one of {', '.join(t.value for t in Transport)}, not {state!r}."
        )
    status = params.get("status") or None
    if status is not None and status not in STATUS_CODES:
        raise BadRequest(f"status must be one of {', '.join(STATUS_CODES)}, not {status!r}.")
    try:
        limit = int(params.get("limit", "50"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}.")
    q = (params.get("q") or "").strip() or None
    if q is not None and len(q) > 200:
        raise BadRequest("q is at most 200 characters.")
    return Query(
        sender=params.get("sender") or None,
        recipient=params.get("recipient") or None,
        state=Transport(state) if state else None,
        status=status,
        since=_time("since", params["since"]) if params.get("since") else None,
        until=_time("until", params["until"]) if params.get("until") else None,
        q=q,
        limit=limit,
        after=_decode_cursor(params["cursor"]) if params.get("cursor") else None,
    )


def _delivery_to(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """The document has a document delivery meeting *conditions*."""
    return exists().where(
        Delivery.document_id == Document.id, Delivery.kind == "document", *conditions
    )


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class Found:
    """One page of documents, newest first, each with its document deliveries by recipient."""

    documents: list[Document]
    deliveries: dict[str, list[Delivery]]
    more: bool  # another page follows


async def find(ctx: HubContext, caller: Agency, query: Query) -> Found:
    """The documents *query* names among those *caller* may read (the module's rules)."""
    if caller.role == "admin":
        raise Forbidden("Operator accounts do not read documents; use an auditor account.")
    conditions: list[ColumnElement[bool]] = []
    # A recipient's filters on states concern its own delivery, never another recipient's.
    own: list[ColumnElement[bool]] = []
    if caller.role != "auditor":
        received = _delivery_to(Delivery.recipient_code == caller.code)
        conditions.append(or_(Document.sender_code == caller.code, received))
        own = [or_(Document.sender_code == caller.code, Delivery.recipient_code == caller.code)]
    if query.sender:
        conditions.append(Document.sender_code == query.sender)
    if query.recipient:
        conditions.append(_delivery_to(Delivery.recipient_code == query.recipient))
    if query.state:
        conditions.append(_delivery_to(Delivery.state == query.state.value, *own))
    if query.status:
        conditions.append(_delivery_to(Delivery.business_state == query.status, *own))
    if query.document_id:
        conditions.append(Document.id == query.document_id)
    if query.since:
        conditions.append(Document.received_at >= query.since)
    if query.until:
        conditions.append(Document.received_at < query.until)
    if query.q:
        pattern = _like(query.q)
        conditions.append(
            or_(
                Document.subject.ilike(pattern, escape="\\"),
                Document.edxml_document_id.ilike(pattern, escape="\\"),
                (Document.code_number + "/" + Document.code_notation).ilike(pattern, escape="\\"),
            )
        )
    if query.after:
        at, last_id = query.after
        conditions.append(
            or_(Document.received_at < at, and_(Document.received_at == at, Document.id < last_id))
        )
    async with ctx.store.read() as session:
        docs = list(
            (
                await session.execute(
                    select(Document)
                    .where(*conditions)
                    .order_by(Document.received_at.desc(), Document.id.desc())
                    .limit(query.limit + 1)
                )
            ).scalars()
        )
        more = len(docs) > query.limit
        docs = docs[: query.limit]
        deliveries: dict[str, list[Delivery]] = {d.id: [] for d in docs}
        if docs:
            rows = await session.execute(
                select(Delivery)
                .where(Delivery.document_id.in_(list(deliveries)), Delivery.kind == "document")
                .order_by(Delivery.recipient_code)
            )
            for delivery in rows.scalars():
                deliveries[delivery.document_id].append(delivery)
    return Found(docs, deliveries, more)


def visible_deliveries(caller: Agency, doc: Document, deliveries: list[Delivery]) -> list[Delivery]:
    """The recipients of *doc* that *caller* may see: all for its sender and auditors, else only
    its own (a recipient never learns what the others did)."""
    if caller.role == "auditor" or doc.sender_code == caller.code:
        return deliveries
    return [d for d in deliveries if d.recipient_code == caller.code]


async def search(ctx: HubContext, caller: Agency, query: Query) -> dict[str, Any]:
    found = await find(ctx, caller, query)
    items = []
    for doc in found.documents:
        items.append(
            {
                **document_facts(doc),
                "recipients": [
                    {
                        "recipient": d.recipient_code,
                        "transport": d.state,
                        "business": d.business_state,
                        "overdue": overdue_flags(d),
                    }
                    for d in visible_deliveries(caller, doc, found.deliveries[doc.id])
                ],
            }
        )
    last = found.documents[-1] if found.documents else None
    cursor = encode_cursor(last.received_at, last.id) if found.more and last else None
    return {"items": items, "next_cursor": cursor}
