"""Key and certificate tooling: a small CA for demos and tests, and loaders for PEM material.

The keys made here are written unencrypted (PKCS#8 PEM): they are demo and development material.
Production agencies bring certificates from their own CA (in Vietnam, the Government Cipher
Committee's CA); the hub only needs their certificates, never their keys.

Agency certificates carry the agency code (mã định danh) in the subject as ``UID``, so that a
person reading the certificate sees which agency it belongs to::

    CN=Sở Tài chính Hà Nội, O=Sở Tài chính Hà Nội, UID=000.00.12.H26
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import NameOID

__all__ = [
    "Issued",
    "KeyType",
    "fingerprint",
    "issue_agency_certificate",
    "issue_crl",
    "issue_hub_certificate",
    "load_certificate",
    "load_certificates",
    "load_crl",
    "load_private_key",
    "new_ca",
]

KeyType = Literal["rsa", "ec"]

RSA_BITS = 2048
_MAX_NAME = 64  # RFC 5280 bound for CN and O; cryptography enforces it for CN, in bytes
_CLOCK_SKEW = dt.timedelta(minutes=5)
_PEM_CERT = b"-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True)
class Issued:
    """A private key and its certificate, both PEM."""

    key_pem: bytes
    """PKCS#8 PEM, unencrypted (demo/dev material)."""
    cert_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return load_certificate(self.cert_pem)

    @property
    def private_key(self) -> PrivateKeyTypes:
        return load_private_key(self.key_pem)


# -- issuing ---------------------------------------------------------------------------------


def new_ca(common_name: str, *, valid_days: int = 3650, key_type: KeyType = "rsa") -> Issued:
    """A self-signed CA: BasicConstraints CA=True (path length 0), keyCertSign + cRLSign."""
    key = _new_key(key_type)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, _short(common_name, "common_name")),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _short(common_name, "common_name")),
        ]
    )
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=_positive(valid_days)))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), False)
    )
    cert = builder.sign(key, hashes.SHA256())
    return Issued(key_pem=_key_pem(key), cert_pem=cert.public_bytes(serialization.Encoding.PEM))


def issue_agency_certificate(
    ca: Issued,
    *,
    code: str,
    name: str,
    valid_days: int = 825,
    key_type: KeyType = "rsa",
) -> Issued:
    """A signing certificate for one agency: ``CN=name, O=name, UID=code``.

    KeyUsage digitalSignature + nonRepudiation (critical), not a CA, RSA-2048 or EC P-256,
    signed by *ca* with SHA-256. Names longer than 64 UTF-8 bytes are shortened with "…"
    (the code in ``UID`` is what identifies the agency).
    """
    if not code.strip():
        raise ValueError("issue_agency_certificate: the agency code must not be empty")
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, _short(name, "name")),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _short(name, "name")),
            x509.NameAttribute(NameOID.USER_ID, code.strip()),
        ]
    )
    return _issue_end_entity(ca, subject, valid_days=valid_days, key_type=key_type)


def issue_hub_certificate(
    ca: Issued, *, hub_id: str, valid_days: int = 825, key_type: KeyType = "rsa"
) -> Issued:
    """The hub's own signing certificate (receipts, audit checkpoints).

    Subject ``CN=Lienthong hub <hub_id>, O=Lienthong, UID=<hub_id>``; same key usage as agencies.
    """
    if not hub_id.strip():
        raise ValueError("issue_hub_certificate: hub_id must not be empty")
    subject = x509.Name(
        [
            x509.NameAttribute(
                NameOID.COMMON_NAME, _short(f"Lienthong hub {hub_id.strip()}", "hub_id")
            ),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Lienthong"),
            x509.NameAttribute(NameOID.USER_ID, hub_id.strip()),
        ]
    )
    return _issue_end_entity(ca, subject, valid_days=valid_days, key_type=key_type)


def _issue_end_entity(
    ca: Issued, subject: x509.Name, *, valid_days: int, key_type: KeyType
) -> Issued:
    ca_cert = load_certificate(ca.cert_pem)
    ca_key = _issuer_key(ca, ca_cert)
    key = _new_key(key_type)
    now = _now()
    not_after = min(now + dt.timedelta(days=_positive(valid_days)), ca_cert.not_valid_after_utc)
    try:
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        )
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,  # nonRepudiation
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(aki, critical=False)
    )
    cert = builder.sign(ca_key, hashes.SHA256())
    return Issued(key_pem=_key_pem(key), cert_pem=cert.public_bytes(serialization.Encoding.PEM))


