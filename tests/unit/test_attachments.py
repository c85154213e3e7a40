"""hub.edxml.attachments: the manifest matched against the files, decoding, names, the trace.

The SDK samples are the reference for the zipped form; small packages written by the hub's own
writer (then edited as text, so that every element keeps a line to assert on) cover the rest.
Hostile archives are built in the test, streamed, so that nothing large is ever held.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import struct
import tracemalloc
import unicodedata
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.demo import tiny_pdf
from adapters.tables import _event_summary
from hub.edxml.attachments import (
    AttachmentInvalid,
    AttachmentLimits,
    AttachmentTooLarge,
    decode,
    describe,
    manifest_problems,
    safe_filename,
)
from hub.edxml.model import Attachment
from hub.edxml.reader import read_document
from hub.edxml.writer import write_document
from hub.errors import PackageError, Problem
from hub.xmlsafe import parse
from tests.support import SAMPLES, document

MiB = 1024 * 1024
MANIFEST = "/edXML/edXMLEnvelope/edXMLBody/edXMLManifest"
ENCODED = "/edXML/AttachmentEncoded"
UUID_ENTRY = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.edxml")
PDF = tiny_pdf("Cong van so 12")


def attachment(data: bytes, name: str = "cong-van.pdf", cid: str = "att-1") -> Attachment:
    return Attachment.from_bytes(cid, name, "application/pdf", data)


def zipped(*entries: tuple[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return out.getvalue()


def zeros_zip(mebibytes: int, name: str = "bomb.bin") -> bytes:
    """A deflated entry of *mebibytes* MiB of zeros, written 1 MiB at a time (~1000:1)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open(name, "w") as entry,
    ):
        chunk = bytes(MiB)
        for _ in range(mebibytes):
            entry.write(chunk)
    return out.getvalue()


def declare_size(archive: bytes, size: int) -> bytes:
    """*archive* (one entry) with both headers claiming the entry unzips to *size* bytes."""
    patched = bytearray(archive)
    central = patched.rfind(b"PK\x01\x02")
    assert patched.startswith(b"PK\x03\x04") and central > 0
    patched[central + 24 : central + 28] = struct.pack("<L", size)
    patched[22:26] = struct.pack("<L", size)
    return bytes(patched)


# ------------------------------------------------------------------------- the SDK samples

SDK_SAMPLES = ("edoc_update.edxml", "edoc_replacement.edxml", "edoc_revocation.edxml")
# What the samples really hold (SOURCE.md): AttachmentName says .doc and ContentType
# application/zip, but the single ZIP entry is "<uuid>.edxml" and holds an edXML document (the
# SDK's own edoc.edxml template), not a Word file. The three samples zip the same bytes.
SDK_FILE_SIZE = 388347
SDK_FILE_SHA256 = "8385739ec4a4ed36d71eabcaead629641ffc5ffff3d487ff5c34d2f821c9f36e"


@pytest.fixture(scope="module")
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"SDK samples not found at {SAMPLES}: place the repository next to shared/")
    return SAMPLES


@pytest.mark.parametrize("name", SDK_SAMPLES)
def test_the_sdk_zips_each_file_and_the_zip_is_unwrapped(samples: Path, name: str) -> None:
    tree = parse((samples / name).read_bytes())
    assert manifest_problems(tree) == []
    (att,) = read_document(tree).attachments
    assert (att.content_id, att.name, att.content_type) == (
        "209",
        "1896_QD-TTg_m_294779.doc",
        "application/zip",
    )
    assert att.data.startswith(b"PK\x03\x04")

    decoded = decode(att)
    assert decoded.zipped
    assert UUID_ENTRY.fullmatch(decoded.entry_name), decoded.entry_name
    assert decoded.name == "1896_QD-TTg_m_294779.doc"  # the name comes from AttachmentName
    assert not decoded.data.startswith(b"PK")  # the original file, not a zip again
    assert decoded.data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert (decoded.size, decoded.sha256) == (SDK_FILE_SIZE, SDK_FILE_SHA256)
    assert hashlib.sha256(decoded.data).hexdigest() == decoded.sha256
    assert decoded.encoded_size == len(att.encoded) == 361100
    assert decoded.note == ""


