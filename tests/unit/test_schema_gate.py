"""The schema check's gate (hub.edxml.schema._cleared): a faster path that never changes a verdict.

A package the gate clears skips the XSD's own base64 test, the signature-slot, manifest, agency
code, date and CodeNumber rules; every other package takes the full path. Whatever the package
and the policy, the report must be the one the full path alone gives: that is checked here on
mutations of real packages, and on the values each skipped rule looks at.
"""

from __future__ import annotations

import binascii
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from hub.edxml import schema
from hub.edxml.attachments import AttachmentInvalid, decode
from hub.edxml.model import Attachment
from hub.edxml.schema import Report, ValidationPolicy, check, detect_kind
from hub.edxml.writer import write_document
from hub.errors import LienthongError
from hub.xmlsafe import parse
from tests.support import document
from tests.unit.test_reader_fuzz import FUZZ, HUB_SEEDS, SMALL_SAMPLE_SEEDS, _mutated

POLICIES = (
    ValidationPolicy(),
    ValidationPolicy(**dict.fromkeys(ValidationPolicy.rules(), "warn")),  # type: ignore[arg-type]
    ValidationPolicy(**dict.fromkeys(ValidationPolicy.rules(), "reject")),  # type: ignore[arg-type]
)


def full_path(
    tree: etree._ElementTree, kind: schema.PackageKind, policy: ValidationPolicy
) -> Report:
    """What check() says when the gate clears nothing."""
    with mock.patch.object(schema, "_cleared", return_value=False):
        return check(tree, kind, policy)


def assert_same_verdicts(data: bytes) -> None:
    try:
        tree = parse(data)
    except LienthongError:
        return
    for kind in ("edoc", "status"):
        for policy in POLICIES:
            assert check(tree, kind, policy) == full_path(tree, kind, policy), (kind, policy)


@FUZZ
@given(_mutated(HUB_SEEDS + SMALL_SAMPLE_SEEDS))
def test_the_gate_never_changes_a_report(data: bytes) -> None:
    assert_same_verdicts(data)


PACKAGE = write_document(document()).decode()


def edited(old: str, new: str) -> bytes:
    assert old in PACKAGE
    return PACKAGE.replace(old, new, 1).encode()


def test_a_package_with_nothing_to_report_is_cleared() -> None:
    """The fast path is the usual one: hub-written packages take it (the benchmark's claim)."""
    assert schema._cleared(parse(PACKAGE.encode()), "edoc")
    assert check(parse(PACKAGE.encode()), "edoc") == Report()


@pytest.mark.parametrize(
    "value",
    [
        "2026/11/22",
        "2024/02/29",  # a leap day: left to the full path, which finds it real
        "2023/02/29",
        "2026/04/31",
        "2026/13/01",
        "0000/01/01",
        "2026/00/10",
        "2026/01/00",
        "2026-11-22",
    ],
)
def test_dates_at_the_gate(value: str) -> None:
    data = edited(">2026/11/22<", f">{value}<")
    assert_same_verdicts(data)
    warnings = check(parse(data), "edoc", POLICIES[1]).warnings
    impossible = value in ("2023/02/29", "2026/04/31", "2026/13/01", "0000/01/01")
    impossible |= value in ("2026/00/10", "2026/01/00")
    assert any("no such date exists" in w.message for w in warnings) == impossible


@pytest.mark.parametrize(
    "value", ["23:59:59", "00:00:00", "24:00:00", "12:60:00", "12:00:60", "9:00:00"]
)
def test_timestamps_at_the_gate(value: str) -> None:
    trace = "<edXML:TraceHeaderList><edXML:TraceHeader><edXML:OrganId>000.00.00.H26"
    trace += f"</edXML:OrganId><edXML:Timestamp>2026/11/22 {value}</edXML:Timestamp>"
    trace += "</edXML:TraceHeader></edXML:TraceHeaderList></edXML:edXMLHeader>"
    assert_same_verdicts(edited("</edXML:edXMLHeader>", trace))


@pytest.mark.parametrize(
    "code", ["000.00.31.H26", " 000.00.31.H26 ", "01.02.G22", "null", "", "000.00.31.h26"]
)
def test_agency_codes_at_the_gate(code: str) -> None:
    assert_same_verdicts(edited(">000.00.31.H26<", f">{code}<"))


@pytest.mark.parametrize("number", ["12345678901", "123456789012", " 12345678901 "])
def test_code_numbers_at_the_gate(number: str) -> None:
    assert_same_verdicts(edited("<edXML:CodeNumber>12<", f"<edXML:CodeNumber>{number}<"))


