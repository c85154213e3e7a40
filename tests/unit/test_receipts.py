"""Hub-signed receipts (JWS) and the hub's key files: signing, offline verification, refusals."""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from signing import pki
from signing.keyfiles import load_hub_identity, write_file
from signing.receipts import ReceiptError, ReceiptSigner, verify_receipt


@pytest.fixture(scope="module")
def ca() -> pki.Issued:
    return pki.new_ca("Receipt CA", key_type="ec")


@pytest.fixture(scope="module", params=["rsa", "ec"])
def hub(request: pytest.FixtureRequest, ca: pki.Issued) -> pki.Issued:
    return pki.issue_hub_certificate(ca, hub_id="hanoi", key_type=request.param)


def signer_of(issued: pki.Issued) -> ReceiptSigner:
    key = issued.private_key
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    return ReceiptSigner(key, issued.certificate)


def payload(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "v": 1,
        "kind": "submission",
        "receipt_id": "r-1",
        "hub": "hanoi",
        "issued_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "document_id": "d-1",
        "edxml_document_id": "000.00.00.H26,2026/11/22,12/UBND-VP",
        "package_sha256": "ab" * 32,
        "size": 1234,
        "sender": "000.00.00.H26",
        "recipients": ["000.00.31.H26", "000.00.32.H26"],
        "received_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    body.update(changes)
    return body


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(jws: str) -> list[str]:
    return jws.split(".")


def test_round_trip(hub: pki.Issued) -> None:
    jws = signer_of(hub).sign(payload())
    verified = verify_receipt(jws, hub.certificate)
    assert verified.payload == payload(
        issued_at=verified.payload["issued_at"], received_at=verified.payload["received_at"]
    )
    header = json.loads(base64.urlsafe_b64decode(_segments(jws)[0] + "=="))
    assert header["alg"] == ("RS256" if isinstance(hub.private_key, rsa.RSAPrivateKey) else "ES256")
    assert header["kid"] == pki.fingerprint(hub.certificate)


def test_a_changed_payload_is_invalid(hub: pki.Issued) -> None:
    head, _body, signature = _segments(signer_of(hub).sign(payload()))
    forged = _b64(json.dumps(payload(package_sha256="cd" * 32)).encode())
    with pytest.raises(ReceiptError, match="does not verify"):
        verify_receipt(f"{head}.{forged}.{signature}", hub.certificate)


def test_another_hubs_certificate_is_refused(ca: pki.Issued, hub: pki.Issued) -> None:
    other = pki.issue_hub_certificate(ca, hub_id="other", key_type="rsa")
    with pytest.raises(ReceiptError):
        verify_receipt(signer_of(hub).sign(payload()), other.certificate)


def test_algorithm_substitution_is_refused(hub: pki.Issued) -> None:
    _head, body, signature = _segments(signer_of(hub).sign(payload()))
    own = json.loads(base64.urlsafe_b64decode(_head + "=="))["alg"]
    for alg in ("none", "HS256", "ES256" if own == "RS256" else "RS256"):
        header = _b64(json.dumps({"alg": alg}).encode())
        with pytest.raises(ReceiptError, match="no other algorithm is accepted"):
            verify_receipt(f"{header}.{body}.{signature}", hub.certificate)
    with pytest.raises(ReceiptError, match="signature is not base64url"):
        verify_receipt(f"{_head}.{body}.", hub.certificate)  # "alg": "none" style, unsigned


def test_malformed_receipts_say_why(hub: pki.Issued) -> None:
    with pytest.raises(ReceiptError, match="3 dot-separated parts"):
        verify_receipt("abc", hub.certificate)
    with pytest.raises(ReceiptError, match="not base64url"):
        verify_receipt("a+b.c.d", hub.certificate)
    with pytest.raises(ReceiptError, match="header is not JSON"):
        verify_receipt(f"{_b64(b'nope')}.{_b64(b'{}')}.{_b64(b'x')}", hub.certificate)


def test_a_signed_object_that_is_not_a_receipt_is_refused(hub: pki.Issued) -> None:
    signer = signer_of(hub)
    with pytest.raises(ValueError, match="kind must be one of"):
        signer.sign(payload(kind="invoice"))
    with pytest.raises(ValueError, match="a delivery receipt needs recipient"):
        signer.sign(payload(kind="delivery"))


def test_issued_outside_the_certificates_validity_is_refused(hub: pki.Issued) -> None:
    later = (hub.certificate.not_valid_after_utc + dt.timedelta(days=1)).isoformat()
    jws = signer_of(hub).sign(payload(issued_at=later))
    with pytest.raises(ReceiptError, match="outside the hub certificate's validity"):
        verify_receipt(jws, hub.certificate)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is not installed")
def test_rs256_receipts_verify_with_openssl(ca: pki.Issued, tmp_path: Path) -> None:
    """A standard tool, with nothing but the hub's certificate, checks the receipt."""
    hub = pki.issue_hub_certificate(ca, hub_id="hanoi", key_type="rsa")
    jws = signer_of(hub).sign(payload())
    head, body, signature = _segments(jws)
    (tmp_path / "input").write_bytes(f"{head}.{body}".encode())
    (tmp_path / "sig").write_bytes(base64.urlsafe_b64decode(signature + "=="))
    (tmp_path / "pub.pem").write_bytes(
        hub.certificate.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    ok = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig", "input"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0 and "Verified OK" in ok.stdout, ok.stderr
    (tmp_path / "input").write_bytes(f"{head}.{body}x".encode())
    bad = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig", "input"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode != 0


# -- key files -------------------------------------------------------------------------------


def test_secret_files_are_written_0600(tmp_path: Path) -> None:
    write_file(tmp_path / "k" / "key.pem", b"secret", secret=True)
    write_file(tmp_path / "k" / "cert.pem", b"public")
    assert stat.S_IMODE((tmp_path / "k" / "key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "k" / "cert.pem").stat().st_mode) == 0o644
    assert [p.name for p in sorted((tmp_path / "k").iterdir())] == ["cert.pem", "key.pem"]


def test_hub_identity_from_pem_and_from_pkcs12(ca: pki.Issued, tmp_path: Path) -> None:
    hub = pki.issue_hub_certificate(ca, hub_id="hanoi", key_type="ec")
    (tmp_path / "key.pem").write_bytes(hub.key_pem)
    (tmp_path / "cert.pem").write_bytes(hub.cert_pem)
    identity = load_hub_identity(tmp_path / "key.pem", tmp_path / "cert.pem")
    assert identity.certificate == hub.certificate
    assert "PRIVATE" not in repr(identity)

    key = hub.private_key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    p12 = pkcs12.serialize_key_and_certificates(
        b"hub", key, hub.certificate, None, serialization.BestAvailableEncryption(b"mat-khau")
    )
    (tmp_path / "hub.p12").write_bytes(p12)
    from_p12 = load_hub_identity(tmp_path / "hub.p12", None, b"mat-khau")
    assert from_p12.certificate == hub.certificate
    with pytest.raises(ValueError, match="LIENTHONG_HUB_KEY_PASSPHRASE") as excinfo:
        load_hub_identity(tmp_path / "hub.p12", None, None)
    assert "mat-khau" not in str(excinfo.value)
    with pytest.raises(ValueError, match="wrong passphrase"):
        load_hub_identity(tmp_path / "hub.p12", None, b"sai")


def test_a_hub_key_that_is_not_the_certificates_is_refused(ca: pki.Issued, tmp_path: Path) -> None:
    one = pki.issue_hub_certificate(ca, hub_id="a", key_type="ec")
    two = pki.issue_hub_certificate(ca, hub_id="b", key_type="ec")
    (tmp_path / "key.pem").write_bytes(one.key_pem)
    (tmp_path / "cert.pem").write_bytes(two.cert_pem)
    with pytest.raises(ValueError, match="does not belong to the hub certificate"):
        load_hub_identity(tmp_path / "key.pem", tmp_path / "cert.pem")