def test_the_sdk_sample_is_described_for_the_trace(samples: Path) -> None:
    pkg = read_document(parse((samples / "edoc_update.edxml").read_bytes()))
    assert describe(pkg) == [
        {
            "content_id": "209",
            "name": "1896_QD-TTg_m_294779.doc",
            "content_type": "application/zip",
            "zipped": True,
            "size": SDK_FILE_SIZE,
            "sha256": SDK_FILE_SHA256,
        }
    ]


# ------------------------------------------------------------------------------ raw base64


def test_raw_base64_stays_raw() -> None:
    decoded = decode(attachment(PDF))
    assert not decoded.zipped and decoded.entry_name == "" and decoded.note == ""
    assert decoded.data == PDF
    assert (decoded.size, decoded.sha256) == (len(PDF), hashlib.sha256(PDF).hexdigest())
    assert (decoded.name, decoded.content_type) == ("cong-van.pdf", "application/pdf")


def test_a_package_written_by_the_hub_round_trips() -> None:
    pkg = read_document(parse(write_document(document())))
    (entry,) = describe(pkg)
    assert entry["zipped"] is False
    assert entry["sha256"] == hashlib.sha256(pkg.attachments[0].data).hexdigest()


def test_base64_may_be_wrapped_in_white_space() -> None:
    encoded = base64.encodebytes(PDF).decode().replace("\n", "\r\n\t  ")
    assert decode(replace(attachment(b""), encoded=encoded)).data == PDF


@pytest.mark.parametrize(
    ("encoded", "says"),
    [
        ("not base64!", "character '!' at position 11"),
        ("JVBERi0xLjQK\u00a0", "character '\\xa0' at position 13"),
        ("JVBERi0xLjQ", "11 characters, not a multiple of 4"),
        ("JV=ERi0xLjQK", "= padding may only end it"),
        ("JVBERi0xLjQK====", "= padding may only end it"),
        ("QUJDRA==QUJDRA==", "= padding may only end it"),
    ],
)
def test_invalid_base64_is_refused(encoded: str, says: str) -> None:
    with pytest.raises(AttachmentInvalid) as caught:
        decode(replace(attachment(b""), encoded=encoded))
    assert caught.value.code == "attachment.invalid"
    assert isinstance(caught.value, PackageError)
    assert says in caught.value.detail
    assert "cid:att-1 ('cong-van.pdf')" in caught.value.detail


# --------------------------------------------------------------------- which zips unwrap


def test_a_single_entry_zip_is_unwrapped_whatever_its_content_type() -> None:
    for method in (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED):
        decoded = decode(
            attachment(zipped(("0d9c1f4e-8a3b-4c2d-9e1f-123456789abc.pdf", PDF), method=method))
        )
        assert decoded.zipped and decoded.data == PDF
        assert decoded.entry_name == "0d9c1f4e-8a3b-4c2d-9e1f-123456789abc.pdf"
        assert decoded.sha256 == hashlib.sha256(PDF).hexdigest()


@pytest.mark.parametrize(
    ("raw", "name", "note"),
    [
        # A .docx sent as raw base64 is a ZIP of many parts: it is the file itself.
        (
            zipped(("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<w:document/>")),
            "to-trinh.docx",
            "a ZIP archive of 2 entries",
        ),
        (zipped(("ho-so.pdf", PDF)), "ho-so.zip", "the attachment is itself a ZIP file"),
        (zipped(("thu-muc/", b"")), "x.pdf", "holding only a folder"),
        (zipped(("a.pdf", PDF), method=zipfile.ZIP_BZIP2), "x.pdf", "compressed with method 12"),
    ],
)
def test_other_zips_are_kept_as_sent(raw: bytes, name: str, note: str) -> None:
    decoded = decode(attachment(raw, name))
    assert not decoded.zipped and decoded.entry_name == ""
    assert decoded.data == raw
    assert note in decoded.note


def test_an_empty_archive_is_no_wrapper() -> None:
    decoded = decode(attachment(zipped(), "empty.zip"))  # starts with PK\x05\x06, not PK\x03\x04
    assert not decoded.zipped and decoded.size == 22 and decoded.note == ""


