"""What ``GET /metrics`` exports (Prometheus text, ``hub.prometheus``).

Two kinds of figures:

* **counters of this process** (:class:`HubMetrics`): packages accepted, refusals by problem
  code, the delivery latency histogram. They live in memory and start at zero when the process
  starts; with several hub nodes each exports its own (sum them in Prometheus);
* **the state of the database, read at scrape time**: pending deliveries per recipient and
  state, undelivered ones (dead, expired, failed), overdue ones, the age of the last signed
  checkpoint, maintenance mode. Every node exports the same values for these.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from sqlalchemy import and_, case, func, or_, select

from hub import maintenance
from hub.prometheus import Counter, Family, Histogram, gauge, render
from hub.states import PENDING, UNDELIVERED
from tracking.models import ChainCheckpoint, Delivery
from tracking.store import Store

if TYPE_CHECKING:
    from hub.context import HubContext

# From one second to three days: a pushed delivery is acknowledged within seconds, a pulled one
# when the recipient's system next polls, the slowest within the 72-hour window of "thường".
LATENCY_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 8 * 3600, 24 * 3600, 72 * 3600)


class HubMetrics:
    """The counters of one hub process (see the module doc)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.started_at = clock()
        self.documents_accepted = Counter(
            "lienthong_documents_accepted_total",
            "Document packages accepted by this process (repeated submissions not counted).",
        )
        self.statuses_accepted = Counter(
            "lienthong_statuses_accepted_total",
            "Status packages accepted by this process, by status code.",
            ("code",),
        )
        self.rejections = Counter(
            "lienthong_rejections_total",
            "Requests this process refused, by problem code (hub/errors.py).",
            ("code",),
        )
        self.delivery_latency = Histogram(
            "lienthong_delivery_latency_seconds",
            "From a delivery being queued to its recipient acknowledging it (done or fail).",
            LATENCY_BUCKETS,
            ("kind",),
        )

    def families(self) -> list[Family]:
        return [
            gauge(
                "lienthong_process_start_time_seconds",
                "When this hub process started (Unix time): its counters count from there.",
                [({}, self.started_at)],
            ),
            self.documents_accepted.family(),
            self.statuses_accepted.family(),
            self.rejections.family(),
            self.delivery_latency.family(),
        ]


async def database_families(
    store: Store, windows: Mapping[int, dt.timedelta], now: dt.datetime
) -> list[Family]:
    """Gauges read from the database now: one grouped query over the deliveries not done, one
    for the last checkpoint, one for maintenance mode."""
    # A document delivery is overdue when still pending past the acknowledgement window of its
    # priority ([deadlines]), counted from when it was queued (the hub's receipt).
    late = or_(
        *(
            and_(Delivery.priority == priority, Delivery.created_at < now - window)
            for priority, window in windows.items()
        )
    )
    overdue = func.sum(
        case((and_(Delivery.kind == "document", Delivery.state.in_(PENDING), late), 1), else_=0)
    )
    query = (
        select(Delivery.recipient_code, Delivery.state, func.count(), overdue)
        .where(Delivery.state.in_((*PENDING, *UNDELIVERED)))
        .group_by(Delivery.recipient_code, Delivery.state)
        .order_by(Delivery.recipient_code, Delivery.state)
    )
    async with store.read() as session:
        rows = (await session.execute(query)).all()
        last_checkpoint = (
            await session.execute(select(func.max(ChainCheckpoint.signed_at)))
        ).scalar_one()
    switched_on = await maintenance.current(store)

    pending: list[tuple[dict[str, str], float]] = []
    undelivered: list[tuple[dict[str, str], float]] = []
    late_by_recipient: dict[str, int] = {}
    for recipient, state, count, late_count in rows:
        labels = {"recipient": recipient, "state": state}
        (pending if state in PENDING else undelivered).append((labels, float(count)))
        if late_count:
            late_by_recipient[recipient] = late_by_recipient.get(recipient, 0) + int(late_count)
    checkpoint_age: list[tuple[dict[str, str], float]] = (
        [({}, max(0.0, (now - last_checkpoint).total_seconds()))] if last_checkpoint else []
    )
    return [
        gauge(
            "lienthong_queue_depth",
            "Deliveries waiting for their recipient, by recipient and transport state "
            "(queued, delivered, retrying); recipients with none are not listed.",
            pending,
        ),
        gauge(
            "lienthong_deliveries_undelivered",
            "Deliveries that ended without reaching their recipient (dead, expired, failed), "
            "by recipient and state, until an operator resends them.",
            undelivered,
        ),
        gauge(
            "lienthong_deliveries_overdue",
            "Document deliveries still pending past the acknowledgement window of their "
            "priority ([deadlines]), by recipient.",
            [({"recipient": r}, float(n)) for r, n in sorted(late_by_recipient.items())],
        ),
        gauge(
            "lienthong_checkpoint_age_seconds",
            "Seconds since the hub last signed the audit chain's head (absent: never).",
            checkpoint_age,
        ),
        gauge(
            "lienthong_maintenance",
            "1 while maintenance mode is on (intake refused with 503), else 0.",
            [({}, 1.0 if switched_on else 0.0)],
        ),
    ]


async def exposition(ctx: HubContext, now: dt.datetime) -> str:
    """The whole ``/metrics`` text for *ctx*'s process at *now*."""
    families = ctx.metrics.families()
    families += await database_families(ctx.store, ctx.deadlines.windows, now)
    return render(families)
