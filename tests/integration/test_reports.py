"""`hub.reports` on a real database (SQLite and PostgreSQL), with rows seeded at chosen times so
every figure is known exactly."""

from __future__ import annotations

import datetime as dt
import hashlib

from hub.config import DEFAULT_ACK_HOURS
from hub.reports import monthly_report
from tests.support import BA_DINH, CITY, HOAN_KIEM, PHUC_XA, TRUC_BACH, Hub
from tracking.models import Blob, Delivery, Document, StatusRecord

UTC = dt.UTC
NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
WINDOWS = {int(p): dt.timedelta(hours=h) for p, h in DEFAULT_ACK_HOURS.items()}
H = dt.timedelta(hours=1)


async def seed(hub: Hub) -> None:
    blob = b"<edXMLEnvelope/>"
    digest = hashlib.sha256(blob).hexdigest()
    counter = iter(range(1000))

    def doc(doc_id: str, sender: str, priority: int, at: dt.datetime) -> Document:
        return Document(
            id=doc_id,
            sender_code=sender,
            edxml_document_id=f"{sender},2026/11/01,{doc_id}/UBND",
            code_number=doc_id,
            code_notation="UBND",
            subject="báo cáo",
            priority=priority,
            business_type=0,
            due_date=None,
            package_sha256=digest,
            size=len(blob),
            signer_fingerprint="sha256:x",
            signature_method="rsa-sha256",
            received_at=at,
        )

    def delivery(
        d: Document, recipient: str, state: str = "queued", acked: dt.timedelta | None = None
    ) -> Delivery:
        return Delivery(
            id=f"dl-{next(counter)}",
            kind="document",
            document_id=d.id,
            recipient_code=recipient,
            priority=d.priority,
            state=state,
            attempts=0,
            recall_pending=False,
            created_at=d.received_at,
            acked_at=None if acked is None else d.received_at + acked,
        )

    def status(d: Document, recipient: str, code: str, after: dt.timedelta) -> StatusRecord:
        return StatusRecord(
            id=f"st-{next(counter)}",
            document_id=d.id,
            reporter_code=recipient,
            target_code=d.sender_code,
            recipient_code=recipient,
            status_code=code,
            description="",
            reported_at="2026/11/01 10:00:00",
            package_sha256=digest,
            received_at=d.received_at + after,
        )

    # Vietnam time is UTC+7: 2026-11 runs from 2026-10-31T17:00Z to 2026-11-30T17:00Z.
    d1 = doc("1", CITY, 0, dt.datetime(2026, 11, 3, 2, 0, tzinfo=UTC))  # thường: 72 h
    d2 = doc("2", CITY, 3, dt.datetime(2026, 11, 10, 1, 0, tzinfo=UTC))  # hỏa tốc: 2 h
    d3 = doc("3", BA_DINH, 1, dt.datetime(2026, 10, 31, 17, 30, tzinfo=UTC))  # 1 Nov 00:30 +7
    d4 = doc("4", BA_DINH, 0, dt.datetime(2026, 11, 30, 16, 59, tzinfo=UTC))  # 30 Nov 23:59 +7
    d5 = doc("5", CITY, 0, dt.datetime(2026, 11, 30, 17, 0, tzinfo=UTC))  # 1 Dec 00:00 +7
    d6 = doc("6", CITY, 0, dt.datetime(2026, 10, 31, 16, 59, tzinfo=UTC))  # 31 Oct 23:59 +7
    rows: list[object] = [Blob(sha256=digest, size=len(blob), data=blob)]
    rows += [d1, d2, d3, d4, d5, d6]
    rows += [
        delivery(d1, BA_DINH, "done", 10 * H),  # in time
        delivery(d1, HOAN_KIEM, "done", 80 * H),  # late: overdue
        delivery(d2, BA_DINH, "done", 1 * H),  # in time
        delivery(d3, PHUC_XA),  # never acknowledged, window passed: overdue
        delivery(d4, TRUC_BACH, "failed", 1 * H),  # failed, window still open: pending
        delivery(d5, BA_DINH, "done", H),  # December
        delivery(d6, HOAN_KIEM, "done", H),  # October
    ]
    rows += [
        status(d1, BA_DINH, "05", 20 * H),
        status(d1, BA_DINH, "06", 30 * H),
        status(d1, HOAN_KIEM, "06", 100 * H),
        status(d2, BA_DINH, "06", 50 * H),
        status(d5, BA_DINH, "06", 2 * H),
    ]
    async with hub.ctx.store.write() as session:
        for row in rows:
            session.add(row)
            await session.flush()


async def test_monthly_figures_per_agency_are_exact(hub: Hub) -> None:
    await seed(hub)
    figures = [f.as_dict() for f in await monthly_report(hub.ctx.store, "2026-11", WINDOWS, NOW)]
    zero = {
        "sent": 0,
        "received": 0,
        "acknowledged_in_time": 0,
        "overdue": 0,
        "pending": 0,
        "finished": 0,
        "median_hours_to_06": None,
    }
    assert figures == [
        {**zero, "agency": CITY, "sent": 2},
        {
            **zero,
            "agency": BA_DINH,
            "sent": 2,
            "received": 2,
            "acknowledged_in_time": 2,
            "finished": 2,
            "median_hours_to_06": 40.0,
        },
        {
            **zero,
            "agency": HOAN_KIEM,
            "received": 1,
            "overdue": 1,
            "finished": 1,
            "median_hours_to_06": 100.0,
        },
        {**zero, "agency": PHUC_XA, "received": 1, "overdue": 1},
        {**zero, "agency": TRUC_BACH, "received": 1, "pending": 1},
    ]
    december = await monthly_report(hub.ctx.store, "2026-12", WINDOWS, NOW)
    assert [(f.agency, f.sent, f.received, f.median_hours_to_06) for f in december] == [
        (CITY, 1, 0, None),
        (BA_DINH, 0, 1, 2.0),
    ]
    october = await monthly_report(hub.ctx.store, "2026-10", WINDOWS, NOW)
    assert [(f.agency, f.sent, f.received, f.acknowledged_in_time) for f in october] == [
        (CITY, 1, 0, 0),
        (HOAN_KIEM, 0, 1, 1),
    ]
