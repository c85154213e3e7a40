"""Deadlines and alerts: overdue document deliveries are flagged once, their senders told, and
every alert (overdue, expired, dead) forwarded to a webhook or a command."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import select

from hub.alerts import AlertHook
from hub.config import AlertSettings
from hub.deadlines import add_deadlines_job, flag_overdue
from hub.dispatcher import Dispatcher
from hub.edxml.model import Priority, StatusCode
from hub.expiry import expire_overdue
from tests.acceptance.conftest import free_port
from tests.integration.test_push import (
    Receiver,
    dispatchers,
    push_to,
    receivers,
    state_is,
    until,
)
from tests.support import (
    BA_DINH,
    CITY,
    HOAN_KIEM,
    Hub,
    assert_matches_openapi,
    document,
    status,
)
from tracking.audit import verify_store
from tracking.models import Document, TraceEvent
from tracking.store import Store

__all__ = ["dispatchers", "receivers"]  # fixtures shared with test_push

HOUR = dt.timedelta(hours=1)
FAST = (0.01, 0.01)  # the hook's pauses between attempts, in tests


async def received_at(hub: Hub, document_id: str) -> dt.datetime:
    async with hub.ctx.store.read() as session:
        doc = await session.get(Document, document_id)
        assert doc is not None
        return doc.received_at


async def overdue_events(hub: Hub) -> list[tuple[str | None, dict[str, Any]]]:
    async with hub.ctx.store.read() as session:
        rows = (
            await session.execute(
                select(TraceEvent).where(TraceEvent.kind == "overdue").order_by(TraceEvent.seq)
            )
        ).scalars()
        return [(e.delivery_id, json.loads(e.detail)) for e in rows]


async def trace(hub: Hub, document_id: str, as_: str = CITY) -> dict[str, Any]:
    answer = await hub.http.get(f"/v1/documents/{document_id}/trace", headers=hub.as_(as_))
    assert answer.status == 200
    body: dict[str, Any] = await answer.json()
    assert_matches_openapi("Trace", body)
    return body


async def ack(hub: Hub, delivery_id: str, code: str) -> None:
    answer = await hub.http.post(
        f"/v1/deliveries/{delivery_id}/ack", json={"result": "done"}, headers=hub.as_(code)
    )
    assert answer.status == 200


async def inbox(hub: Hub, code: str) -> list[dict[str, Any]]:
    body = await (await hub.http.get("/v1/inbox", headers=hub.as_(code))).json()
    assert_matches_openapi("Inbox", body)
    return list(body["items"])


async def test_an_unacknowledged_document_is_flagged_once_and_its_sender_told(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    answer = await hub.send(document(CITY, (BA_DINH, HOAN_KIEM), priority=Priority.VERY_URGENT))
    doc_id = answer["document_id"]
    by_recipient = {d["recipient"]: d["delivery_id"] for d in answer["deliveries"]}
    await ack(hub, by_recipient[HOAN_KIEM], HOAN_KIEM)  # in time
    deadline = await received_at(hub, doc_id) + 8 * HOUR  # thượng khẩn: 8 hours

    assert await flag_overdue(hub.ctx, deadline) == 0
    with caplog.at_level(logging.WARNING, logger="hub.deadlines"):
        assert await flag_overdue(hub.ctx, deadline + 3 * HOUR) == 1
    assert await flag_overdue(hub.ctx, deadline + 4 * HOUR) == 0  # once only
    assert await flag_overdue(hub.ctx, deadline + 100 * HOUR) == 0

    ((delivery_id, detail),) = await overdue_events(hub)
    assert delivery_id == by_recipient[BA_DINH]
    assert detail == {
        "alert": True,
        "overdue": "ack",
        "recipient": BA_DINH,
        "delivery_id": delivery_id,
        "priority": 2,
        "window_hours": 8.0,
        "state": "queued",
        "deadline": deadline.isoformat(),
        "late_seconds": 3 * 3600,
    }
    (record,) = [r for r in caplog.records if r.getMessage() == "document overdue"]
    assert record.recipient == BA_DINH  # type: ignore[attr-defined]

    (notice,) = [i for i in await inbox(hub, CITY) if i["kind"] == "notice"]
    assert notice["document_id"] == doc_id
    assert notice["reason"] == (
        f"Overdue at {BA_DINH}: not acknowledged within 8 hours (thượng khẩn), 3 hours late."
    )

    # A late acknowledgement does not unflag: the trace tells both, in order.
    await ack(hub, by_recipient[BA_DINH], BA_DINH)
    shown = await trace(hub, doc_id)
    assert shown["summary"]["overdue"] == [BA_DINH]
    flags = {r["recipient"]: r["overdue"] for r in shown["recipients"]}
    assert flags == {BA_DINH: ["ack"], HOAN_KIEM: []}
    kinds = [e["kind"] for e in shown["events"] if e["delivery_id"] == by_recipient[BA_DINH]]
    assert kinds[-2:] == ["overdue", "acknowledged"]
    # Each recipient sees its own flags only; search results carry them too.
    mine = await trace(hub, doc_id, as_=HOAN_KIEM)
    assert mine["summary"]["overdue"] == [] and "overdue" not in [e["kind"] for e in mine["events"]]
    found = await (await hub.http.get("/v1/documents", headers=hub.as_(CITY))).json()
    assert_matches_openapi("DocumentSearch", found)
    (item,) = found["items"]
    assert {r["recipient"]: r["overdue"] for r in item["recipients"]} == flags

    report = await verify_store(hub.ctx.store)
    assert report.intact, report


async def test_a_due_date_missed_without_06_is_flagged_for_each_late_recipient(hub: Hub) -> None:
    doc = dataclasses.replace(document(CITY, (BA_DINH, HOAN_KIEM)), due_date="2026/12/15")
    answer = await hub.send(doc)
    for ref in answer["deliveries"]:
        await ack(hub, ref["delivery_id"], ref["recipient"])
    assert (await hub.report(status(BA_DINH, doc, StatusCode.FINISHED))).status == 202
    assert (await hub.report(status(HOAN_KIEM, doc, StatusCode.ACCEPTED))).status == 202
    end_of_day = dt.datetime(2026, 12, 15, 17, 0, tzinfo=dt.UTC)  # midnight in Hà Nội

    assert await flag_overdue(hub.ctx, end_of_day - dt.timedelta(seconds=1)) == 0
    assert await flag_overdue(hub.ctx, end_of_day + 2 * HOUR) == 1
    assert await flag_overdue(hub.ctx, end_of_day + 200 * HOUR) == 0
    ((_, detail),) = await overdue_events(hub)
    assert (detail["overdue"], detail["recipient"]) == ("due_date", HOAN_KIEM)
    assert (detail["due_date"], detail["business"]) == ("2026/12/15", "03")
    assert detail["deadline"] == end_of_day.isoformat() and detail["late_seconds"] == 7200

    (notice,) = [i for i in await inbox(hub, CITY) if i["kind"] == "notice"]
    assert notice["reason"] == (
        f"Overdue at {HOAN_KIEM}: DueDate 2026/12/15 passed without 06 (last status 03), "
        "2 hours late."
    )
    # The 06 that comes late is in the trace after the flag, which stays.
    assert (await hub.report(status(HOAN_KIEM, doc, StatusCode.FINISHED))).status == 202
    shown = await trace(hub, answer["document_id"])
    assert shown["summary"]["overdue"] == [HOAN_KIEM] and shown["summary"]["not_finished"] == []
    kinds = [e["kind"] for e in shown["events"]]
    assert kinds[-4:] == ["overdue", "queued", "status", "queued"]  # flag, notice, late 06


async def test_two_hub_nodes_flag_each_deadline_once(hub: Hub, hub_db_url: str) -> None:
    """Two nodes on one database (each with its own connection pool) running the job at once."""
    answer = await hub.send(document(CITY, (BA_DINH, HOAN_KIEM), priority=Priority.FLASH))
    late = await received_at(hub, answer["document_id"]) + 3 * HOUR
    other = dataclasses.replace(hub.ctx, store=Store.open(hub_db_url))
    try:
        counts = await asyncio.gather(
            flag_overdue(hub.ctx, late), flag_overdue(other, late), flag_overdue(other, late)
        )
    finally:
        await other.store.close()
    assert sum(counts) == 2
    assert sorted(d["recipient"] for _, d in await overdue_events(hub)) == [BA_DINH, HOAN_KIEM]
    assert len([i for i in await inbox(hub, CITY) if i["kind"] == "notice"]) == 2
    assert (await verify_store(hub.ctx.store)).intact


async def test_overdue_and_expired_alerts_reach_a_webhook(
    hub: Hub, receivers: Callable[..., Receiver]
) -> None:
    webhook = receivers([500])  # the first attempt fails: the alert is tried again
    await webhook.start()
    hub.ctx.alerts = AlertHook(AlertSettings(webhook=webhook.url), "test-hub", delays=FAST)
    answer = await hub.send(document(CITY, (BA_DINH,), priority=Priority.URGENT))
    (ref,) = answer["deliveries"]
    late = await received_at(hub, answer["document_id"]) + 25 * HOUR
    assert await flag_overdue(hub.ctx, late) == 1
    await expire_overdue(hub.ctx, late + dt.timedelta(days=7))
    await hub.ctx.alerts.drain()

    assert len(webhook.requests) == 3
    bodies = [json.loads(body) for _, body in webhook.requests]
    # The first request failed and was made again; meanwhile the next alert may have gone out.
    assert bodies[0]["kind"] == "overdue"
    overdue, again = [b for b in bodies if b["kind"] == "overdue"]
    (expired,) = [b for b in bodies if b["kind"] == "expired"]
    assert again == overdue
    assert all(h["Content-Type"] == "application/json" for h, _ in webhook.requests)
    assert overdue == {
        "kind": "overdue",
        "hub": "test-hub",
        "document_id": answer["document_id"],
        "delivery_id": ref["delivery_id"],
        "recipient": BA_DINH,
        "reason": f"Overdue at {BA_DINH}: not acknowledged within 24 hours (khẩn), 1 hour late.",
        "at": late.isoformat(),
        "trace": f"/v1/documents/{answer['document_id']}/trace",
        "overdue": "ack",
        "deadline": (late - HOUR).isoformat(),
        "late_seconds": 3600,
    }
    assert expired["kind"] == "expired" and expired["delivery_id"] == ref["delivery_id"]
    assert "not acknowledged within 7 days" in expired["reason"]
    # Facts and a link, never the package.
    assert all(len(body) < 1000 and b"PDF" not in body for _, body in webhook.requests)


async def test_a_dead_delivery_alert_reaches_the_webhook(
    hub: Hub, receivers: Callable[..., Receiver], dispatchers: Callable[..., Dispatcher]
) -> None:
    endpoint, webhook = receivers([503] * 5), receivers()
    await endpoint.start()
    await webhook.start()
    push_to(hub, BA_DINH, endpoint.url, max_attempts=2)
    hub.ctx.alerts = AlertHook(AlertSettings(webhook=webhook.url), "test-hub", delays=FAST)
    answer = await hub.send(document(CITY, (BA_DINH,)))
    delivery_id = answer["deliveries"][0]["delivery_id"]
    dispatchers()
    await until(state_is(hub, delivery_id, "dead"))
    await until(lambda: asyncio.sleep(0, result=bool(webhook.requests)))
    await hub.ctx.alerts.drain()
    ((_, body),) = webhook.requests
    alert = json.loads(body)
    assert (alert["kind"], alert["delivery_id"], alert["recipient"]) == (
        "dead",
        delivery_id,
        BA_DINH,
    )
    assert "HTTP 503" in alert["reason"]


HOOK_SCRIPT = """\
import json, os, sys
out = sys.argv[1]
with open(out, "a", encoding="utf-8") as fh:
    fh.write(json.dumps({"stdin": json.load(sys.stdin),
                         "env": sorted(k for k in os.environ if k.startswith("LIENTHONG_"))}))
    fh.write("\\n")