@pytest.mark.parametrize(
    ("reference", "attachment"),
    [
        ("cid:att-1", "cid:att-1"),
        ("att-1", "cid:att-1"),  # a writer that drops cid: on one side: matched all the same
        ("CID:att-1", "cid:att-1"),
        (" cid:att-1\n", "cid:att-1"),
        ("cid:att-1\u00a0", "cid:att-1"),
        ("cid:tệp-1", "cid:tệp-1"),
        ("cid:att 1", "cid:att  1"),
        ("cid:att-1", "cid:att-2"),
        ("cid:", "cid:att-1"),
        ("cid:cid:att-1", "cid:att-1"),
    ],
)
def test_content_ids_at_the_gate(reference: str, attachment: str) -> None:
    data = edited("<edXML:ContentId>cid:att-1<", f"<edXML:ContentId>{reference}<").decode()
    data = data.replace("<ContentId>cid:att-1<", f"<ContentId>{attachment}<", 1)
    assert_same_verdicts(data.encode())


def test_repeated_files_at_the_gate() -> None:
    reference = PACKAGE[
        PACKAGE.index("<edXML:Reference>") : PACKAGE.index("</edXML:edXMLManifest>")
    ]
    assert_same_verdicts(edited(reference, reference * 2))
    attachment = PACKAGE[PACKAGE.index("<Attachment>") : PACKAGE.index("</AttachmentEncoded>")]
    assert_same_verdicts(edited(attachment, attachment * 2))
    assert_same_verdicts(edited(attachment, ""))
    assert_same_verdicts(edited(reference, ""))


def test_what_the_gate_skips_in_the_signature_slot_goes_the_full_path() -> None:
    # A ds:Object is no signature: the full path reports it, and the codes inside it.
    ds = "http://www.w3.org/2000/09/xmldsig#"
    slot = f'<ds:Object xmlns:ds="{ds}"><edXML:OrganId>01.02.G22</edXML:OrganId></ds:Object>'
    data = edited("</edXML:edXMLHeader>", slot + "</edXML:edXMLHeader>")
    assert not schema._cleared(parse(data), "edoc")
    assert_same_verdicts(data)


def canonical(encoded: str) -> bool:
    return binascii.b2a_base64(binascii.a2b_base64(encoded), newline=False).decode() == encoded


@pytest.mark.parametrize("encoded", ["QUJDRA==", "QUJDRQ==", "QUJDRB==", "QUJDREU=", "QUJDREV="])
def test_base64_at_the_gate(encoded: str) -> None:
    at = PACKAGE.index("<ContentTransferEncoded>") + len("<ContentTransferEncoded>")
    data = (PACKAGE[:at] + encoded + PACKAGE[PACKAGE.index("</", at) :]).encode()
    assert_same_verdicts(data)
    assert check(parse(data), "edoc").ok == canonical(encoded)


# The strict check must accept nothing libxml2's xs:base64Binary refuses: the gate relies on it.
_BASE64 = etree.XMLSchema(
    etree.fromstring(
        b'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
        b'<xs:element name="c" type="xs:base64Binary"/></xs:schema>'
    )
)


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet="AQRgw+/0=9 \n\t\r!", max_size=14))
def test_strict_base64_is_within_xs_base64binary(text: str) -> None:
    element = etree.Element("c")
    element.text = text
    attachment = Attachment("1", "a.bin", "application/octet-stream", text)
    try:
        decode(attachment)
    except AttachmentInvalid:
        return
    assert _BASE64.validate(etree.ElementTree(element)), repr(text)


@pytest.mark.parametrize("encoded", ["QR==", "QUJDRB==", "QUI=", "QUJDRA=="])
def test_only_the_canonical_base64_padding_is_strict(encoded: str) -> None:
    attachment = Attachment("1", "a.bin", "application/octet-stream", encoded)
    if canonical(encoded):
        assert decode(attachment).data == binascii.a2b_base64(encoded)
    else:
        with pytest.raises(AttachmentInvalid, match="only the canonical encoding"):
            decode(attachment)


def test_the_gate_is_built_for_both_kinds() -> None:
    for kind in ("edoc", "status"):
        gate = schema._gate_source(schema._xsd_tree(kind))
        names = {t.get("name") for t in gate.iter("{http://www.w3.org/2001/XMLSchema}simpleType")}
        assert "Gate.OrganId.OrganId" in names and "Gate.Timestamp.Timestamp" in names
    assert detect_kind(parse(PACKAGE.encode())) == "edoc"
