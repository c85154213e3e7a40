"""hub.edxml.schema against the official SDK samples and against small broken packages.

The broken packages are made by editing the text of a small valid package (so that every element
keeps a real line number to assert on) or by editing a parsed sample.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from lxml import etree

from hub.edxml.schema import Report, check, detect_kind, validate
from hub.errors import MalformedXML, Problem, SchemaInvalid
from hub.xmlsafe import parse

# The repository sits next to shared/ (…/main/tests/unit/test_schema.py → …/shared).
SAMPLES = Path(__file__).resolve().parents[3] / "shared/interop/vxp-sdk-samples"

STATUS_SAMPLES = (
    "status.edxml",
    "status_inbox_01.edxml",
    "status_rejection_02.edxml",
    "status_acceptance_03.edxml",
    "status_assignment_04.edxml",
    "status_processing_05.edxml",
    "status_finish_06.edxml",
    "status_cancellation_13.edxml",
    "status_change-acceptance_15.edxml",
    "status_change-rejection_16.edxml",
)
EDOC_SAMPLES = ("edoc_update.edxml", "edoc_replacement.edxml", "edoc_revocation.edxml")

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
DS = "http://www.w3.org/2000/09/xmldsig#"
HEADER = "/edXML/edXMLEnvelope/edXMLHeader"
MH = f"{HEADER}/MessageHeader"

# A small valid document package in the unprefixed layout (the SDK samples use the prefixed
# one), with an empty ResponseFor as seen in the wild.
DOCUMENT = f"""<?xml version="1.0" encoding="UTF-8"?>
<edXML xmlns="{NS}">
  <edXMLEnvelope>
    <edXMLHeader>
      <MessageHeader>
        <From><OrganId>000.00.00.G22</OrganId><OrganName>Văn phòng Chính phủ</OrganName></From>
        <To><OrganId>000.00.00.H41</OrganId></To>
        <To><OrganId>000.00.00.H14</OrganId></To>
        <DocumentId>000.00.00.G22,2024/01/15,12/VPCP-TTĐT</DocumentId>
        <Code><CodeNumber>12</CodeNumber><CodeNotation>VPCP-TTĐT</CodeNotation></Code>
        <PromulgationInfo><Place>Hà Nội</Place><PromulgationDate>2024/01/15</PromulgationDate></PromulgationInfo>
        <DocumentType><Type>1</Type><TypeName>Công văn</TypeName></DocumentType>
        <Subject>V/v kết nối liên thông</Subject>
        <Content>V/v kết nối liên thông</Content>
        <OtherInfo><Priority>0</Priority><PageAmount>2</PageAmount><Direction>false</Direction></OtherInfo>
        <ResponseFor><OrganId></OrganId><Code></Code><PromulgationDate></PromulgationDate><DocumentId></DocumentId></ResponseFor>
      </MessageHeader>
      <TraceHeaderList>
        <TraceHeader><OrganId>000.00.00.G22</OrganId><Timestamp>2024/01/15 08:00:00</Timestamp></TraceHeader>
      </TraceHeaderList>
    </edXMLHeader>
    <edXMLBody>
      <edXMLManifest version="1.0">
        <Reference><ContentId>cid:1</ContentId><ContentType>application/pdf</ContentType><AttachmentName>cv.pdf</AttachmentName></Reference>
      </edXMLManifest>
    </edXMLBody>
  </edXMLEnvelope>
  <AttachmentEncoded>
    <Attachment><ContentId>cid:1</ContentId><AttachmentName>cv.pdf</AttachmentName><ContentType>application/pdf</ContentType><ContentTransferEncoded>JVBERi0xLjQK</ContentTransferEncoded></Attachment>
  </AttachmentEncoded>
