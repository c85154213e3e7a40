"""The edXML model, reader and writer: round trips, both layouts, and the real SDK samples."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.edxml.model import (
    Attachment,
    Business,
    BusinessType,
    Organization,
    OtherInfo,
    Priority,
    ResponseFor,
    StaffInfo,
    StatusCode,
    StatusPackage,
)
from hub.edxml.reader import read_document, read_status
from hub.edxml.writer import write_document, write_status
from hub.errors import MalformedXML, SchemaInvalid
from hub.xmlsafe import parse, text_of
from tests.support import SAMPLE_STATUS_CODES, SAMPLES, document

# XML 1.0 text: no control characters, no surrogates; leading/trailing blanks are not kept.
xml_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    max_size=40,
).map(str.strip)


def test_document_round_trips_with_vietnamese_text_and_attachments() -> None:
    doc = document(subject="V/v tăng cường công tác phòng, chống thiên tai & <bão số 3>")
    assert read_document(parse(write_document(doc))) == doc


def test_writer_uses_the_sdk_layout() -> None:
    text = write_document(document()).decode()
    assert text.startswith(
        '<?xml version="1.0" encoding="UTF-8"?>\n<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">'
    )
    assert '<edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">' in text
    # AttachmentEncoded stands beside the envelope, not inside it.
    assert text.index("</edXML:edXMLEnvelope>") < text.index("<AttachmentEncoded>")


@settings(max_examples=60, deadline=None)
@given(
    subject=xml_text.filter(bool),
    place=xml_text,
    priority=st.sampled_from(Priority),
    data=st.binary(max_size=300),
)
def test_any_document_round_trips(
    subject: str, place: str, priority: Priority, data: bytes
) -> None:
    base = document()
    doc = type(base)(
        **{
            **base.__dict__,
            "subject": subject,
            "content": subject,
            "to_places": (place,) if place else (),
            "other": OtherInfo(priority=priority),
            "attachments": (
                Attachment.from_bytes("x1", "tệp đính kèm.bin", "application/octet-stream", data),
            ),
        }
    )
    back = read_document(parse(write_document(doc)))
    assert back == doc
    assert back.attachments[0].data == data


@settings(max_examples=40, deadline=None)
@given(code=st.sampled_from(StatusCode), description=xml_text, staff=xml_text)
def test_any_status_round_trips(code: StatusCode, description: str, staff: str) -> None:
    pkg = StatusPackage(
        reporter=Organization("000.00.31.H26", "UBND Quận Ba Đình"),
        response_for=ResponseFor(
            "000.00.00.H26", "12/UBND-VP", "2026/11/22", "000.00.00.H26,2026/11/22,12/UBND-VP"
        ),
        status_code=code,
        description=description,
        timestamp="2026/11/22 10:00:00",
        staff=StaffInfo(staff=staff) if staff else StaffInfo(),
    )
    assert read_status(parse(write_status(pkg))) == pkg


def test_business_block_round_trips() -> None:
    base = document()
    doc = type(base)(
        **{
            **base.__dict__,
            "business": Business(
                BusinessType.REVOKE, "000.00.00.H26,2026/11/01,9/UBND-VP", "Ban hành nhầm", "0"
            ),
        }
    )
    assert read_document(parse(write_document(doc))).business == doc.business


def test_comment_inside_organ_id_does_not_split_it() -> None:
    text = write_document(document()).replace(
        b"<edXML:OrganId>000.00.00.H26<", b"<edXML:OrganId>000.00.00.H<!---->26<"
    )
    assert read_document(parse(text)).sender.organ_id == "000.00.00.H26"


def test_unprefixed_layout_reads_the_same() -> None:
    doc = document(with_pdf=False)
    prefixed = write_document(doc)
    unprefixed = prefixed.replace(b"edXML:", b"").replace(
        b' xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016"', b""
    )
    assert read_document(parse(unprefixed)) == doc


def test_cid_prefix_is_normalised_on_either_side() -> None:
    text = write_document(document()).replace(
        b"<ContentId>cid:att-1</ContentId>", b"<ContentId>att-1</ContentId>"
    )
    (attachment,) = read_document(parse(text)).attachments
    assert attachment.content_id == "att-1" and attachment.data.startswith(b"%PDF")


def test_unknown_status_code_is_the_hubs_own_error() -> None:
    pkg = StatusPackage(
        Organization("000.00.31.H26"),
        ResponseFor("000.00.00.H26"),
        StatusCode.ARRIVED,
        timestamp="2026/11/22 10:00:00",
    )
    text = write_status(pkg).replace(b">01<", b">07<")
    with pytest.raises(SchemaInvalid) as caught:
        read_status(parse(text))
    assert caught.value.problems[0].path and caught.value.problems[0].path.endswith("StatusCode")


def test_text_of_joins_every_text_node() -> None:
    root = parse(b"<a>000.00.00.H<!-- split -->26</a>").getroot()
    assert root.text == "000.00.00.H" and text_of(root) == "000.00.00.H26"


# --- the real SDK samples, as they are -------------------------------------------------------

needs_samples = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"SDK samples not found at {SAMPLES}"
)

STATUS_SAMPLES = SAMPLE_STATUS_CODES


@needs_samples
@pytest.mark.parametrize(("name", "code"), sorted(STATUS_SAMPLES.items()))
def test_sdk_status_samples_read_with_their_codes(name: str, code: str) -> None:
    pkg = read_status(parse((SAMPLES / name).read_bytes()))
    assert pkg.status_code.value == code
    assert pkg.response_for.document_id


@needs_samples
@pytest.mark.parametrize(
    ("name", "kind"),
    [("edoc_revocation.edxml", 1), ("edoc_update.edxml", 2), ("edoc_replacement.edxml", 3)],
)
def test_sdk_business_samples_read(name: str, kind: int) -> None:
    doc = read_document(parse((SAMPLES / name).read_bytes()))
    assert doc.business_type == kind
    assert [r.organ_id for r in doc.recipients] == [
        "000.00.00.H41",
        "000.00.00.H14",
        "000.00.00.G17",
    ]
    (attachment,) = doc.attachments
    assert attachment.data[:2] == b"PK"  # the SDK zips each file, whatever ContentType says


@needs_samples
def test_sdk_sample_with_stray_bytes_is_malformed_at_line_1() -> None:
    with pytest.raises(MalformedXML) as caught:
        parse((SAMPLES / "edoc_new.edxml").read_bytes())
    assert caught.value.problems[0].line == 1
    assert "stray byte" in caught.value.detail


@needs_samples
def test_sdk_sample_with_undeclared_xlink_prefix_is_malformed() -> None:
    with pytest.raises(MalformedXML) as caught:
        parse((SAMPLES / "edoc.edxml").read_bytes())
    assert "xlink" in caught.value.detail
