"""The verification core (signing.xmldsig_core) through verify_package: what a C14N-and-crypto
core of our own could get wrong that signxml used to get right for us.

Each signature here is made by signxml's signer or by the hub's; tests/interop checks the same
core against libxmlsec1.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml.algorithms import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConstructionMethod,
    SignatureMethod,
)
from signxml.signer import XMLSigner

from hub.errors import SignatureError
from hub.xmlsafe import parse, text_of
from signing import pki, xmldsig_core
from signing.xmldsig import DS_NS, EDXML_NS, SignaturePolicy, sign_package, verify_package
from tests.unit.test_xmldsig import FROM_ORGANID, PACKAGE

E = f"{{{EDXML_NS}}}"
DEFAULT_POLICY = SignaturePolicy()
DS = f"{{{DS_NS}}}"
C14N = CanonicalizationMethod


@pytest.fixture(scope="module")
def ca() -> pki.Issued:
    return pki.new_ca("Lienthong CA lõi xác minh", key_type="ec")


@pytest.fixture(scope="module")
def sender(ca: pki.Issued) -> pki.Issued:
    return pki.issue_agency_certificate(ca, code="000.00.00.H26", name="UBND Thành phố Hà Nội")


@pytest.fixture(scope="module")
def sender_ec(ca: pki.Issued) -> pki.Issued:
    return pki.issue_agency_certificate(
        ca, code="000.00.00.H26", name="UBND Thành phố Hà Nội", key_type="ec"
    )


@pytest.fixture(scope="module")
def sender_p384(ca: pki.Issued) -> pki.Issued:
    key = ec.generate_private_key(ec.SECP384R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "P-384 agency")]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(pki.load_private_key(ca.key_pem), hashes.SHA384())  # type: ignore[arg-type]
    )
    return pki.Issued(
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
    )


@pytest.fixture(scope="module")
def signed(sender: pki.Issued) -> bytes:
    return sign_package(PACKAGE, sender.key_pem, sender.cert_pem)


def _signxml_sign(issued: pki.Issued, package: bytes = PACKAGE, **signer: object) -> bytes:
    """An enveloped signature in the envelope header, made by signxml with *signer* options."""
    root = parse(package).getroot()
    header = root.find(f"{E}edXMLEnvelope/{E}edXMLHeader")
    assert header is not None
    placeholder = etree.SubElement(header, f"{DS}Signature", nsmap={"ds": DS_NS})
    placeholder.set("Id", "placeholder")
    options: dict[str, object] = {"method": SignatureConstructionMethod.enveloped}
    options.update(signer)
    out = XMLSigner(**options).sign(  # type: ignore[arg-type]
        root, key=pki.load_private_key(issued.key_pem), cert=[issued.certificate]
    )
    return etree.tostring(out, xml_declaration=True, encoding="UTF-8")


def _verify(data: bytes, issued: pki.Issued, policy: SignaturePolicy = DEFAULT_POLICY) -> str:
    return verify_package(parse(data), [issued.certificate], policy).signature_method


def _refused(data: bytes | etree._ElementTree, issued: pki.Issued) -> SignatureError:
    tree = parse(data) if isinstance(data, bytes) else data
    with pytest.raises(SignatureError) as excinfo:
        verify_package(tree, [issued.certificate])
    return excinfo.value


def _value(tree: etree._ElementTree, tag: str) -> etree._Element:
    found = tree.getroot().find(f".//{DS}{tag}")
    assert found is not None
    return found


# -- the values in the signature -------------------------------------------------------------


def test_tampered_digest_value_is_invalid(signed: bytes, sender: pki.Issued) -> None:
    tree = parse(signed)
    digest = _value(tree, "DigestValue")
    raw = bytearray(base64.b64decode(text_of(digest)))
    raw[0] ^= 1
    digest.text = base64.b64encode(bytes(raw)).decode()
    # DigestValue is inside SignedInfo: the signature value no longer covers what is there.
    error = _refused(tree, sender)
    assert error.code == "signature.invalid"
    assert "does not verify" in error.detail


def test_tampered_signature_value_is_invalid(signed: bytes, sender: pki.Issued) -> None:
    tree = parse(signed)
    value = _value(tree, "SignatureValue")
    raw = bytearray(base64.b64decode("".join(text_of(value).split())))
    raw[-1] ^= 1
    value.text = base64.b64encode(bytes(raw)).decode()
    error = _refused(tree, sender)
    assert error.code == "signature.invalid"
    assert "signature value does not verify" in error.detail


def test_signature_value_that_is_not_base64_is_refused(signed: bytes, sender: pki.Issued) -> None:
    tree = parse(signed)
    _value(tree, "SignatureValue").text = "not base64 at all!"
    error = _refused(tree, sender)
    assert error.code == "signature.policy"  # the XMLDSig schema says base64Binary
    assert "XMLDSig schema" in error.detail


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (b'<edXML:edXMLManifest version="1.0">', b'<edXML:edXMLManifest version="1.1">'),
        (b"<edXML:CodeNumber>123<", b"<edXML:CodeNumber>123 <"),  # one space more
        (b"</edXML:To>\n", b"</edXML:To>\n\n"),  # white space between elements is signed too
        (b"<ContentId>cid:1</ContentId>", b"<ContentId>cid:2</ContentId>"),  # outside envelope
    ],
)
def test_content_changed_after_signing_is_invalid(
    signed: bytes, sender: pki.Issued, before: bytes, after: bytes
) -> None:
    assert before in signed
    error = _refused(signed.replace(before, after, 1), sender)
    assert error.code == "signature.invalid"
    assert "changed after signing" in error.detail


# -- what the digest covers: the document minus the Signature element ------------------------


def test_signed_content_is_exactly_what_was_hashed(signed: bytes, sender: pki.Issued) -> None:
    verified = verify_package(parse(signed), [sender.certificate])
    octets = etree.tostring(verified.signed_root.getroottree(), method="c14n", exclusive=True)
    digest = text_of(_value(parse(signed), "DigestValue"))
    assert base64.b64encode(hashlib.sha256(octets).digest()).decode() == digest


def test_verification_leaves_the_received_tree_untouched(signed: bytes, sender: pki.Issued) -> None:
    tree = parse(signed.replace(FROM_ORGANID, FROM_ORGANID + b"<!-- ghi chu -->", 1))
    before = etree.tostring(tree)
    verified = verify_package(tree, [sender.certificate])
    assert etree.tostring(tree) == before  # Signature and comment still there
    assert verified.signed_root.getroottree() is not tree
    assert verified.signed_root.find(f".//{DS}Signature") is None
    # line numbers survive the copy, for error messages read from the signed content
    subject = verified.signed_root.find(f".//{E}Subject")
    assert subject is not None
    lines = signed.split(b"\n")
    assert subject.sourceline == next(i for i, x in enumerate(lines, 1) if b"<edXML:Subject>" in x)


def test_text_after_the_signature_stays_signed(signed: bytes, sender: pki.Issued) -> None:
    """The enveloped transform removes the Signature element, not the text node after it."""
    closing = b"</ds:Signature>"
    assert signed.count(closing) == 1
    tail = signed.split(closing, 1)[1].split(b"<", 1)[0]
    assert tail.strip() == b"" and tail  # indentation before </edXML:edXMLHeader>
    verified = verify_package(parse(signed), [sender.certificate])
    header = verified.signed_root.find(f"{E}edXMLEnvelope/{E}edXMLHeader")
    assert header is not None
    assert (header[-1].tail or "").endswith(tail.decode())  # joined to the text before it
    for changed in (b"", tail + b"  ", tail + b"x"):
        error = _refused(signed.replace(closing + tail, closing + changed, 1), sender)
        assert error.code == "signature.invalid"
        assert "changed after signing" in error.detail


def test_signature_without_text_around_it_verifies(sender: pki.Issued) -> None:
    compact = etree.tostring(parse(PACKAGE).getroot(), encoding="UTF-8")
    compact = b"".join(line.strip() for line in compact.split(b"\n"))
    out = sign_package(compact, sender.key_pem, sender.cert_pem)
    assert b"</ds:Signature></edXML:edXMLHeader>" in out
    verified = verify_package(parse(out), [sender.certificate])
    assert text_of(verified.signed_root.find(f".//{E}From/{E}OrganId")) == "000.00.00.H26"


# -- comments and processing instructions ----------------------------------------------------


def test_comments_are_never_covered_nor_readable(signed: bytes, sender: pki.Issued) -> None:
    """URI="" is the document minus its comments (XMLDSig §4.4.3.3), whatever the C14N says."""
    commented = signed.replace(b"<edXML:edXMLBody>", b"<!-- a --><edXML:edXMLBody><!-- b -->", 1)
    commented = commented.replace(b"<edXML", b"<!-- before the root -->\n<edXML", 1)
    verified = verify_package(parse(commented), [sender.certificate])
    assert not list(verified.signed_root.iter(etree.Comment))


def test_comments_present_when_signed_verify_after_removal(sender: pki.Issued) -> None:
    with_comments = PACKAGE.replace(FROM_ORGANID, FROM_ORGANID + b"<!-- nguoi gui -->", 1)
    out = sign_package(with_comments, sender.key_pem, sender.cert_pem)
    assert b"<!-- nguoi gui -->" in out
    assert _verify(out, sender)
    assert _verify(out.replace(b"<!-- nguoi gui -->", b""), sender)


def test_processing_instruction_added_before_the_root_is_caught(
    signed: bytes, sender: pki.Issued
) -> None:
    """URI="" is the document, not the root element: processing instructions outside the root
    are covered (a package signed with one is in tests/interop)."""
    with_pi = signed.replace(b"?>\n", b'?>\n<?xml-stylesheet href="edxml.xsl"?>\n', 1)
    assert with_pi != signed
    error = _refused(with_pi, sender)
    assert error.code == "signature.invalid"
    assert "changed after signing" in error.detail


# -- canonicalisation methods ----------------------------------------------------------------


@pytest.mark.parametrize(
    "method",
    [
        C14N.CANONICAL_XML_1_0,
        C14N.CANONICAL_XML_1_1,
        C14N.EXCLUSIVE_XML_CANONICALIZATION_1_0,
        C14N.CANONICAL_XML_1_0_WITH_COMMENTS,
        C14N.EXCLUSIVE_XML_CANONICALIZATION_1_0_WITH_COMMENTS,
    ],
)
def test_inclusive_and_exclusive_c14n_verify(sender: pki.Issued, method: C14N) -> None:
    out = _signxml_sign(sender, c14n_algorithm=method)
    assert method.value.encode() in out
    verified = verify_package(parse(out), [sender.certificate])
    assert verified.c14n_method == method.value
    tampered = out.replace("triển khai".encode(), "hủy bỏ".encode(), 1)
    assert _refused(tampered, sender).code == "signature.invalid"


def test_inclusive_c14n_covers_namespaces_declared_above_the_signature(sender: pki.Issued) -> None:
    """Inclusive C14N of SignedInfo renders every namespace in scope, so an unused declaration
    on the root is part of what the SignatureValue signs."""
    with_ns = PACKAGE.replace(b'<edXML xmlns="', b'<edXML xmlns:x="urn:example:unused" xmlns="', 1)
    out = _signxml_sign(sender, with_ns, c14n_algorithm=C14N.CANONICAL_XML_1_0)
    assert _verify(out, sender)
    renamed = out.replace(b"urn:example:unused", b"urn:example:other", 1)
    assert _refused(renamed, sender).code == "signature.invalid"


# -- algorithms ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signature_method", "digest"),
    [
        (SignatureMethod.RSA_SHA384, DigestAlgorithm.SHA384),
        (SignatureMethod.RSA_SHA512, DigestAlgorithm.SHA512),
        (SignatureMethod.SHA256_RSA_MGF1, DigestAlgorithm.SHA256),  # RSA-PSS
        (SignatureMethod.SHA512_RSA_MGF1, DigestAlgorithm.SHA512),
    ],
)
def test_rsa_methods(
    sender: pki.Issued, signature_method: SignatureMethod, digest: DigestAlgorithm
) -> None:
    out = _signxml_sign(
        sender,
        signature_algorithm=signature_method,
        digest_algorithm=digest,
        c14n_algorithm=C14N.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    assert _verify(out, sender) == signature_method.value
    tree = parse(out)
    value = _value(tree, "SignatureValue")
    raw = bytearray(base64.b64decode("".join(text_of(value).split())))
    raw[5] ^= 0x80
    value.text = base64.b64encode(bytes(raw)).decode()
    assert _refused(tree, sender).code == "signature.invalid"


def test_ecdsa_p384(sender_p384: pki.Issued) -> None:
    out = sign_package(PACKAGE, sender_p384.key_pem, sender_p384.cert_pem)
    assert _verify(out, sender_p384) == SignatureMethod.ECDSA_SHA384.value
    value = base64.b64decode("".join(text_of(_value(parse(out), "SignatureValue")).split()))
    assert len(value) == 96  # r||s, 48 bytes each


def test_ecdsa_signature_value_must_be_r_and_s_of_the_curve_size(
    sender_ec: pki.Issued,
) -> None:
    out = sign_package(PACKAGE, sender_ec.key_pem, sender_ec.cert_pem)
    tree = parse(out)
    value = _value(tree, "SignatureValue")
    raw = base64.b64decode("".join(text_of(value).split()))
    assert len(raw) == 64
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    for wrong in (encode_dss_signature(r, s), raw[:-1], raw + b"\x00", b"\x00" + raw):
        value.text = base64.b64encode(wrong).decode()
        error = _refused(tree, sender_ec)
        assert error.code == "signature.invalid"
        assert "r||s, 64 bytes" in error.detail


def test_signature_method_for_another_key_type_is_invalid(
    sender: pki.Issued, sender_ec: pki.Issued
) -> None:
    out = sign_package(PACKAGE, sender_ec.key_pem, sender_ec.cert_pem)
    tree = parse(out)
    key_info = _value(tree, "KeyInfo")
    key_info.getparent().remove(key_info)  # type: ignore[union-attr]
    with pytest.raises(SignatureError) as excinfo:
        verify_package(tree, [sender.certificate])  # an RSA certificate for an ECDSA signature
    assert excinfo.value.code == "signature.invalid"
    assert "the SignatureMethod is ECDSA, the certificate holds" in excinfo.value.detail


def test_every_algorithm_a_policy_can_allow_is_implemented() -> None:
    """SignaturePolicy checks its sets against signxml's names; the core must verify them all."""
    policy = SignaturePolicy(allow_sha1=True)
    known_methods = {
        m.value
        for m in SignatureMethod
        if not m.name.startswith(("HMAC", "DSA")) and "sha1" not in m.value.lower()
    }
    assert known_methods | policy.allowed_signature_methods <= set(xmldsig_core.SIGNATURE_METHODS)
    assert {m.value for m in DigestAlgorithm} <= set(xmldsig_core.DIGEST_METHODS)
    assert {m.value for m in C14N} == set(xmldsig_core.C14N_METHODS)


