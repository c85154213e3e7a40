"""Several hub nodes on one PostgreSQL database: wake-ups across nodes, scheduled jobs once.

Every node serves the same API on the same database; what one node commits, the others read.
Two things do not travel through the tables by themselves:

* **Wake-ups.** A long poll waits on its own node (hub.notify). When a package for agency X is
  committed on node A, a poll of X's inbox waiting on node B must wake too. :class:`Signals`
  carries the agency codes between nodes with PostgreSQL's LISTEN/NOTIFY: after its commit,
  node A publishes the code; every other node wakes its local waiters. A lost notification
  costs only latency, never a package: a waiter that is not woken looks again when its wait
  runs out, and after the listening connection is re-established every waiter looks again.
* **Scheduled jobs** (expiry, audit checkpoints, …). Every node has the same clock, but each run
  of a job should happen once in the cluster. :func:`once_per_interval` takes a session-level
  advisory lock for the job (so two nodes never run it at the same time; the lock goes away
  with a node that dies) and records each run in ``job_runs`` (so a run another node made
  during this interval is not made again).

On SQLite there is one node: signals are not needed and jobs run as scheduled.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.notify import InboxNotifier
from tracking.models import JobRun, utcnow

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from hub.context import HubContext

log = logging.getLogger(__name__)

CHANNEL = "lienthong_inbox"
PAYLOAD_MAX = 7900  # PostgreSQL's limit is 8000 bytes per notification
RECONNECT_SECONDS = (0.5, 1, 2, 5, 10)


def node_id() -> str:
    """This process's name in the cluster: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def payloads(node: str, codes: list[str]) -> list[str]:
    """*codes* as notification payloads ``"<node> <code> <code> …"``, each within
    :data:`PAYLOAD_MAX`. Pure."""
    out: list[str] = []
    current = node
    for code in codes:
        if len(current) + 1 + len(code) > PAYLOAD_MAX and current != node:
            out.append(current)
            current = node
        current += " " + code
    if current != node:
        out.append(current)
    return out


