"""Monthly figures per agency (``lienthong report``): what each agency sent and received, whether
it acknowledged in time, and how long it took to finish (status 06).

The queries only fetch rows; :func:`aggregate` is pure, so the definitions below are tested
on their own:

* the **period** is a calendar month in Vietnam time (UTC+7, no daylight saving); a document
  belongs to the month in which the hub received it, and so do its deliveries and statuses
  (a cohort: late statuses still count for the month the document came in);
* **sent**: documents the agency sent; **received**: documents delivered to it (one per
  document, whatever the number of its deliveries);
* **acknowledged in time**: its system acknowledged the delivery as stored (``done``) within the
  acknowledgement window of the document's priority (``[deadlines]``, read by ``hub.config``),
  counted from the hub's receipt of the document;
* **overdue**: acknowledged late, or not acknowledged (or acknowledged ``fail``) and the window
  has passed by the report's time; deliveries still inside their window are **pending**;
* **median hours to 06**: from the hub's receipt of the document to the hub's receipt of the
  agency's status 06 about it, over the documents it finished.
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import func, select

from tracking.models import Delivery, Document, StatusRecord
from tracking.store import Store

VIETNAM = dt.timezone(dt.timedelta(hours=7), "ICT")


def month_bounds(month: str) -> tuple[dt.datetime, dt.datetime]:
    """``YYYY-MM`` as the UTC instants where it starts and ends in Vietnam time."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", month)
    if not match or not 1 <= int(match[2]) <= 12:
        raise ValueError(f"{month!r} is not a month like 2026-11")
    year, mon = int(match[1]), int(match[2])
    start = dt.datetime(year, mon, 1, tzinfo=VIETNAM)
    end = dt.datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=VIETNAM)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


@dataclass(frozen=True)
class SentDocument:
    document_id: str
    sender: str
    priority: int
    received_at: dt.datetime


@dataclass(frozen=True)
class DocumentDelivery:
    document_id: str
    recipient: str
    state: str
    acked_at: dt.datetime | None


@dataclass
class AgencyFigures:
    agency: str
    sent: int = 0
    received: int = 0
    acknowledged_in_time: int = 0
    overdue: int = 0
    pending: int = 0
    finished: int = 0
    hours_to_06: list[float] = field(default_factory=list, repr=False)

    @property
    def median_hours_to_06(self) -> float | None:
        return round(statistics.median(self.hours_to_06), 2) if self.hours_to_06 else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "agency": self.agency,
            "sent": self.sent,
            "received": self.received,
            "acknowledged_in_time": self.acknowledged_in_time,
            "overdue": self.overdue,
            "pending": self.pending,
            "finished": self.finished,
            "median_hours_to_06": self.median_hours_to_06,
        }


COLUMNS = (
    "agency",
    "sent",
    "received",
    "acknowledged_in_time",
    "overdue",
    "pending",
    "finished",
    "median_hours_to_06",
)


AckVerdict = Literal["in_time", "overdue", "pending"]


def ack_verdict(
    state: str, acked_at: dt.datetime | None, deadline: dt.datetime, now: dt.datetime
) -> AckVerdict:
    """Whether one document delivery was acknowledged in time: ``in_time`` (stored, ``done``, by
    *deadline*), ``overdue`` (acknowledged late, or not acknowledged and the deadline has passed
    by *now*) or ``pending`` (not yet, still inside its window). The report and the web
    console's timeline judge with this one rule."""
    if state == "done" and acked_at is not None:
        return "in_time" if acked_at <= deadline else "overdue"
    return "overdue" if now > deadline else "pending"


def aggregate(
    documents: Iterable[SentDocument],
    deliveries: Iterable[DocumentDelivery],
    finished: Mapping[tuple[str, str], dt.datetime],
    windows: Mapping[int, dt.timedelta],
    now: dt.datetime,
) -> list[AgencyFigures]:
    """The figures per agency, by code. *finished* maps (document, recipient) to when the hub
    received that recipient's first 06 about it."""
    docs = {d.document_id: d for d in documents}
    rows: dict[str, AgencyFigures] = {}

    def row(code: str) -> AgencyFigures:
        return rows.setdefault(code, AgencyFigures(code))

    for doc in docs.values():
        row(doc.sender).sent += 1
    seen: set[tuple[str, str]] = set()
    for d in deliveries:
        sent = docs.get(d.document_id)
        if sent is None or (d.document_id, d.recipient) in seen:
            continue
        seen.add((d.document_id, d.recipient))
        figures = row(d.recipient)
        figures.received += 1
        verdict = ack_verdict(d.state, d.acked_at, sent.received_at + windows[sent.priority], now)
        if verdict == "in_time":
            figures.acknowledged_in_time += 1
        elif verdict == "overdue":
            figures.overdue += 1
        else:
            figures.pending += 1
        done_at = finished.get((d.document_id, d.recipient))
        if done_at is not None:
            figures.finished += 1
            figures.hours_to_06.append((done_at - sent.received_at).total_seconds() / 3600)
    return [rows[code] for code in sorted(rows)]


async def monthly_report(
    store: Store, month: str, windows: Mapping[int, dt.timedelta], now: dt.datetime
) -> list[AgencyFigures]:
    start, end = month_bounds(month)
    in_month = (Document.received_at >= start) & (Document.received_at < end)
    async with store.read() as session:
        documents = [
            SentDocument(*r)
            for r in await session.execute(
                select(
                    Document.id, Document.sender_code, Document.priority, Document.received_at
                ).where(in_month)
            )
        ]
        deliveries = [
            DocumentDelivery(*r)
            for r in await session.execute(
                select(
                    Delivery.document_id, Delivery.recipient_code, Delivery.state, Delivery.acked_at
                )
                .join(Document, Document.id == Delivery.document_id)
                .where(in_month, Delivery.kind == "document")
                .order_by(Delivery.created_at, Delivery.id)
            )
        ]
        finished = {
            (doc_id, recipient): at
            for doc_id, recipient, at in await session.execute(
                select(
                    StatusRecord.document_id,
                    StatusRecord.recipient_code,
                    func.min(StatusRecord.received_at),
                )
                .join(Document, Document.id == StatusRecord.document_id)
                .where(in_month, StatusRecord.status_code == "06")
                .group_by(StatusRecord.document_id, StatusRecord.recipient_code)
            )
        }
    return aggregate(documents, deliveries, finished, windows, now)
