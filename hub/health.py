"""``GET /healthz``: is this hub node fit to take traffic?

Each check answers on its own, and the node is healthy (200) only when all pass; otherwise 503,
so a load balancer takes it out of rotation. The checks:

* **database**: one cheap query (the maintenance flag) within :data:`DATABASE_TIMEOUT`;
* **hub_key**: the hub's signing key is loaded (without it the hub accepts nothing) and its
  certificate is within its validity;
* **crls**: every configured CRL was refreshed within the grace period (after it, signatures
  the CRL covers are refused);
* **scheduler**: the clock of CRL refreshes, expiry and checkpoints runs, no job has been
  running for longer than its own interval, and none is overdue to start;
* **dispatcher**: the loop that pushes deliveries and forwards them to peer hubs is alive;
* **maintenance**: maintenance mode is off (``lienthong maintenance``).

The answer names no file, URL credential, key or token: it is served without authentication.
The judging functions are pure; :func:`check` does the I/O.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger

from hub import maintenance
from signing.receipts import ReceiptSigner
from signing.trust import CrlStatus
from tracking.models import utcnow

if TYPE_CHECKING:
    from hub.context import HubContext

log = logging.getLogger(__name__)

DATABASE_TIMEOUT = 2.0  # seconds; a database slower than this is as good as down for intake
# A job whose next start is this much past due is not being run (the event loop is blocked).
START_SLACK = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str
    facts: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail, **self.facts}


# -- pure judgements ----------------------------------------------------------------------------


def judge_hub_key(signer: ReceiptSigner | None, now: dt.datetime) -> Check:
    if signer is None:
        return Check(False, "no hub signing key loaded: the hub can issue no receipt")
    cert = signer.certificate
    facts = {"not_after": cert.not_valid_after_utc.isoformat()}
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return Check(False, "the hub certificate is outside its validity", facts)
    return Check(True, "loaded", facts)


def _shown(source: str) -> str:
    """A CRL source without anything secret in it: a URL without user or query, a file's name."""
    if source.startswith(("http://", "https://")):
        parts = urlsplit(source)
        return f"{parts.scheme}://{parts.hostname or ''}{parts.path}"
    return source.replace("\\", "/").rsplit("/", 1)[-1]


def judge_crls(statuses: Sequence[CrlStatus], grace: dt.timedelta) -> Check:
    if not statuses:
        return Check(True, "no CRL configured", {"crls": []})
    crls = [
        {
            "source": _shown(s.source),
            "issuer": s.issuer,
            "fresh": s.fresh,
            "refreshed_at": s.fetched_at.isoformat() if s.fetched_at else None,
        }
        for s in statuses
    ]
    stale = [c["source"] for c in crls if not c["fresh"]]
    facts = {"grace_seconds": int(grace.total_seconds()), "crls": crls}
    if stale:
        return Check(
            False,
            f"not refreshed within the grace period: {', '.join(map(str, stale))}; "
            "signatures they cover are refused",
            facts,
        )
    return Check(True, "every CRL refreshed within the grace period", facts)


@dataclass(frozen=True)
class JobState:
    job_id: str
    interval: dt.timedelta | None  # None: not an interval job
    next_run_at: dt.datetime | None
    running_since: dt.datetime | None


def judge_scheduler(running: bool, jobs: Sequence[JobState], now: dt.datetime) -> Check:
    if not running:
        return Check(False, "the scheduler is not running: no CRL refresh, expiry or checkpoint")
    stuck = []
    for job in jobs:
        if job.interval is None:
            continue
        if job.running_since is not None and now - job.running_since > job.interval:
            stuck.append(f"{job.job_id} running since {job.running_since.isoformat()}")
        elif job.next_run_at is not None and now - job.next_run_at > START_SLACK:
            stuck.append(f"{job.job_id} due since {job.next_run_at.isoformat()}")
    facts = {"jobs": sorted(j.job_id for j in jobs)}
    if stuck:
        return Check(False, f"stuck: {'; '.join(stuck)}", facts)
    return Check(True, "running", facts)


# -- the scheduler's jobs, as the scheduler reports them --------------------------------------


class SchedulerWatch:
    """Follows a scheduler's job events to know which job is running since when (APScheduler
    itself does not say)."""

    def __init__(self, scheduler: BaseScheduler) -> None:
        self.scheduler = scheduler
        self._running: dict[str, dt.datetime] = {}
        scheduler.add_listener(
            self._on_event,
            EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED,
        )

    def _on_event(self, event: JobEvent) -> None:
        if isinstance(event, JobSubmissionEvent):
            self._running.setdefault(event.job_id, utcnow())
        elif isinstance(event, JobExecutionEvent):
            self._running.pop(event.job_id, None)

    def jobs(self) -> list[JobState]:
        out = []
        for job in self.scheduler.get_jobs():
            trigger = job.trigger
            out.append(
                JobState(
                    job_id=job.id,
                    interval=trigger.interval if isinstance(trigger, IntervalTrigger) else None,
                    next_run_at=job.next_run_time,
                    running_since=self._running.get(job.id),
                )
            )
        return out

    def check(self, now: dt.datetime) -> Check:
        return judge_scheduler(bool(self.scheduler.running), self.jobs(), now)


# -- the whole answer -------------------------------------------------------------------------


async def _database(ctx: HubContext) -> tuple[Check, Check]:
    """The database check, and the maintenance check read by the same query."""
    try:
        on = await asyncio.wait_for(maintenance.current(ctx.store), DATABASE_TIMEOUT)
    except TimeoutError:
        down = Check(False, f"no answer within {DATABASE_TIMEOUT:g} s")
    except Exception as exc:  # any driver error: the database is what is unhealthy
        log.warning(
            "health check: the database does not answer",
            exc_info=False,
            extra={"error": type(exc).__name__},
        )
        down = Check(False, f"unreachable: {type(exc).__name__}")
    else:
        if on is None:
            return Check(True, "answers"), Check(True, "off")
        return Check(True, "answers"), Check(False, "on: intake refused", on.as_dict())
    return down, Check(False, "unknown: the database does not answer")


class Loop(Protocol):
    """A background loop of the hub (the dispatcher)."""

    @property
    def running(self) -> bool: ...


def judge_dispatcher(running: bool) -> Check:
    if not running:
        return Check(False, "the dispatcher is not running: nothing is pushed or forwarded")
    return Check(True, "running")


async def check(
    ctx: HubContext, scheduler: SchedulerWatch | None = None, dispatcher: Loop | None = None
) -> tuple[bool, dict[str, Any]]:
    """(healthy, the JSON body of /healthz)."""
    now = utcnow()
    database, in_maintenance = await _database(ctx)
    checks = {
        "database": database,
        "hub_key": judge_hub_key(ctx.receipts, now),
        "crls": judge_crls(ctx.trust.status(), ctx.trust.grace),
        "maintenance": in_maintenance,
    }
    # An app without them (tests, tools) has no clock or dispatcher to judge.
    if scheduler is not None:
        checks["scheduler"] = scheduler.check(now)
    if dispatcher is not None:
        checks["dispatcher"] = judge_dispatcher(dispatcher.running)
    healthy = all(c.ok for c in checks.values())
    return healthy, {
        "status": "ok" if healthy else "unhealthy",
        "hub": ctx.hub_id,
        "checked_at": now.isoformat(),
        "checks": {name: c.as_dict() for name, c in checks.items()},
    }