sys.exit(int(sys.argv[2]))
"""


def hook_command(tmp_path: Path, exit_status: int) -> tuple[tuple[str, ...], Path]:
    script, out = tmp_path / "hook.py", tmp_path / "alerts.jsonl"
    script.write_text(HOOK_SCRIPT, encoding="utf-8")
    return (sys.executable, str(script), str(out), str(exit_status)), out


async def test_alerts_reach_a_command_on_its_stdin_without_the_hubs_secrets(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIENTHONG_HUB_KEY_PASSPHRASE", "mật khẩu")
    command, out = hook_command(tmp_path, 0)
    hub.ctx.alerts = AlertHook(AlertSettings(command=command), "test-hub", delays=FAST)
    answer = await hub.send(document(CITY, (BA_DINH, HOAN_KIEM)))
    assert await flag_overdue(hub.ctx, await received_at(hub, answer["document_id"]) + 73 * HOUR)
    await hub.ctx.alerts.drain()
    runs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["stdin"]["recipient"] for r in runs) == [BA_DINH, HOAN_KIEM]
    assert {r["stdin"]["kind"] for r in runs} == {"overdue"}
    assert all(r["env"] == [] for r in runs)  # no LIENTHONG_* variable reaches the hook
    assert "mật khẩu" not in out.read_text(encoding="utf-8")


async def test_a_failing_hook_is_retried_logged_and_never_stops_the_job(
    hub: Hub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    command, out = hook_command(tmp_path, 3)
    closed = f"http://127.0.0.1:{free_port()}/hook?token=s3cret"  # nobody listens there
    hub.ctx.alerts = AlertHook(AlertSettings(webhook=closed, command=command), "t", delays=FAST)
    answer = await hub.send(document(CITY, (BA_DINH,)))
    with caplog.at_level(logging.WARNING, logger="hub.alerts"):
        assert await flag_overdue(
            hub.ctx, await received_at(hub, answer["document_id"]) + 80 * HOUR
        )
        assert len(await overdue_events(hub)) == 1  # committed whatever the hook does
        assert [i["kind"] for i in await inbox(hub, CITY)] == ["notice"]
        await hub.ctx.alerts.drain()
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1 + len(FAST)
    gave_up = [r for r in caplog.records if r.getMessage() == "alert not forwarded: giving up"]
    assert sorted(r.target for r in gave_up) == [  # type: ignore[attr-defined]
        f"command {Path(sys.executable).name}",
        "webhook 127.0.0.1",
    ]
    assert any("exit status 3" in r.error for r in gave_up)  # type: ignore[attr-defined]
    assert "s3cret" not in caplog.text
    # The hub goes on: the next run flags nothing more and raises no error.
    assert (
        await flag_overdue(hub.ctx, await received_at(hub, answer["document_id"]) + 90 * HOUR) == 0
    )


async def test_the_hub_runs_the_deadlines_job_on_its_clock(hub: Hub) -> None:
    scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
    add_deadlines_job(scheduler, hub.ctx)
    (job,) = scheduler.get_jobs()
    assert job.id == "deadlines"
    await job.func()  # one pass (once per cluster: on SQLite, always)
    assert job.trigger.interval == dt.timedelta(seconds=300)
    hub.ctx.deadlines = dataclasses.replace(hub.ctx.deadlines, check_seconds=0)
    off = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
    add_deadlines_job(off, hub.ctx)
    assert off.get_jobs() == []
