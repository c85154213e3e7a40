"""The trust store: each bad certificate refused with its own code, through verify_package as
the hub calls it; chains through intermediates; CRL rules; the chain cache and its invalidation.

Time is moved with an injected clock, never by sleeping.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hub.errors import CertificateError, SignatureError
from hub.xmlsafe import parse
from signing import pki
from signing.trust import TrustStore
from signing.xmldsig import DS_NS, EDXML_NS, sign_package, verify_package
from tests.support import make_cert, sign_unchecked
from tests.unit.test_xmldsig import PACKAGE

E = f"{{{EDXML_NS}}}"
DS = f"{{{DS_NS}}}"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module", autouse=True)
def _now() -> None:
    """NOW is when the tests of this module start, not when it was imported: the certificates
    its fixtures make are valid from a few minutes before they are made."""
    global NOW
    NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass
class Clock:
    now: dt.datetime = field(default_factory=lambda: NOW)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture(scope="module")
def ca() -> pki.Issued:
    return pki.new_ca("Trust CA", key_type="ec")


@pytest.fixture(scope="module")
def agency(ca: pki.Issued) -> pki.Issued:
    return pki.issue_agency_certificate(ca, code="000.00.00.H26", name="UBND", key_type="ec")


@pytest.fixture
def clock() -> Clock:
    return Clock()


def store_for(
    ca: pki.Issued, clock: Clock, *, revoked: tuple[int, ...] = (), **kw: object
) -> TrustStore:
    store = TrustStore(anchors=[ca.certificate], crl_sources=["ca.crl"], clock=clock, **kw)  # type: ignore[arg-type]
    store.apply_crl("ca.crl", pki.issue_crl(ca, [(s, NOW - DAY) for s in revoked], now=NOW))
    return store


def sign_raw(issued: pki.Issued) -> bytes:
    return sign_unchecked(PACKAGE, issued)


def refusal(
    package: bytes, cert: x509.Certificate, store: TrustStore, **kw: object
) -> SignatureError:
    with pytest.raises(SignatureError) as excinfo:
        verify_package(parse(package), [cert], trust=store, **kw)  # type: ignore[arg-type]
    return excinfo.value


# -- the good case -----------------------------------------------------------------------------


def test_a_registered_certificate_from_the_anchor_verifies(
    ca: pki.Issued, agency: pki.Issued, clock: Clock
) -> None:
    store = store_for(ca, clock)
    signed = sign_package(PACKAGE, agency.key_pem, agency.cert_pem)
    verified = verify_package(parse(signed), [agency.certificate], trust=store)
    assert verified.certificate == agency.certificate
    chain = store.check(agency.certificate)
    assert chain.certificates == (agency.certificate, ca.certificate)
    assert chain.fingerprint == pki.fingerprint(agency.certificate)


def test_a_chain_through_an_intermediate(ca: pki.Issued, clock: Clock) -> None:
    root = make_cert(
        None, subject="Root CA", usage={"key_cert_sign": True, "crl_sign": True}, ca=True
    )
    intermediate = make_cert(
        root, subject="Intermediate CA", usage={"key_cert_sign": True, "crl_sign": True}, ca=True
    )
    leaf = make_cert(intermediate, subject="Sở Nội vụ")
    # The demo CA allows no intermediate (path length 0): the path builder enforces it.
    below_demo = make_cert(
        make_cert(ca, subject="Sub CA", usage={"key_cert_sign": True}, ca=True), subject="X"
    )
    strict = TrustStore(anchors=[ca.certificate], require_revocation=False, clock=clock)
    with pytest.raises(CertificateError) as excinfo:
        strict.check(below_demo.certificate)
    assert excinfo.value.code == "certificate.untrusted_issuer"

    ca = root
    store = TrustStore(
        anchors=[root.certificate],
        intermediates=[intermediate.certificate],
        crl_sources=["root.crl", "intermediate.crl"],
        clock=clock,
    )
    store.apply_crl("root.crl", pki.issue_crl(root, now=NOW))
    with pytest.raises(CertificateError) as excinfo:
        store.check(leaf.certificate)
    assert excinfo.value.code == "certificate.revocation_unknown"  # the intermediate's CRL
    store.apply_crl("intermediate.crl", pki.issue_crl(intermediate, now=NOW))
    chain = store.check(leaf.certificate)
    assert chain.certificates == (leaf.certificate, intermediate.certificate, ca.certificate)
    # A revoked intermediate takes its certificates with it.
    store.apply_crl(
        "root.crl", pki.issue_crl(ca, [(intermediate.certificate.serial_number, NOW)], now=NOW)
    )
    with pytest.raises(CertificateError) as excinfo:
        store.check(leaf.certificate)
    assert excinfo.value.code == "certificate.revoked"
    assert "Its issuing CA" in excinfo.value.detail


# -- bad certificates: each its own code --------------------------------------------------------


def test_expired(ca: pki.Issued, clock: Clock) -> None:
    cert = make_cert(ca, not_before=NOW - 40 * DAY, not_after=NOW - DAY)
    error = refusal(sign_raw(cert), cert.certificate, store_for(ca, clock))
    assert error.code == "certificate.expired"
    assert "expired" in error.detail
    assert error.problems[0].path is not None and "X509Certificate" in error.problems[0].path


def test_not_yet_valid(ca: pki.Issued, clock: Clock) -> None:
    cert = make_cert(ca, not_before=NOW + DAY, not_after=NOW + 40 * DAY)
    error = refusal(sign_raw(cert), cert.certificate, store_for(ca, clock))
    assert error.code == "certificate.not_yet_valid"
    assert "not valid yet" in error.detail


def test_revoked(ca: pki.Issued, agency: pki.Issued, clock: Clock) -> None:
    store = store_for(ca, clock, revoked=(agency.certificate.serial_number,))
    error = refusal(
        sign_package(PACKAGE, agency.key_pem, agency.cert_pem), agency.certificate, store
    )
    assert error.code == "certificate.revoked"
    assert "was revoked" in error.detail


def test_revoked_after_the_verification_time_was_valid_then(
    ca: pki.Issued, agency: pki.Issued, clock: Clock
) -> None:
    """An auditor re-verifying an old package at its submission time: revocation after that
    time does not make the old signature invalid."""
    old_ca = make_cert(
        None,
        subject="Old CA",
        not_before=NOW - 60 * DAY,
        usage={"key_cert_sign": True, "crl_sign": True},
        ca=True,
    )
    cert = make_cert(old_ca, not_before=NOW - 40 * DAY)
    store = store_for(old_ca, clock, revoked=(cert.certificate.serial_number,))  # revoked NOW-DAY
    signed = sign_raw(cert)
    earlier = NOW - dt.timedelta(hours=30)
    assert verify_package(parse(signed), [cert.certificate], trust=store, at=earlier)
    assert refusal(signed, cert.certificate, store).code == "certificate.revoked"


@pytest.mark.parametrize(
    ("flaw", "make", "expected"),
    [
        (
            "no digitalSignature",
            lambda ca: make_cert(ca, usage={"key_encipherment": True}),
            "allows keyEncipherment",
        ),
        (
            "a CA certificate",
            lambda ca: make_cert(
                ca, usage={"digital_signature": True, "key_cert_sign": True}, ca=True
            ),
            "is a CA certificate",
        ),
        (
            "keyCertSign",
            lambda ca: make_cert(ca, usage={"digital_signature": True, "key_cert_sign": True}),
            "keyCertSign is not allowed",
        ),
        (
            "TLS server only",
            lambda ca: make_cert(ca, eku=[ExtendedKeyUsageOID.SERVER_AUTH]),
            "restricted to other purposes",
        ),
    ],
)
def test_wrong_key_usage(
    ca: pki.Issued, clock: Clock, flaw: str, make: Callable[[pki.Issued], pki.Issued], expected: str
) -> None:
    cert = make(ca)
    error = refusal(sign_raw(cert), cert.certificate, store_for(ca, clock))
    assert error.code == "certificate.key_usage", flaw
    assert expected in error.detail, flaw


def test_a_signing_extended_key_usage_is_accepted(ca: pki.Issued, clock: Clock) -> None:
    cert = make_cert(
        ca, eku=[ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    assert verify_package(parse(sign_raw(cert)), [cert.certificate], trust=store_for(ca, clock))


def test_unknown_issuer(ca: pki.Issued, clock: Clock) -> None:
    stranger = pki.new_ca("Stranger CA", key_type="ec")
    cert = pki.issue_agency_certificate(stranger, code="000.00.00.H26", name="UBND", key_type="ec")
    error = refusal(
        sign_package(PACKAGE, cert.key_pem, cert.cert_pem), cert.certificate, store_for(ca, clock)
    )
    assert error.code == "certificate.untrusted_issuer"
    assert "Stranger CA" in error.detail


def test_issuer_name_forged(ca: pki.Issued, clock: Clock) -> None:
    """A certificate naming the trusted CA as issuer but signed by another key."""
    impostor = pki.new_ca("Trust CA", key_type="ec")  # same name, other key
    cert = make_cert(impostor)
    assert cert.certificate.issuer == ca.certificate.subject
    error = refusal(sign_raw(cert), cert.certificate, store_for(ca, clock))
    assert error.code == "certificate.untrusted_issuer"
    assert "does not chain to a trust anchor" in error.detail


def test_self_signed(ca: pki.Issued, clock: Clock) -> None:
    cert = make_cert(None)
    error = refusal(sign_raw(cert), cert.certificate, store_for(ca, clock))
    assert error.code == "certificate.self_signed"


def test_the_anchor_itself_is_self_signed(ca: pki.Issued, clock: Clock) -> None:
    with pytest.raises(CertificateError) as excinfo:
        store_for(ca, clock).check(ca.certificate)
    assert excinfo.value.code == "certificate.self_signed"


def test_rsa_under_2048_bits_is_a_policy_refusal_before_trust(ca: pki.Issued, clock: Clock) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weak")]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca.private_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    weak = pki.Issued(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        cert.public_bytes(serialization.Encoding.PEM),
    )
    error = refusal(sign_raw(weak), cert, store_for(ca, clock))
    assert error.code == "signature.policy"
    assert "RSA key of 1024 bits" in error.detail


def test_no_anchor_trusts_nothing(agency: pki.Issued) -> None:
    error = refusal(
        sign_package(PACKAGE, agency.key_pem, agency.cert_pem),
        agency.certificate,
        TrustStore(anchors=()),
    )
    assert error.code == "certificate.untrusted_issuer"
    assert "no trust anchors" in error.detail


# -- revocation information: missing, stale, refreshed ---------------------------------------


def test_no_crl_for_the_issuer_is_revocation_unknown(
    ca: pki.Issued, agency: pki.Issued, clock: Clock
) -> None:
    store = TrustStore(anchors=[ca.certificate], clock=clock)
    signed = sign_package(PACKAGE, agency.key_pem, agency.cert_pem)
    error = refusal(signed, agency.certificate, store)
    assert error.code == "certificate.revocation_unknown"
    assert "no CRL of its issuer" in error.detail
    # Without require_revocation, an issuer without a CRL is not checked for revocation.
    relaxed = TrustStore(anchors=[ca.certificate], clock=clock, require_revocation=False)
    assert verify_package(parse(signed), [agency.certificate], trust=relaxed)


def test_fails_closed_after_the_grace_period(
    ca: pki.Issued, agency: pki.Issued, clock: Clock
) -> None:
    store = store_for(ca, clock, grace=dt.timedelta(hours=6))
    signed = sign_package(PACKAGE, agency.key_pem, agency.cert_pem)
    assert verify_package(parse(signed), [agency.certificate], trust=store)  # cache now warm
    clock.now = NOW + dt.timedelta(hours=5, minutes=59)
    assert verify_package(parse(signed), [agency.certificate], trust=store)  # within grace
    clock.now = NOW + dt.timedelta(hours=6, minutes=1)
    error = refusal(signed, agency.certificate, store)
    assert error.code == "certificate.revocation_unknown"
    assert "grace period of 6 h" in error.detail
    # A successful refresh (a new CRL) lifts it.
    store.apply_crl("ca.crl", pki.issue_crl(ca, now=clock.now))
    assert verify_package(parse(signed), [agency.certificate], trust=store)


def test_crl_rules(ca: pki.Issued, clock: Clock) -> None:
    store = store_for(ca, clock)
    stranger = pki.new_ca("Stranger CA", key_type="ec")
    with pytest.raises(ValueError, match="not signed by any trust anchor"):
        store.apply_crl("x", pki.issue_crl(stranger, now=NOW))
    impostor = pki.new_ca("Trust CA", key_type="ec")  # the anchor's name, another key
    with pytest.raises(ValueError, match="not signed by any trust anchor"):
        store.apply_crl("x", pki.issue_crl(impostor, now=NOW))
    with pytest.raises(ValueError, match="stale"):
        store.apply_crl("ca.crl", pki.issue_crl(ca, valid_days=1, now=NOW - 3 * DAY))
    with pytest.raises(ValueError, match="older than the one already loaded"):
        store.apply_crl("ca.crl", pki.issue_crl(ca, now=NOW - dt.timedelta(hours=1)))
    with pytest.raises(ValueError, match="in the future"):
        store.apply_crl("ca.crl", pki.issue_crl(ca, now=NOW + DAY))
    with pytest.raises(ValueError, match="not a readable CRL"):
        store.apply_crl("ca.crl", b"\x30\x03junk")
    with pytest.raises(ValueError, match="expected a PEM CRL"):
        store.apply_crl("ca.crl", ca.cert_pem)
    (status,) = store.status()
    assert status.loaded and status.fresh and status.revoked == 0


# -- the chain cache ---------------------------------------------------------------------------


def test_validated_chains_are_cached_and_a_crl_change_invalidates_them(
    ca: pki.Issued, agency: pki.Issued, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_for(ca, clock)
    builds: list[x509.Certificate] = []
    original = store._build_chain

    def counting(
        cert: x509.Certificate, at: dt.datetime, what: str
    ) -> tuple[x509.Certificate, ...]:
        builds.append(cert)
        return original(cert, at, what)

    monkeypatch.setattr(store, "_build_chain", counting)
    for _ in range(5):
        store.check(agency.certificate)
    assert len(builds) == 1  # the hot path does not rebuild the chain

    # The same CRL again (a refresh that changes nothing) keeps the cache.
    store.apply_crl("ca.crl", pki.issue_crl(ca, now=NOW + dt.timedelta(minutes=1)))
    store.check(agency.certificate)
    assert len(builds) == 1

    # A CRL that revokes the certificate: judged again at once, and refused.
    store.apply_crl(
        "ca.crl",
        pki.issue_crl(
            ca, [(agency.certificate.serial_number, NOW)], now=NOW + dt.timedelta(minutes=2)
        ),
    )
    with pytest.raises(CertificateError) as excinfo:
        store.check(agency.certificate)
    assert excinfo.value.code == "certificate.revoked"
    assert len(builds) == 2


def test_a_cached_chain_holds_only_inside_its_validity_window(ca: pki.Issued, clock: Clock) -> None:
    cert = make_cert(ca, not_after=NOW + 2 * DAY)
    store = store_for(ca, clock, grace=dt.timedelta(days=30))
    store.check(cert.certificate)
    with pytest.raises(CertificateError) as excinfo:
        store.check(cert.certificate, at=NOW + 3 * DAY)
    assert excinfo.value.code == "certificate.expired"
    clock.now = NOW + 3 * DAY  # the clock moves on; the cached entry is not reused either
    with pytest.raises(CertificateError) as excinfo:
        store.check(cert.certificate)
    assert excinfo.value.code == "certificate.expired"


def test_anchors_must_be_ca_certificates(agency: pki.Issued) -> None:
    with pytest.raises(ValueError, match="not a CA certificate"):
        TrustStore(anchors=[agency.certificate])
