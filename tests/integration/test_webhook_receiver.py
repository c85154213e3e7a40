"""The webhook receiver on loopback: a push the hub signed is handed over and answered 200 only
then; a forged, altered or misaddressed push gets 401, a package that does not verify 422, and
neither is handed over."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from adapters.base import Received
from adapters.sdk import Credentials
from adapters.sdk_adapter import SdkAdapter
from adapters.verify import PackageVerifier
from adapters.webhook import WebhookReceiver
from hub.edxml.model import DocumentPackage, StatusPackage
from hub.edxml.writer import write_document
from signing.push import DELIVERY_ID_HEADER, KIND_HEADER, SIGNATURE_HEADER, sign_request
from signing.xmldsig import sign_package
from tests.support import BA_DINH, CITY, World, document, make_cert, signed_document


@pytest.fixture
async def receiver(world: World, tmp_path: Path) -> AsyncIterator[tuple[str, list[str]]]:
    handed: list[str] = []

    async def on_document(doc: DocumentPackage, received: Received) -> None:
        handed.append(received.delivery_id)

    async def on_status(status: StatusPackage, received: Received) -> None:
        handed.append(received.delivery_id)

    assert world.hub is not None
    adapter = SdkAdapter(
        Credentials(BA_DINH, "unused"), on_document=on_document, on_status=on_status
    )
    verifier = PackageVerifier(world.trust_store())
    server = WebhookReceiver(
        adapter, agency=BA_DINH, hub_certificate=world.hub.certificate, verifier=verifier
    )
    port = await server.start("127.0.0.1", 0)
    yield f"http://127.0.0.1:{port}/lienthong/push", handed
    await server.stop()


def headers(
    world: World, body: bytes, *, delivery: str = "d-1", recipient: str = BA_DINH
) -> dict[str, str]:
    signature = sign_request(
        world.receipt_signer(),
        hub="test-hub",
        delivery_id=delivery,
        recipient=recipient,
        body=body,
        at=dt.datetime.now(dt.UTC),
    )
    return {SIGNATURE_HEADER: signature, DELIVERY_ID_HEADER: delivery, KIND_HEADER: "document"}


async def post(url: str, body: bytes, head: dict[str, str]) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=head) as answer:
        return answer.status, dict(await answer.json(content_type=None))


async def test_a_signed_push_is_handed_over_once_then_answered_200(
    world: World, receiver: tuple[str, list[str]]
) -> None:
    url, handed = receiver
    body = signed_document(world, document(CITY, (BA_DINH,)))
    assert (await post(url, body, headers(world, body)))[0] == 200
    assert (await post(url, body, headers(world, body)))[0] == 200  # the hub pushed again
    assert handed == ["d-1"]


async def test_forged_altered_or_misaddressed_pushes_are_refused_with_401(
    world: World, receiver: tuple[str, list[str]]
) -> None:
    url, handed = receiver
    body = signed_document(world, document(CITY, (BA_DINH,)))
    altered = body.replace(b"V/v", b"V/V", 1)
    for sent, head in (
        (altered, headers(world, body)),  # the body changed after the hub signed
        (body, headers(world, body, recipient=CITY)),  # meant for another agency
        (body, {**headers(world, body), DELIVERY_ID_HEADER: "d-2"}),  # another delivery
        (body, {**headers(world, body), SIGNATURE_HEADER: "e30.e30.AAAA"}),  # forged
    ):
        status, problem = await post(url, sent, head)
        assert status == 401, problem
        assert problem["code"] == "push.signature"
    assert (await post(url, body, {KIND_HEADER: "document"}))[0] == 400
    assert handed == []


async def test_a_package_whose_signature_does_not_verify_is_refused_with_422(
    world: World, receiver: tuple[str, list[str]]
) -> None:
    url, handed = receiver
    tampered = signed_document(world, document(CITY, (BA_DINH,))).replace(b"V/v", b"V/V", 1)
    status, problem = await post(url, tampered, headers(world, tampered))
    assert (status, problem["code"]) == (422, "signature.invalid")
    # Signed with a certificate that names the city but chains to no trusted anchor.
    outsider = make_cert(None, code=CITY)
    forged = sign_package(
        write_document(document(CITY, (BA_DINH,))), outsider.key_pem, outsider.cert_pem
    )
    status, problem = await post(url, forged, headers(world, forged))
    assert status == 422 and str(problem["code"]).startswith("certificate."), problem
    assert handed == []
