"""Interoperability with an independent XMLDSig implementation: libxmlsec1 (the ``xmlsec``
wheel). Packages signed by libxmlsec1 verify in the hub, and packages signed by the hub's
signer verify in libxmlsec1, for RSA-SHA256 and ECDSA P-256 (SHA-256); tampering is caught by
both. libxmlsec1 also validates the hub-signed certificate chain up to the CA.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree

from hub.xmlsafe import parse, text_of
from signing import pki
from signing.trust import TrustStore
from signing.xmldsig import DS_NS, EDXML_NS, sign_package, verify_package
from tests.unit.test_xmldsig import PACKAGE

xmlsec = pytest.importorskip(
    "xmlsec",
    reason="the interop tests need the xmlsec wheel (libxmlsec1): pip install -e '.[test]'",
)

pytestmark = pytest.mark.interop

E = f"{{{EDXML_NS}}}"
KEY_TYPES = ("rsa", "ec")


@pytest.fixture(scope="module")
def ca() -> pki.Issued:
    return pki.new_ca("Interop CA")


@pytest.fixture(scope="module", params=KEY_TYPES)
def agency(request: pytest.FixtureRequest, ca: pki.Issued) -> pki.Issued:
    return pki.issue_agency_certificate(
        ca, code="000.00.00.H26", name="UBND Thành phố Hà Nội", key_type=request.param
    )


@pytest.fixture(scope="module")
def trust(ca: pki.Issued) -> TrustStore:
    store = TrustStore(anchors=[ca.certificate], crl_sources=["interop.crl"])
    store.apply_crl("interop.crl", pki.issue_crl(ca))
    return store


def _is_ec(issued: pki.Issued) -> bool:
    return isinstance(issued.certificate.public_key(), ec.EllipticCurvePublicKey)


def sign_with_libxmlsec1(package: bytes, issued: pki.Issued) -> bytes:
    """An enveloped signature made by libxmlsec1, in the shape the hub requires."""
    root = etree.fromstring(package)
    header = root.find(f"{E}edXMLEnvelope/{E}edXMLHeader")
    assert header is not None
    method = xmlsec.Transform.ECDSA_SHA256 if _is_ec(issued) else xmlsec.Transform.RSA_SHA256
    signature = xmlsec.template.create(root, xmlsec.Transform.EXCL_C14N, method, ns="ds")
    header.append(signature)
    reference = xmlsec.template.add_reference(signature, xmlsec.Transform.SHA256, uri="")
    xmlsec.template.add_transform(reference, xmlsec.Transform.ENVELOPED)
    xmlsec.template.add_transform(reference, xmlsec.Transform.EXCL_C14N)
    xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
    key = xmlsec.Key.from_memory(issued.key_pem, xmlsec.KeyFormat.PEM)
    key.load_cert_from_memory(issued.cert_pem, xmlsec.KeyFormat.CERT_PEM)
    context = xmlsec.SignatureContext()
    context.key = key
    context.sign(signature)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def verify_with_libxmlsec1(
    package: bytes, *, key_pem: bytes | None = None, ca_pem: bytes | None = None
) -> None:
    """libxmlsec1's verdict (raises xmlsec.Error when the signature does not verify): with
    the signer's certificate pinned, or with only the CA trusted (KeyInfo chain validated)."""
    root = etree.fromstring(package)
    signature = xmlsec.tree.find_node(root, xmlsec.constants.NodeSignature)
    assert signature is not None
    if ca_pem is not None:
        manager = xmlsec.KeysManager()
        manager.load_cert_from_memory(ca_pem, xmlsec.KeyFormat.CERT_PEM, xmlsec.KeyDataType.TRUSTED)
        context = xmlsec.SignatureContext(manager)
    else:
        assert key_pem is not None
        context = xmlsec.SignatureContext()
        context.key = xmlsec.Key.from_memory(key_pem, xmlsec.KeyFormat.CERT_PEM)
    context.verify(signature)


def test_signed_by_libxmlsec1_verifies_in_the_hub(agency: pki.Issued, trust: TrustStore) -> None:
    signed = sign_with_libxmlsec1(PACKAGE, agency)
    assert b"<ds:Signature" in signed
    verify_with_libxmlsec1(signed, key_pem=agency.cert_pem)  # libxmlsec1 agrees with itself
    verified = verify_package(parse(signed), [agency.certificate], trust=trust)
    assert verified.certificate == agency.certificate
    expected = "ecdsa-sha256" if _is_ec(agency) else "rsa-sha256"
    assert verified.signature_method.endswith(expected)
    assert text_of(verified.signed_root.find(f".//{E}From/{E}OrganId")) == "000.00.00.H26"


def test_signed_by_libxmlsec1_then_tampered_is_refused_by_the_hub(
    agency: pki.Issued, trust: TrustStore
) -> None:
    from hub.errors import SignatureError

    tampered = sign_with_libxmlsec1(PACKAGE, agency).replace(
        "triển khai".encode(), "hủy bỏ".encode(), 1
    )
    with pytest.raises(SignatureError) as excinfo:
        verify_package(parse(tampered), [agency.certificate], trust=trust)
    assert excinfo.value.code == "signature.invalid"


def test_signed_by_the_hub_verifies_in_libxmlsec1(ca: pki.Issued, agency: pki.Issued) -> None:
    signed = sign_package(PACKAGE, agency.key_pem, agency.cert_pem)
    verify_with_libxmlsec1(signed, key_pem=agency.cert_pem)
    verify_with_libxmlsec1(signed, ca_pem=ca.cert_pem)  # the chain, from KeyInfo, to the CA


def test_libxmlsec1_refuses_what_the_hub_signed_once_tampered(
    ca: pki.Issued, agency: pki.Issued
) -> None:
    signed = sign_package(PACKAGE, agency.key_pem, agency.cert_pem)
    tampered = signed.replace(b"JVBERi0xLjcKJeLjz9MK", b"JVBERi0xLjQKJeLjz9MK")
    assert tampered != signed
    with pytest.raises(xmlsec.Error):
        verify_with_libxmlsec1(tampered, key_pem=agency.cert_pem)
    stranger = pki.new_ca("Stranger CA")
    with pytest.raises(xmlsec.Error):
        verify_with_libxmlsec1(signed, ca_pem=stranger.cert_pem)


def test_both_sides_see_the_same_ds_namespace(agency: pki.Issued) -> None:
    signed = sign_with_libxmlsec1(PACKAGE, agency)
    header = parse(signed).getroot().find(f"{E}edXMLEnvelope/{E}edXMLHeader")
    assert header is not None
    assert header[-1].tag == f"{{{DS_NS}}}Signature"
