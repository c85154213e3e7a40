"""Expiry: deliveries not acknowledged in time become expired and their sender is told."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from typing import Any

import pytest
from sqlalchemy import select

from hub.edxml.model import StatusCode
from hub.expiry import expire_overdue
from tests.support import BA_DINH, CITY, HOAN_KIEM, Hub, assert_matches_openapi, document, status
from tracking.models import Delivery, TraceEvent, utcnow

WEEK = dt.timedelta(days=7)


async def states(hub: Hub) -> dict[str, str]:
    async with hub.ctx.store.read() as session:
        rows = (await session.execute(select(Delivery))).scalars()
        return {d.id: d.state for d in rows}


async def events_of(hub: Hub, kind: str) -> list[tuple[str, dict[str, Any]]]:
    async with hub.ctx.store.read() as session:
        rows = (
            await session.execute(
                select(TraceEvent).where(TraceEvent.kind == kind).order_by(TraceEvent.seq)
            )
        ).scalars()
        return [(e.delivery_id or "", json.loads(e.detail)) for e in rows]


async def test_unacknowledged_deliveries_expire_and_the_sender_is_told(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    answer = await hub.send(document(CITY, (BA_DINH, HOAN_KIEM)))
    by_recipient = {d["recipient"]: d["delivery_id"] for d in answer["deliveries"]}
    # Hoàn Kiếm acknowledges in time; Ba Đình downloads and never acknowledges.
    await hub.http.post(
        f"/v1/deliveries/{by_recipient[HOAN_KIEM]}/ack",
        json={"result": "done"},
        headers=hub.as_(HOAN_KIEM),
    )
    await hub.http.get(f"/v1/documents/{answer['document_id']}", headers=hub.as_(BA_DINH))

    assert await expire_overdue(hub.ctx, utcnow() + WEEK - dt.timedelta(minutes=1)) == 0
    with caplog.at_level(logging.WARNING, logger="hub.expiry"):
        assert await expire_overdue(hub.ctx, utcnow() + WEEK + dt.timedelta(seconds=1)) == 1
    assert await expire_overdue(hub.ctx, utcnow() + 2 * WEEK) == 0  # once only

    now = await states(hub)
    assert now[by_recipient[BA_DINH]] == "expired" and now[by_recipient[HOAN_KIEM]] == "done"
    ((delivery_id, detail),) = await events_of(hub, "expired")
    assert delivery_id == by_recipient[BA_DINH]
    assert detail["alert"] is True and detail["state_before"] == "delivered"
    (record,) = [r for r in caplog.records if r.getMessage().startswith("delivery expired")]
    assert record.delivery_id == delivery_id  # type: ignore[attr-defined]

    inbox = await (await hub.http.get("/v1/inbox", headers=hub.as_(CITY))).json()
    assert_matches_openapi("Inbox", inbox)
    notices = [i for i in inbox["items"] if i["kind"] == "notice"]
    assert len(notices) == 1
    assert BA_DINH in notices[0]["reason"] and "7 days" in notices[0]["reason"]
    # Gone from the recipient's inbox; a late acknowledgement is refused.
    items = (await (await hub.http.get("/v1/inbox", headers=hub.as_(BA_DINH))).json())["items"]
    assert items == []
    late = await hub.http.post(
        f"/v1/deliveries/{delivery_id}/ack", json={"result": "done"}, headers=hub.as_(BA_DINH)
    )
    assert late.status == 409


async def test_an_expired_status_package_is_reported_to_its_reporter(hub: Hub) -> None:
    doc = document(CITY, (BA_DINH,))
    await hub.send(doc)
    reported = await (await hub.report(status(BA_DINH, doc, StatusCode.ARRIVED))).json()
    await expire_overdue(hub.ctx, utcnow() + WEEK + dt.timedelta(seconds=1))
    assert (await states(hub))[reported["delivery"]["delivery_id"]] == "expired"
    items = (await (await hub.http.get("/v1/inbox", headers=hub.as_(BA_DINH))).json())["items"]
    notices = [i for i in items if i["kind"] == "notice"]
    assert len(notices) == 1 and CITY in notices[0]["reason"]


async def test_receipts_and_notices_do_not_expire(hub: Hub) -> None:
    (ref,) = (await hub.send(document(CITY, (BA_DINH,))))["deliveries"]
    await hub.http.post(
        f"/v1/deliveries/{ref['delivery_id']}/ack",
        json={"result": "done"},
        headers=hub.as_(BA_DINH),
    )
    assert await expire_overdue(hub.ctx, utcnow() + 10 * WEEK) == 0
    (receipt,) = (await (await hub.http.get("/v1/inbox", headers=hub.as_(CITY))).json())["items"]
    assert receipt["kind"] == "receipt"


async def test_expiry_off(hub: Hub) -> None:
    hub.ctx.delivery = dataclasses.replace(hub.ctx.delivery, expire_after_seconds=0)
    await hub.send(document(CITY, (BA_DINH,)))
    assert await expire_overdue(hub.ctx, utcnow() + 100 * WEEK) == 0


async def test_the_hub_runs_expiry_on_its_clock(hub: Hub) -> None:
    import asyncio

    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from hub.expiry import add_expiry_job

    scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
    add_expiry_job(scheduler, hub.ctx)
    (job,) = scheduler.get_jobs()
    assert job.id == "delivery-expiry"
    await job.func()  # one pass (once per cluster: on SQLite, always)
    assert job.trigger.interval == dt.timedelta(seconds=60)
    hub.ctx.delivery = dataclasses.replace(hub.ctx.delivery, expire_after_seconds=30)
    quick = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
    add_expiry_job(quick, hub.ctx)
    assert quick.get_jobs()[0].trigger.interval == dt.timedelta(seconds=3)
    hub.ctx.delivery = dataclasses.replace(hub.ctx.delivery, expire_after_seconds=0)
    off = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
    add_expiry_job(off, hub.ctx)
    assert off.get_jobs() == []