def issue_crl(
    ca: Issued,
    revoked: Sequence[tuple[int, dt.datetime]] = (),
    *,
    valid_days: int = 7,
    now: dt.datetime | None = None,
) -> bytes:
    """A CRL (PEM) signed by *ca* listing *revoked* ``(serial number, revocation date)`` pairs.

    ``thisUpdate`` is *now* (default: the current time), ``nextUpdate`` *valid_days* later: the
    hub treats a CRL past its ``nextUpdate`` as stale and keeps trying to refresh it.
    """
    ca_cert = load_certificate(ca.cert_pem)
    ca_key = _issuer_key(ca, ca_cert)
    this_update = (now or _now()).astimezone(dt.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(this_update)
        .next_update(this_update + dt.timedelta(days=_positive(valid_days)))
    )
    for serial, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(when.astimezone(dt.UTC))
            .build()
        )
    crl = builder.sign(ca_key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM)


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    """A CRL from PEM or DER (CAs publish both). Raises :class:`ValueError` saying why not."""
    data = _as_bytes(data, "CRL")
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            if b"-----BEGIN X509 CRL-----" not in data:
                label = data.lstrip().split(b"\n", 1)[0].decode("ascii", "replace").strip()
                raise ValueError(f"expected a PEM CRL (-----BEGIN X509 CRL-----), found {label}")
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        if "expected a PEM CRL" in str(exc):
            raise
        raise ValueError(f"not a readable CRL: {exc}") from exc


def _issuer_key(ca: Issued, ca_cert: x509.Certificate) -> CertificateIssuerPrivateKeyTypes:
    key = load_private_key(ca.key_pem)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError(f"the CA key is a {type(key).__name__}; expected an RSA or EC key")
    pub = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*pub) != ca_cert.public_key().public_bytes(*pub):
        raise ValueError("the CA key does not belong to the CA certificate")
    try:
        constraints = ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise ValueError(
            f"{ca_cert.subject.rfc4514_string()} is not a CA certificate (BasicConstraints CA=True)"
        )
    return key


def _new_key(key_type: KeyType) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"key_type must be 'rsa' or 'ec', not {key_type!r}")


def _key_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _short(value: str, what: str) -> str:
    """*value* with whitespace collapsed, cut to 64 UTF-8 bytes (with "…") if longer.

    cryptography enforces the RFC 5280 bound on CN in UTF-8 bytes, and a Vietnamese letter
    with diacritics takes two or three.
    """
    value = " ".join(value.split())
    if not value:
        raise ValueError(f"{what} must not be empty")
    if len(value.encode("utf-8")) <= _MAX_NAME:
        return value
    budget = _MAX_NAME - len("…".encode())
    cut = value.encode("utf-8")[:budget].decode("utf-8", "ignore").rstrip()
    return cut + "…"


def _positive(days: int) -> int:
    if days <= 0:
        raise ValueError(f"valid_days must be positive, not {days}")
    return days


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


# -- loading ---------------------------------------------------------------------------------


def load_certificate(pem: bytes) -> x509.Certificate:
    """Exactly one certificate, PEM (or DER, as ``.cer`` files often are).

    Raises :class:`ValueError` saying what was found instead.
    """
    data = _as_bytes(pem, "certificate")
    if _PEM_CERT not in data:
        if data.lstrip().startswith(b"-----BEGIN"):
            label = data.lstrip().split(b"\n", 1)[0].decode("ascii", "replace").strip()
            raise ValueError(f"expected a PEM certificate ({_PEM_CERT.decode()}), found {label}")
        try:
            return x509.load_der_x509_certificate(data)
        except ValueError as exc:
            raise ValueError(
                "not a certificate: no '-----BEGIN CERTIFICATE-----' block and not DER either"
            ) from exc
    certs = load_certificates(data)
    if len(certs) != 1:
        raise ValueError(
            f"expected exactly one certificate, found {len(certs)}; use load_certificates()"
        )
    return certs[0]


def load_certificates(pem: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, in order (at least one)."""
    data = _as_bytes(pem, "certificates")
    count = data.count(_PEM_CERT)
    if count == 0:
        raise ValueError("no '-----BEGIN CERTIFICATE-----' block found in the PEM data")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ValueError(f"a certificate in the PEM data could not be read: {exc}") from exc
    if len(certs) != count:  # pragma: no cover - cryptography already refuses partial bundles
        raise ValueError(f"found {count} certificate blocks but could read only {len(certs)}")
    return certs


def load_private_key(pem: bytes, *, password: bytes | None = None) -> PrivateKeyTypes:
    """A private key from PEM (PKCS#8, or traditional RSA/EC)."""
    data = _as_bytes(pem, "private key")
    if b"-----BEGIN" not in data or b"PRIVATE KEY-----" not in data:
        raise ValueError("no '-----BEGIN … PRIVATE KEY-----' block found in the PEM data")
    try:
        return serialization.load_pem_private_key(data, password=password)
    except TypeError as exc:  # encrypted without password, or password for a plain key
        raise ValueError(f"the private key could not be loaded: {exc}") from exc
    except ValueError as exc:
        raise ValueError(
            f"the private key could not be read (wrong password or corrupt): {exc}"
        ) from exc
    except UnsupportedAlgorithm as exc:
        raise ValueError(f"the private key is of an unsupported kind: {exc}") from exc


def fingerprint(cert: x509.Certificate) -> str:
    """``"sha256:"`` + lowercase hex of the SHA-256 of the DER certificate."""
    return "sha256:" + cert.fingerprint(hashes.SHA256()).hex()


def _as_bytes(data: bytes | str, what: str) -> bytes:
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"expected {what} as bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data.strip():
        raise ValueError(f"the {what} data is empty")
    return data