def test_a_zip_named_zip_is_unwrapped_when_the_entry_has_the_sdk_form() -> None:
    raw = zipped(("0d9c1f4e-8a3b-4c2d-9e1f-123456789abc.zip", b"PK\x05\x06" + bytes(18)))
    decoded = decode(attachment(raw, "ho-so.zip"))
    assert decoded.zipped and decoded.data == b"PK\x05\x06" + bytes(18)


def test_an_encrypted_entry_is_kept_as_sent() -> None:
    raw = bytearray(zipped(("a.pdf", PDF)))
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 8] |= 0x01  # general purpose flag bit 0: encrypted
    raw[6] |= 0x01
    decoded = decode(attachment(bytes(raw)))
    assert not decoded.zipped and "encrypted" in decoded.note


@pytest.mark.parametrize("cut", [slice(0, 100), slice(0, -30)])
def test_a_damaged_zip_is_invalid(cut: slice) -> None:
    with pytest.raises(AttachmentInvalid) as caught:
        decode(attachment(zipped(("a.pdf", PDF * 10))[cut]))
    assert "damaged or cut short" in caught.value.detail


# -------------------------------------------------------------------------- hostile zips


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """200 MB of zeros in a ~200 KB archive, built 1 MiB at a time."""
    return zeros_zip(200)


def peak_memory(func: object) -> tuple[BaseException | None, int]:
    """Run *func*; the exception it raised and the peak of Python allocations meanwhile."""
    assert callable(func)
    tracemalloc.start()
    try:
        func()
    except BaseException as exc:
        return exc, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return None, 0


def test_a_zip_bomb_is_refused_without_inflating_it(bomb: bytes) -> None:
    att = attachment(bomb)
    assert len(bomb) < 300_000
    error, peak = peak_memory(lambda: decode(att))
    assert isinstance(error, AttachmentTooLarge), error
    assert error.code == "attachment.too_large"
    assert "declares 209715200 bytes" in error.detail
    assert peak < 4 * MiB


def test_a_zip_bomb_that_understates_its_size_is_stopped_by_the_ratio(bomb: bytes) -> None:
    # The headers claim 50 MiB (under the 100 MiB limit); the entry really holds 200 MB.
    att = attachment(declare_size(bomb, 50 * MiB))
    error, peak = peak_memory(lambda: decode(att))
    assert isinstance(error, AttachmentTooLarge), error
    assert "may expand at most 200 times" in error.detail
    # Stopped at 200 x the archive's real size (~40 MB), never near the 200 MB it holds.
    assert peak < 64 * MiB


def test_smaller_limits() -> None:
    limits = AttachmentLimits(max_size=MiB, max_ratio=None)
    with pytest.raises(AttachmentTooLarge, match="declares 2097152 bytes"):
        decode(attachment(zeros_zip(2)), limits=limits)
    with pytest.raises(AttachmentTooLarge, match="its base64 text alone"):
        decode(attachment(bytes(2 * MiB)), limits=limits)
    tight = AttachmentLimits(max_ratio=10, ratio_floor=0)
    with pytest.raises(AttachmentTooLarge, match="may expand at most 10 times"):
        decode(attachment(zipped(("a.txt", bytes(100_000)))), limits=tight)
    # Below the floor a high ratio is fine: small files compress absurdly well.
    assert decode(attachment(zipped(("a.txt", bytes(100_000))))).size == 100_000


@pytest.mark.parametrize(
    ("declared", "error", "says"),
    [
        (10, AttachmentInvalid, "Bad CRC-32"),  # zipfile stops at the claimed size
        (9001, AttachmentInvalid, "declares 9001 bytes but holds 9000"),
        (50_000, AttachmentInvalid, "declares 50000 bytes but holds 9000"),
        (3_000_000_000, AttachmentTooLarge, "declares 3000000000 bytes"),
    ],
)
def test_a_zip_whose_header_lies_about_the_size(
    declared: int, error: type[Exception], says: str
) -> None:
    archive = declare_size(zipped(("a.pdf", b"%PDF-1.4 " * 1000)), declared)
    with pytest.raises(error) as caught:
        decode(attachment(archive))
    assert says in str(caught.value)


def test_a_zip_claiming_many_entries_is_not_parsed() -> None:
    raw = bytearray(zipped(("a.pdf", PDF)))
    eocd = raw.rfind(b"PK\x05\x06")
    raw[eocd + 8 : eocd + 12] = struct.pack("<HH", 60000, 60000)
    decoded = decode(attachment(bytes(raw)))
    assert not decoded.zipped and "60000 entries" in decoded.note


