"""Signing and verifying edXML packages: the signature's place, the policy, trust and tampering."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml.algorithms import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConstructionMethod,
    SignatureMethod,
)
from signxml.signer import XMLSigner
from signxml.verifier import SignatureConfiguration, XMLVerifier

from hub.errors import SignatureError
from hub.xmlsafe import parse, text_of
from signing import pki
from signing.xmldsig import DS_NS, EDXML_NS, SignaturePolicy, sign_package, verify_package

SAMPLES = Path(__file__).resolve().parents[3] / "shared/interop/vxp-sdk-samples"
E = f"{{{EDXML_NS}}}"
DS = f"{{{DS_NS}}}"

PACKAGE = """<?xml version="1.0" encoding="UTF-8"?>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">
  <edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">
    <edXML:edXMLHeader>
      <edXML:MessageHeader>
        <edXML:From>
          <edXML:OrganId>000.00.00.H26</edXML:OrganId>
          <edXML:OrganName>UBND Thành phố Hà Nội</edXML:OrganName>
        </edXML:From>
        <edXML:To>
          <edXML:OrganId>000.00.12.H26</edXML:OrganId>
          <edXML:OrganName>Sở Tài chính Hà Nội</edXML:OrganName>
        </edXML:To>
        <edXML:DocumentId>000.00.00.H26,2024/05/02,123/UBND-KT</edXML:DocumentId>
        <edXML:Code>
          <edXML:CodeNumber>123</edXML:CodeNumber>
          <edXML:CodeNotation>UBND-KT</edXML:CodeNotation>
        </edXML:Code>
        <edXML:Subject>V/v triển khai liên thông văn bản điện tử</edXML:Subject>
        <edXML:Content>V/v triển khai liên thông văn bản điện tử</edXML:Content>
      </edXML:MessageHeader>
      <edXML:TraceHeaderList>
        <edXML:TraceHeader>
          <edXML:OrganId>000.00.00.H26</edXML:OrganId>
          <edXML:Timestamp>2024/05/02 09:00:00</edXML:Timestamp>
        </edXML:TraceHeader>
      </edXML:TraceHeaderList>
    </edXML:edXMLHeader>
    <edXML:edXMLBody>
      <edXML:edXMLManifest version="1.0">
        <edXML:Reference>
          <edXML:ContentId>cid:1</edXML:ContentId>
          <edXML:ContentType>application/pdf</edXML:ContentType>
          <edXML:AttachmentName>cong-van.pdf</edXML:AttachmentName>
        </edXML:Reference>
      </edXML:edXMLManifest>
    </edXML:edXMLBody>
  </edXML:edXMLEnvelope>
  <AttachmentEncoded>
    <Attachment>
      <ContentId>cid:1</ContentId>
      <AttachmentName>cong-van.pdf</AttachmentName>
      <ContentType>application/pdf</ContentType>
      <ContentTransferEncoded>JVBERi0xLjcKJeLjz9MK</ContentTransferEncoded>
    </Attachment>
  </AttachmentEncoded>
