"""Deadlines: documents a recipient is late with are flagged overdue, once, and their sender told.

Two deadlines apply to each document delivery (Decision 28/2018, QCVN 102 DueDate):

* **acknowledgement**: the recipient's system acknowledges the document as stored (``done``)
  within the window of the document's priority (``[deadlines] ack_hours_*``), counted from the
  hub's receipt of the document, as ``lienthong report`` counts it. A delivery still pending
  (queued, delivered, retrying) after the window is overdue. One that was acknowledged ``fail``,
  went ``dead`` or ``expired`` is not: its sender was already told it did not get through. A
  recipient behind a peer hub is not held to it, since peer hubs do not relay acknowledgements.
* **DueDate**: a document that carries one is to be finished (status 06) by the end of that
  day in Vietnam time (UTC+7). A recipient that has not reached 06 by then is overdue, unless
  it closed the document another way (rejected it, 02, or agreed to its recall, 15).

:func:`overdue` is the pure rule; :func:`flag_overdue` is the job. It flags each delivery at most
once per deadline (``ack_overdue_at``, ``due_overdue_at``), writes an ``overdue`` trace event with
``alert: true``, queues a notice to the sender (``hub.notices``) and, after the commit, forwards
the alert (``hub.alerts``). A flag is never cleared: an acknowledgement or a 06 that comes later
is its own event in the trace, after the ``overdue`` one. The job runs on an APScheduler
interval (:func:`add_deadlines_job`); the state is in the database, so a missed run is caught up
by the next one, and several hub nodes running it at once flag each delivery once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub import alerts, notices
from hub.cluster import every_once_per_cluster
from hub.context import HubContext
from hub.edxml.model import Priority
from hub.reports import VIETNAM
from hub.states import CLOSED, PENDING, Transport
from tracking.models import Delivery, Document, utcnow
from tracking.store import append_event

log = logging.getLogger(__name__)

ACK = "ack"  # the acknowledgement window of the document's priority passed
DUE_DATE = "due_date"  # the document's DueDate passed without 06
BATCH = 200  # deliveries per write transaction: keeps intake waiting briefly at most

PRIORITY_NAMES = {
    Priority.FLASH_TIMED: "hỏa tốc hẹn giờ",
    Priority.FLASH: "hỏa tốc",
    Priority.VERY_URGENT: "thượng khẩn",
    Priority.URGENT: "khẩn",
    Priority.NORMAL: "thường",
}


def due_deadline(due_date: str | None) -> dt.datetime | None:
    """When a DueDate (``YYYY/MM/DD``) has passed: midnight after that day in Vietnam time, in
    UTC. None without one, or for a date that does not exist (accepted under a ``warn``
    policy): no deadline can be read from it."""
    if not due_date:
        return None
    try:
        day = dt.datetime.strptime(due_date.strip(), "%Y/%m/%d")
    except ValueError:
        return None
    return (day.replace(tzinfo=VIETNAM) + dt.timedelta(days=1)).astimezone(dt.UTC)


@dataclass(frozen=True)
class DeliveryFacts:
    """What the rule needs to know about one document delivery."""

    delivery_id: str
    recipient: str
    priority: int
    received_at: dt.datetime  # the hub's receipt of the document: the windows count from it
    transport: str
    business: str | None
    due_date: str | None = None
    due_at: dt.datetime | None = None
    ack_flagged: bool = False
    due_flagged: bool = False
    relayed: bool = False  # reached through a peer hub, which relays no acknowledgement


@dataclass(frozen=True)
class Overdue:
    """One deadline one recipient missed."""

    what: str  # ACK or DUE_DATE
    facts: DeliveryFacts
    deadline: dt.datetime
    late: dt.timedelta
    window: dt.timedelta | None = None  # for ACK

    def detail(self) -> dict[str, Any]:
        """The ``overdue`` event's detail (and the forwarded alert's facts)."""
        f = self.facts
        out: dict[str, Any] = {
            "overdue": self.what,
            "recipient": f.recipient,
            "delivery_id": f.delivery_id,
            "deadline": self.deadline.isoformat(),
            "late_seconds": int(self.late.total_seconds()),
        }
        if self.what == ACK:
            assert self.window is not None
            out.update(
                priority=f.priority,
                window_hours=self.window.total_seconds() / 3600,
                state=f.transport,
            )
        else:
            out.update(due_date=f.due_date, business=f.business)
        return out

    def text(self) -> str:
        """What the sender's notice says."""
        late = notices.duration(self.late.total_seconds())
        if self.what == ACK:
            assert self.window is not None
            name = PRIORITY_NAMES.get(Priority(self.facts.priority), str(self.facts.priority))
            # In hours, as [deadlines] sets the windows and Decision 28/2018 states them.
            hours = self.window.total_seconds() / 3600
            what = f"not acknowledged within {hours:g} hours ({name}), {late} late"
        else:
            last = f"last status {self.facts.business}" if self.facts.business else "no status"
            what = f"DueDate {self.facts.due_date} passed without 06 ({last}), {late} late"
        return notices.overdue(self.facts.recipient, what)


