"""The hub's verification core against libxmlsec1 on the shapes the policy lets in beyond the
hub's own (exclusive C14N, RSA-SHA256): inclusive C14N 1.0/1.1 with namespaces and ``xml:``
attributes inherited by SignedInfo, the SDK's unprefixed legacy form, comments (never covered
by ``URI=""``), processing instructions before the root (covered) and ``InclusiveNamespaces``.
libxmlsec1 signs; the hub must verify, and must refuse the same package once tampered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from lxml import etree

from hub.errors import SignatureError
from hub.xmlsafe import parse, text_of
from signing import pki
from signing.xmldsig import EDXML_NS, SignaturePolicy, verify_package
from tests.unit.test_xmldsig import FROM_ORGANID, PACKAGE

xmlsec = pytest.importorskip(
    "xmlsec",
    reason="the interop tests need the xmlsec wheel (libxmlsec1): pip install -e '.[test]'",
)

pytestmark = pytest.mark.interop

E = f"{{{EDXML_NS}}}"
DEFAULT_POLICY = SignaturePolicy()
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
SUBJECT = "triển khai".encode()


@pytest.fixture(scope="module")
def ca() -> pki.Issued:
    return pki.new_ca("Interop CA C14N")


@pytest.fixture(scope="module")
def agency(ca: pki.Issued) -> pki.Issued:
    return pki.issue_agency_certificate(ca, code="000.00.00.H26", name="UBND Thành phố Hà Nội")


def sign(
    issued: pki.Issued,
    *,
    c14n: Any = None,
    transform: Any = None,
    method: Any = None,
    digest: Any = None,
    ns: str | None = "ds",
    package: bytes = PACKAGE,
    prepare: Callable[[etree._Element], None] | None = None,
    prefixes: list[str] | None = None,
    prefixes_in_signed_info: bool = False,
) -> bytes:
    """An enveloped signature by libxmlsec1 in the envelope header; the whole document (with
    anything before the root) is serialised, as a sender's system would send it."""
    root = etree.fromstring(package)
    if prepare is not None:
        prepare(root)
    header = root.find(f"{E}edXMLEnvelope/{E}edXMLHeader")
    assert header is not None
    c14n = c14n or xmlsec.Transform.EXCL_C14N
    signature = xmlsec.template.create(root, c14n, method or xmlsec.Transform.RSA_SHA256, ns=ns)
    header.append(signature)
    reference = xmlsec.template.add_reference(signature, digest or xmlsec.Transform.SHA256, uri="")
    xmlsec.template.add_transform(reference, xmlsec.Transform.ENVELOPED)
    c14n_transform = xmlsec.template.add_transform(reference, transform or c14n)
    if prefixes:
        xmlsec.template.transform_add_c14n_inclusive_namespaces(c14n_transform, prefixes)
    if prefixes and prefixes_in_signed_info:
        c14n_method = signature.find(f".//{{{xmlsec.constants.DSigNs}}}CanonicalizationMethod")
        xmlsec.template.transform_add_c14n_inclusive_namespaces(c14n_method, prefixes)
    xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
    key = xmlsec.Key.from_memory(issued.key_pem, xmlsec.KeyFormat.PEM)
    key.load_cert_from_memory(issued.cert_pem, xmlsec.KeyFormat.CERT_PEM)
    context = xmlsec.SignatureContext()
    context.key = key
    context.sign(signature)
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")


def verified_by_the_hub(
    data: bytes, issued: pki.Issued, policy: SignaturePolicy = DEFAULT_POLICY
) -> etree._Element:
    return verify_package(parse(data), [issued.certificate], policy).signed_root


def refused_by_the_hub(
    data: bytes, issued: pki.Issued, policy: SignaturePolicy = DEFAULT_POLICY
) -> str:
    with pytest.raises(SignatureError) as excinfo:
        verify_package(parse(data), [issued.certificate], policy)
    return str(excinfo.value.code)


def _organ_id(signed_root: etree._Element) -> str:
    return text_of(signed_root.find(f".//{E}From/{E}OrganId"))


@pytest.mark.parametrize("c14n", ["C14N", "C14N11", "EXCL_C14N", "C14N_COMMENTS"])
def test_c14n_methods(agency: pki.Issued, c14n: str) -> None:
    signed = sign(agency, c14n=getattr(xmlsec.Transform, c14n))
    assert _organ_id(verified_by_the_hub(signed, agency)) == "000.00.00.H26"
    tampered = signed.replace(SUBJECT, "hủy bỏ".encode(), 1)
    assert refused_by_the_hub(tampered, agency) == "signature.invalid"


