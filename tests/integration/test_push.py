"""Push delivery against real HTTP servers on loopback that fail on purpose before they succeed:
retries with back-off, the request signature, priority order, dead after the last attempt with
the sender's notice, permanent refusals, a crash in the middle of an attempt, resend."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from hub.config import DeliverySettings
from hub.directory import Directory
from hub.dispatcher import Dispatcher, standard_channels, start_dispatcher
from hub.edxml.model import Priority, StatusCode
from signing.push import verify_request
from tests.acceptance.conftest import free_port
from tests.support import (
    ADMIN,
    AUDITOR,
    BA_DINH,
    CITY,
    HOAN_KIEM,
    Hub,
    assert_matches_openapi,
    document,
    signed_document,
    status,
)
from tracking.models import Delivery

PUSH_TIMEOUT = 0.3  # seconds; the "slow" receiver sleeps longer than this


class Receiver:
    """A push endpoint on 127.0.0.1. Each request takes the next answer of *script* (an HTTP
    status, or "slow" to answer too late), then 200 for ever; every request is kept."""

    def __init__(self, script: list[int | str] | None = None, port: int | None = None) -> None:
        self.script = list(script or [])
        self.port = port or free_port()
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/lienthong"

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        answer = self.script.pop(0) if self.script else 200
        if answer == "slow":
            await asyncio.sleep(PUSH_TIMEOUT * 10)
            answer = 200
        assert isinstance(answer, int)
        return web.Response(status=answer, text="ok" if answer < 300 else "nope")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/lienthong", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def delivery_ids(self) -> list[str]:
        return [h["Lienthong-Delivery-Id"] for h, _ in self.requests]


@pytest.fixture
async def receivers() -> AsyncIterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(script: list[int | str] | None = None, port: int | None = None) -> Receiver:
        made.append(Receiver(script, port))
        return made[-1]

    yield make
    for receiver in made:
        await receiver.stop()


def push_to(hub: Hub, code: str, url: str, **delivery: Any) -> None:
    """Make *code* a push agency at *url*, with fast retries (and *delivery* settings)."""
    agencies = [
        dataclasses.replace(a, delivery="push", push_url=url) if a.code == code else a
        for a in hub.ctx.directory
    ]
    hub.ctx.directory = Directory(agencies)
    settings = {"retry_base_ms": 20, "retry_max_delay_seconds": 1, **delivery}
    hub.ctx.delivery = DeliverySettings(**settings)


@pytest.fixture
async def dispatchers(hub: Hub) -> AsyncIterator[Callable[..., Dispatcher]]:
    running: list[Dispatcher] = []

    def start(**options: Any) -> Dispatcher:
        options.setdefault("poll_seconds", 0.05)
        running.append(
            start_dispatcher(
                hub.ctx, standard_channels(hub.ctx, push_timeout=PUSH_TIMEOUT), **options
            )
        )
        return running[-1]

    yield start
    for dispatcher in running:
        await dispatcher.stop()


async def until(check: Callable[[], Any], seconds: float = 5.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


async def row(hub: Hub, delivery_id: str) -> Delivery:
    async with hub.ctx.store.read() as session:
        found = await session.get(Delivery, delivery_id)
        assert found is not None
        return found


def state_is(hub: Hub, delivery_id: str, *states: str) -> Callable[[], Any]:
    async def check() -> Delivery | None:
        found = await row(hub, delivery_id)
        return found if found.state in states else None

    return check


async def delivery_events(hub: Hub, delivery_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    from tracking.models import TraceEvent

    async with hub.ctx.store.read() as session:
        rows = (
            await session.execute(
                select(TraceEvent)
                .where(TraceEvent.delivery_id == delivery_id)
                .order_by(TraceEvent.seq)
            )
        ).scalars()
        return [(e.kind, e.actor, json.loads(e.detail)) for e in rows]


async def test_retries_through_refusal_500_and_timeout_then_delivers_signed_bytes(
    hub: Hub, receivers: Callable[..., Receiver], dispatchers: Callable[..., Dispatcher]
) -> None:
    receiver = receivers([500, "slow"])  # nothing listens on its port yet: connection refused
    push_to(hub, BA_DINH, receiver.url)
    body = signed_document(hub.world, document(CITY, (BA_DINH,)))
    answer = await (await hub.http.post("/v1/documents", data=body, headers=hub.as_(CITY))).json()
    (ref,) = answer["deliveries"]
    delivery_id = ref["delivery_id"]
    dispatchers()

    async def refused_once() -> bool:
        return (await row(hub, delivery_id)).last_error is not None

    await until(refused_once)
    await receiver.start()
    delivered = await until(state_is(hub, delivery_id, "delivered"))

    # Attempts made before the server was up were refused (at least one; more if a retry came
    # before it started), then: 500, too slow, 200.
    refused = delivered.attempts - 3
    assert refused >= 1 and delivered.next_attempt_at is None
    assert delivered.last_error is None and delivered.delivered_at is not None
    assert len(receiver.requests) == 3  # the refused attempt never reached it
    assert set(receiver.delivery_ids) == {delivery_id}  # the same id on every attempt
    for headers, received in receiver.requests:
        assert received == body  # byte for byte: the sender's signature stays verifiable
        assert headers["Lienthong-Kind"] == "document"
        assert headers["Content-Type"].startswith("application/xml")
        statement = verify_request(
            headers["Lienthong-Signature"],
            hub.world.hub.certificate,  # type: ignore[union-attr]
            body=received,
            delivery_id=delivery_id,
            recipient=BA_DINH,
        )
        assert statement["hub"] == "test-hub"

    events = await delivery_events(hub, delivery_id)
    failures = [d for k, _, d in events if k == "attempt_failed"]
    assert [f["attempt"] for f in failures] == list(range(1, refused + 3))
    assert all(f["error"].startswith("cannot connect") for f in failures[:refused])
    assert failures[-2]["error"] == "HTTP 500"
    assert failures[-1]["error"] == f"no answer within {PUSH_TIMEOUT:g} s"
    assert all(f["next_attempt_at"] and not f["permanent"] for f in failures)
    (done,) = [d for k, _, d in events if k == "delivered"]
    assert done["how"] == "pushed" and done["recipient"] == BA_DINH
    assert done["attempt"] == delivered.attempts

    trace = await (
        await hub.http.get(f"/v1/documents/{answer['document_id']}/trace", headers=hub.as_(CITY))
    ).json()
    assert_matches_openapi("Trace", trace)
    assert trace["recipients"][0]["transport"] == "delivered"


async def test_a_retrying_delivery_is_in_the_agencys_inbox_too(
    hub: Hub, receivers: Callable[..., Receiver], dispatchers: Callable[..., Dispatcher]
) -> None:
    receiver = receivers([503] * 50)
    await receiver.start()
    push_to(hub, BA_DINH, receiver.url, retry_base_ms=5000, retry_max_delay_seconds=10)
    (ref,) = (await hub.send(document(CITY, (BA_DINH,))))["deliveries"]
    dispatchers()
    retrying = await until(state_is(hub, ref["delivery_id"], "retrying"))
    assert retrying.last_error == "HTTP 503" and retrying.attempts == 1
    assert retrying.next_attempt_at is not None
    inbox = await (await hub.http.get("/v1/inbox", headers=hub.as_(BA_DINH))).json()
    assert_matches_openapi("Inbox", inbox)
    assert [(i["delivery_id"], i["state"]) for i in inbox["items"]] == [
        (ref["delivery_id"], "retrying")
    ]


async def test_pushes_go_out_most_urgent_first_then_oldest(
    hub: Hub, receivers: Callable[..., Receiver], dispatchers: Callable[..., Dispatcher]
) -> None:
    receiver = receivers()
    await receiver.start()
    push_to(hub, BA_DINH, receiver.url)
    order = {}
    for number, priority in (
        ("1", Priority.NORMAL),
        ("2", Priority.FLASH),
        ("3", Priority.VERY_URGENT),
        ("4", Priority.URGENT),
        ("5", Priority.FLASH_TIMED),
        ("6", Priority.FLASH),
    ):
        answer = await hub.send(document(CITY, (BA_DINH,), number=number, priority=priority))
        order[answer["deliveries"][0]["delivery_id"]] = number
    dispatchers(concurrency=1)

    async def all_pushed() -> bool:
        return len(receiver.requests) == 6

    await until(all_pushed)
    assert [order[i] for i in receiver.delivery_ids] == ["5", "2", "6", "3", "4", "1"]


async def test_intake_wakes_the_dispatcher_at_once(
    hub: Hub, receivers: Callable[..., Receiver], dispatchers: Callable[..., Dispatcher]
) -> None:
    receiver = receivers()
    await receiver.start()
    push_to(hub, BA_DINH, receiver.url)
    dispatchers(poll_seconds=30)  # only the doorbell can wake it in time
    await asyncio.sleep(0.1)
    started = time.monotonic()
    (ref,) = (await hub.send(document(CITY, (BA_DINH,))))["deliveries"]
    await until(state_is(hub, ref["delivery_id"], "delivered"), seconds=3)
    assert time.monotonic() - started < 3


async def test_pull_recipients_are_never_pushed(hub: Hub) -> None:
    answer = await hub.send(document(CITY, (BA_DINH, HOAN_KIEM)))
    for ref in answer["deliveries"]:
        assert (await row(hub, ref["delivery_id"])).next_attempt_at is None


async def test_dead_after_the_last_attempt_and_the_sender_is_told(
    hub: Hub,
    receivers: Callable[..., Receiver],
    dispatchers: Callable[..., Dispatcher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = receivers([503] * 10)
    await receiver.start()
    push_to(hub, BA_DINH, receiver.url, max_attempts=3)
    answer = await hub.send(document(CITY, (BA_DINH,)))
    delivery_id = answer["deliveries"][0]["delivery_id"]
    with caplog.at_level(logging.WARNING, logger="hub.dispatcher"):
        dispatchers()
        dead = await until(state_is(hub, delivery_id, "dead"))
    assert dead.attempts == 3 and dead.last_error == "HTTP 503" and dead.next_attempt_at is None
    assert len(receiver.requests) == 3

    events = await delivery_events(hub, delivery_id)
    kinds = [k for k, _, _ in events]
    assert kinds == ["queued", "attempt_failed", "attempt_failed", "attempt_failed", "dead"]
    alert = events[-1][2]
    assert alert["alert"] is True and alert["attempts"] == 3 and "max_attempts 3" in alert["reason"]
    (record,) = [r for r in caplog.records if r.getMessage().startswith("delivery dead")]
    assert record.levelno == logging.WARNING
    assert (record.delivery_id, record.recipient, record.attempts) == (  # type: ignore[attr-defined]
        delivery_id,
        BA_DINH,
        3,
    )

    inbox = await (await hub.http.get("/v1/inbox", headers=hub.as_(CITY))).json()
    assert_matches_openapi("Inbox", inbox)
    (notice,) = inbox["items"]
    assert notice["kind"] == "notice" and notice["document_id"] == answer["document_id"]
    assert notice["href"] == f"/v1/documents/{answer['document_id']}/trace"
    assert BA_DINH in notice["reason"] and delivery_id in notice["reason"]
    assert "3 attempts" in notice["reason"] and "HTTP 503" in notice["reason"]
    # The sender takes the notice out of its inbox like any delivery.
    ack = await hub.http.post(
        f"/v1/deliveries/{notice['delivery_id']}/ack",
        json={"result": "done"},
        headers=hub.as_(CITY),
    )
    assert ack.status == 200
    assert (await (await hub.http.get("/v1/inbox", headers=hub.as_(CITY))).json())["items"] == []


async def test_a_4xx_is_permanent(
    hub: Hub, receivers: Callable[..., Receiver], dispatchers: Callable[..., Dispatcher]
) -> None:
    receiver = receivers([422])
    await receiver.start()
    push_to(hub, BA_DINH, receiver.url)
    answer = await hub.send(document(CITY, (BA_DINH,)))
    delivery_id = answer["deliveries"][0]["delivery_id"]
    dispatchers()
    dead = await until(state_is(hub, delivery_id, "dead"))
    assert dead.attempts == 1 and len(receiver.requests) == 1
    failed = [d for k, _, d in await delivery_events(hub, delivery_id) if k == "attempt_failed"]
    assert failed[0]["permanent"] is True and failed[0]["error"].startswith("HTTP 422")
    (notice,) = (await (await hub.http.get("/v1/inbox", headers=hub.as_(CITY))).json())["items"]
    assert "refused" in notice["reason"]


@pytest.mark.parametrize("answer", [408, 429])
async def test_408_and_429_are_retried(
    hub: Hub,
    receivers: Callable[..., Receiver],
    dispatchers: Callable[..., Dispatcher],
    answer: int,
) -> None:
    receiver = receivers([answer])
    await receiver.start()
    push_to(hub, BA_DINH, receiver.url)
    (ref,) = (await hub.send(document(CITY, (BA_DINH,))))["deliveries"]
    dispatchers()
    delivered = await until(state_is(hub, ref["delivery_id"], "delivered"))
    assert delivered.attempts == 2


async def test_statuses_receipts_and_notices_are_pushed_to_a_push_sender(
    hub: Hub, receivers: Callable[..., Receiver], dispatchers: Callable[..., Dispatcher]
) -> None:
    city = receivers()
    await city.start()
    push_to(hub, CITY, city.url)
    doc = document(CITY, (BA_DINH,))
    answer = await hub.send(doc)
    dispatchers()
    assert (await hub.report(status(BA_DINH, doc, StatusCode.ARRIVED))).status == 202
    ack = await hub.http.post(
        f"/v1/deliveries/{answer['deliveries'][0]['delivery_id']}/ack",
        json={"result": "done"},
        headers=hub.as_(BA_DINH),
    )
    assert ack.status == 200

    async def both() -> bool:
        return len(city.requests) == 2

    await until(both)
    by_kind = {h["Lienthong-Kind"]: (h, b) for h, b in city.requests}
    headers, body = by_kind["status"]
    assert b"<edXML:StatusCode>01</edXML:StatusCode>" in body
    headers, body = by_kind["receipt"]
    assert headers["Content-Type"].startswith("application/json")
    signed = json.loads(body)
    assert_matches_openapi("SignedReceipt", signed)
    assert signed["kind"] == "delivery"
    verify_request(
        headers["Lienthong-Signature"],
        hub.world.hub.certificate,  # type: ignore[union-attr]
        body=body,
        delivery_id=headers["Lienthong-Delivery-Id"],
        recipient=CITY,
    )


async def test_an_attempt_cut_by_a_crash_is_made_again_after_restart(
    hub: Hub, receivers: Callable[..., Receiver], dispatchers: Callable[..., Dispatcher]
) -> None:
    receiver = receivers(["slow"])
    await receiver.start()
    push_to(hub, BA_DINH, receiver.url)
    (ref,) = (await hub.send(document(CITY, (BA_DINH,))))["deliveries"]
    delivery_id = ref["delivery_id"]
    first = dispatchers(claim_lease=dt_seconds(0.5))

    async def in_flight() -> bool:
        return len(receiver.requests) == 1

    await until(in_flight)
    await first.stop()  # the process dies in the middle of the attempt
    cut = await row(hub, delivery_id)
    assert cut.state == "queued" and cut.attempts == 1  # nothing recorded but the claim
    dispatchers(claim_lease=dt_seconds(0.5))  # the restarted hub
    delivered = await until(state_is(hub, delivery_id, "delivered"))
    assert delivered.attempts == 2
    assert receiver.delivery_ids == [delivery_id, delivery_id]


def dt_seconds(seconds: float) -> Any:
    import datetime as dt

    return dt.timedelta(seconds=seconds)


async def test_an_admin_resends_a_dead_delivery_under_the_same_id(
    hub: Hub, receivers: Callable[..., Receiver], dispatchers: Callable[..., Dispatcher]
) -> None:
    receiver = receivers([503, 503])
    await receiver.start()
    push_to(hub, BA_DINH, receiver.url, max_attempts=2)
    (ref,) = (await hub.send(document(CITY, (BA_DINH,))))["deliveries"]
    delivery_id = ref["delivery_id"]
    dispatchers()
    await until(state_is(hub, delivery_id, "dead"))
    url = f"/v1/deliveries/{delivery_id}/resend"

    for who in (BA_DINH, CITY, AUDITOR):  # agencies and auditors may not
        refused = await hub.http.post(url, headers=hub.as_(who))
        assert refused.status == 403
        problem = await refused.json()
        assert_matches_openapi("Problem", problem)
        assert problem["code"] == "forbidden"
    assert (await row(hub, delivery_id)).state == "dead"

    response = await hub.http.post(url, headers=hub.as_(ADMIN))
    assert response.status == 200, await response.text()
    answer = await response.json()
    assert_matches_openapi("OperatorDelivery", answer)
    assert answer["delivery_id"] == delivery_id and answer["attempts"] == 0
    delivered = await until(state_is(hub, delivery_id, "delivered"))
    assert delivered.attempts == 1  # counted again from the resend
    assert receiver.delivery_ids == [delivery_id] * 3

    events = await delivery_events(hub, delivery_id)
    (resent,) = [(actor, d) for k, actor, d in events if k == "resent"]
    assert resent[0] == ADMIN
    assert resent[1]["previous_state"] == "dead" and resent[1]["previous_attempts"] == 2
    assert resent[1]["via"] == "api" and resent[1]["last_error"] == "HTTP 503"
    assert [k for k, _, _ in events][-2:] == ["resent", "delivered"]

    missing = await hub.http.post("/v1/deliveries/nope/resend", headers=hub.as_(ADMIN))
    assert missing.status == 404


async def test_a_stored_delivery_is_not_resent(hub: Hub) -> None:
    (ref,) = (await hub.send(document(CITY, (BA_DINH,))))["deliveries"]
    await hub.http.post(
        f"/v1/deliveries/{ref['delivery_id']}/ack",
        json={"result": "done"},
        headers=hub.as_(BA_DINH),
    )
    refused = await hub.http.post(
        f"/v1/deliveries/{ref['delivery_id']}/resend", headers=hub.as_(ADMIN)
    )
    assert refused.status == 409
    assert (await refused.json())["code"] == "state.conflict"


async def test_a_failed_pull_delivery_comes_back_to_the_inbox_when_resent(hub: Hub) -> None:
    (ref,) = (await hub.send(document(CITY, (BA_DINH,))))["deliveries"]
    delivery_id = ref["delivery_id"]
    failed = await hub.http.post(
        f"/v1/deliveries/{delivery_id}/ack",
        json={"result": "fail", "reason": "ổ đĩa đầy"},
        headers=hub.as_(BA_DINH),
    )
    assert (await failed.json())["state"] == "failed"
    assert (await (await hub.http.get("/v1/inbox", headers=hub.as_(BA_DINH))).json())["items"] == []
    resent = await hub.http.post(f"/v1/deliveries/{delivery_id}/resend", headers=hub.as_(ADMIN))
    assert (await resent.json())["next_attempt_at"] is None  # a pull recipient: its inbox
    items = (await (await hub.http.get("/v1/inbox", headers=hub.as_(BA_DINH))).json())["items"]
    assert [(i["delivery_id"], i["state"]) for i in items] == [(delivery_id, "queued")]
    ack = await hub.http.post(
        f"/v1/deliveries/{delivery_id}/ack", json={"result": "done"}, headers=hub.as_(BA_DINH)
    )
    assert (await ack.json())["state"] == "done"


async def test_another_channel_plugs_in_by_delivery_mode(hub: Hub) -> None:
    """What a peer-hub channel does: register under its mode; the loop is unchanged."""
    from hub.dispatcher import Channels
    from hub.outbound import Outcome, Outgoing

    class Peer:
        def __init__(self) -> None:
            self.sent: list[Outgoing] = []

        async def send(self, outgoing: Outgoing) -> Outcome:
            self.sent.append(outgoing)
            return Outcome(delivered=True, detail="accepted", answer={"document_id": "far-1"})

    agencies = [
        dataclasses.replace(a, delivery="peer") if a.code == BA_DINH else a  # type: ignore[arg-type]
        for a in hub.ctx.directory
    ]
    hub.ctx.directory = Directory(agencies)
    peer = Peer()
    channels = Channels()
    channels.register("peer", peer, how="forwarded")
    dispatcher = Dispatcher(hub.ctx, channels)
    body = signed_document(hub.world, document(CITY, (BA_DINH,)))
    answer = await (await hub.http.post("/v1/documents", data=body, headers=hub.as_(CITY))).json()
    delivery_id = answer["deliveries"][0]["delivery_id"]
    assert await dispatcher.run_once() == 1
    (outgoing,) = peer.sent
    assert outgoing.body == body and outgoing.delivery_id == delivery_id
    assert outgoing.recipient == BA_DINH and outgoing.kind == "document"
    (delivered,) = [d for k, _, d in await delivery_events(hub, delivery_id) if k == "delivered"]
    assert delivered["how"] == "forwarded" and delivered["channel"] == "peer"
    assert delivered["far_side"] == {"document_id": "far-1"}
    assert await dispatcher.run_once() == 0


async def test_what_is_sent_about_one_document_arrives_in_the_order_it_was_queued(
    hub: Hub, receivers: Callable[..., Receiver]
) -> None:
    """Several statuses about one document due at once still go one at a time, oldest first: a
    receiver (or a peer hub) given 03 before 01 would refuse it as going backwards."""
    city = receivers()
    await city.start()
    push_to(hub, CITY, city.url)
    doc = document(CITY, (BA_DINH,))
    other = document(CITY, (HOAN_KIEM,), number="77")
    await hub.send(doc)
    await hub.send(other)
    for code in (StatusCode.ARRIVED, StatusCode.ACCEPTED, StatusCode.FINISHED):
        assert (await hub.report(status(BA_DINH, doc, code))).status == 202
    assert (await hub.report(status(HOAN_KIEM, other, StatusCode.ARRIVED))).status == 202
    dispatcher = Dispatcher(hub.ctx, standard_channels(hub.ctx, push_timeout=PUSH_TIMEOUT))
    rounds = []
    while made := await dispatcher.run_once():
        rounds.append(made)
    await dispatcher.channels.close()
    # The first round takes the head of each document's line (01 of one, 01 of the other).
    assert rounds == [2, 1, 1]
    codes = [
        body.split(b"<edXML:StatusCode>")[1][:2].decode()
        for _headers, body in city.requests
        if b"<edXML:StatusCode>" in body and b"77/UBND-VP" not in body
    ]
    assert codes == ["01", "03", "06"]
