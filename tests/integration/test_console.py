"""The web console over HTTP: sign-in, sessions, CSRF, roles, and what each page shows.

A real aiohttp server on loopback with the API and the console mounted as ``lienthong serve``
mounts them, on SQLite and PostgreSQL; each signed-in person is a client with its own cookies.
The browser tests (tests/browser) drive the same pages in Chromium.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from hub.api import create_app
from hub.config import ConsoleSettings, deadline_settings
from hub.console import add_console
from hub.edxml.model import Priority
from tests.conftest import TEST_MAX_BODY
from tests.support import ADMIN, AUDITOR, BA_DINH, CITY, DEPT, HOAN_KIEM, Hub, document
from tracking.models import ConsoleSession, Delivery

Client = TestClient  # type: ignore[type-arg]
SignIn = Callable[[str], Awaitable[Client]]


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match[1]


@pytest.fixture
async def server(hub: Hub) -> AsyncIterator[TestServer]:
    app = create_app(hub.ctx, max_body_bytes=TEST_MAX_BODY)
    # Normal documents must be acknowledged within about a second, so "overdue" can be seen.
    windows = deadline_settings({}, {"LIENTHONG_DEADLINES_ACK_HOURS_THUONG": "0.0003"}).windows
    add_console(app, hub.ctx, ConsoleSettings(login_attempts=3), windows)
    async with TestServer(app) as running:
        yield running


@pytest.fixture
async def browser(server: TestServer) -> AsyncIterator[Callable[[], Awaitable[Client]]]:
    """New clients, each with its own cookie jar (one person each)."""
    clients: list[Client] = []

    async def new() -> Client:
        client = TestClient(server)
        await client.start_server()
        clients.append(client)
        return client

    yield new
    for client in clients:
        await client.close()


async def login(client: Client, credential: str) -> tuple[int, str]:
    form = await (await client.get("/console/login")).text()
    response = await client.post(
        "/console/login",
        data={"csrf": csrf_of(form), "credential": credential},
        allow_redirects=False,
    )
    return response.status, response.headers.get("Location", "") or await response.text()


@pytest.fixture
async def sign_in(hub: Hub, browser: Callable[[], Awaitable[Client]]) -> SignIn:
    async def as_(code: str) -> Client:
        client = await browser()
        status, where = await login(client, hub.world.accounts[code].token)
        assert status == 303, where
        return client

    return as_


async def test_sign_in_with_the_api_credential_then_out(
    hub: Hub, browser: Callable[[], Awaitable[Client]]
) -> None:
    client = await browser()
    first = await client.get("/console/documents", allow_redirects=False)
    assert (first.status, first.headers["Location"]) == (303, "/console/login")

    status, page = await login(client, "not-a-credential")
    assert status == 401 and "Mã xác thực không đúng." in page

    form = await (await client.get("/console/login")).text()
    response = await client.post(
        "/console/login",
        data={"csrf": csrf_of(form), "credential": hub.world.accounts[CITY].token},
        allow_redirects=False,
    )
    assert (response.status, response.headers["Location"]) == (303, "/console/documents")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    async with hub.ctx.store.read() as session:
        (row,) = (await session.execute(select(ConsoleSession))).scalars()
    assert row.account == CITY and row.id_sha256 not in cookie  # only the digest is stored

    documents = await client.get("/console/documents")
    assert documents.status == 200 and f"{CITY}" in await documents.text()
    out = await client.post(
        "/console/logout", data={"csrf": csrf_of(await documents.text())}, allow_redirects=False
    )
    assert out.status == 303
    again = await client.get("/console/documents", allow_redirects=False)
    assert again.status == 303
    async with hub.ctx.store.read() as session:
        assert (await session.execute(select(func.count(ConsoleSession.id_sha256)))).scalar() == 0


async def test_failed_sign_ins_are_throttled(
    hub: Hub, browser: Callable[[], Awaitable[Client]]
) -> None:
    client = await browser()
    for _ in range(3):
        assert (await login(client, "guess"))[0] == 401
    status, page = await login(client, hub.world.accounts[CITY].token)
    assert status == 429 and "Quá nhiều lần đăng nhập sai" in page


async def test_a_sign_in_without_the_form_token_is_refused(
    hub: Hub, browser: Callable[[], Awaitable[Client]]
) -> None:
    client = await browser()
    response = await client.post(
        "/console/login",
        data={"credential": hub.world.accounts[CITY].token},
        allow_redirects=False,
    )
    assert response.status == 403 and "CSRF" in await response.text()


async def dead_delivery(hub: Hub) -> str:
    receipt = await hub.send(document(CITY, (BA_DINH,), number="40"))
    delivery_id = str(receipt["deliveries"][0]["delivery_id"])
    async with hub.ctx.store.write() as session:
        row = await session.get(Delivery, delivery_id)
        assert row is not None
        row.state, row.attempts, row.last_error = "dead", 12, "HTTP 400"
    return delivery_id


async def state_of(hub: Hub, delivery_id: str) -> str:
    async with hub.ctx.store.read() as session:
        row = await session.get(Delivery, delivery_id)
        assert row is not None
        return row.state


async def test_only_an_admin_resends_and_only_with_the_form_token(
    hub: Hub, sign_in: SignIn
) -> None:
    delivery_id = await dead_delivery(hub)
    auditor = await sign_in(AUDITOR)
    listing = await (await auditor.get("/console/deliveries")).text()
    assert delivery_id in listing or "HTTP 400" in listing
    assert "/resend" not in listing  # no resend button for an auditor
    forged = await auditor.post(
        f"/console/deliveries/{delivery_id}/resend", data={"csrf": csrf_of(listing)}
    )
    assert forged.status == 403 and await state_of(hub, delivery_id) == "dead"
    assert ("rejected", AUDITOR) in [(kind, actor) for kind, actor, _ in await hub.events()]

    admin = await sign_in(ADMIN)
    page = await (await admin.get("/console/deliveries")).text()
    assert f"/console/deliveries/{delivery_id}/resend" in page
    no_token = await admin.post(f"/console/deliveries/{delivery_id}/resend", data={})
    wrong_token = await admin.post(
        f"/console/deliveries/{delivery_id}/resend", data={"csrf": csrf_of(listing)}
    )
    assert (no_token.status, wrong_token.status) == (403, 403)
    assert await state_of(hub, delivery_id) == "dead"

    done = await admin.post(
        f"/console/deliveries/{delivery_id}/resend", data={"csrf": csrf_of(page)}
    )
    assert done.status == 200 and "(trạng thái mới: queued)" in await done.text()
    assert await state_of(hub, delivery_id) == "queued"
    resent = [d for kind, actor, d in await hub.events() if kind == "resent"]
    assert resent == [
        {
            "recipient": BA_DINH,
            "kind": "document",
            "previous_state": "dead",
            "previous_attempts": 12,
            "via": "console",
            "last_error": "HTTP 400",
        }
    ]


async def test_an_agency_sees_its_own_documents_and_text_stays_text(
    hub: Hub, sign_in: SignIn
) -> None:
    mine = await hub.send(
        document(CITY, (BA_DINH,), number="41", subject="<script>alert(1)</script> & báo cáo")
    )
    other = await hub.send(document(DEPT, (HOAN_KIEM,), number="42"))
    ba_dinh = await sign_in(BA_DINH)
    page = await (await ba_dinh.get("/console/documents")).text()
    assert mine["document_id"] in page and other["document_id"] not in page
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp;" in page
    refused = await ba_dinh.get(f"/console/documents/{other['document_id']}")
    assert refused.status == 404
    filtered = await (await ba_dinh.get("/console/documents", params={"sender": DEPT})).text()
    assert mine["document_id"] not in filtered
    bad = await ba_dinh.get("/console/documents", params={"state": "lost"})
    assert bad.status == 400 and "state must be one of" in await bad.text()


async def test_the_timeline_marks_an_unacknowledged_recipient_overdue(
    hub: Hub, sign_in: SignIn
) -> None:
    sent = await hub.send(document(CITY, (BA_DINH, HOAN_KIEM), number="43"))
    ba_dinh = next(d for d in sent["deliveries"] if d["recipient"] == BA_DINH)
    ack = await hub.http.post(
        f"/v1/deliveries/{ba_dinh['delivery_id']}/ack",
        json={"result": "done"},
        headers=hub.as_(BA_DINH),
    )
    assert ack.status == 200
    await asyncio.sleep(1.2)  # past the one-second window of the test's [deadlines]
    city = await sign_in(CITY)
    page = await (await city.get(f"/console/documents/{sent['document_id']}")).text()
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert svg.count('class="tl-recipient"') == 2
    assert f"{HOAN_KIEM} ⚠ quá hạn" in svg and f"{BA_DINH} ⚠" not in svg
    assert svg.count("tl-mark tl-queued") == 2 and svg.count("tl-mark tl-done") == 1
    assert "UTC+7" in page


async def test_auditor_reads_are_recorded_and_the_chain_can_be_verified(
    hub: Hub, sign_in: SignIn
) -> None:
    sent = await hub.send(document(CITY, (BA_DINH,), number="44", priority=Priority.URGENT))
    auditor = await sign_in(AUDITOR)
    assert (await auditor.get(f"/console/documents/{sent['document_id']}")).status == 200
    reads = [d["what"] for kind, _, d in await hub.events() if kind == "audit_access"]
    assert reads == ["trace"]
    page = await (await auditor.get("/console/audit")).text()
    assert "Chưa có mốc ký nào." in page
    await auditor.post("/console/audit/verify", data={"csrf": csrf_of(page)})
    for _ in range(50):
        page = await (await auditor.get("/console/audit")).text()
        if 'id="verify-status" class' in page or "Chuỗi nguyên vẹn" in page:
            break
        await asyncio.sleep(0.1)
    assert "Chuỗi nguyên vẹn" in page


async def test_english_on_request_and_remembered(hub: Hub, sign_in: SignIn) -> None:
    city = await sign_in(CITY)
    english = await city.get("/console/stats", params={"lang": "en"})
    assert "Per-agency statistics" in await english.text()
    assert "lienthong_lang=en" in english.headers["Set-Cookie"]
    later = await (await city.get("/console/agencies")).text()
    assert "Agency directory" in later and 'lang="en"' in later