</edXML>
"""  # noqa: E501

STATUS = f"""<?xml version="1.0" encoding="UTF-8"?>
<edXML xmlns="{NS}">
  <edXMLEnvelope>
    <edXMLHeader>
      <MessageHeader>
        <From><OrganId>000.00.00.H41</OrganId></From>
        <ResponseFor><OrganId>000.00.00.G22</OrganId><DocumentId>000.00.00.G22,2024/01/15,12/VPCP-TTĐT</DocumentId></ResponseFor>
        <StatusCode>03</StatusCode>
        <Description>Đã vào sổ</Description>
        <Timestamp>2024/01/15 09:00:00</Timestamp>
      </MessageHeader>
    </edXMLHeader>
  </edXMLEnvelope>
</edXML>
"""


def edited(template: str, *edits: tuple[str, str]) -> tuple[etree._ElementTree, str]:
    """*template* with each (old, new) applied once, parsed; and the edited text."""
    text = template
    for old, new in edits:
        assert text.count(old) == 1, f"{old!r} must occur exactly once in the template"
        text = text.replace(old, new)
    return parse(text.encode()), text


def line_of(text: str, needle: str) -> int:
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(lines) == 1, f"{needle!r} is on lines {lines}"
    return lines[0]


def only(problems: tuple[Problem, ...]) -> Problem:
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


@pytest.fixture(scope="module")
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"SDK samples not found at {SAMPLES}: place the repository next to shared/")
    return SAMPLES


def read(samples: Path, name: str) -> etree._ElementTree:
    return parse((samples / name).read_bytes())


# ------------------------------------------------------------------------- the SDK samples


def test_the_status_sample_list_is_complete(samples: Path) -> None:
    assert {p.name for p in samples.glob("status*.edxml")} == set(STATUS_SAMPLES)


@pytest.mark.parametrize("name", STATUS_SAMPLES)
def test_status_sample_passes(samples: Path, name: str) -> None:
    tree = read(samples, name)
    report = check(tree, "status")
    assert report.errors == ()
    assert report.warnings == ()
    assert report.ok
    assert detect_kind(tree) == "status"


@pytest.mark.parametrize("name", EDOC_SAMPLES)
def test_edoc_sample_passes(samples: Path, name: str) -> None:
    # These three break none of the length limits and use only strict agency codes, so there is
    # no warning either. (The CodeNumber of edoc.edxml is 11 characters: at the limit, not over.)
    tree = read(samples, name)
    report = check(tree, "edoc")
    assert report.errors == ()
    assert report.warnings == ()
    assert detect_kind(tree) == "edoc"


def test_edoc_edxml_is_not_namespace_well_formed(samples: Path) -> None:
    with pytest.raises(MalformedXML) as caught:
        read(samples, "edoc.edxml")
    assert "xlink" in caught.value.detail
    assert caught.value.problems[0].line == 116


def test_edoc_new_has_stray_bytes_before_the_declaration(samples: Path) -> None:
    with pytest.raises(MalformedXML) as caught:
        read(samples, "edoc_new.edxml")
    assert "stray byte" in caught.value.detail
    assert caught.value.problems[0].line == 1


def test_edoc_edxml_repaired_shows_its_remaining_faults(samples: Path) -> None:
    # Declaring the two missing prefixes makes it parse; what is left is real: a JMeter
    # placeholder instead of base64, and a shortened code in TraceHeader (a warning).
    text = (samples / "edoc.edxml").read_text("utf-8")
    text = text.replace(
        "<edXML xmlns=",
        f'<edXML xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:edXML="{NS}" xmlns=',
        1,
    )
    report = check(parse(text.encode()), "edoc")
    error = only(report.errors)
    assert error.path == "/edXML/AttachmentEncoded/Attachment/ContentTransferEncoded"
    assert error.line == line_of(text, "${__StringFromFile")
    assert "is not base64-encoded data" in error.message
    warning = only(report.warnings)
    assert warning.path == f"{HEADER}/TraceHeaderList/TraceHeader/OrganId"
    assert warning.line == line_of(text, "<edXML:OrganId>01.02.G22</edXML:OrganId>")
    assert warning.message.startswith("OrganId '01.02.G22' is not in the QCVN 102 form")


def test_edoc_new_without_the_stray_bytes_has_a_shortened_recipient_code(samples: Path) -> None:
    data = (samples / "edoc_new.edxml").read_bytes().removeprefix(b"1212")
    error = only(check(parse(data), "edoc").errors)
    assert error.path == f"{MH}/To/OrganId"
    assert error.line == line_of(data.decode(), "<edXML:OrganId>28.22.H17</edXML:OrganId>")
    assert error.message.startswith("To/OrganId '28.22.H17' is not an agency code")


def test_status_code_07(samples: Path) -> None:
    tree = read(samples, "status_inbox_01.edxml")
    code = tree.getroot().find(f".//{{{NS}}}StatusCode")
    assert code is not None
    code.text = "07"
    error = only(check(tree, "status").errors)
    assert error.message == "StatusCode '07' is not one of 01, 02, 03, 04, 05, 06, 13, 15, 16"
    assert error.path == f"{MH}/StatusCode"
    assert error.line == line_of(
        (samples / "status_inbox_01.edxml").read_text("utf-8"), "StatusCode"
    )


def test_priority_9(samples: Path) -> None:
    tree = read(samples, "edoc_update.edxml")
    priority = tree.getroot().find(f".//{{{NS}}}Priority")
    assert priority is not None
    priority.text = "9"
    error = only(check(tree, "edoc").errors)
    assert error.message == "Priority '9' is not one of 0, 1, 2, 3, 4"
    assert error.path == f"{MH}/OtherInfo/Priority"
    assert error.line == line_of((samples / "edoc_update.edxml").read_text("utf-8"), "Priority")


def test_a_status_package_checked_as_a_document_is_refused_as_such(samples: Path) -> None:
    error = only(check(read(samples, "status_finish_06.edxml"), "edoc").errors)
    assert "this is a status package" in error.message
    assert "a document package was expected" in error.message
    assert error.path == f"{MH}/StatusCode"
    assert error.line == 28


def test_a_document_package_checked_as_a_status_is_refused_as_such(samples: Path) -> None:
    error = only(check(read(samples, "edoc_update.edxml"), "status").errors)
    assert "this is a document package" in error.message
    assert error.path == f"{MH}/To[1]"


# ------------------------------------------------------------------------- hand-made packages


def test_the_hand_made_packages_pass() -> None:
    document, _ = edited(DOCUMENT)
    status, _ = edited(STATUS)
    assert check(document, "edoc") == Report()
    assert check(status, "status") == Report()


def test_missing_subject() -> None:
    tree, text = edited(DOCUMENT, ("<Subject>V/v kết nối liên thông</Subject>", ""))
    error = only(check(tree, "edoc").errors)
    assert error.path == MH
    assert error.line == line_of(text, "<MessageHeader>")
    assert error.message.startswith("MessageHeader has no Subject")
    assert "exactly one Subject" in error.message


def test_two_from() -> None:
    second = "<From><OrganId>000.00.00.H01</OrganId></From>"
    tree, text = edited(
        DOCUMENT, ("<To><OrganId>000.00.00.H41", f"{second}<To><OrganId>000.00.00.H41")
    )
    error = only(check(tree, "edoc").errors)
    assert error.path == f"{MH}/From[2]"
    assert error.line == line_of(text, second)
    assert error.message == "From appears 2 times in MessageHeader; exactly one is allowed"


def test_no_to() -> None:
    tree, text = edited(
        DOCUMENT,
        ("<To><OrganId>000.00.00.H41</OrganId></To>", ""),
        ("<To><OrganId>000.00.00.H14</OrganId></To>", ""),
    )
    assert detect_kind(tree) is None
    error = only(check(tree, "edoc").errors)
    assert error.path == MH
    assert error.line == line_of(text, "<MessageHeader>")
    assert "has no To" in error.message
    assert "at least one To" in error.message


def test_to_organ_id_must_be_strict() -> None:
    tree, text = edited(DOCUMENT, ("000.00.00.H14", "vxp.saas.03"))
    error = only(check(tree, "edoc").errors)
    assert error.path == f"{MH}/To[2]/OrganId"
    assert error.line == line_of(text, "vxp.saas.03")
    assert "'vxp.saas.03' is not an agency code" in error.message
    assert "000.00.00.G22" in error.message


def test_from_organ_id_must_be_strict() -> None:
    tree, _ = edited(DOCUMENT, ("<From><OrganId>000.00.00.G22", "<From><OrganId>01.02.G22"))
    assert only(check(tree, "edoc").errors).path == f"{MH}/From/OrganId"


def test_organ_ids_outside_from_and_to_only_warn() -> None:
    tree, text = edited(
        DOCUMENT,
        ("<TraceHeader><OrganId>000.00.00.G22", "<TraceHeader><OrganId>null"),
        ("<ResponseFor><OrganId></OrganId>", "<ResponseFor><OrganId>28.22.H17</OrganId>"),
    )
    report = check(tree, "edoc")
    assert report.ok
    assert [(w.path, w.line) for w in report.warnings] == [
        (f"{MH}/ResponseFor/OrganId", line_of(text, "28.22.H17")),
        (f"{HEADER}/TraceHeaderList/TraceHeader/OrganId", line_of(text, ">null<")),
    ]


def test_the_same_recipient_twice_is_left_to_routing() -> None:
    # hub.intake refuses it as a routing error, after the signature check.
    tree, _ = edited(DOCUMENT, ("000.00.00.H14", "000.00.00.H41"))
    assert check(tree, "edoc").ok


def test_over_long_subject() -> None:
    tree, text = edited(DOCUMENT, ("<Subject>V/v kết nối liên thông", "<Subject>" + "ệ" * 501))
    error = only(check(tree, "edoc").errors)
    assert error.path == f"{MH}/Subject"
    assert error.line == line_of(text, "<Subject>")
    assert error.message == "Subject is 501 characters long; at most 500 are allowed"


def test_a_subject_of_exactly_500_characters_passes() -> None:
    tree, _ = edited(DOCUMENT, ("<Subject>V/v kết nối liên thông", "<Subject>" + "ệ" * 500))
    assert check(tree, "edoc").ok


def test_unknown_element() -> None:
    tree, text = edited(DOCUMENT, ("<Content>", "<Urgency>high</Urgency>\n<Content>"))
    error = only(check(tree, "edoc").errors)
    assert error.path == f"{MH}/Urgency"
    assert error.line == line_of(text, "<Urgency>")
    assert error.message.startswith("Urgency is not allowed in MessageHeader; it may contain From")
    assert "{" not in error.message


def test_an_element_outside_the_edxml_namespace_is_named_as_such() -> None:
    tree, text = edited(DOCUMENT, ("<Subject>", '<Subject xmlns="">'))
    errors = check(tree, "edoc").errors
    stray = next(e for e in errors if e.path == f"{MH}/Subject")
    assert stray.line == line_of(text, "<Subject")
    assert "it is in no namespace" in stray.message
    assert any("has no Subject" in e.message for e in errors)


def test_impossible_dates_pass_but_other_forms_do_not() -> None:
    tree, _ = edited(DOCUMENT, ("<PromulgationDate>2024/01/15", "<PromulgationDate>2014/02/30"))
    assert check(tree, "edoc").ok
    tree, text = edited(DOCUMENT, ("<PromulgationDate>2024/01/15", "<PromulgationDate>2024-01-15"))
    error = only(check(tree, "edoc").errors)
    assert error.path == f"{MH}/PromulgationInfo/PromulgationDate"
    assert error.line == line_of(text, "2024-01-15")
    assert error.message == (
        "PromulgationDate '2024-01-15' is not a date in the form yyyy/MM/dd (e.g. 2018/09/28)"
    )


@pytest.mark.parametrize(
    ("edit", "path", "message"),
    [
        (
            ("<Direction>false", "<Direction>yes"),
            f"{MH}/OtherInfo/Direction",
            "Direction 'yes' is not true or false",
        ),
        (
            ("<PageAmount>2", "<PageAmount>70000"),
            f"{MH}/OtherInfo/PageAmount",
            "PageAmount '70000' is not a whole number from 0 to 65535",
        ),
        (
            ("<From><OrganId>000.00.00.G22</OrganId>", "<From>"),
            f"{MH}/From",
            "From is incomplete: OrganId is missing",
        ),
        (
            ("<Code><CodeNumber>12</CodeNumber><CodeNotation>VPCP-TTĐT</CodeNotation>", "<Code>"),
            f"{MH}/Code",
            "Code is incomplete: CodeNumber, CodeNotation are missing",
        ),
        (
            (' version="1.0">', ">"),
            "/edXML/edXMLEnvelope/edXMLBody/edXMLManifest",
            "edXMLManifest has no version attribute; it is required",
        ),
        (
            ("<Subject>", '<Subject lang="vi">'),
            f"{MH}/Subject",
            "Subject has an attribute lang that edXML does not define",
        ),
        (
            ("<Subject>V/v kết nối liên thông</Subject>", "<Subject> </Subject>"),
            f"{MH}/Subject",
            "Subject is empty; a value is required",
        ),
        (
            ("JVBERi0xLjQK", "not base64!"),
            "/edXML/AttachmentEncoded/Attachment/ContentTransferEncoded",
            "ContentTransferEncoded 'not base64!' is not base64-encoded data",
        ),
        (
            ("<edXMLBody>", "<!--"),
            "/edXML/edXMLEnvelope",
            "edXMLEnvelope is incomplete: edXMLBody is missing",
        ),
    ],
)
def test_readable_schema_messages(edit: tuple[str, str], path: str, message: str) -> None:
    edits = [edit, ("</edXMLBody>", "-->")] if edit[0] == "<edXMLBody>" else [edit]
    tree, _ = edited(DOCUMENT, *edits)
    error = only(check(tree, "edoc").errors)
    assert (error.path, error.message) == (path, message)
    assert error.line is not None


def test_either_signature_form_is_accepted_and_not_looked_into() -> None:
    ds = f'<ds:Signature xmlns:ds="{DS}"><ds:Anything/></ds:Signature>'
    sdk = "<Signature><SignedInfo><Whatever/></SignedInfo></Signature>"
    for signature in (ds, sdk):
        tree, _ = edited(DOCUMENT, ("</TraceHeaderList>", f"</TraceHeaderList>{signature}"))
        assert check(tree, "edoc") == Report()


def test_only_a_signature_from_the_xmldsig_namespace() -> None:
    key_info = f'<ds:KeyInfo xmlns:ds="{DS}"/>'
    tree, text = edited(DOCUMENT, ("</TraceHeaderList>", f"</TraceHeaderList>\n{key_info}"))
    error = only(check(tree, "edoc").errors)
    assert error.path == f"{HEADER}/KeyInfo"
    assert error.line == line_of(text, "ds:KeyInfo")
    assert "only a ds:Signature" in error.message


def test_two_signatures() -> None:
    tree, text = edited(
        DOCUMENT, ("</TraceHeaderList>", "</TraceHeaderList><Signature/>\n<Signature/>")
    )
    error = only(check(tree, "edoc").errors)
    assert error.path == f"{HEADER}/Signature[2]"
    assert error.line == line_of(text, "</TraceHeaderList><Signature/>") + 1
    assert "a repeat" in error.message


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        (f'<package xmlns="{NS}"/>', "the root element is package"),
        ("<edXML/>", "the root element edXML is in no namespace"),
    ],
)
def test_wrong_root(root: str, expected: str) -> None:
    error = only(check(parse(root.encode()), "edoc").errors)
    assert error.message.startswith(expected)
    assert NS in error.message
    assert error.line == 1


# ------------------------------------------------------------------------- status rules


def test_a_rejection_must_give_its_reason() -> None:
    tree, text = edited(STATUS, ("<StatusCode>03", "<StatusCode>02"), ("Đã vào sổ", ""))
    error = only(check(tree, "status").errors)
    assert error.path == f"{MH}/StatusCode"
    assert error.line == line_of(text, "<StatusCode>")
    assert "Description" in error.message


def test_a_recall_request_should_give_its_reason() -> None:
    tree, _ = edited(
        STATUS, ("<StatusCode>03", "<StatusCode>13"), ("<Description>Đã vào sổ</Description>", "")
    )
    report = check(tree, "status")
    assert report.ok
    assert "StatusCode 13" in only(report.warnings).message


def test_a_status_must_name_the_document() -> None:
    tree, text = edited(
        STATUS, ("<DocumentId>000.00.00.G22,2024/01/15,12/VPCP-TTĐT</DocumentId>", "")
    )
    error = only(check(tree, "status").errors)
    assert error.path == f"{MH}/ResponseFor"
    assert error.line == line_of(text, "<ResponseFor>")
    assert error.message == "ResponseFor is incomplete: DocumentId is missing"


def test_two_status_codes() -> None:
    tree, text = edited(STATUS, ("<Timestamp>", "<StatusCode>05</StatusCode>\n<Timestamp>"))
    error = only(check(tree, "status").errors)
    assert error.path == f"{MH}/StatusCode[2]"
    assert error.line == line_of(text, "<StatusCode>05")


def test_a_status_has_no_body() -> None:
    tree, _ = edited(
        STATUS,
        ("</edXMLHeader>", "</edXMLHeader><edXMLBody><edXMLManifest version='1.0'/></edXMLBody>"),
    )
    error = only(check(tree, "status").errors)
    assert error.path == "/edXML/edXMLEnvelope/edXMLBody"
    # The explanation (xmlschema) names what the envelope of a status package may contain.
    assert error.message == "edXMLBody is not allowed in edXMLEnvelope; it may contain edXMLHeader"


# ------------------------------------------------------------------------- API


def test_validate_raises_with_every_error() -> None:
    tree, _ = edited(
        DOCUMENT,
        ("<Subject>V/v kết nối liên thông</Subject>", ""),
        ("<Priority>0", "<Priority>9"),
    )
    with pytest.raises(SchemaInvalid) as caught:
        validate(tree, "edoc")
    assert caught.value.code == "schema.invalid"
    assert [p.path for p in caught.value.problems] == [MH, f"{MH}/OtherInfo/Priority"]
    assert caught.value.detail.startswith("The package is not a valid edXML document package: ")
    assert caught.value.detail.endswith("(and 1 more problem)")


def test_validate_returns_the_warnings_when_valid() -> None:
    tree, _ = edited(
        DOCUMENT, ("<TraceHeader><OrganId>000.00.00.G22", "<TraceHeader><OrganId>null")
    )
    report = validate(tree, "edoc")
    assert report.ok
    assert len(report.warnings) == 1


def test_an_unknown_kind_is_a_programming_error() -> None:
    tree, _ = edited(DOCUMENT)
    with pytest.raises(ValueError, match="unknown package kind"):
        check(tree, "receipt")  # type: ignore[arg-type]


def test_checks_from_many_threads_do_not_mix_their_errors() -> None:
    # lxml's validator keeps its error log on the instance: each thread must use its own.
    cases = [edited(DOCUMENT, ("<Priority>0", f"<Priority>{n}"))[0] for n in (5, 6, 7, 8, 9)] + [
        edited(DOCUMENT)[0]
    ]
    expected = [check(tree, "edoc") for tree in cases]
    with ThreadPoolExecutor(max_workers=6) as pool:
        for _ in range(20):
            assert list(pool.map(lambda tree: check(tree, "edoc"), cases)) == expected


# ------------------------------------------------------------------------- explanations


def test_a_valid_package_never_pays_for_the_explanation(monkeypatch: pytest.MonkeyPatch) -> None:
    """lxml gives the yes/no; xmlschema runs only once lxml has said "invalid"."""
    from hub.edxml import schema

    def refuse(kind: str) -> None:
        raise AssertionError("xmlschema was asked about a valid package")

    monkeypatch.setattr(schema, "_explainer", refuse)
    assert check(edited(DOCUMENT)[0], "edoc").ok
    assert check(edited(STATUS)[0], "status").ok


@pytest.mark.parametrize(
    ("edit", "path", "message"),
    [
        (
            (
                "<edXMLEnvelope>",
                "<edXMLEnvelope><edXMLBody><edXMLManifest version='1'/></edXMLBody>",
            ),
            "/edXML/edXMLEnvelope/edXMLBody[1]",
            "edXMLBody is not allowed at this point in edXMLEnvelope; expected edXMLHeader",
        ),
        (
            (
                "<TraceHeaderList>",
                "<TraceHeaderList><Bussiness><BussinessDocType>1</BussinessDocType></Bussiness>",
            ),
            f"{HEADER}/TraceHeaderList/TraceHeader",
            "TraceHeader is not allowed at this point in TraceHeaderList; "
            "nothing may follow Bussiness there",
        ),
        (
            ("<Type>1</Type>", "<Type>1</Type><Type>2</Type>"),
            f"{MH}/DocumentType/Type[2]",
            "Type appears more than once in DocumentType; it may appear only once",
        ),
        (
            (
                "<From><OrganId>000.00.00.G22</OrganId>",
                "<From><OrganId>000.00.00.G22</OrganId><Foo/>",
            ),
            f"{MH}/From/Foo",
            "Foo is not allowed in From; it may contain OrganId, OrganizationInCharge, OrganName, "
            "OrganAdd, Email, Telephone, Fax, Website",
        ),
        (
            ("<MessageHeader>", "<Header/><MessageHeader>"),
            f"{HEADER}/Header",
            "Header is not allowed in edXMLHeader; it may contain MessageHeader, TraceHeaderList, "
            "ds:Signature (XMLDSig), Signature",
        ),
        (
            ("<From><OrganId>", "<From>text<OrganId>"),
            f"{MH}/From",
            "From contains text; only child elements are allowed there",
        ),
        (
            ("<Subject>V/v kết nối liên thông</Subject>", "<Subject>V/v <b>x</b></Subject>"),
            f"{MH}/Subject",
            "Subject contains child elements; it must hold text only",
        ),
        (
            ("<TraceHeader><OrganId>000.00.00.G22</OrganId>", "<TraceHeader>"),
            f"{HEADER}/TraceHeaderList/TraceHeader",
            "TraceHeader is incomplete: OrganId is missing",
        ),
    ],
)
def test_explanations_say_what_was_expected(edit: tuple[str, str], path: str, message: str) -> None:
    tree, text = edited(DOCUMENT, edit)
    error = check(tree, "edoc").errors[0]  # the first by line (a body moved first has more)
    assert (error.path, error.message) == (path, message)
    assert error.line is not None and error.line <= len(text.splitlines())


def test_the_explanation_falls_back_to_libxml2_when_xmlschema_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Never "invalid" without a reason: if xmlschema raises or sees nothing, libxml2 speaks."""
    from hub.edxml import schema

    class Broken:
        def iter_errors(self, *args: object, **kwargs: object) -> list[object]:
            raise ValueError("string argument should contain only ASCII characters")

    class Blind:
        def iter_errors(self, *args: object, **kwargs: object) -> list[object]:
            return []

    tree, text = edited(DOCUMENT, ("<Priority>0", "<Priority>9"))
    for explainer in (Broken(), Blind()):
        monkeypatch.setattr(schema, "_explainer", lambda kind, e=explainer: e)
        error = only(check(tree, "edoc").errors)
        assert error.path == f"{MH}/OtherInfo/Priority"
        assert error.line == line_of(text, "<Priority>")
        assert error.message.startswith("Priority: [facet 'enumeration'] The value '9'")
        assert "{" + NS not in error.message


def test_the_explainer_never_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from hub.edxml import schema

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access while building or using the explainer")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(schema, "_explainers", {})
    tree, _ = edited(DOCUMENT, ("<Priority>0", "<Priority>9"))
    assert only(check(tree, "edoc").errors).message == "Priority '9' is not one of 0, 1, 2, 3, 4"
    status, _ = edited(STATUS, ("<StatusCode>03", "<StatusCode>07"))
    assert only(check(status, "status").errors).message.startswith("StatusCode '07' is not one of")
    for explainer in schema._explainers.values():
        assert explainer.source.allow == "sandbox"  # nothing outside schemas/ can be loaded
