"""The hub's signature over a push request, and how a receiver checks it.

When the hub pushes a delivery to an agency's ``push_url`` it signs a small statement with its
own key (the key that signs receipts), as a compact JWS (RFC 7515) in the
``Lienthong-Signature`` header. The statement binds the request to one delivery, one body and
one recipient, so a captured request cannot be replayed with another body or to another agency::

    v             1
    kind          "push"
    hub           the hub's identity ([hub] id)
    delivery_id   the delivery (also in the Lienthong-Delivery-Id header); stable across
                  attempts and operator resends
    recipient     the agency code the request is for
    body_sha256   SHA-256 of the exact request body, lowercase hex
    signed_at     hub time of this attempt, UTC, ISO 8601 (every attempt is signed anew)

A receiver checks it with the hub certificate alone (:func:`verify_request`): the signature
and algorithm (as for receipts), ``kind``, the body digest against the bytes it received, the
delivery id against the header, its own code as ``recipient``, and ``signed_at`` within a few
minutes of its clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography import x509

from signing.receipts import ReceiptError, ReceiptSigner, receipt_time, signed_time, verify_jws

__all__ = [
    "DELIVERY_ID_HEADER",
    "KIND_HEADER",
    "SIGNATURE_HEADER",
    "PushSignatureError",
    "sign_request",
    "verify_request",
]

SIGNATURE_HEADER = "Lienthong-Signature"
DELIVERY_ID_HEADER = "Lienthong-Delivery-Id"
KIND_HEADER = "Lienthong-Kind"  # document | status | receipt | notice
VERSION = 1
MAX_SKEW = dt.timedelta(minutes=5)


class PushSignatureError(ReceiptError):
    """The push request's signature is not valid; the message says why."""


def claims(
    *, hub: str, delivery_id: str, recipient: str, body: bytes, at: dt.datetime
) -> dict[str, Any]:
    return {
        "v": VERSION,
        "kind": "push",
        "hub": hub,
        "delivery_id": delivery_id,
        "recipient": recipient,
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "signed_at": receipt_time(at),
    }


def sign_request(
    signer: ReceiptSigner,
    *,
    hub: str,
    delivery_id: str,
    recipient: str,
    body: bytes,
    at: dt.datetime,
) -> str:
    """The ``Lienthong-Signature`` value for one push attempt."""
    return signer.sign_jws(
        claims(hub=hub, delivery_id=delivery_id, recipient=recipient, body=body, at=at)
    )


def verify_request(
    signature: str,
    certificate: x509.Certificate,
    *,
    body: bytes,
    delivery_id: str,
    recipient: str,
    now: dt.datetime | None = None,
    max_skew: dt.timedelta = MAX_SKEW,
) -> Mapping[str, Any]:
    """Check a pushed request as a receiver should; the verified statement, or
    :class:`PushSignatureError` saying what does not match."""
    try:
        _header, payload = verify_jws(signature, certificate)
    except ReceiptError as exc:
        raise PushSignatureError(str(exc)) from exc
    if payload.get("kind") != "push" or payload.get("v") != VERSION:
        raise PushSignatureError("signed by the hub, but not a push request statement")
    expected = {
        "delivery_id": delivery_id,
        "recipient": recipient,
        "body_sha256": hashlib.sha256(body).hexdigest(),
    }
    for key, value in expected.items():
        if payload.get(key) != value:
            raise PushSignatureError(
                f"{key} is {payload.get(key)!r} in the signature, {value!r} in the request"
            )
    signed_at = signed_time(payload.get("signed_at"), "signed_at", PushSignatureError)
    skew = abs((now or dt.datetime.now(dt.UTC)) - signed_at)
    if skew > max_skew:
        raise PushSignatureError(
            f"signed at {payload['signed_at']}, {int(skew.total_seconds())} s from now "
            f"(at most {int(max_skew.total_seconds())} s allowed): a replay, or a wrong clock"
        )
    return payload