</edXML>
""".encode()

FROM_ORGANID = b"<edXML:OrganId>000.00.00.H26</edXML:OrganId>"


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> pki.Issued:
    return pki.new_ca("Lienthong CA thử nghiệm", key_type="ec")


@pytest.fixture(scope="module")
def sender(ca: pki.Issued) -> pki.Issued:
    return pki.issue_agency_certificate(ca, code="000.00.00.H26", name="UBND Thành phố Hà Nội")


@pytest.fixture(scope="module")
def sender_ec(ca: pki.Issued) -> pki.Issued:
    return pki.issue_agency_certificate(
        ca, code="000.00.00.H26", name="UBND Thành phố Hà Nội", key_type="ec"
    )


@pytest.fixture(scope="module")
def other(ca: pki.Issued) -> pki.Issued:
    return pki.issue_agency_certificate(ca, code="000.00.00.H41", name="UBND Tỉnh Nghệ An")


@pytest.fixture(scope="module")
def signed(sender: pki.Issued) -> bytes:
    return sign_package(PACKAGE, sender.key_pem, sender.cert_pem)


def _code(excinfo: pytest.ExceptionInfo[SignatureError]) -> str:
    return str(excinfo.value.code)


def _custom_sign(
    issued: pki.Issued,
    *,
    parent: Callable[[etree._Element], etree._Element] | None = None,
    signer: XMLSigner | None = None,
    reference_uri: str | None = None,
    prepare: Callable[[etree._Element], None] | None = None,
) -> bytes:
    """Sign PACKAGE with signxml directly, to build the shapes sign_package never makes."""
    root = parse(PACKAGE).getroot()
    if prepare is not None:
        prepare(root)
    where = parent(root) if parent is not None else root.find(f"{E}edXMLEnvelope/{E}edXMLHeader")
    assert where is not None
    placeholder = etree.SubElement(where, f"{DS}Signature", nsmap={"ds": DS_NS})
    placeholder.set("Id", "placeholder")
    signer = signer or XMLSigner(
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
    )
    out = signer.sign(
        root,
        key=pki.load_private_key(issued.key_pem),  # type: ignore[arg-type]
        cert=[issued.certificate],
        reference_uri=reference_uri,
    )
    return etree.tostring(out, xml_declaration=True, encoding="UTF-8")


def _signature_of(tree: etree._ElementTree) -> etree._Element:
    sig = tree.getroot().find(f".//{DS}Signature")
    assert sig is not None
    return sig


# -- round trips -----------------------------------------------------------------------------


def test_round_trip_rsa(signed: bytes, sender: pki.Issued) -> None:
    verified = verify_package(parse(signed), [sender.certificate])
    assert verified.certificate == sender.certificate
    assert verified.signature_method == SignatureMethod.RSA_SHA256.value
    assert verified.digest_method == DigestAlgorithm.SHA256.value
    assert verified.c14n_method == CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0.value
    organ_id = verified.signed_root.find(f"{E}edXMLEnvelope/{E}edXMLHeader//{E}From/{E}OrganId")
    assert text_of(organ_id) == "000.00.00.H26"
    subject = verified.signed_root.find(f".//{E}Subject")
    assert text_of(subject) == "V/v triển khai liên thông văn bản điện tử"
    # the signature itself is not part of what it covers
    assert verified.signed_root.find(f".//{DS}Signature") is None
    # the attachments, outside the envelope, are covered too
    assert text_of(verified.signed_root.find(f".//{E}ContentTransferEncoded")).startswith("JVBER")


def test_round_trip_ec(sender_ec: pki.Issued) -> None:
    out = sign_package(PACKAGE, sender_ec.key_pem, sender_ec.cert_pem)
    verified = verify_package(parse(out), [sender_ec.certificate])
    assert verified.signature_method == SignatureMethod.ECDSA_SHA256.value
    assert text_of(verified.signed_root.find(f".//{E}From/{E}OrganId")) == "000.00.00.H26"


def test_sign_with_loaded_key_and_certificate(sender: pki.Issued) -> None:
    out = sign_package(PACKAGE, sender.private_key, sender.certificate)
    assert verify_package(parse(out), [sender.certificate]).certificate == sender.certificate


def test_signed_bytes_shape(signed: bytes, sender: pki.Issued) -> None:
    assert signed.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<edXML ')
    assert "UBND Thành phố Hà Nội".encode() in signed  # UTF-8, not character references
    header = parse(signed).getroot().find(f"{E}edXMLEnvelope/{E}edXMLHeader")
    assert header is not None
    last = header[-1]
    assert last.tag == f"{DS}Signature"
    assert last.prefix == "ds"
    assert last.get("Id") is None  # the placeholder's Id is gone
    refs = last.findall(f"{DS}SignedInfo/{DS}Reference")
    assert len(refs) == 1
    assert refs[0].get("URI") == ""
    transforms = [t.get("Algorithm") for t in refs[0].iter(f"{DS}Transform")]
    assert transforms == [
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
        "http://www.w3.org/2001/10/xml-exc-c14n#",
    ]
    der = base64.b64decode("".join(text_of(last.find(f".//{DS}X509Certificate")).split()))
    assert der == sender.certificate.public_bytes(serialization.Encoding.DER)
    # the rest of the package is unchanged apart from the signature
    assert b"<edXML:edXMLBody>" in signed
    assert b"<AttachmentEncoded>" in signed


def test_sign_refuses_signed_and_headerless_packages(signed: bytes, sender: pki.Issued) -> None:
    with pytest.raises(ValueError, match="already carries a signature"):
        sign_package(signed, sender.key_pem, sender.cert_pem)
    no_header = PACKAGE.replace(b"edXMLHeader>", b"edXMLHead>")
    with pytest.raises(ValueError, match="no edXML:edXMLEnvelope/edXML:edXMLHeader"):
        sign_package(no_header, sender.key_pem, sender.cert_pem)
    with pytest.raises(ValueError, match="not well-formed"):
        sign_package(PACKAGE[:-20], sender.key_pem, sender.cert_pem)


def test_sign_refuses_a_key_that_is_not_the_certificates(
    sender: pki.Issued, other: pki.Issued
) -> None:
    with pytest.raises(ValueError, match="does not belong to the certificate"):
        sign_package(PACKAGE, other.key_pem, sender.cert_pem)


# -- tampering and trust ---------------------------------------------------------------------


def test_tampered_subject_is_invalid(signed: bytes, sender: pki.Issued) -> None:
    tampered = signed.replace("triển khai".encode(), "hủy bỏ".encode(), 1)
    assert tampered != signed
    with pytest.raises(SignatureError) as excinfo:
        verify_package(parse(tampered), [sender.certificate])
    assert _code(excinfo) == "signature.invalid"
    assert "changed after signing" in excinfo.value.detail
    assert isinstance(excinfo.value.__cause__, Exception)


def test_tampered_attachment_is_invalid(signed: bytes, sender: pki.Issued) -> None:
    tampered = signed.replace(b"JVBERi0xLjcKJeLjz9MK", b"JVBERi0xLjQKJeLjz9MK")
    with pytest.raises(SignatureError) as excinfo:
        verify_package(parse(tampered), [sender.certificate])
    assert _code(excinfo) == "signature.invalid"


def test_another_agencys_signature_is_untrusted(sender: pki.Issued, other: pki.Issued) -> None:
    forged = sign_package(PACKAGE, other.key_pem, other.cert_pem)
    with pytest.raises(SignatureError) as excinfo:
        verify_package(parse(forged), [sender.certificate])
    assert _code(excinfo) == "signature.untrusted"
    assert "000.00.00.H41" in excinfo.value.detail  # names the certificate found …
    assert pki.fingerprint(sender.certificate) in excinfo.value.detail  # … and the expected one


def test_keyinfo_swapped_for_the_registered_certificate_is_invalid(
    sender: pki.Issued, other: pki.Issued
) -> None:
    forged = parse(sign_package(PACKAGE, other.key_pem, other.cert_pem))
    cert_el = _signature_of(forged).find(f".//{DS}X509Certificate")
    assert cert_el is not None
    der = sender.certificate.public_bytes(serialization.Encoding.DER)
    cert_el.text = base64.b64encode(der).decode()
    with pytest.raises(SignatureError) as excinfo:
        verify_package(forged, [sender.certificate])
    assert _code(excinfo) == "signature.invalid"
    assert "does not verify" in excinfo.value.detail


def test_keyinfo_is_optional_the_registered_certificate_is_pinned(
    signed: bytes, sender: pki.Issued, other: pki.Issued
) -> None:
    tree = parse(signed)
    key_info = _signature_of(tree).find(f"{DS}KeyInfo")
    assert key_info is not None
    key_info.getparent().remove(key_info)  # type: ignore[union-attr]
    verified = verify_package(tree, [other.certificate, sender.certificate])
    assert verified.certificate == sender.certificate
    with pytest.raises(SignatureError) as excinfo:
        verify_package(tree, [other.certificate])
    assert _code(excinfo) == "signature.invalid"


def test_rotation_tries_every_registered_certificate(
    sender: pki.Issued, sender_ec: pki.Issued
) -> None:
    out = sign_package(PACKAGE, sender_ec.key_pem, sender_ec.cert_pem)
    registered = [sender.certificate, sender_ec.certificate]
    assert verify_package(parse(out), registered).certificate == sender_ec.certificate


def test_no_registered_certificate_is_untrusted(signed: bytes) -> None:
    with pytest.raises(SignatureError) as excinfo:
        verify_package(parse(signed), [])
    assert _code(excinfo) == "signature.untrusted"
    assert "No signing certificate is registered" in excinfo.value.detail


def test_expired_certificate_is_untrusted_unless_judged_at_signing_time(
    signed: bytes, sender: pki.Issued
) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=900)
    with pytest.raises(SignatureError) as excinfo:
        verify_package(parse(signed), [sender.certificate], at=later)
    assert _code(excinfo) == "signature.untrusted"
    assert "expired" in excinfo.value.detail
    assert verify_package(parse(signed), [sender.certificate], at=dt.datetime.now(dt.UTC))


def test_weak_rsa_key_is_refused_by_policy(ca: pki.Issued) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    ca_key = pki.load_private_key(ca.key_pem)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weak")]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    weak = pki.Issued(
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
    )
    with pytest.raises(ValueError, match="1024 bits"):
        sign_package(PACKAGE, weak.key_pem, weak.cert_pem)
    with pytest.raises(SignatureError) as excinfo:
        verify_package(parse(_custom_sign(weak)), [cert])
    assert _code(excinfo) == "signature.policy"
    assert "RSA key of 1024 bits, at least 2048 required" in excinfo.value.detail


# -- missing signatures ----------------------------------------------------------------------


def test_unsigned_package_is_missing(sender: pki.Issued) -> None:
    with pytest.raises(SignatureError) as excinfo:
        verify_package(parse(PACKAGE), [sender.certificate])
    assert _code(excinfo) == "signature.missing"
    assert "no XMLDSig signature" in excinfo.value.detail


def test_sdk_signature_in_edxml_namespace_is_missing_with_explanation(
    sender: pki.Issued,
) -> None:
    sample = SAMPLES / "edoc_update.edxml"
    if not sample.is_file():
        pytest.skip(f"SDK samples not found at {SAMPLES}")
    tree = parse(sample.read_bytes())
    sdk_signature = tree.getroot().find(f".//{E}edXMLHeader/{E}Signature")
    assert sdk_signature is not None  # unprefixed, under the default edXML namespace
    with pytest.raises(SignatureError) as excinfo:
        verify_package(tree, [sender.certificate])
    assert _code(excinfo) == "signature.missing"
    detail = excinfo.value.detail
    assert "edXML namespace" in detail
    assert EDXML_NS in detail
    assert "no XMLDSig signature to any library" in detail
    assert DS_NS in detail
    assert excinfo.value.problems[0].path == "/edXML/edXMLEnvelope/edXMLHeader/Signature"
    line = sdk_signature.sourceline
    assert isinstance(line, int)
    assert excinfo.value.problems[0].line == line


# -- policy ----------------------------------------------------------------------------------


def test_two_signatures_are_refused(signed: bytes, sender: pki.Issued) -> None:
    tree = parse(signed)
    copy = parse(etree.tostring(_signature_of(tree))).getroot()
    body = tree.getroot().find(f"{E}edXMLEnvelope/{E}edXMLBody")
    assert body is not None
    body.append(copy)
    with pytest.raises(SignatureError) as excinfo:
        verify_package(tree, [sender.certificate])
    assert _code(excinfo) == "signature.policy"
    assert "2 XMLDSig Signatures" in excinfo.value.detail


def test_reference_by_id_is_refused_though_signxml_accepts_it(sender: pki.Issued) -> None:
    def add_id(root: etree._Element) -> None:
        header = root.find(f".//{E}MessageHeader")
        assert header is not None
        header.set("Id", "hdr")

    out = _custom_sign(sender, reference_uri="#hdr", prepare=add_id)
    # signxml, pinned, accepts it: only the MessageHeader is covered (DESIGN.md §8)
    XMLVerifier().verify(parse(out).getroot(), x509_cert=sender.certificate)
    with pytest.raises(SignatureError) as excinfo:
        verify_package(parse(out), [sender.certificate])
    assert _code(excinfo) == "signature.policy"
    assert 'URI="#hdr"' in excinfo.value.detail


def test_signature_outside_the_header_is_refused(sender: pki.Issued) -> None:
    def in_body(root: etree._Element) -> etree._Element:
        body = root.find(f"{E}edXMLEnvelope/{E}edXMLBody")
        assert body is not None
        return body

    out = _custom_sign(sender, parent=in_body)
    XMLVerifier().verify(parse(out).getroot(), x509_cert=sender.certificate)  # signxml accepts
    with pytest.raises(SignatureError) as excinfo:
        verify_package(parse(out), [sender.certificate])
    assert _code(excinfo) == "signature.policy"
    assert "/edXML/edXMLEnvelope/edXMLBody/Signature" in excinfo.value.detail
    assert "edXMLHeader" in excinfo.value.detail


def test_signature_at_the_root_is_refused(sender: pki.Issued) -> None:
    out = _custom_sign(sender, parent=lambda root: root)
    with pytest.raises(SignatureError) as excinfo:
        verify_package(parse(out), [sender.certificate])
    assert _code(excinfo) == "signature.policy"


class _LegacySigner(XMLSigner):
    """signxml refuses to make SHA-1 signatures; the SDK's legacy senders still do."""

    def check_deprecated_methods(self) -> None:
        pass


