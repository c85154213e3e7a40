"""The SDK's retries against a real HTTP server on loopback: transient answers are retried
with the same bytes, a hub that says when to come back is not hammered."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.sdk import HubClient, HubError


class Flaky:
    """Answers the first *failures* calls with *status* (and *retry_after*), then 202."""

    def __init__(self, failures: int, status: int, retry_after: str | None = None) -> None:
        self.failures, self.status, self.retry_after = failures, status, retry_after
        self.bodies: list[bytes] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.read())
        if len(self.bodies) <= self.failures:
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return web.json_response(
                {"code": "hub.maintenance", "detail": "later"}, status=self.status, headers=headers
            )
        return web.json_response({"document_id": "d-1"}, status=202)


@pytest.fixture
async def serve() -> AsyncIterator[object]:
    servers: list[TestServer] = []

    async def start(flaky: Flaky) -> str:
        app = web.Application()
        app.router.add_post("/v1/documents", flaky.handle)
        server = TestServer(app)
        await server.start_server()
        servers.append(server)
        return f"http://{server.host}:{server.port}"

    yield start
    for server in servers:
        await server.close()


async def test_a_transient_answer_is_retried_with_the_same_bytes(serve) -> None:  # type: ignore[no-untyped-def]
    flaky = Flaky(failures=2, status=503)
    async with HubClient(await serve(flaky), "t", backoff=0.01) as hub:
        assert await hub.send_document(b"<edXML/>") == {"document_id": "d-1"}
    assert flaky.bodies == [b"<edXML/>"] * 3


async def test_a_short_retry_after_is_honoured_and_retried(serve) -> None:  # type: ignore[no-untyped-def]
    flaky = Flaky(failures=1, status=503, retry_after="1")
    async with HubClient(await serve(flaky), "t", backoff=0.01) as hub:
        assert await hub.send_document(b"<edXML/>") == {"document_id": "d-1"}
    assert len(flaky.bodies) == 2


async def test_maintenance_with_a_long_retry_after_is_left_to_the_caller(serve) -> None:  # type: ignore[no-untyped-def]
    flaky = Flaky(failures=5, status=503, retry_after="300")
    async with HubClient(await serve(flaky), "t", backoff=0.01) as hub:
        with pytest.raises(HubError) as caught:
            await hub.send_document(b"<edXML/>")
    assert caught.value.code == "hub.maintenance" and caught.value.retry_after == 300
    assert len(flaky.bodies) == 1  # asked once, not hammered while the hub is in maintenance