# ------------------------------------------------------------------------------- manifest


def package_text(*names: str) -> str:
    doc = document()
    atts = tuple(
        Attachment.from_bytes(str(n), name, "application/pdf", PDF)
        for n, name in enumerate(names, start=1)
    )
    return write_document(replace(doc, attachments=atts)).decode()


def edited(text: str, *edits: tuple[str, str]) -> str:
    for old, new in edits:
        assert text.count(old) == 1, f"{old!r} must occur exactly once"
        text = text.replace(old, new)
    return text


def line_of(text: str, needle: str) -> int:
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(lines) == 1, f"{needle!r} is on lines {lines}"
    return lines[0]


def problems_of(
    text: str, *, already: tuple[Problem, ...] = ()
) -> list[tuple[str | None, int | None, str]]:
    return [
        (p.path, p.line, p.message)
        for p in manifest_problems(parse(text.encode()), already=already)
    ]


TWO = package_text("a.pdf", "b.pdf")
REF2 = "<edXML:ContentId>cid:2</edXML:ContentId>"
ATT2 = "<ContentId>cid:2</ContentId>"


def line_before(text: str, needle: str) -> int:
    return line_of(text, needle) - 1  # the Reference/Attachment start tag above its ContentId


@pytest.mark.parametrize(
    ("reference", "attachment_id"),
    [("cid:2", "2"), ("2", "cid:2"), ("CID:2", "2"), ("2", "2"), ("cid:2", " cid:2 ")],
)
def test_content_ids_match_with_or_without_the_prefix(reference: str, attachment_id: str) -> None:
    text = edited(
        TWO,
        (REF2, f"<edXML:ContentId>{reference}</edXML:ContentId>"),
        (ATT2, f"<ContentId>{attachment_id}</ContentId>"),
    )
    assert problems_of(text) == []


def test_a_reference_without_attachment() -> None:
    start = TWO.index("<Attachment>", TWO.index(ATT2) - 40)
    end = TWO.index("</Attachment>", start) + len("</Attachment>")
    text = TWO[:start] + TWO[end:]
    assert problems_of(text) == [
        (
            f"{MANIFEST}/Reference[2]",
            line_before(text, REF2),
            "Reference cid:2 in the manifest has no Attachment in AttachmentEncoded: the file "
            "it describes is missing; attach it with the same ContentId or remove the Reference",
        )
    ]


def test_an_attachment_without_reference() -> None:
    text = edited(TWO, (REF2, "<edXML:ContentId>cid:3</edXML:ContentId>"))
    (missing_att, missing_ref) = problems_of(text)
    assert missing_ref == (
        f"{ENCODED}/Attachment[2]",
        line_before(text, ATT2),
        "Attachment cid:2 has no Reference in the manifest (edXMLBody/edXMLManifest); describe "
        "every attached file there with a Reference of the same ContentId",
    )
    assert missing_att[:2] == (f"{MANIFEST}/Reference[2]", line_before(text, "cid:3"))
    assert missing_att[2].startswith("Reference cid:3 in the manifest has no Attachment")


def test_a_duplicate_reference() -> None:
    text = edited(TWO, (REF2, "<edXML:ContentId>1</edXML:ContentId>"))
    first = line_before(text, "<edXML:ContentId>cid:1</edXML:ContentId>")
    (duplicate, orphan) = problems_of(text)
    assert duplicate == (
        f"{MANIFEST}/Reference[2]",
        line_before(text, "<edXML:ContentId>1</edXML:ContentId>"),
        f"Reference cid:1 appears 2 times in the manifest (first on line {first}); each "
        "attached file needs exactly one Reference, with its own ContentId",
    )
    assert orphan[:2] == (f"{ENCODED}/Attachment[2]", line_before(text, ATT2))


def test_a_duplicate_attachment() -> None:
    text = edited(TWO, (ATT2, "<ContentId>cid:1</ContentId>"))
    (orphan, duplicate) = problems_of(text)
    assert orphan[:2] == (f"{MANIFEST}/Reference[2]", line_before(text, REF2))
    assert duplicate[0] == f"{ENCODED}/Attachment[2]"
    assert duplicate[2].startswith("Attachment cid:1 appears 2 times in AttachmentEncoded")