def test_sdk_legacy_form_unprefixed_inclusive_rsa_sha1(agency: pki.Issued) -> None:
    """The SDK's legacy shape (DESIGN.md §8): Signature unprefixed under its own default
    namespace, inclusive C14N, rsa-sha1. signxml 5.2.0 could not verify it (a spurious
    xmlns="" in the canonical SignedInfo, signxml #275); libxmlsec1 and the hub's core can."""
    signed = sign(
        agency,
        c14n=xmlsec.Transform.C14N,
        method=xmlsec.Transform.RSA_SHA1,
        digest=xmlsec.Transform.SHA1,
        ns=None,
    )
    assert b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#">' in signed
    assert refused_by_the_hub(signed, agency) == "signature.policy"  # SHA-1: legacy only
    legacy = SignaturePolicy(allow_sha1=True)
    assert _organ_id(verified_by_the_hub(signed, agency, legacy)) == "000.00.00.H26"
    tampered = signed.replace(SUBJECT, "hủy bỏ".encode(), 1)
    assert refused_by_the_hub(tampered, agency, legacy) == "signature.invalid"


@pytest.mark.parametrize("c14n", ["C14N", "C14N11"])
def test_xml_lang_above_the_signature_is_inherited_by_inclusive_c14n(
    agency: pki.Issued, c14n: str
) -> None:
    def lang(root: etree._Element) -> None:
        root.set(XML_LANG, "vi")

    signed = sign(agency, c14n=getattr(xmlsec.Transform, c14n), prepare=lang)
    assert b'xml:lang="vi"' in signed
    assert verified_by_the_hub(signed, agency).get(XML_LANG) == "vi"
    changed = signed.replace(b'xml:lang="vi"', b'xml:lang="en"', 1)
    assert refused_by_the_hub(changed, agency) == "signature.invalid"


@pytest.mark.parametrize("transform", ["EXCL_C14N_COMMENTS", "C14N_COMMENTS"])
def test_comments_are_not_covered_even_with_a_with_comments_transform(
    agency: pki.Issued, transform: str
) -> None:
    commented = PACKAGE.replace(FROM_ORGANID, FROM_ORGANID + b"<!-- nguoi gui -->", 1)
    signed = sign(agency, transform=getattr(xmlsec.Transform, transform), package=commented)
    assert b"<!-- nguoi gui -->" in signed
    signed_root = verified_by_the_hub(signed, agency)
    assert not list(signed_root.iter(etree.Comment))
    # libxmlsec1 agrees: removing the comment does not break the signature
    uncommented = signed.replace(b"<!-- nguoi gui -->", b"", 1)
    assert _organ_id(verified_by_the_hub(uncommented, agency)) == "000.00.00.H26"


def test_processing_instruction_before_the_root_is_covered(agency: pki.Issued) -> None:
    pi = b'<?xml-stylesheet type="text/xsl" href="edxml.xsl"?>'
    with_pi = PACKAGE.replace(b"?>\n", b"?>\n" + pi + b"\n<!-- truoc goc -->\n", 1)
    signed = sign(agency, package=with_pi)
    assert pi in signed
    assert _organ_id(verified_by_the_hub(signed, agency)) == "000.00.00.H26"
    assert refused_by_the_hub(signed.replace(pi, b""), agency) == "signature.invalid"


def test_inclusive_namespaces_prefix_list_on_the_transform(agency: pki.Issued) -> None:
    """Exclusive C14N drops an unused namespace declaration unless the PrefixList names it."""
    unused = b'<edXML xmlns:x="urn:example:x" xmlns="'
    package = PACKAGE.replace(b'<edXML xmlns="', unused, 1)
    signed = sign(agency, package=package, prefixes=["x", "#default"])
    assert b'PrefixList="x #default"' in signed
    assert _organ_id(verified_by_the_hub(signed, agency)) == "000.00.00.H26"
    renamed = signed.replace(b"urn:example:x", b"urn:example:y", 1)
    assert refused_by_the_hub(renamed, agency) == "signature.invalid"
    without = sign(agency, package=package)
    assert (
        verified_by_the_hub(without.replace(b"urn:example:x", b"urn:example:y", 1), agency)
        is not None
    )


def test_inclusive_namespaces_in_signed_info_is_refused_by_the_schema(agency: pki.Issued) -> None:
    """The XMLDSig schema the hub checks the Signature against (signxml's, as before the core)
    takes no unknown element in CanonicalizationMethod: such a signature is refused."""
    signed = sign(agency, prefixes=["edXML"], prefixes_in_signed_info=True)
    assert refused_by_the_hub(signed, agency) == "signature.policy"


def test_xml_base_above_the_signature(agency: pki.Issued) -> None:
    """C14N 1.0 inherits xml:base like any xml: attribute; C14N 1.1 joins the values along the
    path, which the hub does not do: it refuses such a signature rather than guess."""

    def base(root: etree._Element) -> None:
        root.set("{http://www.w3.org/XML/1998/namespace}base", "http://example.org/goi/")

    signed = sign(agency, c14n=xmlsec.Transform.C14N, prepare=base)
    assert _organ_id(verified_by_the_hub(signed, agency)) == "000.00.00.H26"
    signed_11 = sign(agency, c14n=xmlsec.Transform.C14N11, prepare=base)
    with pytest.raises(SignatureError) as excinfo:
        verify_package(parse(signed_11), [agency.certificate])
    assert excinfo.value.code == "signature.invalid"
    assert "xml:base" in excinfo.value.detail
