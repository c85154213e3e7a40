"""What the folder adapter makes of the files an agency system drops: metadata files become
packages the hub accepts the shape of, file names are made safe, and files still being written
are left alone."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest

from adapters.files import is_complete, looks_temporary, write_atomically
from adapters.folder import FolderAdapter, _folder_name, _free_name, is_signed, reason_text
from adapters.metadata import (
    MetadataError,
    attachment_names,
    document_from_metadata,
    read_metadata,
    status_from_metadata,
)
from adapters.sdk import VIETNAM, Credentials
from hub.edxml.model import Priority, StatusCode
from hub.edxml.reader import read_document
from hub.edxml.schema import check
from hub.edxml.writer import write_document
from hub.errors import ConfigError
from hub.xmlsafe import parse
from tests.support import BA_DINH, CITY, HOAN_KIEM, World, document

NOW = dt.datetime(2026, 12, 2, 9, 30, tzinfo=VIETNAM)

LETTER = f"""
subject = "V/v triển khai liên thông văn bản điện tử"
number = "125"
notation = "UBND-VP"
recipients = ["{BA_DINH}", {{ code = "{HOAN_KIEM}", name = "UBND quận Hoàn Kiếm" }}]
attachments = ["cv-125.pdf"]
priority = "hỏa tốc"
due_date = 2026-12-15
place = "Hà Nội"
signer = {{ competence = "TM. ỦY BAN NHÂN DÂN", position = "Chủ tịch", full_name = "Nguyễn Văn A" }}
"""


def test_a_toml_letter_becomes_a_document_package_that_reads_back() -> None:
    meta = read_metadata("cv-125.toml", LETTER.encode())
    pdf = b"%PDF-1.4 fake"
    pkg = document_from_metadata(meta, sender=CITY, files=[("cv-125.pdf", pdf)], now=NOW)
    back = read_document(parse(write_document(pkg)))
    assert back == pkg
    assert back.document_id == f"{CITY},2026/12/02,125/UBND-VP"
    assert [r.organ_id for r in back.recipients] == [BA_DINH, HOAN_KIEM]
    assert back.recipients[1].organ_name == "UBND quận Hoàn Kiếm"
    assert (back.priority, back.due_date, back.promulgation.date) == (
        Priority.FLASH,
        "2026/12/15",
        "2026/12/02",
    )
    assert back.signer.full_name == "Nguyễn Văn A"
    (att,) = back.attachments
    assert (att.name, att.content_type, att.data) == ("cv-125.pdf", "application/pdf", pdf)


def test_the_package_built_passes_the_hubs_schema_check() -> None:
    meta = read_metadata("cv-125.toml", LETTER.encode())
    pkg = document_from_metadata(meta, sender=CITY, files=[("cv-125.pdf", b"%PDF")], now=NOW)
    report = check(parse(write_document(pkg)), "edoc")
    assert report.errors == ()


def test_json_metadata_reads_the_same_as_toml() -> None:
    meta = read_metadata(
        "cv.json",
        '{"subject": "V/v họp", "number": 3, "notation": "VP", "recipients": ["000.00.31.H26"],'
        ' "priority": 2}'.encode(),
    )
    pkg = document_from_metadata(meta, sender=CITY, files=[], now=NOW)
    assert (pkg.code.number, pkg.priority, pkg.attachments) == ("3", Priority.VERY_URGENT, ())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('subject = "x"\nnumber = "1"\nnotation = "VP"\nrecipients = []', "non-empty list"),
        ('subject = "x"\nnotation = "VP"\nrecipients = ["a"]', "'number' is required"),
        (
            'subject = "x"\nnumber = "1"\nnotation = "VP"\nrecipients = ["a"]\ndue_dte = "x"',
            "did you mean 'due_date'?",
        ),
        (
            'subject = "x"\nnumber = "1"\nnotation = "VP"\nrecipients = ["a"]\n'
            'due_date = "2026/02/30"',
            "not a real date",
        ),
        (
            'subject = "x"\nnumber = "1"\nnotation = "VP"\nrecipients = ["a"]\npriority = "gấp"',
            "is not one of",
        ),
        (
            'subject = "x"\nnumber = "1"\nnotation = "VP"\nrecipients = ["a", "a"]',
            "more than once",
        ),
    ],
)
def test_a_bad_letter_is_refused_with_what_to_change(text: str, message: str) -> None:
    with pytest.raises(MetadataError, match=message):
        document_from_metadata(
            read_metadata("x.toml", text.encode()), sender=CITY, files=[], now=NOW
        )


def test_unreadable_metadata_says_where() -> None:
    with pytest.raises(MetadataError, match="not valid TOML"):
        read_metadata("x.toml", b'subject = "unclosed')
    with pytest.raises(MetadataError, match="not valid JSON: line 2"):
        read_metadata("x.json", b'{\n"a": }')
    with pytest.raises(MetadataError, match="one table"):
        read_metadata("x.json", b"[1, 2]")
    with pytest.raises(MetadataError, match="not UTF-8"):
        read_metadata("x.toml", "subject = 'công văn'".encode("utf-16"))


def test_attachments_must_be_plain_names_beside_the_metadata_file() -> None:
    assert attachment_names({"attachments": "a.pdf"}) == ["a.pdf"]
    for bad in (["../../etc/passwd"], ["sub\\a.pdf"], [".."], ["a.pdf", "a.pdf"], [3]):
        with pytest.raises(MetadataError):
            attachment_names({"attachments": bad})


def test_status_metadata() -> None:
    request = status_from_metadata({"document": "abc", "code": 3, "description": "Đã vào sổ"})
    assert (request.document, request.code, request.description) == (
        "abc",
        StatusCode.ACCEPTED,
        "Đã vào sổ",
    )
    with pytest.raises(MetadataError, match="not a status code"):
        status_from_metadata({"document": "abc", "code": "07"})
    with pytest.raises(MetadataError, match="names the 'recipient'"):
        status_from_metadata({"document": "abc", "code": "13"})
    with pytest.raises(MetadataError, match="'document' is required"):
        status_from_metadata({"code": "01"})


def test_temporary_names_and_fresh_files_are_not_complete(tmp_path: Path) -> None:
    for name in ("a.tmp", "a.pdf.part", "a.edxml~", ".hidden.edxml", "~$letter.docx", "a.TMP"):
        assert looks_temporary(name), name
    assert not looks_temporary("cv-125.edxml")
    fresh = tmp_path / "cv.edxml"
    fresh.write_bytes(b"x")
    now = time.time()
    assert not is_complete(fresh, now, 1.0)
    os.utime(fresh, (now - 5, now - 5))
    assert is_complete(fresh, now, 1.0)
    assert not is_complete(tmp_path, now, 0)  # a folder is not a file to send
    link = tmp_path / "key.pem"
    link.symlink_to(fresh)  # whoever writes the folder must not make the adapter send a secret
    assert not is_complete(link, now, 1.0)
    assert not is_complete(tmp_path / "gone.edxml", now, 0)


def test_write_atomically_refuses_paths_and_leaves_no_temporary(tmp_path: Path) -> None:
    write_atomically(tmp_path, "a.json", b"{}")
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    for bad in ("../a", "sub/a", "..", ""):
        with pytest.raises(ValueError, match="unsafe"):
            write_atomically(tmp_path, bad, b"x")


def test_names_are_made_safe_and_never_overwrite() -> None:
    assert _folder_name("../../etc") == "etc"
    assert _folder_name("statuses") == "statuses (2)"  # never one of inbox/'s own folders
    taken = {"cv.toml", "cv.toml.receipt.json"}
    assert _free_name("cv.toml", taken, (".receipt.json",)) == "cv (2).toml"
    assert "cv (2).toml.receipt.json" in taken
    # A leftover note of an earlier file of that name also makes the name taken.
    taken = {"x.edxml.receipt.json"}
    assert _free_name("x.edxml", taken, (".receipt.json",)) == "x (2).edxml"


def test_is_signed(world: World) -> None:
    unsigned = write_document(document(CITY, (BA_DINH,)))
    assert not is_signed(unsigned)
    assert is_signed(world.accounts[CITY].sign(unsigned))
    assert is_signed(b"<not xml")  # sent as it is: the hub's refusal names the line


def test_reason_text_lists_each_problem_in_plain_language() -> None:
    text = reason_text(
        "outbox/cv.edxml",
        "schema.invalid",
        "The package does not match the edXML schema.",
        [{"message": "Subject is missing", "line": 12, "path": "/edXML/MessageHeader"}],
        status=422,
        when=dt.datetime(2026, 12, 2, 2, 0, tzinfo=dt.UTC),
    )
    assert "outbox/cv.edxml was not sent: the hub refused it." in text
    assert "2026-12-02 09:00:00 (Vietnam time)" in text
    assert "schema.invalid (HTTP 422)" in text
    assert "  - line 12, /edXML/MessageHeader: Subject is missing" in text


async def test_a_second_adapter_on_the_same_folder_refuses_to_start(tmp_path: Path) -> None:
    credentials = Credentials(CITY, "token")
    first = FolderAdapter(tmp_path, credentials)
    await first.start()
    await first.start()  # starting again is harmless
    second = FolderAdapter(tmp_path, credentials)
    with pytest.raises(ConfigError, match="already running"):
        await second.start()
    await first.close()
    await second.start()  # the folder is free again
    await second.close()