class Signals:
    """LISTEN/NOTIFY between the nodes of one PostgreSQL database, for inbox wake-ups."""

    def __init__(self, engine: AsyncEngine, notifier: InboxNotifier, node: str) -> None:
        self._engine = engine
        self._notifier = notifier
        self.node = node
        self._pending: set[str] = set()
        self._wanted = asyncio.Event()
        self._listening: AsyncConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.received = 0  # codes woken on behalf of other nodes (for tests and metrics)

    async def start(self) -> None:
        await self._listen()
        self._notifier.relay = self.publish
        self._tasks.append(asyncio.create_task(self._publisher(), name="cluster-publisher"))

    def publish(self, code: str) -> None:
        """Tell the other nodes that *code*'s inbox has news (call after the commit)."""
        self._pending.add(code)
        self._wanted.set()

    async def _publisher(self) -> None:
        # One task sends for the whole node: codes that pile up while a NOTIFY is in flight go
        # together in the next one, so a burst of intake costs a few round trips, not one each.
        while not self._closed:
            await self._wanted.wait()
            self._wanted.clear()
            codes, self._pending = sorted(self._pending), set()
            try:
                async with self._engine.connect() as conn:
                    for payload in payloads(self.node, codes):
                        await conn.execute(
                            text("SELECT pg_notify(:channel, :payload)"),
                            {"channel": CHANNEL, "payload": payload},
                        )
                    await conn.commit()
            except Exception:
                # The other nodes' waiters look again when their wait runs out: late, not lost.
                log.warning("could not signal the other hub nodes", exc_info=True)

    def _received(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        node, *codes = payload.split(" ")
        if node == self.node:
            return  # this node woke its own waiters when it committed
        for code in codes:
            self._notifier.wake(code)
        self.received += len(codes)

    async def _listen(self) -> None:
        conn = await self._engine.connect()
        try:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            await driver.add_listener(CHANNEL, self._received)
            driver.add_termination_listener(self._lost)
        except BaseException:
            await conn.close()
            raise
        self._listening = conn

    def _lost(self, _conn: Any) -> None:
        if not self._closed:
            log.warning("lost the connection that listens to the other hub nodes; reconnecting")
            self._tasks.append(asyncio.create_task(self._reconnect(), name="cluster-reconnect"))

    async def _reconnect(self) -> None:
        old, self._listening = self._listening, None
        if old is not None:
            await old.invalidate()
            await old.close()
        attempt = 0
        while not self._closed:
            try:
                await self._listen()
            except Exception:
                delay = RECONNECT_SECONDS[min(attempt, len(RECONNECT_SECONDS) - 1)]
                attempt += 1
                await asyncio.sleep(delay)
                continue
            # Whatever was signalled while nobody listened: every waiter looks again.
            self._notifier.wake_all()
            log.info("listening to the other hub nodes again")
            return

    async def close(self) -> None:
        self._closed = True
        self._notifier.relay = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._listening is not None:
            try:
                raw = await self._listening.get_raw_connection()
                await raw.driver_connection.remove_listener(CHANNEL, self._received)  # type: ignore[union-attr]
            except Exception:  # noqa: S110 - closing anyway
                pass
            await self._listening.close()


async def start_signals(engine: AsyncEngine, notifier: InboxNotifier, node: str) -> Signals | None:
    """Signals for a PostgreSQL database; None for SQLite (one node, nothing to carry)."""
    if engine.dialect.name != "postgresql":
        return None
    signals = Signals(engine, notifier, node)
    await signals.start()
    return signals


def lock_key(job: str) -> int:
    """A stable 63-bit advisory-lock key for *job* (the same on every node). Pure."""
    return int.from_bytes(hashlib.sha256(f"lienthong.job.{job}".encode()).digest()[:8]) >> 1


async def once_per_interval(
    engine: AsyncEngine,
    job: str,
    every: dt.timedelta,
    run: Callable[[], Awaitable[Any]],
    node: str,
) -> bool:
    """Run *run* unless another node ran *job* less than *every* ago (or is running it now);
    whether it ran. On SQLite (one node) it always runs."""
    if engine.dialect.name != "postgresql":
        await run()
        return True
    key = lock_key(job)
    async with engine.connect() as conn:
        got = (
            await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
        ).scalar_one()
        await conn.commit()
        if not got:
            return False  # another node is running it right now
        try:
            started = utcnow()
            last = (
                await conn.execute(select(JobRun.started_at).where(JobRun.name == job))
            ).scalar_one_or_none()
            await conn.commit()
            # A little slack: clocks of nodes started at different moments fire a bit apart.
            if last is not None and started - last < every * 0.9:
                return False
            await run()
            record = postgresql.insert(JobRun).values(name=job, started_at=started, node=node)
            await conn.execute(
                record.on_conflict_do_update(
                    index_elements=[JobRun.name],
                    set_={"started_at": record.excluded.started_at, "node": record.excluded.node},
                )
            )
            await conn.commit()
            return True
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            await conn.commit()


def every(scheduler: AsyncIOScheduler, run: Callable[[], Any], seconds: float, job: str) -> None:
    """Add *run* to *scheduler* every *seconds* under the name *job*: never two runs at once, a
    missed run caught up once (the jobs keep their state in the database or the trust store)."""
    scheduler.add_job(
        run,
        "interval",
        seconds=seconds,
        id=job,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=seconds,
    )


def every_once_per_cluster(
    scheduler: AsyncIOScheduler,
    ctx: HubContext,
    run: Callable[[], Awaitable[Any]],
    seconds: float,
    job: str,
) -> None:
    """:func:`every`, but each interval's run is made by one node of the cluster
    (:func:`once_per_interval`)."""
    interval = dt.timedelta(seconds=seconds)

    async def scheduled() -> None:
        await once_per_interval(ctx.store.engine, job, interval, run, ctx.node)

    every(scheduler, scheduled, seconds, job)
