"""Federation over HTTP: a city hub and a national hub, each a real aiohttp server on loopback.

The city hub serves the Hà Nội agencies of the test world; the national hub serves the
Government Office (000.00.00.G22) and a ministry (000.00.00.G12). Each has the other's
account (``role = "hub"``) and the other's agencies' certificates (``via``), and forwards to the
other with the credential the other issued it. Forwarding is driven one dispatcher round at a
time (``Dispatcher.run_once`` with the peer channel) so every step can be looked at.

The city hub runs on SQLite and on PostgreSQL (``hub_db_url``); the national hub on its own
SQLite file.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from hub.api import create_app
from hub.config import PeerConfig, credential_digest
from hub.context import HubContext
from hub.directory import Agency, Directory, sync_directory
from hub.dispatcher import Channels, Dispatcher
from hub.edxml.model import StatusCode
from hub.edxml.writer import write_document, write_status
from hub.federation import PeerChannel, PeerRouter, peer_routes
from hub.national import Entry, NationalDirectory
from hub.outbound import Outgoing
from signing.pki import issue_agency_certificate
from signing.receipts import verify_receipt
from tests.conftest import TEST_MAX_BODY
from tests.support import (
    AUDITOR,
    BA_DINH,
    CITY,
    GOV_OFFICE,
    PHUC_XA,
    Account,
    World,
    assert_matches_openapi,
    document,
    signed_document,
    status,
)
from tracking.migrate import upgrade
from tracking.models import Agency as AgencyRow
from tracking.models import Delivery
from tracking.store import Store

MINISTRY = "000.00.00.G12"  # listed at the national hub only: the city routes it by pattern
NATIONAL = "truc.quocgia"  # the national hub's account at the city, and its [[peer]] name there
CITY_HUB = "lienthong.hanoi"  # the city hub's account at the national hub, and its peer name
LOCAL_AT_CITY = (CITY, BA_DINH, PHUC_XA)
LOCAL_AT_NATIONAL = (GOV_OFFICE, MINISTRY)


@dataclass
class FedHub:
    name: str
    ctx: HubContext
    http: TestClient  # type: ignore[type-arg]
    server: TestServer
    accounts: dict[str, Account]
    router: PeerRouter | None = None

    @property
    def url(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"

    def as_(self, code: str) -> dict[str, str]:
        return self.accounts[code].headers

    async def forward(self) -> int:
        assert self.router is not None
        channels = Channels()
        channels.register("peer", self.router, how="forwarded")
        return await Dispatcher(self.ctx, channels).run_once()

    async def forward_all(self) -> int:
        """Dispatcher rounds until one forwards nothing: what is sent about one document goes
        one at a time, in order, so several packages about it take several rounds."""
        total = 0
        while made := await self.forward():
            total += made
        return total

    async def deliveries(self, **where: Any) -> list[Delivery]:
        async with self.ctx.store.read() as session:
            query = select(Delivery).filter_by(**where).order_by(Delivery.created_at)
            return list((await session.execute(query)).scalars())

    async def trace(self, document_id: str, as_: str) -> dict[str, Any]:
        response = await self.http.get(f"/v1/documents/{document_id}/trace", headers=self.as_(as_))
        assert response.status == 200, await response.text()
        body = dict(await response.json())
        assert_matches_openapi("Trace", body)
        return body


@pytest.fixture(scope="module")
def ministry(world: World) -> Account:
    issued = issue_agency_certificate(world.ca, code=MINISTRY, name="Bộ Tài chính")
    return Account(MINISTRY, secrets.token_urlsafe(32), issued)


@pytest.fixture
def national_db_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'national.db'}"
    upgrade(url)
    return url


def _agency(account: Account, *, via: str = "") -> Agency:
    assert account.issued is not None
    return Agency(
        code=account.code,
        name=f"Agency {account.code}",
        role="agency",
        delivery="peer" if via else "pull",
        certificates=(account.issued.certificate,),
        # An agency reached through a peer hub has no credential here.
        credential_sha256="" if via else credential_digest(account.token),
        via=via,
    )


def _hub_account(code: str, token: str, serves: tuple[str, ...]) -> Agency:
    return Agency(
        code=code,
        name=f"Hub {code}",
        role="hub",
        credential_sha256=credential_digest(token),
        serves=serves,
    )


async def _start(
    world: World,
    name: str,
    db_url: str,
    directory: Directory,
    accounts: dict[str, Account],
    peers: tuple[PeerConfig, ...],
) -> FedHub:
    store = Store.open(db_url)
    async with store.write() as session:
        await sync_directory(session, directory)
    ctx = HubContext(
        hub_id=name,
        store=store,
        directory=directory,
        trust=world.trust_store(),
        receipts=world.receipt_signer(),
        peers=peer_routes(peers),
    )
    server = TestServer(create_app(ctx, max_body_bytes=TEST_MAX_BODY))
    http = TestClient(server)
    await http.start_server()
    return FedHub(name, ctx, http, server, accounts)


@pytest.fixture
async def pair(
    world: World, ministry: Account, hub_db_url: str, national_db_url: str
) -> AsyncIterator[tuple[FedHub, FedHub]]:
    """(city, national), each serving, each able to forward to the other."""
    national_at_city = secrets.token_urlsafe(32)  # what the city issued the national hub
    city_at_national = secrets.token_urlsafe(32)  # what the national hub issued the city
    accounts = {**world.accounts, MINISTRY: ministry}

    city_dir = Directory(
        [
            *(_agency(accounts[c]) for c in LOCAL_AT_CITY),
            _agency(accounts[GOV_OFFICE], via=NATIONAL),  # its certificate: statuses come back
            _hub_account(NATIONAL, national_at_city, ("*.*.*.G*",)),
            Agency(
                AUDITOR,
                "Auditor",
                "auditor",
                credential_sha256=credential_digest(accounts[AUDITOR].token),
            ),
        ]
    )
    national_dir = Directory(
        [
            *(_agency(accounts[c]) for c in LOCAL_AT_NATIONAL),
            *(_agency(accounts[c], via=CITY_HUB) for c in LOCAL_AT_CITY),
            _hub_account(CITY_HUB, city_at_national, ("*.*.*.H26",)),
        ]
    )
    # Routes only (no default): codes under G go to the national hub, anything else unknown.
    city_peer = PeerConfig(NATIONAL, "http://unset", city_at_national, ("*.*.*.G*",))
    national_peer = PeerConfig(CITY_HUB, "http://unset", national_at_city, ("*.*.*.H26",))
    city_accounts = {**accounts, NATIONAL: Account(NATIONAL, national_at_city)}
    national_accounts = {**accounts, CITY_HUB: Account(CITY_HUB, city_at_national)}
    city = await _start(world, "hub.city", hub_db_url, city_dir, city_accounts, (city_peer,))
    national = await _start(
        world, "hub.national", national_db_url, national_dir, national_accounts, (national_peer,)
    )
    city.router = PeerRouter(
        city_dir, [PeerConfig(NATIONAL, national.url, city_at_national, ("*.*.*.G*",))]
    )
    national.router = PeerRouter(
        national_dir, [PeerConfig(CITY_HUB, city.url, national_at_city, ("*.*.*.H26",))]
    )
    try:
        yield city, national
    finally:
        for hub in (city, national):
            assert hub.router is not None
            await hub.router.close()
            await hub.http.close()
            await hub.ctx.store.close()


async def _send(hub: FedHub, sender: str, recipients: tuple[str, ...], number: str) -> Any:
    doc = document(sender, recipients, number=number)
    body = hub.accounts[sender].sign(write_document(doc))
    response = await hub.http.post("/v1/documents", data=body, headers=hub.as_(sender))
    return doc, body, response


def _events(trace: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in trace["events"] if e["kind"] == kind]


def _forwarded(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """Hand-overs to a peer hub: ``delivered`` events with ``how: "forwarded"``."""
    return [e for e in _events(trace, "delivered") if e["detail"].get("how") == "forwarded"]


async def test_a_document_for_a_g_code_is_forwarded_byte_for_byte(
    pair: tuple[FedHub, FedHub],
) -> None:
    city, national = pair
    _doc, body, response = await _send(city, PHUC_XA, (GOV_OFFICE, BA_DINH), "101")
    assert response.status == 202, await response.text()
    receipt = await response.json()
    assert_matches_openapi("Receipt", receipt)
    (remote,) = await city.deliveries(recipient_code=GOV_OFFICE)
    assert remote.state == "queued" and remote.next_attempt_at is not None

    trace = await city.trace(receipt["document_id"], PHUC_XA)
    queued = {e["detail"]["recipient"]: e["detail"] for e in _events(trace, "queued")}
    assert queued[GOV_OFFICE]["mode"] == "peer" and queued[GOV_OFFICE]["via"] == NATIONAL
    assert queued[BA_DINH]["mode"] == "pull" and "via" not in queued[BA_DINH]

    assert await city.forward() == 1
    assert await city.forward() == 0  # nothing due twice
    (remote,) = await city.deliveries(recipient_code=GOV_OFFICE)
    assert remote.state == "delivered" and remote.attempts == 1

    # At the national hub: the very bytes the ward signed, verifiable with its certificate.
    inbox = await (await national.http.get("/v1/inbox", headers=national.as_(GOV_OFFICE))).json()
    (item,) = inbox["items"]
    assert item["sender"] == PHUC_XA
    fetched = await (await national.http.get(item["href"], headers=national.as_(GOV_OFFICE))).read()
    assert hashlib.sha256(fetched).hexdigest() == hashlib.sha256(body).hexdigest()
    assert item["package_sha256"] == receipt["receipt"]["package_sha256"]
    # Ba Đình is the city's own: the national hub leaves it to the hub that relayed the package.
    assert await national.deliveries(recipient_code=BA_DINH) == []
    national_trace = await national.trace(item["document_id"], GOV_OFFICE)
    (received,) = _events(national_trace, "received")
    assert received["actor"] == PHUC_XA and received["detail"]["via"] == CITY_HUB

    # The city's trace records the peer's receipt, signed by the national hub.
    trace = await city.trace(receipt["document_id"], PHUC_XA)
    (forwarded,) = _forwarded(trace)
    detail = forwarded["detail"]
    assert detail["recipient"] == GOV_OFFICE and detail["channel"] == "peer"
    assert detail["answer"] == f"HTTP 202 from {NATIONAL}"
    answer = detail["far_side"]  # the national hub's 202 answer, as it gave it
    assert answer["document_id"] == item["document_id"] and answer["duplicate"] is False
    # The peer's own digest of the bytes it received is the sender's.
    assert answer["receipt"]["package_sha256"] == receipt["receipt"]["package_sha256"]
    assert_matches_openapi("Receipt", answer)
    signed = verify_receipt(answer["signed_receipt"]["jws"], city.ctx.receipt_signer.certificate)
    assert signed.payload["hub"] == "hub.national"
    assert signed.payload["package_sha256"] == receipt["receipt"]["package_sha256"]
    (recipient,) = [r for r in trace["recipients"] if r["recipient"] == GOV_OFFICE]
    assert recipient["transport"] == "delivered"


async def test_statuses_reported_at_the_peer_come_back_to_the_sender(
    pair: tuple[FedHub, FedHub],
) -> None:
    city, national = pair
    doc, _, response = await _send(city, PHUC_XA, (GOV_OFFICE,), "102")
    receipt = await response.json()
    await city.forward()

    for code, text in (
        (StatusCode.ARRIVED, ""),
        (StatusCode.ACCEPTED, "Đã vào sổ"),
        (StatusCode.FINISHED, "Hoàn thành"),
    ):
        pkg = national.accounts[GOV_OFFICE].sign(write_status(status(GOV_OFFICE, doc, code, text)))
        answer = await national.http.post("/v1/status", data=pkg, headers=national.as_(GOV_OFFICE))
        assert answer.status == 202, await answer.text()
        assert (await answer.json())["delivery"]["recipient"] == PHUC_XA
    assert await national.forward_all() == 3
    relayed = await national.deliveries(kind="status")
    assert [d.state for d in relayed] == ["delivered"] * 3

    inbox = await (await city.http.get("/v1/inbox", headers=city.as_(PHUC_XA))).json()
    statuses = [i for i in inbox["items"] if i["kind"] == "status"]
    assert [i["status_code"] for i in statuses] == ["01", "03", "06"]
    assert all(i["reporter"] == GOV_OFFICE for i in statuses)
    trace = await city.trace(receipt["document_id"], PHUC_XA)
    reported = _events(trace, "status")
    assert [e["detail"]["code"] for e in reported] == ["01", "03", "06"]
    assert all(e["actor"] == GOV_OFFICE and e["detail"]["via"] == NATIONAL for e in reported)
    (recipient,) = trace["recipients"]
    assert recipient["business"] == "06"

    # A relayed status the city already has (the national hub retrying) is a duplicate, not new.
    pkg = national.accounts[GOV_OFFICE].sign(
        write_status(status(GOV_OFFICE, doc, StatusCode.FINISHED, "Hoàn thành"))
    )
    again = await city.http.post("/v1/status", data=pkg, headers=city.as_(NATIONAL))
    assert again.status == 202 and (await again.json())["duplicate"] is True
    inbox = await (await city.http.get("/v1/inbox", headers=city.as_(PHUC_XA))).json()
    assert len([i for i in inbox["items"] if i["kind"] == "status"]) == 3


async def test_a_code_matched_only_by_a_pattern_gets_a_remote_row(
    pair: tuple[FedHub, FedHub],
) -> None:
    city, national = pair
    _, body, response = await _send(city, PHUC_XA, (MINISTRY,), "103")
    assert response.status == 202, await response.text()
    async with city.ctx.store.read() as session:
        row = await session.get(AgencyRow, MINISTRY)
    assert row is not None and row.role == "remote" and row.delivery_mode == "peer"
    await city.forward()
    inbox = await (await national.http.get("/v1/inbox", headers=national.as_(MINISTRY))).json()
    (item,) = inbox["items"]
    assert item["package_sha256"] == hashlib.sha256(body).hexdigest()


async def test_a_code_no_peer_routes_is_refused_and_nothing_is_stored(
    pair: tuple[FedHub, FedHub],
) -> None:
    city, _ = pair
    _, _, response = await _send(city, PHUC_XA, (BA_DINH, "000.00.00.H49"), "104")
    assert response.status == 422
    problem = await response.json()
    assert problem["code"] == "recipient.unknown"
    assert "000.00.00.H49" in problem["detail"] and "no peer hub routes it" in problem["detail"]
    assert await city.deliveries() == []


async def test_with_the_national_directory_a_code_that_does_not_exist_is_refused_at_once(
    pair: tuple[FedHub, FedHub],
) -> None:
    city, _national = pair
    # The city imported the national directory: 000.00.00.G99 is not in it, so the city
    # refuses it while the sender is still on the line, instead of forwarding it to the
    # national hub, which would refuse it later (the delivery dead, the sender told then).
    city.ctx.national = NationalDirectory(
        [Entry(GOV_OFFICE, "Văn phòng Chính phủ", ""), Entry(MINISTRY, "Bộ Tài chính", "")]
    )
    _, _, response = await _send(city, PHUC_XA, ("000.00.00.G99",), "121")
    assert response.status == 422
    problem = await response.json()
    assert problem["code"] == "recipient.unknown"
    assert "000.00.00.G99 is not in the national agency directory" in problem["detail"]
    assert await city.deliveries() == []
    # A code in it is routed as before, and the city's own agencies need no entry in it.
    _, _, response = await _send(city, PHUC_XA, (MINISTRY, BA_DINH), "122")
    assert response.status == 202, await response.text()
    queued = {d.recipient_code: d for d in await city.deliveries()}
    assert set(queued) == {MINISTRY, BA_DINH}
    await city.forward()
    (remote,) = await city.deliveries(recipient_code=MINISTRY)
    assert remote.state == "delivered"


async def _relay(hub: FedHub, as_hub: str, body: bytes, path: str = "/v1/documents") -> Any:
    response = await hub.http.post(path, data=body, headers=hub.as_(as_hub))
    return response.status, await response.json()


async def test_a_peer_may_not_send_for_an_agency_it_does_not_serve(
    pair: tuple[FedHub, FedHub], world: World
) -> None:
    city, _ = pair
    # A city agency's own valid package, relayed by the national hub's account: refused, since
    # no pattern lets a peer speak for a local agency (its serves pattern does not match either).
    body = signed_document(world, document(CITY, (BA_DINH,), number="105"))
    code, problem = await _relay(city, NATIONAL, body)
    assert (code, problem["code"]) == (403, "sender.mismatch")
    assert NATIONAL in problem["detail"] and CITY in problem["detail"]
    # A code outside its patterns.
    other = document("000.00.00.H49", (BA_DINH,), number="106")
    body = city.accounts[BA_DINH].sign(write_document(other))
    code, problem = await _relay(city, NATIONAL, body)
    assert (code, problem["code"]) == (403, "sender.mismatch")
    # A status in a local agency's name is refused the same way.
    pkg = world.accounts[BA_DINH].sign(
        write_status(status(BA_DINH, document(CITY, (BA_DINH,)), StatusCode.ARRIVED))
    )
    code, problem = await _relay(city, NATIONAL, pkg, "/v1/status")
    assert (code, problem["code"]) == (403, "sender.mismatch")
    assert await city.deliveries() == []


async def test_a_peer_cannot_pass_off_one_agencys_package_as_anothers(
    pair: tuple[FedHub, FedHub], ministry: Account
) -> None:
    city, _ = pair
    # From says the Government Office (which the national hub serves), signed with the
    # ministry's valid key: the signature is checked against the Government Office's own
    # registered certificate, so it is refused.
    forged = ministry.sign(write_document(document(GOV_OFFICE, (BA_DINH,), number="107")))
    code, problem = await _relay(city, NATIONAL, forged)
    assert (code, problem["code"]) == (422, "signature.untrusted")
    # The ministry matches the serves pattern but has no certificate registered at the city.
    own = ministry.sign(write_document(document(MINISTRY, (BA_DINH,), number="108")))
    code, problem = await _relay(city, NATIONAL, own)
    assert (code, problem["code"]) == (422, "signature.untrusted")
    assert "via = truc.quocgia" in problem["detail"]
    assert await city.deliveries() == []


async def test_a_peer_sends_for_its_agencies_but_reads_nothing(
    pair: tuple[FedHub, FedHub], world: World
) -> None:
    city, _ = pair
    body = signed_document(world, document(GOV_OFFICE, (BA_DINH, MINISTRY), number="109"))
    # A code it serves among the recipients is left to it; a copy back to it would loop.
    response = await city.http.post("/v1/documents", data=body, headers=city.as_(NATIONAL))
    assert response.status == 202, await response.text()
    receipt = await response.json()
    assert [d["recipient"] for d in receipt["deliveries"]] == [BA_DINH]
    # The same bytes again (the peer retrying) are the same answer.
    again = await city.http.post("/v1/documents", data=body, headers=city.as_(NATIONAL))
    assert (await again.json())["duplicate"] is True
    # A hub account reads no package and no trace.
    for path in (
        f"/v1/documents/{receipt['document_id']}",
        f"/v1/documents/{receipt['document_id']}/trace",
    ):
        assert (await city.http.get(path, headers=city.as_(NATIONAL))).status == 404
    inbox = await (await city.http.get("/v1/inbox", headers=city.as_(BA_DINH))).json()
    (item,) = inbox["items"]
    assert item["sender"] == GOV_OFFICE
    # Ba Đình acknowledges: the delivery receipt stays at the city (the sender has no inbox
    # here), so nothing is queued for the remote sender.
    ack = await city.http.post(
        f"/v1/deliveries/{item['delivery_id']}/ack",
        json={"result": "done"},
        headers=city.as_(BA_DINH),
    )
    assert ack.status == 200
    assert await city.deliveries(recipient_code=GOV_OFFICE) == []


# --- the channel itself, against a fake peer on loopback ---------------------------------------


@dataclass
class FakePeer:
    """A real HTTP server on loopback answering what each test tells it to."""

    status: int
    body: dict[str, Any]
    seen: list[tuple[str, str, bytes]]


@pytest.fixture
async def fake_peer() -> AsyncIterator[tuple[FakePeer, str]]:
    peer = FakePeer(202, {"document_id": "d", "duplicate": False}, [])

    async def handler(request: web.Request) -> web.Response:
        peer.seen.append((request.path, request.headers["Authorization"], await request.read()))
        return web.json_response(peer.body, status=peer.status)

    app = web.Application()
    app.router.add_post("/v1/{what}", handler)
    server = TestServer(app)
    await server.start_server()
    yield peer, f"http://{server.host}:{server.port}"
    await server.close()


def _outgoing(kind: str = "document") -> Outgoing:
    body = b"<edXML/>"
    return Outgoing("dl-1", kind, "doc-1", GOV_OFFICE, 0, body, hashlib.sha256(body).hexdigest())


@pytest.mark.parametrize(
    ("status", "delivered", "permanent"),
    [
        (202, True, False),
        (200, True, False),
        (503, False, False),
        (500, False, False),
        (408, False, False),
        (429, False, False),
        (400, False, True),
        (401, False, True),
        (403, False, True),
        (422, False, True),
    ],
)
async def test_peer_answers_decide_the_outcome(
    fake_peer: tuple[FakePeer, str], status: int, delivered: bool, permanent: bool
) -> None:
    peer, url = fake_peer
    peer.status = status
    if status >= 400:
        peer.body = {"code": "sender.mismatch", "detail": "nope"}
    channel = PeerChannel(PeerConfig("p", url, "tok"))
    try:
        outcome = await channel.send(_outgoing())
    finally:
        await channel.close()
    assert (outcome.delivered, outcome.permanent) == (delivered, permanent)
    assert peer.seen == [("/v1/documents", "Bearer tok", b"<edXML/>")]
    if delivered:
        assert outcome.answer == peer.body
    else:
        assert f"HTTP {status}" in outcome.detail and outcome.answer == {}


async def test_statuses_go_to_the_status_endpoint_and_duplicates_count_as_delivered(
    fake_peer: tuple[FakePeer, str],
) -> None:
    peer, url = fake_peer
    peer.body = {"status_id": "s", "duplicate": True}
    channel = PeerChannel(PeerConfig("p", url, "tok"))
    try:
        outcome = await channel.send(_outgoing("status"))
        receipt = await channel.send(_outgoing("receipt"))
    finally:
        await channel.close()
    assert outcome.delivered and "already had it" in outcome.detail
    assert [path for path, _, _ in peer.seen] == ["/v1/status"]
    assert not receipt.delivered and receipt.permanent  # a hub's own receipt is never forwarded


async def test_an_unreachable_peer_is_retried_later(
    pair: tuple[FedHub, FedHub], unused_tcp_port: int
) -> None:
    city, _ = pair
    city.router = PeerRouter(
        city.ctx.directory,
        [PeerConfig(NATIONAL, f"http://127.0.0.1:{unused_tcp_port}", "tok", ("*.*.*.G*",))],
        timeout_seconds=5,
    )
    _, _, response = await _send(city, PHUC_XA, (GOV_OFFICE,), "110")
    receipt = await response.json()
    assert await city.forward() == 1
    (remote,) = await city.deliveries(recipient_code=GOV_OFFICE)
    assert remote.state == "retrying" and remote.attempts == 1 and remote.last_error
    assert remote.next_attempt_at is not None
    trace = await city.trace(receipt["document_id"], PHUC_XA)
    (failed,) = _events(trace, "attempt_failed")
    assert failed["detail"]["channel"] == "peer" and "next_attempt_at" in failed["detail"]
    assert NATIONAL in failed["detail"]["error"] and failed["detail"]["permanent"] is False
    assert await city.forward() == 0  # not due yet


async def test_a_peer_refusing_the_package_gives_up_at_once(
    pair: tuple[FedHub, FedHub],
) -> None:
    city, _national = pair
    # The national hub does not know 000.00.00.G99: the city routes it there by pattern, and
    # the national hub refuses it (422 recipient.unknown): no retry can help.
    _, _, response = await _send(city, PHUC_XA, ("000.00.00.G99",), "111")
    receipt = await response.json()
    await city.forward()
    (remote,) = await city.deliveries(recipient_code="000.00.00.G99")
    assert remote.state == "dead"
    trace = await city.trace(receipt["document_id"], PHUC_XA)
    (failed,) = _events(trace, "attempt_failed")
    assert "recipient.unknown" in failed["detail"]["error"] and failed["detail"]["permanent"]
    (dead,) = _events(trace, "dead")
    assert "refused" in dead["detail"]["reason"]
    assert json.dumps(trace)  # the trace stays plain JSON


async def test_a_lost_answer_is_retried_and_the_peers_duplicate_counts_as_delivered(
    pair: tuple[FedHub, FedHub],
) -> None:
    city, national = pair
    _, _, response = await _send(city, PHUC_XA, (GOV_OFFICE,), "112")
    receipt = await response.json()
    await city.forward()
    # As if the national hub's answer had been lost: the delivery is due again.
    async with city.ctx.store.write() as session:
        (remote,) = (
            await session.execute(select(Delivery).filter_by(recipient_code=GOV_OFFICE))
        ).scalars()
        remote.state, remote.next_attempt_at = "retrying", remote.created_at
    assert await city.forward() == 1
    (remote,) = await city.deliveries(recipient_code=GOV_OFFICE)
    assert remote.state == "delivered" and remote.attempts == 2
    first, second = _forwarded(await city.trace(receipt["document_id"], PHUC_XA))
    assert second["detail"]["far_side"]["duplicate"] is True
    assert second["detail"]["far_side"]["document_id"] == first["detail"]["far_side"]["document_id"]
    assert "already had it" in second["detail"]["answer"]
    # Stored once at the national hub.
    assert len(await national.deliveries(recipient_code=GOV_OFFICE)) == 1


async def test_a_recall_from_a_remote_sender_reaches_the_local_recipient(
    pair: tuple[FedHub, FedHub], world: World
) -> None:
    city, _ = pair
    doc = document(GOV_OFFICE, (BA_DINH,), number="113")
    body = signed_document(world, doc)
    assert (await city.http.post("/v1/documents", data=body, headers=city.as_(NATIONAL))).ok
    recall = world.accounts[GOV_OFFICE].sign(
        write_status(status(GOV_OFFICE, doc, StatusCode.RECALL_REQUEST, "Gửi nhầm", about=BA_DINH))
    )
    code, answer = await _relay(city, NATIONAL, recall, "/v1/status")
    assert code == 202 and answer["delivery"]["recipient"] == BA_DINH
    inbox = await (await city.http.get("/v1/inbox", headers=city.as_(BA_DINH))).json()
    assert [i["status_code"] for i in inbox["items"] if i["kind"] == "status"] == ["13"]
    # Ba Đình agrees; its 15 goes back to the Government Office, through the national hub.
    agreed = world.accounts[BA_DINH].sign(
        write_status(status(BA_DINH, doc, StatusCode.RECALL_AGREED))
    )
    response = await city.http.post("/v1/status", data=agreed, headers=city.as_(BA_DINH))
    assert response.status == 202, await response.text()
    (back,) = await city.deliveries(recipient_code=GOV_OFFICE, kind="status")
    assert back.next_attempt_at is not None  # due for forwarding