def test_an_empty_content_id() -> None:
    text = edited(TWO, (REF2, "<edXML:ContentId>cid:</edXML:ContentId>"))
    (empty, orphan) = problems_of(text)
    assert empty == (
        f"{MANIFEST}/Reference[2]/ContentId",
        line_of(text, "<edXML:ContentId>cid:</edXML:ContentId>"),
        "Reference has an empty ContentId ('cid:' without the cid: prefix), so it cannot be "
        "matched with its Attachment; give both the same ContentId (e.g. cid:1)",
    )
    assert orphan[0] == f"{ENCODED}/Attachment[2]"


def test_what_the_caller_already_reported_is_not_reported_again() -> None:
    blank = edited(TWO, (REF2, "<edXML:ContentId> </edXML:ContentId>"))
    where = f"{MANIFEST}/Reference[2]/ContentId"
    assert [p[0] for p in problems_of(blank)] == [where, f"{ENCODED}/Attachment[2]"]
    xsd = Problem("ContentId is empty; a value is required", where, line_of(blank, "> </"))
    # The orphaned Attachment is a matching problem: always reported.
    assert [p[0] for p in problems_of(blank, already=(xsd,))] == [f"{ENCODED}/Attachment[2]"]

    missing = edited(TWO, (ATT2, ""))
    (orphan, no_id) = problems_of(missing)
    assert no_id[:2] == (f"{ENCODED}/Attachment[2]", line_before(TWO, ATT2))  # lines kept
    assert no_id[2].startswith("Attachment has no ContentId")
    assert orphan[0] == f"{MANIFEST}/Reference[2]"
    incomplete = Problem("Attachment is incomplete: ContentId is missing", *no_id[:2])
    assert problems_of(missing, already=(incomplete,)) == [orphan]


@pytest.mark.parametrize(
    ("encoded", "says"),
    [
        ("!", "character '!' at position 1 is not base64"),
        ("Công", "character 'ô' at position 2 is not base64"),
        ("QUJ", "it has 3 characters, not a multiple of 4"),
        ("=QUJ", "= padding may only end it"),
    ],
)
def test_a_file_that_is_not_strict_base64(encoded: str, says: str) -> None:
    # libxml2's base64Binary check skips characters it does not know: the XSD lets these pass.
    start = TWO.index("<ContentTransferEncoded>") + len("<ContentTransferEncoded>")
    text = TWO[:start] + encoded + TWO[TWO.index("</ContentTransferEncoded>", start) :]
    (problem,) = problems_of(text)
    assert problem[:2] == (
        f"{ENCODED}/Attachment[1]/ContentTransferEncoded",
        text[:start].count("\n") + 1,
    )
    assert problem[2].startswith("ContentTransferEncoded of Attachment cid:1 is not valid base64: ")
    assert says in problem[2]


def test_without_a_manifest_only_the_encodings_are_checked() -> None:
    text = edited(TWO, ("<edXML:edXMLBody>", "<!--"), ("</edXML:edXMLBody>", "-->"))
    assert problems_of(text) == []
    text = edited(text, ("<ContentId>cid:1</ContentId>", "<ContentId>cid:1</ContentId>"))
    start = text.index("<ContentTransferEncoded>") + len("<ContentTransferEncoded>")
    assert len(problems_of(text[:start] + "!" + text[start:])) == 1


def test_the_schema_check_reports_manifest_problems() -> None:
    from hub.edxml.schema import check

    assert check(parse(TWO.encode()), "edoc").ok
    text = edited(TWO, (REF2, "<edXML:ContentId>cid:3</edXML:ContentId>"))
    errors = check(parse(text.encode()), "edoc").errors
    assert [(e.path, e.line) for e in errors] == [
        (f"{MANIFEST}/Reference[2]", line_before(text, "cid:3")),
        (f"{ENCODED}/Attachment[2]", line_before(text, ATT2)),
    ]
    # An empty ContentId is reported once, by the XSD, not again by the manifest check.
    blank = edited(TWO, (REF2, "<edXML:ContentId></edXML:ContentId>"))
    paths = [e.path for e in check(parse(blank.encode()), "edoc").errors]
    assert paths.count(f"{MANIFEST}/Reference[2]/ContentId") == 1
    # Base64 the XSD lets through is refused; base64 the XSD refuses is reported once.
    at = TWO.index("<ContentTransferEncoded>") + len("<ContentTransferEncoded>")
    for stray in ("!", "===="):
        errors = check(parse((TWO[:at] + stray + TWO[at:]).encode()), "edoc").errors
        assert [e.path for e in errors] == [f"{ENCODED}/Attachment[1]/ContentTransferEncoded"]