def test_rsa_sha1_is_refused_unless_allowed(sender: pki.Issued) -> None:
    with pytest.raises(Exception, match="SHA1-based algorithms are not supported"):
        XMLSigner(signature_algorithm=SignatureMethod.RSA_SHA1)
    legacy = _LegacySigner(
        signature_algorithm=SignatureMethod.RSA_SHA1,
        digest_algorithm=DigestAlgorithm.SHA1,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    out = _custom_sign(sender, signer=legacy)
    with pytest.raises(SignatureError) as excinfo:
        verify_package(parse(out), [sender.certificate])
    assert _code(excinfo) == "signature.policy"
    assert "rsa-sha1" in excinfo.value.detail
    assert "SHA-1 is refused" in excinfo.value.detail

    verified = verify_package(parse(out), [sender.certificate], SignaturePolicy(allow_sha1=True))
    assert verified.signature_method == SignatureMethod.RSA_SHA1.value
    assert verified.digest_method == DigestAlgorithm.SHA1.value


def test_sha1_signature_method_is_refused_before_any_cryptography(
    signed: bytes, sender: pki.Issued
) -> None:
    tree = parse(signed)
    method = _signature_of(tree).find(f"{DS}SignedInfo/{DS}SignatureMethod")
    assert method is not None
    method.set("Algorithm", SignatureMethod.RSA_SHA1.value)  # breaks the signature value too
    with pytest.raises(SignatureError) as excinfo:
        verify_package(tree, [sender.certificate])
    assert _code(excinfo) == "signature.policy"  # not signature.invalid: refused first


def test_sha1_digest_is_refused(signed: bytes, sender: pki.Issued) -> None:
    tree = parse(signed)
    digest = _signature_of(tree).find(f".//{DS}DigestMethod")
    assert digest is not None
    digest.set("Algorithm", DigestAlgorithm.SHA1.value)
    with pytest.raises(SignatureError) as excinfo:
        verify_package(tree, [sender.certificate])
    assert _code(excinfo) == "signature.policy"
    assert "DigestMethod" in excinfo.value.detail


def test_unexpected_transform_is_refused(signed: bytes, sender: pki.Issued) -> None:
    tree = parse(signed)
    transforms = _signature_of(tree).find(f".//{DS}Transforms")
    assert transforms is not None
    xpath = etree.SubElement(transforms, f"{DS}Transform")
    xpath.set("Algorithm", "http://www.w3.org/TR/1999/REC-xpath-19991116")
    with pytest.raises(SignatureError) as excinfo:
        verify_package(tree, [sender.certificate])
    assert _code(excinfo) == "signature.policy"
    assert "REC-xpath" in excinfo.value.detail


def test_ds_object_is_refused(signed: bytes, sender: pki.Issued) -> None:
    tree = parse(signed)
    obj = etree.SubElement(_signature_of(tree), f"{DS}Object")
    obj.text = "smuggled"
    with pytest.raises(SignatureError) as excinfo:
        verify_package(tree, [sender.certificate])
    assert _code(excinfo) == "signature.policy"
    assert "ds:Object" in excinfo.value.detail


def test_policy_refuses_sha1_outside_the_legacy_switch() -> None:
    with pytest.raises(ValueError, match="allow_sha1"):
        SignaturePolicy(signature_methods=frozenset({SignatureMethod.RSA_SHA1.value}))
    with pytest.raises(ValueError, match="unsupported"):
        SignaturePolicy(digest_methods=frozenset({"http://example.org/md5"}))
    assert SignatureMethod.RSA_SHA1.value not in SignaturePolicy().allowed_signature_methods
    assert (
        SignatureMethod.RSA_SHA1.value in SignaturePolicy(allow_sha1=True).allowed_signature_methods
    )


# -- comments --------------------------------------------------------------------------------


def test_comment_between_elements_verifies_and_is_gone_from_the_signed_content(
    signed: bytes, sender: pki.Issued
) -> None:
    """The SDK writes comments between elements: they change no value, and are accepted."""
    commented = signed.replace(FROM_ORGANID, FROM_ORGANID + b"<!-- nguoi gui -->", 1)
    assert commented != signed
    # Exclusive C14N without comments drops the comment: the digest is unchanged.
    verified = verify_package(parse(commented), [sender.certificate])
    organ_id = verified.signed_root.find(f".//{E}From/{E}OrganId")
    assert organ_id is not None
    assert organ_id.text == "000.00.00.H26"
    assert not list(verified.signed_root.iter(etree.Comment))


def test_signxml_configuration_used_is_strict() -> None:
    """Guard: signxml's own defaults still refuse SHA-1 (our policy relies on it as well)."""
    assert SignatureMethod.RSA_SHA1 not in SignatureConfiguration().signature_methods
    assert DigestAlgorithm.SHA1 not in SignatureConfiguration().digest_algorithms


def test_entities_in_a_leniently_parsed_tree_are_never_expanded(
    signed: bytes, sender: pki.Issued
) -> None:
    """signxml re-serialises and re-parses the tree: it must not expand what is left in it."""
    doctype = b'<!DOCTYPE edXML [<!ENTITY code "000.00.00.H26">]>\n'
    text = signed.replace(b"?>\n", b"?>\n" + doctype, 1).replace(
        FROM_ORGANID, b"<edXML:OrganId>&code;</edXML:OrganId>", 1
    )
    lenient = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    tree = etree.fromstring(text, lenient).getroottree()  # not how the hub parses: a stress test
    with pytest.raises(SignatureError) as excinfo:
        verify_package(tree, [sender.certificate])
    assert _code(excinfo) == "signature.invalid"
    assert "code" in excinfo.value.detail  # the undefined entity is reported, not expanded


# -- signature wrapping: one test per attack of issue 4 ---------------------------------------
# Covered above already: a signature over a sub-element only
# (test_reference_by_id_is_refused_though_signxml_accepts_it), a KeyInfo certificate that is not
# the registered one (test_another_agencys_signature_is_untrusted,
# test_keyinfo_swapped_for_the_registered_certificate_is_invalid).

FORGED_SUBJECT = "V/v tạm dừng liên thông văn bản điện tử"


def _forged_package() -> etree._Element:
    """PACKAGE with the subject an attacker wants recipients to read."""
    text = PACKAGE.replace(
        "V/v triển khai liên thông văn bản điện tử".encode(), FORGED_SUBJECT.encode()
    )
    assert text != PACKAGE
    return parse(text).getroot()


def test_wrapping_original_content_moved_under_an_object(sender: pki.Issued) -> None:
    # The original header is signed inside a ds:Object (an enveloping signature, Reference to
    # the Object's Id), and that Signature is put into a package showing forged content.
    original = parse(PACKAGE).getroot().find(f"{E}edXMLEnvelope/{E}edXMLHeader")
    assert original is not None
    signature = XMLSigner(
        method=SignatureConstructionMethod.enveloping,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    ).sign(
        original,
        key=pki.load_private_key(sender.key_pem),  # type: ignore[arg-type]
        cert=[sender.certificate],
    )
    forged = _forged_package()
    header = forged.find(f"{E}edXMLEnvelope/{E}edXMLHeader")
    assert header is not None
    header.append(signature)
    package = etree.tostring(forged, xml_declaration=True, encoding="UTF-8")
    # signxml, pinned, accepts it: what it verified is the Object, not what recipients read.
    result = XMLVerifier().verify(
        parse(package).getroot(),
        x509_cert=sender.certificate,
        expect_config=SignatureConfiguration(location=".//"),
    )
    assert FORGED_SUBJECT not in etree.tostring(result.signed_xml, encoding="unicode")  # type: ignore[union-attr]
    with pytest.raises(SignatureError) as excinfo:
        verify_package(parse(package), [sender.certificate])
    assert _code(excinfo) == "signature.policy"
    assert "ds:Object" in excinfo.value.detail


def test_wrapping_original_header_behind_a_second_header(signed: bytes, sender: pki.Issued) -> None:
    # A forged header is put first in the envelope; the signed one, with its signature, stays
    # behind it, where a reader taking the first header would not look.
    tree = parse(signed)
    envelope = tree.getroot().find(f"{E}edXMLEnvelope")
    assert envelope is not None
    forged_header = _forged_package().find(f"{E}edXMLEnvelope/{E}edXMLHeader")
    assert forged_header is not None
    envelope.insert(0, forged_header)
    assert len(envelope.findall(f"{E}edXMLHeader")) == 2
    with pytest.raises(SignatureError) as excinfo:
        verify_package(parse(etree.tostring(tree)), [sender.certificate])
    assert _code(excinfo) == "signature.invalid"
    assert "changed after signing" in excinfo.value.detail


def test_wrapping_duplicated_message_header(signed: bytes, sender: pki.Issued) -> None:
    tree = parse(signed)
    header = tree.getroot().find(f"{E}edXMLEnvelope/{E}edXMLHeader")
    assert header is not None
    forged_message = _forged_package().find(f".//{E}MessageHeader")
    assert forged_message is not None
    forged_message.find(f"{E}From/{E}OrganId").text = "000.00.00.G22"  # type: ignore[union-attr]
    header.insert(0, forged_message)
    assert len(header.findall(f"{E}MessageHeader")) == 2
    with pytest.raises(SignatureError) as excinfo:
        verify_package(parse(etree.tostring(tree)), [sender.certificate])
    assert _code(excinfo) == "signature.invalid"


def test_comment_injected_in_organid_is_refused(signed: bytes, sender: pki.Issued) -> None:
    injected = signed.replace(
        FROM_ORGANID, b"<edXML:OrganId>000.00.00.H<!-- x -->26</edXML:OrganId>", 1
    )
    assert injected != signed
    tree = parse(injected)
    raw = tree.getroot().find(f".//{E}From/{E}OrganId")
    assert raw is not None
    assert raw.text == "000.00.00.H"  # what a naive recipient reads
    # The canonical form has no comments, so the signature itself still holds …
    XMLVerifier().verify(tree.getroot(), x509_cert=sender.certificate)
    # … but the hub forwards these bytes, and recipients would read another agency code.
    with pytest.raises(SignatureError) as excinfo:
        verify_package(tree, [sender.certificate])
    assert _code(excinfo) == "signature.policy"
    detail = excinfo.value.detail
    assert (
        "comment inside the text of /edXML/edXMLEnvelope/edXMLHeader/MessageHeader/From/OrganId"
        in detail
    )
    assert "'000.00.00.H'" in detail
    assert (
        excinfo.value.problems[0].path
        == "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/From/OrganId"
    )


def test_processing_instruction_splitting_a_value_is_refused(
    signed: bytes, sender: pki.Issued
) -> None:
    injected = signed.replace("triển khai".encode(), "triển<?x y?> khai".encode(), 1)
    with pytest.raises(SignatureError) as excinfo:
        verify_package(parse(injected), [sender.certificate])
    assert _code(excinfo) == "signature.policy"
    assert "processing instruction inside the text of" in excinfo.value.detail


def test_extra_references_are_refused(sender: pki.Issued) -> None:
    def add_id(root: etree._Element) -> None:
        for tag, ident in (("MessageHeader", "hdr"), ("edXMLBody", "body")):
            element = root.find(f".//{E}{tag}")
            assert element is not None
            element.set("Id", ident)

    # The header and the body each covered by its own Reference: the attachments and anything
    # else outside them is signed by nobody.
    out = _custom_sign(sender, reference_uri=["#hdr", "#body"], prepare=add_id)  # type: ignore[arg-type]
    references = parse(out).getroot().findall(f".//{DS}SignedInfo/{DS}Reference")
    assert [r.get("URI") for r in references] == ["#hdr", "#body"]
    results = XMLVerifier().verify(
        parse(out).getroot(),
        x509_cert=sender.certificate,
        expect_config=SignatureConfiguration(expect_references=2),
    )
    assert len(results) == 2  # type: ignore[arg-type]  # signxml accepts it when asked to
    with pytest.raises(SignatureError) as excinfo:
        verify_package(parse(out), [sender.certificate])
    assert _code(excinfo) == "signature.policy"
    assert "2 ds:Reference elements" in excinfo.value.detail
