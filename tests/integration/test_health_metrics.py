"""/healthz, /metrics, maintenance mode and the request id in logs, against a real hub on
loopback (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import ipaddress
import json
import logging
import math
import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub import logs, maintenance
from hub.api import create_app
from hub.checkpoints import make_checkpoint
from hub.dispatcher import start_dispatcher
from hub.edxml.model import Priority, StatusCode
from hub.health import SchedulerWatch
from hub.maintenance import MaintenanceGate
from hub.server import crl_scheduler
from tests.support import (
    BA_DINH,
    CITY,
    HOAN_KIEM,
    Hub,
    Samples,
    document,
    parse_prometheus,
    signed_document,
    status,
    value,
)
from tracking.store import Store

pytestmark = pytest.mark.asyncio


async def scrape(http: TestClient, **headers: str) -> tuple[dict[str, str], Samples]:  # type: ignore[type-arg]
    response = await http.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse_prometheus(await response.text())


# --- /healthz ---------------------------------------------------------------------------------


async def healthz(http: TestClient) -> tuple[int, dict[str, Any]]:  # type: ignore[type-arg]
    response = await http.get("/healthz")
    assert response.content_type == "application/json"
    return response.status, dict(await response.json())


async def test_healthz_all_green_with_a_running_scheduler_and_dispatcher(hub: Hub) -> None:
    scheduler = crl_scheduler(hub.ctx.trust, 3600)
    watch = SchedulerWatch(scheduler)
    scheduler.start()
    dispatcher = start_dispatcher(hub.ctx)
    app = create_app(hub.ctx, max_body_bytes=1 << 20, scheduler=watch, dispatcher=dispatcher)
    try:
        async with TestClient(TestServer(app)) as http:
            code, body = await healthz(http)
            assert code == 200, body
            assert body["status"] == "ok"
            checks = body["checks"]
            assert set(checks) == {
                "database",
                "hub_key",
                "crls",
                "maintenance",
                "scheduler",
                "dispatcher",
            }
            assert all(c["ok"] for c in checks.values()), checks
            assert checks["scheduler"]["jobs"] == ["crl-refresh"]
            assert checks["crls"]["crls"][0]["fresh"] is True

            await dispatcher.stop()  # nothing would be pushed any more
            code, body = await healthz(http)
            assert code == 503
            assert body["checks"]["dispatcher"]["ok"] is False

            dispatcher.start()
            scheduler.shutdown(wait=False)  # the hub's clock stopped: no CRL refresh any more
            code, body = await healthz(http)
            assert code == 503
            assert body["status"] == "unhealthy"
            assert body["checks"]["scheduler"]["ok"] is False
            assert body["checks"]["dispatcher"]["ok"] is True
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)
        await dispatcher.stop()


async def test_healthz_shows_no_secret(hub: Hub) -> None:
    code, body = await healthz(hub.http)
    assert code == 200, body
    text = json.dumps(body)
    for account in hub.world.accounts.values():
        assert account.token not in text
    assert hub.ctx.store.engine.url.render_as_string(hide_password=False) not in text
    assert "PRIVATE KEY" not in text


async def test_healthz_answers_503_when_the_database_is_down(hub: Hub) -> None:
    working = hub.ctx.store
    # Nothing listens on port 1: every connection is refused.
    hub.ctx.store = Store.open("postgresql+asyncpg://postgres@127.0.0.1:1/lienthong")
    try:
        code, body = await healthz(hub.http)
    finally:
        await hub.ctx.store.close()
        hub.ctx.store = working
    assert code == 503
    assert body["checks"]["database"]["ok"] is False
    assert "unreachable" in body["checks"]["database"]["detail"]
    assert body["checks"]["maintenance"]["ok"] is False  # unknown without the database
    assert body["checks"]["hub_key"]["ok"] is True  # the rest is still judged
    code, body = await healthz(hub.http)
    assert code == 200, body


async def test_healthz_answers_503_when_a_crl_is_older_than_the_grace_period(hub: Hub) -> None:
    now = [dt.datetime.now(dt.UTC)]
    hub.ctx.trust = hub.world.trust_store(clock=lambda: now[0], grace=dt.timedelta(hours=24))
    code, body = await healthz(hub.http)
    assert code == 200, body

    now[0] += dt.timedelta(hours=25)  # a day of failed refreshes, and then some
    code, body = await healthz(hub.http)
    assert code == 503
    crls = body["checks"]["crls"]
    assert crls["ok"] is False
    assert crls["grace_seconds"] == 86400
    assert [c["fresh"] for c in crls["crls"]] == [False]
    assert "test-ca.crl" in crls["detail"]


async def test_healthz_answers_503_without_a_hub_key(hub: Hub) -> None:
    hub.ctx.receipts = None
    code, body = await healthz(hub.http)
    assert code == 503
    assert body["checks"]["hub_key"]["ok"] is False


# --- maintenance mode -------------------------------------------------------------------------


async def test_maintenance_refuses_intake_storing_nothing_and_reads_still_answer(hub: Hub) -> None:
    hub.ctx.maintenance = MaintenanceGate(recheck=0)  # see every change at once
    first = document(number="1")
    await hub.send(first)
    await maintenance.turn_on(hub.ctx.store, "nguyenvana", "nâng cấp cơ sở dữ liệu", 120)

    code, body = await healthz(hub.http)
    assert code == 503
    assert body["checks"]["maintenance"] == {
        **body["checks"]["maintenance"],
        "ok": False,
        "reason": "nâng cấp cơ sở dữ liệu",
        "set_by": "nguyenvana",
        "retry_after": 120,
    }

    counts, events = await hub.counts(), await hub.events()
    response = await hub.post_document(document(number="2"))
    assert response.status == 503
    assert response.headers["Retry-After"] == "120"
    problem = await response.json()
    assert problem["code"] == "hub.maintenance"
    assert problem["retry_after"] == 120
    assert "nâng cấp cơ sở dữ liệu" in problem["detail"]
    response = await hub.report(status(BA_DINH, first, StatusCode.ARRIVED))
    assert response.status == 503
    assert (await hub.counts(), await hub.events()) == (counts, events)  # nothing written

    # Recipients keep draining their queues.
    inbox = await hub.http.get("/v1/inbox", headers=hub.as_(BA_DINH))
    assert inbox.status == 200
    (item,) = (await inbox.json())["items"]
    download = await hub.http.get(item["href"], headers=hub.as_(BA_DINH))
    assert download.status == 200
    ack = await hub.http.post(
        f"/v1/deliveries/{item['delivery_id']}/ack",
        json={"result": "done"},
        headers=hub.as_(BA_DINH),
    )
    assert ack.status == 200

    assert await maintenance.turn_off(hub.ctx.store, "nguyenvana") is not None
    assert (await healthz(hub.http))[0] == 200
    assert (await hub.post_document(document(number="2"))).status == 202
    kinds = [kind for kind, _, _ in await hub.events()]
    assert kinds.count("maintenance_on") == kinds.count("maintenance_off") == 1


async def test_intake_sees_maintenance_within_the_recheck_interval(hub: Hub) -> None:
    clock = [0.0]
    hub.ctx.maintenance = MaintenanceGate(recheck=1.0, clock=lambda: clock[0])
    assert (await hub.post_document(document(number="3"))).status == 202  # read: off
    await maintenance.turn_on(hub.ctx.store, "nguyenvana", "", 60)
    assert (await hub.post_document(document(number="4"))).status == 202  # still the cached off
    clock[0] += 1.0
    response = await hub.post_document(document(number="4"))
    assert response.status == 503
    assert response.headers["Retry-After"] == "60"


# --- /metrics ---------------------------------------------------------------------------------


async def test_metrics_count_intake_rejections_and_delivery_latency(hub: Hub) -> None:
    types, before = await scrape(hub.http)
    assert types["lienthong_documents_accepted_total"] == "counter"
    assert types["lienthong_delivery_latency_seconds"] == "histogram"
    assert types["lienthong_queue_depth"] == "gauge"

    doc = document(number="5")
    sent = await hub.send(doc)
    again = await hub.post_document(document(number="5"))  # the same bytes: a duplicate
    assert again.status == 202
    refused = await hub.http.post(
        "/v1/documents",
        data=signed_document(hub.world, document(number="6")),
        headers=hub.as_(HOAN_KIEM),  # signed by the city, sent by Hoàn Kiếm
    )
    assert (await refused.json())["code"] == "signature.untrusted"
    unauthenticated = await hub.http.get("/v1/inbox")
    assert unauthenticated.status == 401
    (delivery,) = [d for d in sent["deliveries"] if d["recipient"] == BA_DINH]
    ack = await hub.http.post(
        f"/v1/deliveries/{delivery['delivery_id']}/ack",
        json={"result": "done"},
        headers=hub.as_(BA_DINH),
    )
    assert ack.status == 200
    assert (await hub.report(status(BA_DINH, doc, StatusCode.ARRIVED))).status == 202

    _, after = await scrape(hub.http)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("lienthong_documents_accepted_total") == 1
    assert moved("lienthong_statuses_accepted_total", code="01") == 1
    assert moved("lienthong_rejections_total", code="signature.untrusted") == 1
    assert moved("lienthong_rejections_total", code="auth.required") == 1
    assert moved("lienthong_delivery_latency_seconds_count", kind="document") == 1

    buckets = [
        (float(labels["le"].replace("Inf", "inf")), v)
        for labels, v in after["lienthong_delivery_latency_seconds_bucket"]
        if labels["kind"] == "document"
    ]
    bounds = [b for b, _ in buckets]
    assert bounds == sorted(bounds) and math.isinf(bounds[-1])
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), "buckets are cumulative"
    assert counts[-1] == value(after, "lienthong_delivery_latency_seconds_count", kind="document")
    # The one latency observed is counted in every bucket from the first bound above it on.
    latency = value(after, "lienthong_delivery_latency_seconds_sum", kind="document")
    assert latency >= 0
    assert buckets == [(bound, 1.0 if latency <= bound else 0.0) for bound in bounds]


async def test_queue_depth_matches_the_inbox_and_overdue_follows_deadlines(hub: Hub) -> None:
    await hub.send(document(number="7", priority=Priority.FLASH))
    await hub.send(document(number="8", recipients=(BA_DINH,)))
    _, samples = await scrape(hub.http)
    for code in (BA_DINH, HOAN_KIEM):
        inbox = await hub.http.get("/v1/inbox", headers=hub.as_(code))
        items = (await inbox.json())["items"]
        assert value(samples, "lienthong_queue_depth", recipient=code, state="queued") == len(items)
    assert value(samples, "lienthong_queue_depth", recipient=BA_DINH, state="queued") == 2
    assert value(samples, "lienthong_queue_depth", recipient=CITY, state="queued") == 0
    assert samples.get("lienthong_deliveries_overdue", []) == []  # windows of hours

    # Only the hỏa tốc document (priority 3) is past a window of zero; the thường one has 72 h.
    hub.ctx.deadlines = dataclasses.replace(
        hub.ctx.deadlines,
        windows={**hub.ctx.deadlines.windows, int(Priority.FLASH): dt.timedelta(0)},
    )
    _, samples = await scrape(hub.http)
    assert value(samples, "lienthong_deliveries_overdue", recipient=BA_DINH) == 1
    assert value(samples, "lienthong_deliveries_overdue", recipient=HOAN_KIEM) == 1


async def test_checkpoint_age_and_maintenance_gauges(hub: Hub) -> None:
    _, samples = await scrape(hub.http)
    assert "lienthong_checkpoint_age_seconds" not in samples  # never signed yet
    assert value(samples, "lienthong_maintenance") == 0
    await hub.send(document(number="9"))
    await make_checkpoint(hub.ctx)
    await maintenance.turn_on(hub.ctx.store, "nguyenvana", "", 60)
    _, samples = await scrape(hub.http)
    assert 0 <= value(samples, "lienthong_checkpoint_age_seconds") < 60
    assert value(samples, "lienthong_maintenance") == 1


async def test_metrics_token_is_required_when_configured(hub: Hub) -> None:
    app = create_app(hub.ctx, max_body_bytes=1 << 20, metrics_token="scrape-t0ken")
    async with TestClient(TestServer(app)) as http:
        assert (await http.get("/metrics")).status == 401
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401
        assert (await wrong.json())["code"] == "auth.invalid"
        # An agency's credential is not the scrape token.
        assert (await http.get("/metrics", headers=hub.as_(CITY))).status == 401
        await scrape(http, Authorization="Bearer scrape-t0ken")


def _outward_address() -> str | None:
    """An address of this machine that is not loopback, if it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if ipaddress.ip_address(address).is_loopback else address