# ---------------------------------------------------------------------------------- trace


def test_describe_records_a_bad_attachment_instead_of_raising() -> None:
    good = attachment(PDF)
    bad = replace(attachment(b"", "hong.pdf", "att-2"), encoded="%%%%")
    pkg = replace(document(), attachments=(good, bad))
    first, second = describe(pkg)
    assert first["size"] == len(PDF) and first["zipped"] is False
    assert second["name"] == "hong.pdf" and "size" not in second
    assert second["error"]["code"] == "attachment.invalid"
    assert "position 1" in second["error"]["detail"]


def test_the_trace_shows_the_attachments() -> None:
    pkg = replace(
        document(),
        attachments=(
            attachment(PDF),
            attachment(zipped(("a.pdf", PDF)), "Quyết định.pdf", "2"),
            replace(attachment(b"", "hong.pdf", "3"), encoded="%%%%"),
        ),
    )
    event = {
        "kind": "received",
        "detail": {"code": "12/UBND-VP", "size": 5247, "package_sha256": "ab" * 32},
    }
    event["detail"]["attachments"] = describe(pkg)
    digest = hashlib.sha256(PDF).hexdigest()[:12]
    assert _event_summary(event) == (
        f"12/UBND-VP · 5247 bytes · sha256 abababababab… · cong-van.pdf ({len(PDF)} bytes, "
        f"sha256 {digest}…) · Quyết định.pdf ({len(PDF)} bytes, sha256 {digest}…, zipped) · "
        "hong.pdf: attachment.invalid"
    )
    # Events recorded before sizes were: name and content type only.
    event["detail"]["attachments"] = [{"name": "cv.pdf", "content_type": "application/pdf"}]
    assert _event_summary(event).endswith(" · cv.pdf")


# ---------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("Công văn số 12.pdf", "Công văn số 12.pdf"),
        ("Co\u0302ng va\u0306n.pdf", "Công văn.pdf"),  # NFD → NFC
        ("../../etc/passwd", "etc_passwd"),
        ("/etc/passwd", "etc_passwd"),
        ("C:\\x.pdf", "x.pdf"),
        ("\\\\server\\share\\x.pdf", "server_share_x.pdf"),
        ("a/b.pdf", "a_b.pdf"),
        ("Công văn 12/UBND-VP.pdf", "Công văn 12_UBND-VP.pdf"),
        ("CON.txt", "_CON.txt"),
        ("nul", "_nul"),
        ("com1.tar.gz", "_com1.tar.gz"),
        ("LPT¹ .pdf", "_LPT¹ .pdf"),
        ("CONSOLE.txt", "CONSOLE.txt"),
        (".hidden", "hidden"),
        ("..", "attachment"),
        (".", "attachment"),
        ("", "attachment"),
        ("   ", "attachment"),
        ("x.pdf. . ", "x.pdf"),
        ("a\x00b.pdf", "a_b.pdf"),
        ("dòng 1\ndòng 2.pdf", "dòng 1 dòng 2.pdf"),
        ("hoa-don\u202efdp.exe", "hoa-donfdp.exe"),  # a right-to-left override hides .exe
        ('a<b>c:d"e|f?g*h.pdf', "a_b_c_d_e_f_g_h.pdf"),
        ("x.pdf:Zone.Identifier", "x.pdf_Zone.Identifier"),
    ],
)
def test_safe_filename(name: str, safe: str) -> None:
    assert safe_filename(name, set()) == safe


def test_repeated_names_get_a_number_before_the_extension() -> None:
    taken: set[str] = set()
    for expected in ("Công văn.pdf", "Công văn (2).pdf", "Công văn (3).pdf"):
        name = safe_filename("Công văn.pdf", taken)
        assert name == expected
        taken.add(name)
    assert safe_filename("CÔNG VĂN.PDF", taken) == "CÔNG VĂN (4).PDF"  # case-insensitive
    assert safe_filename("README", {"readme"}) == "README (2)"
    assert taken == {"Công văn.pdf", "Công văn (2).pdf", "Công văn (3).pdf"}  # not changed


