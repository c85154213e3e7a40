"""Hub-signed receipts: proofs a sender (or anyone it shows them to) can check without the hub.

A receipt is a JSON object signed by the hub's key as a JWS in compact serialisation
(RFC 7515): ``BASE64URL(header) . BASE64URL(payload) . BASE64URL(signature)``. Any JOSE
library verifies it with the hub's certificate alone; so does ``openssl`` for RS256 (the
signature is RSASSA-PKCS1-v1_5 with SHA-256 over the ASCII ``header.payload``).

The header carries ``alg`` (RS256 for an RSA hub key, ES256/ES384 for EC P-256/P-384), ``kid``
(the hub certificate's ``sha256:`` fingerprint) and ``x5t#S256`` (the same digest, base64url, as
RFC 7515 defines it). The payload (``v`` 1)::

    kind            "submission" (the hub accepted a document) | "delivery" (a recipient
                    acknowledged it)
    receipt_id      the hub's id for this receipt
    hub             the hub's identity ([hub] id)
    issued_at       hub time, UTC, ISO 8601
    document_id     the hub's document id;  edxml_document_id  the sender's DocumentId
    package_sha256  SHA-256 of the exact package bytes;  size  their length
    sender          the sending agency;  recipients  every agency it was routed to
    delivery only:  recipient, delivery_id, result ("done" | "fail"), reason, acknowledged_at

:func:`verify_receipt` refuses anything else: another algorithm than the certificate's key
allows (no ``none``, no HMAC), a header naming another certificate, a bad signature, a payload
that is not a receipt, or an ``issued_at`` outside the certificate's validity.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from signing import pki

__all__ = [
    "KINDS",
    "ReceiptError",
    "ReceiptSigner",
    "VerifiedReceipt",
    "receipt_time",
    "signed_time",
    "verify_jws",
    "verify_receipt",
]

KINDS = ("submission", "delivery")
VERSION = 1
_COMMON = (
    "v",
    "kind",
    "receipt_id",
    "hub",
    "issued_at",
    "document_id",
    "edxml_document_id",
    "package_sha256",
    "size",
    "sender",
    "recipients",
)
_DELIVERY = ("recipient", "delivery_id", "result", "acknowledged_at")
_EC_ALGS = {"secp256r1": ("ES256", hashes.SHA256, 32), "secp384r1": ("ES384", hashes.SHA384, 48)}


class ReceiptError(ValueError):
    """The receipt is not valid; the message says why."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    if not text or any(c not in _B64URL for c in text):
        raise ReceiptError(f"the {what} is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ReceiptError(f"the {what} is not base64url") from exc


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _algorithm(key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    if key.curve.name in _EC_ALGS:
        return _EC_ALGS[key.curve.name][0]
    raise ValueError(f"EC curve {key.curve.name} is not supported for receipts (P-256, P-384)")


def _canonical(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class ReceiptSigner:
    """Signs receipts with the hub's key. Build once (the key is loaded at start-up)."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    def __post_init__(self) -> None:
        public = self.certificate.public_key()
        if not isinstance(public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            raise ValueError("the hub certificate's key must be RSA or EC")
        _algorithm(public)

    def __repr__(self) -> str:  # never show the key
        return f"ReceiptSigner(certificate={pki.fingerprint(self.certificate)})"

    @property
    def header(self) -> dict[str, str]:
        public = self.certificate.public_key()
        assert isinstance(public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
        return {
            "alg": _algorithm(public),
            "kid": pki.fingerprint(self.certificate),
            "x5t#S256": _b64(self.certificate.fingerprint(hashes.SHA256())),
        }

    def sign(self, payload: Mapping[str, Any]) -> str:
        """The compact JWS of *payload* (a receipt as described in the module doc)."""
        _check_payload(payload)
        return self.sign_jws(payload)

    def sign_jws(self, payload: Mapping[str, Any]) -> str:
        """The compact JWS of any JSON object, with this header: the receipts' signature
        without their payload rules, for other statements the hub signs (``signing.push``)."""
        signing_input = f"{_b64(_canonical(self.header))}.{_b64(_canonical(payload))}".encode()
        if isinstance(self.key, rsa.RSAPrivateKey):
            signature = self.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            _alg, digest, size = _EC_ALGS[self.key.curve.name]
            r, s = decode_dss_signature(self.key.sign(signing_input, ec.ECDSA(digest())))
            signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")  # JWS: raw R || S
        return f"{signing_input.decode()}.{_b64(signature)}"


@dataclass(frozen=True)
class VerifiedReceipt:
    payload: dict[str, Any]
    header: dict[str, Any]
    certificate: x509.Certificate

    @property
    def kind(self) -> str:
        return str(self.payload["kind"])


def verify_receipt(jws: str, certificate: x509.Certificate) -> VerifiedReceipt:
    """Check a receipt with the hub's *certificate* alone; :class:`ReceiptError` says why not."""
    header, payload = verify_jws(jws, certificate)
    try:
        _check_payload(payload)
    except ValueError as exc:
        raise ReceiptError(f"signed, but not a receipt: {exc}") from exc
    issued = signed_time(payload["issued_at"])
    if not certificate.not_valid_before_utc <= issued <= certificate.not_valid_after_utc:
        raise ReceiptError(
            f"issued {payload['issued_at']}, outside the hub certificate's validity "
            f"({certificate.not_valid_before_utc.isoformat()} to "
            f"{certificate.not_valid_after_utc.isoformat()})"
        )
    return VerifiedReceipt(payload, header, certificate)


def verify_jws(jws: str, certificate: x509.Certificate) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and payload of a compact JWS the hub signed with *certificate*'s key; the
    algorithm must be the one that key signs, and the header may name no other certificate.
    Says nothing about what the payload means: :func:`verify_receipt` and
    ``signing.push.verify_request`` check that."""
    parts = jws.strip().split(".")
    if len(parts) != 3:
        raise ReceiptError(f"not a compact JWS: expected 3 dot-separated parts, found {len(parts)}")
    header = _json(_unb64(parts[0], "header"), "header")
    payload = _json(_unb64(parts[1], "payload"), "payload")
    signature = _unb64(parts[2], "signature")
    public = certificate.public_key()
    if not isinstance(public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise ReceiptError("the certificate's key is neither RSA nor EC")
    expected_alg = _algorithm(public)
    if header.get("alg") != expected_alg:
        raise ReceiptError(
            f"the receipt's algorithm is {header.get('alg')!r}; this certificate's key signs "
            f"{expected_alg} (no other algorithm is accepted)"
        )
    thumbprint = header.get("x5t#S256")
    if thumbprint is not None and thumbprint != _b64(certificate.fingerprint(hashes.SHA256())):
        raise ReceiptError(
            f"the receipt was signed with another certificate (kid {header.get('kid')!r}) than "
            f"the one given ({pki.fingerprint(certificate)})"
        )
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    try:
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            _alg, digest, size = _EC_ALGS[public.curve.name]
            if len(signature) != 2 * size:
                raise InvalidSignature
            r = int.from_bytes(signature[:size], "big")
            s = int.from_bytes(signature[size:], "big")
            public.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(digest()))
    except InvalidSignature:
        raise ReceiptError(
            "the signature does not verify with the hub certificate: it was changed "
            "or not signed by this hub"
        ) from None
    return header, payload


def _json(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReceiptError(f"the {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise ReceiptError(f"the {what} is not a JSON object")
    return value


def _check_payload(payload: Mapping[str, Any]) -> None:
    kind = payload.get("kind")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    required = _COMMON + (_DELIVERY if kind == "delivery" else ())
    missing = [k for k in required if k not in payload]
    if missing:
        raise ValueError(f"a {kind} receipt needs {', '.join(missing)}")
    if payload["v"] != VERSION:
        raise ValueError(f"unknown receipt version {payload['v']!r}")
    if not isinstance(payload["recipients"], list):
        raise ValueError("recipients must be a list")
    signed_time(payload["issued_at"])


def signed_time(
    value: Any, name: str = "issued_at", error: type[ReceiptError] = ReceiptError
) -> dt.datetime:
    """A time in a statement the hub signed (receipts, push requests, checkpoints): ISO 8601
    with a zone, in UTC; *error* says why not, naming the field."""
    try:
        when = dt.datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise error(f"{name} {value!r} is not an ISO 8601 time") from exc
    if when.tzinfo is None:
        raise error(f"{name} {value!r} has no time zone")
    return when.astimezone(dt.UTC)


def receipt_time(when: dt.datetime) -> str:
    """How receipts write times: UTC, ISO 8601, microseconds dropped."""
    return when.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