async def test_metrics_without_a_token_refuse_callers_off_loopback(hub: Hub) -> None:
    address = _outward_address()
    if address is None:
        pytest.skip("this machine has no address besides loopback")
    app = create_app(hub.ctx, max_body_bytes=1 << 20)
    async with TestClient(TestServer(app, host=address)) as http:
        response = await http.get("/metrics")
        assert response.status == 403
        assert (await response.json())["code"] == "forbidden"
        assert (await http.get("/healthz")).status == 200  # health stays open to everyone


# --- logs -------------------------------------------------------------------------------------


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The hub's log as `lienthong serve --log-format json -v` writes it, captured."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    quiet = {name: logging.getLogger(name).level for name in logs.QUIET}
    stream = io.StringIO()
    logs.configure("json", "debug", stream)
    try:
        yield stream
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)


async def test_json_log_lines_carry_the_request_id_and_no_secret(
    hub: Hub, json_log: io.StringIO
) -> None:
    package = signed_document(hub.world, document(number="10"))
    token = hub.world.accounts[CITY].token
    response = await hub.http.post(
        "/v1/documents",
        data=package,
        headers={**hub.as_(CITY), "X-Request-Id": "vp-ubnd-2026-0001"},
    )
    assert response.status == 202
    assert response.headers["X-Request-Id"] == "vp-ubnd-2026-0001"
    # A refused package and a bad credential are logged too, as refusals.
    refused = await hub.http.post(
        "/v1/documents",
        data=package.replace(b"V/v ki", b"V/v KI"),  # changed after signing
        headers={**hub.as_(CITY), "X-Request-Id": "vp-ubnd-2026-0002"},
    )
    assert refused.status == 422
    bad = await hub.http.get("/v1/inbox", headers={"Authorization": "Bearer sai-ma-truy-cap"})
    assert bad.status == 401
    generated = bad.headers["X-Request-Id"]

    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    assert lines, "nothing was logged"
    for line in lines:
        assert {"time", "level", "logger", "message", "request_id"} <= set(line), line
    by_request = {
        rid: [line for line in lines if line["request_id"] == rid]
        for rid in ("vp-ubnd-2026-0001", "vp-ubnd-2026-0002", generated)
    }
    assert all(by_request.values()), "every request leaves lines with its id"
    assert any(line["message"] == "document accepted" for line in by_request["vp-ubnd-2026-0001"])
    access = [line for line in by_request["vp-ubnd-2026-0002"] if line["message"] == "request"]
    assert access[0]["status"] == 422 and access[0]["path"] == "/v1/documents"

    text = json_log.getvalue()
    signature_value = re.search(rb"SignatureValue>([^<]{40})", package)
    assert signature_value is not None
    for secret in (token, "sai-ma-truy-cap", "Bearer", signature_value[1].decode()):
        assert secret not in text, f"the log holds {secret!r}"
    assert "Authorization" not in text and "edXMLEnvelope" not in text
