"""Key and certificate tooling: CA, agency and hub certificates, loaders, fingerprints."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from signing import pki

HANOI = "Ủy ban nhân dân Thành phố Hà Nội"


@pytest.fixture(scope="module")
def ca() -> pki.Issued:
    return pki.new_ca("Lienthong CA thử nghiệm")


@pytest.fixture(scope="module")
def agency(ca: pki.Issued) -> pki.Issued:
    return pki.issue_agency_certificate(ca, code="000.00.00.H26", name=HANOI)


@pytest.fixture(scope="module")
def agency_ec(ca: pki.Issued) -> pki.Issued:
    return pki.issue_agency_certificate(
        ca, code="000.00.12.H26", name="Sở Tài chính Hà Nội", key_type="ec"
    )


def _attr(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    values = cert.subject.get_attributes_for_oid(oid)
    assert len(values) == 1
    value = values[0].value
    assert isinstance(value, str)
    return value


def test_new_ca_is_a_self_signed_ca(ca: pki.Issued) -> None:
    cert = pki.load_certificate(ca.cert_pem)
    cert.verify_directly_issued_by(cert)
    assert _attr(cert, NameOID.COMMON_NAME) == "Lienthong CA thử nghiệm"
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert usage.crl_sign
    assert not usage.digital_signature
    assert cert.not_valid_after_utc - cert.not_valid_before_utc >= dt.timedelta(days=3650)
    assert ca.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted


def test_agency_certificate_subject_carries_vietnamese_name_and_code(
    ca: pki.Issued, agency: pki.Issued
) -> None:
    cert = pki.load_certificate(agency.cert_pem)
    assert _attr(cert, NameOID.COMMON_NAME) == HANOI
    assert _attr(cert, NameOID.ORGANIZATION_NAME) == HANOI
    assert _attr(cert, NameOID.USER_ID) == "000.00.00.H26"
    assert "000.00.00.H26" in cert.subject.rfc4514_string()
    # the UTF-8 survives a PEM round trip byte for byte
    again = pki.load_certificate(cert.public_bytes(serialization.Encoding.PEM))
    assert again.subject == cert.subject


def test_agency_certificate_is_signed_by_the_ca_for_signing_only(
    ca: pki.Issued, agency: pki.Issued
) -> None:
    ca_cert = pki.load_certificate(ca.cert_pem)
    cert = pki.load_certificate(agency.cert_pem)
    cert.verify_directly_issued_by(ca_cert)
    assert cert.issuer == ca_cert.subject
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert usage.value.content_commitment
    assert not usage.value.key_cert_sign
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.key_size == 2048
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(days=826)


def test_agency_certificate_with_ec_key(ca: pki.Issued, agency_ec: pki.Issued) -> None:
    cert = pki.load_certificate(agency_ec.cert_pem)
    cert.verify_directly_issued_by(pki.load_certificate(ca.cert_pem))
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert key.curve.name == "secp256r1"
    private = pki.load_private_key(agency_ec.key_pem)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert private.public_key().public_numbers() == key.public_numbers()


def test_private_key_matches_its_certificate(agency: pki.Issued) -> None:
    private = pki.load_private_key(agency.key_pem)
    assert isinstance(private, rsa.RSAPrivateKey)
    public = pki.load_certificate(agency.cert_pem).public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert private.public_key().public_numbers() == public.public_numbers()
    assert agency.certificate == pki.load_certificate(agency.cert_pem)


def test_hub_certificate(ca: pki.Issued) -> None:
    hub = pki.issue_hub_certificate(ca, hub_id="hanoi-1", key_type="ec")
    cert = hub.certificate
    cert.verify_directly_issued_by(pki.load_certificate(ca.cert_pem))
    assert _attr(cert, NameOID.USER_ID) == "hanoi-1"
    assert "hanoi-1" in _attr(cert, NameOID.COMMON_NAME)
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature


def test_long_names_are_shortened_to_the_x509_limit(ca: pki.Issued) -> None:
    name = "Trung tâm Công nghệ thông tin và Truyền thông thuộc Sở Thông tin và Truyền thông"
    assert len(name.encode()) > 64
    cert = pki.issue_agency_certificate(ca, code="000.01.12.H26", name=name, key_type="ec")
    cn = _attr(cert.certificate, NameOID.COMMON_NAME)
    assert 60 <= len(cn.encode()) <= 64  # cryptography counts the bound in UTF-8 bytes
    assert cn.endswith("…")
    assert name.startswith(cn[:-1])
    assert _attr(cert.certificate, NameOID.USER_ID) == "000.01.12.H26"


def test_validity_never_outlasts_the_ca() -> None:
    short_ca = pki.new_ca("Short CA", valid_days=10, key_type="ec")
    cert = pki.issue_agency_certificate(
        short_ca, code="000.00.00.G22", name="VPCP", valid_days=825, key_type="ec"
    ).certificate
    assert cert.not_valid_after_utc <= short_ca.certificate.not_valid_after_utc


def test_issuing_refuses_bad_input(ca: pki.Issued, agency: pki.Issued) -> None:
    with pytest.raises(ValueError, match="not a CA certificate"):
        pki.issue_agency_certificate(agency, code="000.00.00.H27", name="X", key_type="ec")
    mismatched = pki.Issued(key_pem=agency.key_pem, cert_pem=ca.cert_pem)
    with pytest.raises(ValueError, match="does not belong"):
        pki.issue_agency_certificate(mismatched, code="000.00.00.H27", name="X", key_type="ec")
    with pytest.raises(ValueError, match="code must not be empty"):
        pki.issue_agency_certificate(ca, code=" ", name="X", key_type="ec")
    with pytest.raises(ValueError, match="name must not be empty"):
        pki.issue_agency_certificate(ca, code="000.00.00.H27", name="", key_type="ec")
    with pytest.raises(ValueError, match="valid_days"):
        pki.issue_agency_certificate(ca, code="000.00.00.H27", name="X", valid_days=0)
    with pytest.raises(ValueError, match="key_type"):
        pki.issue_agency_certificate(ca, code="000.00.00.H27", name="X", key_type="dsa")  # type: ignore[arg-type]


def test_load_certificate_accepts_pem_and_der(agency: pki.Issued) -> None:
    cert = pki.load_certificate(agency.cert_pem)
    der = cert.public_bytes(serialization.Encoding.DER)
    assert pki.load_certificate(der) == cert
    assert pki.load_certificate(b"\n" + agency.cert_pem + b"\n") == cert


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"hello", "not a certificate"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "could not be read"),
    ],
)
def test_load_certificate_refuses_bad_input_clearly(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pki.load_certificate(data)


def test_load_certificate_names_a_key_given_instead(agency: pki.Issued) -> None:
    with pytest.raises(ValueError, match="found -----BEGIN PRIVATE KEY-----"):
        pki.load_certificate(agency.key_pem)


def test_load_certificates_reads_a_bundle(ca: pki.Issued, agency: pki.Issued) -> None:
    bundle = agency.cert_pem + ca.cert_pem
    certs = pki.load_certificates(bundle)
    assert certs == [agency.certificate, ca.certificate]
    with pytest.raises(ValueError, match="exactly one certificate, found 2"):
        pki.load_certificate(bundle)
    with pytest.raises(ValueError, match="no '-----BEGIN CERTIFICATE-----' block"):
        pki.load_certificates(agency.key_pem)


def test_load_private_key_refuses_bad_input(agency: pki.Issued) -> None:
    with pytest.raises(ValueError, match="no '-----BEGIN … PRIVATE KEY-----' block"):
        pki.load_private_key(agency.cert_pem)
    with pytest.raises(ValueError, match="could not be read"):
        pki.load_private_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    key = pki.load_private_key(agency.key_pem)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(ValueError, match="could not be loaded"):
        pki.load_private_key(encrypted)
    assert isinstance(pki.load_private_key(encrypted, password=b"secret"), rsa.RSAPrivateKey)


def test_fingerprint(agency: pki.Issued) -> None:
    cert = agency.certificate
    fp = pki.fingerprint(cert)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", fp)
    assert fp == "sha256:" + cert.fingerprint(hashes.SHA256()).hex()
    assert fp != pki.fingerprint(pki.load_certificate(pki.new_ca("x", key_type="ec").cert_pem))