def overdue(
    facts: DeliveryFacts, windows: Mapping[int, dt.timedelta], now: dt.datetime
) -> list[Overdue]:
    """The deadlines *facts* missed by *now* that are not flagged yet (see the module's doc).
    Acknowledged exactly at the end of the window is in time, as in ``lienthong report``; a
    DueDate is missed once its day is over."""
    out = []
    finished = facts.business in CLOSED
    if not (facts.ack_flagged or facts.relayed or finished) and facts.transport in PENDING:
        window = windows[facts.priority]
        deadline = facts.received_at + window
        if now > deadline:
            out.append(Overdue(ACK, facts, deadline, now - deadline, window))
    if not (facts.due_flagged or finished) and facts.due_at is not None and now >= facts.due_at:
        out.append(Overdue(DUE_DATE, facts, facts.due_at, now - facts.due_at))
    return out


async def flag_overdue(ctx: HubContext, now: dt.datetime | None = None) -> int:
    """Flag every document delivery past a deadline, once; the number of flags raised."""
    now = now or utcnow()
    windows = ctx.deadlines.windows
    # The same rule as overdue(), narrowed in SQL so each batch holds only deliveries to flag.
    past_window = or_(
        *(
            and_(Document.priority == priority, Document.received_at < now - window)
            for priority, window in windows.items()
        )
    )
    candidates = and_(
        Delivery.kind == "document",
        or_(Delivery.business_state.is_(None), Delivery.business_state.not_in(CLOSED)),
        or_(
            and_(
                Delivery.ack_overdue_at.is_(None),
                Delivery.state.in_([s.value for s in PENDING]),
                past_window,
            ),
            and_(Delivery.due_overdue_at.is_(None), Document.due_at <= now),
        ),
    )
    total, after = 0, ""
    while True:
        flagged: list[Overdue] = []
        told: list[Delivery] = []
        raised: list[alerts.Alert] = []
        async with ctx.store.write() as session:
            rows = (
                await session.execute(
                    select(Delivery, Document)
                    .join(Document, Document.id == Delivery.document_id)
                    .where(candidates, Delivery.id > after)
                    .order_by(Delivery.id)
                    .limit(BATCH)
                    .with_for_update(of=Delivery, skip_locked=True)
                )
            ).all()
            for delivery, doc in rows:
                for item in overdue(_facts(ctx, delivery, doc), windows, now):
                    if not await _flag(session, delivery.id, item.what, now):
                        continue  # another node flagged it since this one looked
                    detail = item.detail()
                    await append_event(
                        session,
                        "overdue",
                        "hub",
                        document_id=doc.id,
                        delivery_id=delivery.id,
                        detail={**detail, "alert": True},
                    )
                    text = item.text()
                    notice = await notices.tell_sender(ctx, session, delivery, text, now)
                    if notice is not None:
                        told.append(notice)
                    flagged.append(item)
                    extra = {k: detail[k] for k in ("overdue", "deadline", "late_seconds")}
                    raised.append(alerts.about(delivery, "overdue", text, now, **extra))
            after = rows[-1][0].id if rows else after
        for item in flagged:
            log.warning("document overdue", extra=item.detail())
        notices.wake(ctx, told)
        ctx.alerts.forward(raised)
        total += len(flagged)
        if len(rows) < BATCH:
            return total


async def _flag(session: AsyncSession, delivery_id: str, what: str, now: dt.datetime) -> bool:
    """Set the flag unless it is set: whether this call set it. A compare-and-set, so two
    nodes that read the same delivery never both flag it (on PostgreSQL the write transactions
    are serialised anyway; SQLite reads outside the writer's lock)."""
    column = Delivery.ack_overdue_at if what == ACK else Delivery.due_overdue_at
    result = await session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, column.is_(None))
        .values({column: now})
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def _facts(ctx: HubContext, delivery: Delivery, doc: Document) -> DeliveryFacts:
    return DeliveryFacts(
        delivery_id=delivery.id,
        recipient=delivery.recipient_code,
        priority=doc.priority,
        received_at=doc.received_at,
        transport=Transport(delivery.state),
        business=delivery.business_state,
        due_date=doc.due_date,
        due_at=doc.due_at,
        ack_flagged=delivery.ack_overdue_at is not None,
        due_flagged=delivery.due_overdue_at is not None,
        relayed=ctx.directory.local(delivery.recipient_code) is None,
    )


def add_deadlines_job(scheduler: AsyncIOScheduler, ctx: HubContext) -> None:
    """Run :func:`flag_overdue` every ``[deadlines] check_seconds`` (0: never)."""
    every = ctx.deadlines.check_seconds
    if every <= 0:
        return
    every_once_per_cluster(scheduler, ctx, partial(flag_overdue, ctx), every, "deadlines")
