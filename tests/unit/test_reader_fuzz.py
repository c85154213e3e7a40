"""Property-based fuzzing of what the hub does with untrusted package bytes.

Whatever arrives, ``parse`` → ``check`` / ``validate`` → ``read_document`` / ``read_status`` either
works or fails with one of the hub's own errors (:class:`LienthongError`), never with a Python
exception; ``check`` never raises at all, it reports. A package the schema check accepts can be
read. The inputs are arbitrary bytes, XML-shaped trees over the edXML vocabulary, and mutations
of real packages (the SDK samples and packages written by the hub itself).

Round trips with arbitrary XML-legal text in every optional field of both models complete the
ones in test_codec.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from hub.edxml.attachments import decode, describe
from hub.edxml.model import (
    EDXML_NS,
    Attachment,
    Business,
    BusinessType,
    DocumentPackage,
    Organization,
    OtherInfo,
    Priority,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusCode,
    StatusPackage,
    TraceHeader,
)
from hub.edxml.reader import read_document, read_status
from hub.edxml.schema import Report, check, detect_kind, validate
from hub.edxml.writer import write_document, write_status
from hub.errors import LienthongError
from hub.xmlsafe import parse
from tests.support import SAMPLES, document

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
KINDS = ("edoc", "status")

# No "explain" phase: on a failure it re-runs the example many times just to annotate it.
PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)
FUZZ = settings(
    max_examples=300,
    phases=PHASES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ------------------------------------------------------------------------------ the property


def _hub_errors_only(step: Callable[[], object]) -> object:
    """Run *step*; a LienthongError is an answer, anything else propagates and fails the test."""
    try:
        return step()
    except LienthongError as exc:
        error = exc
    assert error.detail, f"{type(error).__name__} without a detail"
    return None


def exercise(data: bytes) -> None:
    """Everything the hub does with a package before the signature, on *data*."""
    try:
        tree = parse(data)
    except LienthongError as exc:
        event(f"parse: {exc.code}")
        return
    event(f"parsed, detected as {detect_kind(tree)}")
    for kind in KINDS:
        report = check(tree, kind)  # reports; must never raise
        assert isinstance(report, Report)
        event(f"check {kind}: {'accepted' if report.ok else 'refused'}")
        for problem in (*report.errors, *report.warnings):
            assert problem.message
        _hub_errors_only(partial(validate, tree, kind))
        if report.ok:
            # Accepted by the schema check, so the reader must be able to read it, files too.
            if kind == "edoc":
                for attachment in read_document(tree).attachments:
                    assert isinstance(attachment.data, bytes)
            else:
                read_status(tree)
    pkg = _hub_errors_only(partial(read_document, tree))
    if isinstance(pkg, DocumentPackage):
        describe(pkg)  # a file that cannot be decoded is described, never raised
        for attachment in pkg.attachments:
            _hub_errors_only(partial(decode, attachment))
    _hub_errors_only(partial(read_status, tree))
    _hub_errors_only(partial(read_document, tree.getroot()))


# ------------------------------------------------------------------------------ arbitrary bytes


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_give_a_hub_error_or_a_report(data: bytes) -> None:
    exercise(data)


_PROLOGS = (
    b"",
    b'<?xml version="1.0" encoding="UTF-8"?>\n',
    b"\xef\xbb\xbf",
    b'<?xml version="1.0"?><!-- x -->',
    b'<?xml version="1.1" encoding="utf-8"?>',
)


@FUZZ
@given(st.sampled_from(_PROLOGS), st.binary(max_size=512))
def test_bytes_after_an_xml_prolog(prolog: bytes, data: bytes) -> None:
    exercise(prolog + b"<edXML xmlns='" + EDXML_NS.encode() + b"'>" + data)


# XML-shaped input over the edXML vocabulary, so that parse succeeds and check and the readers
# are reached with every structure, not only with what a byte mutation happens to keep well-formed.
_NAMES = (
    "edXML",
    "edXMLEnvelope",
    "edXMLHeader",
    "MessageHeader",
    "TraceHeaderList",
    "TraceHeader",
    "Bussiness",
    "BussinessDocType",
    "BussinessDocReason",
    "Paper",
    "StaffInfo",
    "Department",
    "Staff",
    "Mobile",
    "Email",
    "edXMLBody",
    "edXMLManifest",
    "Reference",
    "ContentId",
    "ContentType",
    "Description",
    "AttachmentName",
    "AttachmentEncoded",
    "Attachment",
    "ContentTransferEncoded",
    "From",
    "To",
    "OrganId",
    "OrganName",
    "OrganizationInCharge",
    "OrganAdd",
    "Telephone",
    "Fax",
    "Website",
    "DocumentId",
    "Code",
    "CodeNumber",
    "CodeNotation",
    "PromulgationInfo",
    "Place",
    "PromulgationDate",
    "DocumentType",
    "Type",
    "TypeDetail",
    "TypeName",
    "Subject",
    "Content",
    "SignerInfo",
    "Competence",
    "Position",
    "FullName",
    "DueDate",
    "ToPlaces",
    "OtherInfo",
    "Priority",
    "SphereOfPromulgation",
    "TyperNotation",
    "PromulgationAmount",
    "PageAmount",
    "Direction",
    "Appendixes",
    "Appendix",
    "ResponseFor",
    "SteeringType",
    "StatusCode",
    "Timestamp",
    "Signature",
    "SignedInfo",
    "SignatureValue",
    "KeyInfo",
    "Object",
    "X",
)
_PREFIXES = ("", "", "", "edXML:", "edXML:", "ds:", "x:")
_VALUES = (
    "000.00.00.G22",
    "000.00.31.H26",
    "null",
    "01",
    "02",
    "13",
    "99",
    "0",
    "4",
    "7",
    "-1",
    "1e3",
    "true",
    "2026/11/22",
    "2014/02/30",
    "2026/11/22 10:00:00",
    "cid:1",
    "1",
    "JVBERi0xLjQK",
    "JVBERi0xLjQ",
    "====",
    "UEsDBAo=",
    "Công văn",
)
_XML_CHARS = st.characters(
    blacklist_categories=("Cs",),
    blacklist_characters="".join(map(chr, [*range(9), 11, 12, *range(14, 32), 0xFFFE, 0xFFFF])),
)
_leaf_text = st.one_of(st.sampled_from(_VALUES), st.text(_XML_CHARS, max_size=12)).map(escape)


@st.composite
def _element(
    draw: st.DrawFn,
    children: st.SearchStrategy[str],
    names: tuple[str, ...] = _NAMES,
    prefixes: tuple[str, ...] = _PREFIXES,
) -> str:
    name = draw(st.sampled_from(prefixes)) + draw(st.sampled_from(names))
    attrs = draw(st.sampled_from(("", "", ' version="1.0"', ' Id="a"', ' xmlns=""')))
    inner = "".join(draw(st.lists(children, max_size=4)))
    return f"<{name}{attrs}>{inner}</{name}>"


_forest = st.lists(
    st.recursive(_leaf_text, lambda kids: _element(kids), max_leaves=10), max_size=5
).map("".join)
# MessageHeader fields holding leaves, so that kind detection and the header rules are reached.
_HEADER_FIELDS = (
    "From",
    "To",
    "To",
    "DocumentId",
    "Code",
    "PromulgationInfo",
    "DocumentType",
    "Subject",
    "Content",
    "SignerInfo",
    "DueDate",
    "ToPlaces",
    "OtherInfo",
    "ResponseFor",
    "SteeringType",
    "StatusCode",
    "Description",
    "Timestamp",
    "StaffInfo",
    "X",
)
_header = st.lists(
    _element(st.one_of(_leaf_text, _element(_leaf_text)), _HEADER_FIELDS, ("", "edXML:", "x:")),
    min_size=1,
    max_size=8,
).map("".join)


@st.composite
def _xmlish(draw: st.DrawFn) -> bytes:
    ns = draw(st.sampled_from((EDXML_NS,) * 6 + ("urn:other", "")))
    if draw(st.integers(0, 3)):
        # The edXML skeleton with random content in every slot.
        body = (
            f"<edXML:edXMLEnvelope><edXML:edXMLHeader><MessageHeader>{draw(_header)}"
            f"</MessageHeader>{draw(_forest)}</edXML:edXMLHeader><edXMLBody>{draw(_forest)}"
            f"</edXMLBody></edXML:edXMLEnvelope>{draw(_forest)}"
        )
    else:
        body = draw(_forest)
    root = (
        f'<edXML xmlns="{ns}" xmlns:edXML="{EDXML_NS}" xmlns:ds="{DS_NS}" '
        f'xmlns:x="urn:x">{body}</edXML>'
    )
    return root.encode("utf-8")


@FUZZ
@given(_xmlish())
def test_xml_shaped_input_gives_a_hub_error_or_a_report(data: bytes) -> None:
    exercise(data)


# ------------------------------------------------------------------------------ mutations

_TEXT = re.compile(rb">([^<]*)<")
_LEAF = re.compile(rb"<([\w:]+)>[^<]*</\1>")
_TOKENS = (
    b"<",
    b">",
    b"&",
    b"&amp;",
    b"&#0;",
    b"&#x10FFFF;",
    b"&nope;",
    b"<![CDATA[x]]>",
    b"]]>",
    b"<!---->",
    b"<?pi x?>",
    b"<!DOCTYPE x>",
    b'<?xml version="1.0"?>',
    b"\x00",
    b"\xff",
    b"\xc3",
    b"\xef\xbb\xbf",
    b'xmlns="urn:x"',
    b"<x/>",
    b"<ds:Signature/>",
    b"</edXML:To>",
    b"<edXML:To><edXML:OrganId>000.00.00.H41</edXML:OrganId></edXML:To>",
    b"<edXML:StatusCode>01</edXML:StatusCode>",
)


@st.composite
def _mutation(draw: st.DrawFn, data: bytes) -> bytes:
    n = len(data)
    position = st.integers(0, n)
    kind = draw(
        st.sampled_from(
            ("delete", "insert", "token", "duplicate", "flip", "text", "swap", "truncate")
        )
    )
    if kind == "delete":
        start = draw(position)
        end = draw(st.integers(start, min(n, start + 64)))
        return data[:start] + data[end:]
    if kind in ("insert", "token"):
        at = draw(position)
        blob = draw(
            st.binary(min_size=1, max_size=16) if kind == "insert" else st.sampled_from(_TOKENS)
        )
        return data[:at] + blob + data[at:]
    if kind == "duplicate":
        start = draw(position)
        end = draw(st.integers(start, min(n, start + 256)))
        at = draw(position)
        return data[:at] + data[start:end] + data[at:]
    if kind == "flip":
        if not n:
            return data
        out = bytearray(data)
        for at in draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=4)):
            out[at] ^= draw(st.integers(1, 255))
        return bytes(out)
    if kind == "text":
        spans = [m.span(1) for m in _TEXT.finditer(data)]
        if not spans:
            return data
        start, end = draw(st.sampled_from(spans))
        text = draw(st.text(max_size=24))
        if draw(st.booleans()):
            new = escape(text).encode("utf-8", "surrogatepass")
        else:
            new = text.encode("utf-8", "surrogatepass")
        return data[:start] + new + data[end:]
    if kind == "swap":
        leaves = [m.span() for m in _LEAF.finditer(data)]
        if len(leaves) < 2:
            return data
        first, second = sorted(draw(st.lists(st.sampled_from(leaves), min_size=2, max_size=2)))
        if first[1] > second[0]:
            return data
        return (
            data[: first[0]]
            + data[second[0] : second[1]]
            + data[first[1] : second[0]]
            + data[first[0] : first[1]]
            + data[second[1] :]
        )
    return data[: draw(position)]  # truncate


@st.composite
def _mutated(draw: st.DrawFn, seeds: tuple[bytes, ...]) -> bytes:
    data = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, 3))):
        data = draw(_mutation(data))
    return data


def _parses(data: bytes) -> bool:
    try:
        parse(data)
    except LienthongError:
        return False
    return True


def _small(data: bytes) -> bytes:
    """*data* with each base64 payload cut to a short valid one, so mutations hit the markup."""
    return re.sub(
        rb"(<(?:\w+:)?ContentTransferEncoded>)[^<]*(</)",
        rb"\1UEsDBAoAAAAAAA==\2",
        data,
    )


def _sample_seeds() -> tuple[bytes, ...]:
    if not SAMPLES.is_dir():
        return ()
    found = (path.read_bytes() for path in sorted(SAMPLES.glob("*.edxml")))
    return tuple(data for data in found if _parses(data))


SAMPLE_SEEDS = _sample_seeds()
SMALL_SAMPLE_SEEDS = tuple(_small(seed) for seed in SAMPLE_SEEDS)
# Every sample of ~370 KB as it is (the mutations mostly land in its base64, hence few examples).
BIG_SAMPLE_SEEDS = tuple(seed for seed in SAMPLE_SEEDS if len(seed) > 100_000)
HUB_SEEDS = (
    write_document(document()),
    write_document(document(with_pdf=False)),
    write_status(
        StatusPackage(
            Organization("000.00.31.H26", "UBND Quận Ba Đình"),
            ResponseFor("000.00.00.H26", "12/UBND-VP", "2026/11/22", "000.00.00.H26,x"),
            StatusCode.REJECTED,
            "Thiếu chữ ký số",
            "2026/11/22 10:00:00",
            StaffInfo("Văn thư", "Nguyễn Thị Hoa", "0912345678", "vanthu@hanoi.gov.vn"),
        )
    ),
)
needs_samples = pytest.mark.skipif(
    not SAMPLE_SEEDS, reason=f"no parsable SDK samples found at {SAMPLES}"
)


def test_the_seeds_are_valid_packages() -> None:
    """The mutations start from packages the hub accepts (else they test nothing)."""
    for data, kind in zip(HUB_SEEDS, ("edoc", "edoc", "status"), strict=True):
        assert check(parse(data), kind).ok


@FUZZ
@given(_mutated(HUB_SEEDS))
def test_mutated_hub_packages_give_a_hub_error_or_a_report(data: bytes) -> None:
    exercise(data)


@needs_samples
@FUZZ
@given(_mutated(SMALL_SAMPLE_SEEDS or HUB_SEEDS))
def test_mutated_sdk_samples_give_a_hub_error_or_a_report(data: bytes) -> None:
    exercise(data)


@needs_samples
@settings(FUZZ, max_examples=40)
@given(_mutated(BIG_SAMPLE_SEEDS or HUB_SEEDS))
def test_mutated_full_size_sdk_samples_give_a_hub_error_or_a_report(data: bytes) -> None:
    exercise(data)


# ------------------------------------------------------------------------------ round trips

# Every character XML 1.0 can carry, Vietnamese letters made likely; the reader strips
# leading and trailing white space, so the values are stripped too.
_VIETNAMESE = st.text(
    "aăâbcdđeêghiklmnoôơpqrstuưvxyàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ"
    "ĐĂÂÊÔƠƯ0123456789 ,./-",
    max_size=30,
)
text = st.one_of(
    _VIETNAMESE,
    st.text(_XML_CHARS, max_size=30),
    st.tuples(_VIETNAMESE, st.text(_XML_CHARS, max_size=10)).map("".join),
).map(str.strip)


def _organization(organ_id: str = "000.00.31.H26") -> st.SearchStrategy[Organization]:
    return st.builds(
        Organization,
        organ_id=st.just(organ_id) | text,
        organ_name=text,
        organization_in_charge=text,
        organ_add=text,
        email=text,
        telephone=text,
        fax=text,
        website=text,
    )


_staff = st.builds(StaffInfo, department=text, staff=text, mobile=text, email=text)
_response_for = st.builds(
    ResponseFor, organ_id=text, code=text, promulgation_date=text, document_id=text
)


@settings(max_examples=100, deadline=None, phases=PHASES)
@given(
    reporter=_organization(),
    response_for=_response_for,
    code=st.sampled_from(StatusCode),
    description=text,
    timestamp=text,
    staff=_staff,
)
def test_any_status_round_trips_in_every_text_field(
    reporter: Organization,
    response_for: ResponseFor,
    code: StatusCode,
    description: str,
    timestamp: str,
    staff: StaffInfo,
) -> None:
    pkg = StatusPackage(reporter, response_for, code, description, timestamp, staff)
    assert read_status(parse(write_status(pkg))) == pkg


@settings(max_examples=100, deadline=None, phases=PHASES)
@given(
    sender=_organization("000.00.00.H26"),
    recipients=st.lists(_organization(), min_size=1, max_size=3).map(tuple),
    signer=st.builds(SignerInfo, competence=text, position=text, full_name=text),
    due_date=text,
    to_places=st.lists(text, max_size=3).map(tuple),
    other=st.builds(
        OtherInfo,
        priority=st.sampled_from(Priority),
        sphere_of_promulgation=text,
        typer_notation=text,
        promulgation_amount=text,
        page_amount=text,
        direction=text,
        appendixes=st.lists(text, max_size=3).map(tuple),
    ),
    response_for=st.lists(_response_for, max_size=2).map(tuple),
    steering_type=text,
    trace=st.lists(st.builds(TraceHeader, organ_id=text, timestamp=text), max_size=3).map(tuple),
    business=st.none()
    | st.builds(
        Business,
        business_type=st.sampled_from(BusinessType),
        document_id=text,
        reason=text,
        paper=text,
        staff=_staff,
    ),
    attachment=st.tuples(text, text, text),
)
def test_any_document_round_trips_in_every_optional_text_field(
    sender: Organization,
    recipients: tuple[Organization, ...],
    signer: SignerInfo,
    due_date: str,
    to_places: tuple[str, ...],
    other: OtherInfo,
    response_for: tuple[ResponseFor, ...],
    steering_type: str,
    trace: tuple[TraceHeader, ...],
    business: Business | None,
    attachment: tuple[str, str, str],
) -> None:
    name, content_type, description = attachment
    doc: DocumentPackage = replace(
        document(),
        sender=sender,
        recipients=recipients,
        signer=signer,
        due_date=due_date,
        to_places=to_places,
        other=other,
        response_for=response_for,
        steering_type=steering_type,
        trace=trace,
        business=business,
        attachments=(Attachment.from_bytes("a1", name, content_type, b"%PDF-1.4\n", description),),
    )
    assert read_document(parse(write_document(doc))) == doc