def test_long_names_are_cut_in_the_name_not_the_extension() -> None:
    long = "Quyết định " * 40 + ".pdf"
    name = safe_filename(long, set())
    assert len(name.encode()) <= 255 and name.endswith(".pdf")
    assert name.startswith("Quyết định Quyết định")
    again = safe_filename(long, {name})
    assert len(again.encode()) <= 255 and again.endswith(" (2).pdf")


# Text of every kind, with the pieces that matter over-represented.
name_text = st.lists(
    st.one_of(
        st.text(st.characters(exclude_categories=()), max_size=20),
        st.sampled_from(
            ["/", "\\", "..", ".", " ", "\x00", "CON", "nul", "C:", ".pdf", "ệ" * 30, "\u202e"]
        ),
    ),
    max_size=25,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(name=name_text, taken=st.sets(name_text, max_size=4))
def test_safe_filename_is_always_safe(name: str, taken: set[str]) -> None:
    safe = safe_filename(name, taken)
    assert safe
    assert safe not in (".", "..")
    assert not {"/", "\\", "\x00"} & set(safe)
    assert len(safe.encode("utf-8")) <= 255  # also: encodable, no lone surrogates
    assert not safe.startswith((".", " ")) and not safe.endswith((".", " "))
    assert safe.casefold() not in {unicodedata.normalize("NFC", t).casefold() for t in taken}
    assert safe_filename(safe, set()) == safe  # a safe name is left alone


# ------------------------------------------------------------------------- the CLI's writer


@pytest.fixture
def package() -> bytes:
    pkg = replace(
        document(),
        attachments=(
            attachment(PDF, "../../Công văn số 12.pdf", "1"),
            attachment(
                zipped(("9e1c4b7a-0d1f-4e5a-8b2c-3d4e5f6a7b8c.pdf", PDF)), "Công văn số 12.pdf", "2"
            ),
            attachment(b"phu luc", "CON", "3"),
        ),
    )
    return write_document(pkg)


def test_the_cli_writes_every_file_inside_the_folder(
    package: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import cli

    out = tmp_path / "tep dinh kem"
    assert cli._save_attachments(package, out) == cli.EXIT_OK
    assert sorted(p.name for p in out.iterdir()) == [
        "Công văn số 12 (2).pdf",
        "Công văn số 12.pdf",
        "_CON",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tep dinh kem"]
    assert (out / "Công văn số 12.pdf").read_bytes() == PDF
    assert (out / "Công văn số 12 (2).pdf").read_bytes() == PDF
    assert (out / "_CON").read_bytes() == b"phu luc"
    lines = capsys.readouterr().out.splitlines()
    digest = hashlib.sha256(PDF).hexdigest()
    assert lines == [
        f"Công văn số 12.pdf: {len(PDF)} bytes, sha256 {digest}, not zipped, "
        "sent as '../../Công văn số 12.pdf'",
        f"Công văn số 12 (2).pdf: {len(PDF)} bytes, sha256 {digest}, zipped "
        "(entry 9e1c4b7a-0d1f-4e5a-8b2c-3d4e5f6a7b8c.pdf), sent as 'Công văn số 12.pdf'",
        f"_CON: 7 bytes, sha256 {hashlib.sha256(b'phu luc').hexdigest()}, not zipped, "
        "sent as 'CON'",
    ]
    # Again: the same files are replaced, not numbered further, and no temporary file is left.
    assert cli._save_attachments(package, out) == cli.EXIT_OK
    assert len(list(out.iterdir())) == 3


def test_the_cli_writes_what_it_can_and_says_what_it_could_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import cli

    pkg = replace(
        document(),
        attachments=(attachment(PDF), attachment(declare_size(zipped(("a", PDF)), 10), "x", "2")),
    )
    assert cli._save_attachments(write_document(pkg), tmp_path) == cli.EXIT_INVALID
    assert [p.name for p in tmp_path.iterdir()] == ["cong-van.pdf"]
    err = capsys.readouterr().err
    assert "not written: attachment.invalid: Attachment cid:2 ('x') cannot be decoded" in err