# -- KeyInfo ---------------------------------------------------------------------------------


def _add_rsa_key_value(tree: etree._ElementTree, key: rsa.RSAPublicKey) -> None:
    numbers = key.public_numbers()
    key_info = _value(tree, "KeyInfo")
    key_value = etree.SubElement(key_info, f"{DS}KeyValue")
    rsa_value = etree.SubElement(key_value, f"{DS}RSAKeyValue")
    for tag, number in (("Modulus", numbers.n), ("Exponent", numbers.e)):
        el = etree.SubElement(rsa_value, f"{DS}{tag}")
        el.text = base64.b64encode(number.to_bytes((number.bit_length() + 7) // 8, "big")).decode()


def test_key_value_must_be_the_certificates_key(signed: bytes, sender: pki.Issued) -> None:
    tree = parse(signed)
    key = sender.certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    _add_rsa_key_value(tree, key)
    assert verify_package(tree, [sender.certificate])  # the same key: fine

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    tree = parse(signed)
    _add_rsa_key_value(tree, other)
    error = _refused(tree, sender)
    assert error.code == "signature.invalid"
    assert "KeyValue that is not the certificate's key" in error.detail


# -- structure -------------------------------------------------------------------------------


def test_signature_structure_is_checked_against_the_xmldsig_schema(
    signed: bytes, sender: pki.Issued
) -> None:
    tree = parse(signed)
    signature = _value(tree, "Signature")
    signature.insert(0, etree.Element(f"{DS}SignatureValue"))  # before SignedInfo
    error = _refused(tree, sender)
    assert error.code == "signature.policy"
    assert "XMLDSig schema" in error.detail
