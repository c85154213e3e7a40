"""Push, the pure parts: how an HTTP answer is judged, the request signature, notice texts,
the dispatcher's doorbell."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib

import pytest

from hub.notices import REASON_MAX, undelivered
from hub.notify import Doorbell
from hub.outbound import first_attempt_at
from hub.push import judge
from signing.pki import issue_hub_certificate, new_ca
from signing.push import PushSignatureError, sign_request, verify_request
from signing.receipts import ReceiptSigner

NOW = dt.datetime(2026, 12, 2, 8, 0, tzinfo=dt.UTC)
BODY = b"<edXML>...</edXML>"


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_delivered(status: int) -> None:
    assert judge(status).delivered


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_408_429_and_5xx_are_worth_another_attempt(status: int) -> None:
    outcome = judge(status)
    assert not outcome.delivered and not outcome.permanent
    assert outcome.detail == f"HTTP {status}"


@pytest.mark.parametrize("status", [301, 302, 400, 401, 403, 404, 409, 413, 415, 422])
def test_other_answers_are_permanent(status: int) -> None:
    outcome = judge(status)
    assert not outcome.delivered and outcome.permanent
    assert outcome.detail.startswith(f"HTTP {status}")


def test_only_pull_recipients_are_left_to_their_inbox() -> None:
    assert first_attempt_at("pull", NOW) is None
    assert first_attempt_at("push", NOW) == NOW
    assert first_attempt_at("peer", NOW) == NOW  # a channel added later needs no change here


@pytest.fixture(scope="module")
def hub_identity() -> tuple[ReceiptSigner, object]:
    ca = new_ca("Test CA")
    issued = issue_hub_certificate(ca, hub_id="test-hub", key_type="ec")
    signer = ReceiptSigner(issued.private_key, issued.certificate)  # type: ignore[arg-type]
    return signer, issued.certificate


def _signed(signer: ReceiptSigner, body: bytes = BODY, at: dt.datetime = NOW) -> str:
    return sign_request(
        signer, hub="test-hub", delivery_id="d-1", recipient="000.00.31.H26", body=body, at=at
    )


def test_a_receiver_verifies_the_signature_with_the_hub_certificate(hub_identity: tuple) -> None:
    signer, cert = hub_identity
    statement = verify_request(
        _signed(signer), cert, body=BODY, delivery_id="d-1", recipient="000.00.31.H26", now=NOW
    )
    assert statement["body_sha256"] == hashlib.sha256(BODY).hexdigest()
    assert statement["hub"] == "test-hub" and statement["kind"] == "push"


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"body": b"<edXML>forged</edXML>"}, "body_sha256"),
        ({"delivery_id": "d-2"}, "delivery_id"),
        ({"recipient": "000.00.32.H26"}, "recipient"),
        ({"now": NOW + dt.timedelta(minutes=10)}, "replay"),
    ],
)
def test_anything_else_is_refused(hub_identity: tuple, change: dict, says: str) -> None:
    signer, cert = hub_identity
    given = {"body": BODY, "delivery_id": "d-1", "recipient": "000.00.31.H26", "now": NOW}
    with pytest.raises(PushSignatureError, match=says):
        verify_request(_signed(signer), cert, **{**given, **change})


def test_a_receipt_is_not_a_push_signature(hub_identity: tuple) -> None:
    signer, cert = hub_identity
    with pytest.raises(PushSignatureError, match="not a push request"):
        verify_request(
            signer.sign_jws({"kind": "submission", "v": 1}),
            cert,
            body=BODY,
            delivery_id="d-1",
            recipient="000.00.31.H26",
            now=NOW,
        )


def test_another_key_is_refused(hub_identity: tuple) -> None:
    _signer, cert = hub_identity
    other = issue_hub_certificate(new_ca("Other CA"), hub_id="other", key_type="ec")
    forged = _signed(ReceiptSigner(other.private_key, other.certificate))  # type: ignore[arg-type]
    with pytest.raises(PushSignatureError):
        verify_request(
            forged, cert, body=BODY, delivery_id="d-1", recipient="000.00.31.H26", now=NOW
        )


def test_a_notice_reason_fits_and_keeps_who_and_which_delivery() -> None:
    short = undelivered("000.00.31.H26", "its system refused it (HTTP 400)", "d-1")
    assert short == (
        "Not delivered to 000.00.31.H26: its system refused it (HTTP 400). "
        "An operator can send it again (delivery d-1)."
    )
    long = undelivered("000.00.31.H26", "x" * 1000, "0b8e6b7e-2f9f-4b6c-9d1e-3f1a2b3c4d5e")
    assert len(long) == REASON_MAX
    assert long.startswith("Not delivered to 000.00.31.H26: xxx")
    assert long.endswith(
        "…. An operator can send it again (delivery 0b8e6b7e-2f9f-4b6c-9d1e-3f1a2b3c4d5e)."
    )


async def test_a_doorbell_rung_before_the_wait_is_not_lost() -> None:
    bell = Doorbell()
    bell.ring()
    assert await bell.wait(5) is True
    assert await bell.wait(0.01) is False  # one ring, one wake-up
    waiting = asyncio.create_task(bell.wait(5))
    await asyncio.sleep(0)
    bell.ring()
    assert await waiting is True
