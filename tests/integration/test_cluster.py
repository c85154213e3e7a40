"""Several hub nodes on one PostgreSQL database: wake-ups cross nodes, jobs run once."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.cluster import PAYLOAD_MAX, Signals, lock_key, once_per_interval, payloads, start_signals
from hub.notify import InboxNotifier
from tracking.db import create_engine
from tracking.models import JobRun

BA_DINH = "000.00.31.H26"


def test_codes_are_packed_into_notifications_within_the_size_limit() -> None:
    codes = [f"{i:03d}.00.00.H26" for i in range(2000)]
    out = payloads("node-a", codes)
    assert len(out) > 1 and all(len(p) <= PAYLOAD_MAX for p in out)
    assert all(p.startswith("node-a ") for p in out)
    assert [c for p in out for c in p.split(" ")[1:]] == codes
    assert payloads("node-a", []) == []


def test_lock_keys_are_stable_and_fit_a_bigint() -> None:
    assert lock_key("audit-checkpoint") == lock_key("audit-checkpoint")
    assert lock_key("audit-checkpoint") != lock_key("delivery-expiry")
    assert 0 <= lock_key("delivery-expiry") < 2**63


@pytest.fixture
async def engines(pg_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two nodes' connections to one database (each node has its own engine)."""
    a, b = create_engine(pg_url), create_engine(pg_url)
    yield a, b
    await a.dispose()
    await b.dispose()


async def test_a_notify_on_one_node_wakes_a_waiter_on_another(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    inbox_a, inbox_b = InboxNotifier(), InboxNotifier()
    a = await start_signals(engines[0], inbox_a, "node-a")
    b = await start_signals(engines[1], inbox_b, "node-b")
    assert isinstance(a, Signals) and isinstance(b, Signals)
    try:
        ticket = inbox_b.ticket(BA_DINH)
        other = inbox_b.ticket("000.00.32.H26")
        inbox_a.notify(BA_DINH)  # what node A does after committing a package for Ba Đình
        assert await InboxNotifier.wait(ticket, 5), "node B's waiter was not woken"
        assert not other.is_set()  # only the agency concerned
        assert b.received == 1 and a.received == 0  # A ignores its own notification
    finally:
        await a.close()
        await b.close()
    assert inbox_a.relay is None


async def test_sqlite_needs_no_signals(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        assert await start_signals(engine, InboxNotifier(), "node-a") is None
    finally:
        await engine.dispose()


async def test_a_lost_listening_connection_is_reestablished_and_waiters_look_again(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    inbox_a, inbox_b = InboxNotifier(), InboxNotifier()
    a = await start_signals(engines[0], inbox_a, "node-a")
    b = await start_signals(engines[1], inbox_b, "node-b")
    assert a is not None and b is not None
    try:
        waiting = inbox_b.ticket(BA_DINH)
        # The server drops node B's listening connection (a restart, a network cut).
        async with engines[0].connect() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
                )
            )
            await conn.commit()
        # Whatever was signalled meanwhile may be lost: every waiter is woken to look again.
        assert await InboxNotifier.wait(waiting, 10)
        # And signals flow again.
        for _ in range(50):
            ticket = inbox_b.ticket(BA_DINH)
            inbox_a.notify(BA_DINH)
            if await InboxNotifier.wait(ticket, 0.2):
                break
        else:
            pytest.fail("signals did not flow again after the reconnection")
    finally:
        await a.close()
        await b.close()


async def test_a_job_runs_once_per_interval_across_nodes(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    runs: list[str] = []

    def job(node: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            runs.append(node)
            await asyncio.sleep(0.2)  # long enough for the other node to try meanwhile

        return run

    every = dt.timedelta(minutes=5)
    # Both nodes' clocks fire at the same moment: one runs it, the other finds it locked.
    ran = await asyncio.gather(
        once_per_interval(engines[0], "audit-checkpoint", every, job("a"), "node-a"),
        once_per_interval(engines[1], "audit-checkpoint", every, job("b"), "node-b"),
    )
    assert sorted(ran) == [False, True] and len(runs) == 1
    # Later in the same interval (node B's clock fires a bit after A's): not again.
    assert not await once_per_interval(engines[1], "audit-checkpoint", every, job("b"), "node-b")
    assert len(runs) == 1
    async with engines[0].connect() as conn:
        name, node = (await conn.execute(select(JobRun.name, JobRun.node))).one()
    assert (name, node) == ("audit-checkpoint", f"node-{runs[0]}")
    # Another job has its own lock and its own record.
    assert await once_per_interval(engines[1], "delivery-expiry", every, job("b"), "node-b")
    # Once the interval has passed, the next run is made.
    assert await once_per_interval(
        engines[1], "audit-checkpoint", dt.timedelta(0), job("b"), "node-b"
    )
    assert len(runs) == 3


async def test_a_failing_job_releases_its_lock(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    async def boom() -> None:
        raise RuntimeError("the job failed")

    with pytest.raises(RuntimeError):
        await once_per_interval(engines[0], "j", dt.timedelta(minutes=5), boom, "node-a")

    async def fine() -> None:
        return None

    # Not recorded as run, and not locked: the next node tries at its next tick.
    assert await once_per_interval(engines[1], "j", dt.timedelta(minutes=5), fine, "node-b")
