"""Metadata files an agency system drops beside a PDF, turned into edXML packages.

Pure: text and bytes in, typed model objects out (hub/edxml/model.py); nothing is read from
disk or the network here. The folder adapter reads the files and signs what this builds.

A document (``outbox/cv-125.toml``, or the same keys in JSON)::

    subject = "V/v triển khai liên thông văn bản điện tử"
    number = "125"
    notation = "UBND-VP"
    recipients = ["000.00.31.H26", "000.00.32.H26"]
    attachments = ["cv-125.pdf"]
    priority = "khẩn"                    # or urgent, or 1
    due_date = "2026/12/15"
    signer = { position = "Chủ tịch", full_name = "Nguyễn Văn A" }

A status (``status/cv-125-03.toml``)::

    document = "<the hub's document id: the folder name in inbox/>"
    code = "03"
    description = "Đã vào sổ văn bản đến"

Unknown keys are refused with a "did you mean" hint: a misspelt ``due_dte`` silently dropped
would send a letter without its deadline.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import mimetypes
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.edxml.model import (
    Attachment,
    Code,
    DocumentPackage,
    DocumentType,
    Organization,
    OtherInfo,
    Priority,
    PromulgationInfo,
    SignerInfo,
    StaffInfo,
    StatusCode,
    TraceHeader,
)

METADATA_SUFFIXES = (".toml", ".json")

# Names an agency's clerk may use for a priority, English and Vietnamese (with or without marks).
_PRIORITIES = {
    "normal": Priority.NORMAL,
    "thường": Priority.NORMAL,
    "thuong": Priority.NORMAL,
    "urgent": Priority.URGENT,
    "khẩn": Priority.URGENT,
    "khan": Priority.URGENT,
    "very_urgent": Priority.VERY_URGENT,
    "thượng khẩn": Priority.VERY_URGENT,
    "thuong khan": Priority.VERY_URGENT,
    "flash": Priority.FLASH,
    "hỏa tốc": Priority.FLASH,
    "hoa toc": Priority.FLASH,
    "flash_timed": Priority.FLASH_TIMED,
    "hỏa tốc hẹn giờ": Priority.FLASH_TIMED,
    "hoa toc hen gio": Priority.FLASH_TIMED,
}

_DOCUMENT_KEYS = {
    "subject": "trích yếu: the summary line (required)",
    "number": "số: the code number (required)",
    "notation": "ký hiệu: the code notation, e.g. UBND-VP (required)",
    "recipients": "agency codes, or tables {code, name} (required)",
    "attachments": "file names in outbox/ beside this file",
    "content": "summary text (default: the subject)",
    "priority": "normal/thường, urgent/khẩn, very_urgent/thượng khẩn, flash/hỏa tốc, "
    "flash_timed/hỏa tốc hẹn giờ, or 0..4",
    "due_date": "hạn xử lý, yyyy/mm/dd",
    "date": "promulgation date, yyyy/mm/dd (default: today, Vietnam time)",
    "place": "promulgation place, e.g. Hà Nội",
    "type": "document type name (default Công văn)",
    "type_code": "DocumentType/Type (default 1)",
    "signer": "{competence, position, full_name}",
    "sender_name": "the sending agency's name",
    "document_id": "the edXML DocumentId (default: <agency>,<date>,<number>/<notation>)",
    "sphere": "SphereOfPromulgation",
    "to_places": "the printed distribution list (nơi nhận); not routing",
}
_STATUS_KEYS = {
    "document": "the hub's document id (the folder name in inbox/) (required)",
    "code": "01..06, 13, 15 or 16 (required)",
    "description": "free text, e.g. the reason of a rejection (02)",
    "recipient": "for a recall request (13): the recipient it is addressed to",
    "department": "StaffInfo/Department",
    "staff": "StaffInfo/Staff",
    "mobile": "StaffInfo/Mobile",
    "email": "StaffInfo/Email",
}
_DATE = re.compile(r"(\d{4})[/-](\d{2})[/-](\d{2})")


class MetadataError(ValueError):
    """A metadata file that cannot become a package; the message says what to change."""


def read_metadata(name: str, data: bytes) -> dict[str, Any]:
    """The table in a ``.toml`` or ``.json`` metadata file named *name*."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MetadataError(f"{name} is not UTF-8 text (byte {exc.start + 1})") from None
    try:
        value = json.loads(text) if name.lower().endswith(".json") else tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise MetadataError(f"{name} is not valid JSON: line {exc.lineno}: {exc.msg}") from None
    except tomllib.TOMLDecodeError as exc:
        raise MetadataError(f"{name} is not valid TOML: {exc}") from None
    if not isinstance(value, dict):
        raise MetadataError(f"{name} must hold one table (a JSON object), not a list or value")
    return value


def _check_keys(meta: Mapping[str, Any], allowed: Mapping[str, str], what: str) -> None:
    for key in meta:
        if key not in allowed:
            close = difflib.get_close_matches(key, list(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise MetadataError(
                f"unknown key {key!r} in a {what} metadata file{hint} "
                f"(known: {', '.join(sorted(allowed))})"
            )


def _text(meta: Mapping[str, Any], key: str, *, required: bool = False, default: str = "") -> str:
    value = meta.get(key)
    if value is None or value == "":
        if required:
            raise MetadataError(f"{key!r} is required ({_DOCUMENT_KEYS.get(key) or key})")
        return default
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MetadataError(f"{key!r} must be text, not {type(value).__name__}")
    return str(value).strip()


def _date(meta: Mapping[str, Any], key: str, default: str = "") -> str:
    """A date as edXML writes it, yyyy/MM/dd, from text or a TOML date."""
    value = meta.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.strftime("%Y/%m/%d")
    match = _DATE.fullmatch(str(value).strip())
    if not match:
        raise MetadataError(f"{key!r} must be a date written yyyy/mm/dd, not {value!r}")
    year, month, day = (int(g) for g in match.groups())
    try:
        dt.date(year, month, day)
    except ValueError:
        raise MetadataError(f"{key!r} is not a real date: {value!r}") from None
    return f"{year:04d}/{month:02d}/{day:02d}"


def _priority(value: Any) -> Priority:
    if value is None:
        return Priority.NORMAL
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return Priority(value)
        except ValueError:
            pass
    elif isinstance(value, str):
        found = _PRIORITIES.get(value.strip().lower().replace("-", "_"))
        if found is not None:
            return found
        if value.strip().isdigit():
            return _priority(int(value))
    raise MetadataError(f"'priority' {value!r} is not one of: {_DOCUMENT_KEYS['priority']}")


def _recipients(value: Any) -> tuple[Organization, ...]:
    if not isinstance(value, list) or not value:
        raise MetadataError("'recipients' must be a non-empty list of agency codes")
    out: list[Organization] = []
    for entry in value:
        if isinstance(entry, str) and entry.strip():
            out.append(Organization(entry.strip()))
        elif isinstance(entry, dict) and isinstance(entry.get("code"), str) and entry["code"]:
            out.append(Organization(entry["code"].strip(), str(entry.get("name", ""))))
        else:
            raise MetadataError(f"'recipients' entry {entry!r} is not an agency code")
    codes = [o.organ_id for o in out]
    repeated = sorted({c for c in codes if codes.count(c) > 1})
    if repeated:
        raise MetadataError(f"'recipients' names {', '.join(repeated)} more than once")
    return tuple(out)


def attachment_names(meta: Mapping[str, Any]) -> list[str]:
    """The files a document metadata file names, in order; only plain names in its folder."""
    value = meta.get("attachments", [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise MetadataError("'attachments' must be a list of file names")
    for name in value:
        if "/" in name or "\\" in name or name in (".", ".."):
            raise MetadataError(
                f"attachment {name!r} must be a file name in the same folder, not a path"
            )
    if len(set(value)) != len(value):
        raise MetadataError("'attachments' names a file more than once")
    return list(value)


def _signer(value: Any) -> SignerInfo:
    if value is None:
        return SignerInfo()
    if not isinstance(value, dict):
        raise MetadataError("'signer' must be a table {competence, position, full_name}")
    unknown = set(value) - {"competence", "position", "full_name"}
    if unknown:
        raise MetadataError(f"'signer' has unknown key(s) {', '.join(sorted(unknown))}")
    competence, position, full_name = (
        str(value.get(k, "")) for k in ("competence", "position", "full_name")
    )
    return SignerInfo(competence, position, full_name)


def content_type_of(name: str) -> str:
    """The MIME type a file name suggests (the recipient's system opens it by this)."""
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


def document_from_metadata(
    meta: Mapping[str, Any],
    *,
    sender: str,
    files: Sequence[tuple[str, bytes]],
    now: dt.datetime,
) -> DocumentPackage:
    """The document package a metadata file describes, sent by *sender*, carrying *files*
    (name, bytes: the attachments it names, in its order); *now* is Vietnam local time."""
    _check_keys(meta, _DOCUMENT_KEYS, "document")
    subject = _text(meta, "subject", required=True)
    number = _text(meta, "number", required=True)
    notation = _text(meta, "notation", required=True)
    recipients = _recipients(meta.get("recipients"))
    date = _date(meta, "date", now.strftime("%Y/%m/%d"))
    to_places = meta.get("to_places", [])
    if not isinstance(to_places, list) or not all(isinstance(p, str) for p in to_places):
        raise MetadataError("'to_places' must be a list of text lines")
    return DocumentPackage(
        sender=Organization(sender, _text(meta, "sender_name")),
        recipients=recipients,
        document_id=_text(meta, "document_id", default=f"{sender},{date},{number}/{notation}"),
        code=Code(number, notation),
        promulgation=PromulgationInfo(_text(meta, "place"), date),
        document_type=DocumentType(
            _text(meta, "type_code", default="1"), "", _text(meta, "type", default="Công văn")
        ),
        subject=subject,
        content=_text(meta, "content", default=subject),
        signer=_signer(meta.get("signer")),
        due_date=_date(meta, "due_date"),
        to_places=tuple(to_places),
        other=OtherInfo(
            priority=_priority(meta.get("priority")),
            sphere_of_promulgation=_text(meta, "sphere"),
        ),
        trace=(TraceHeader(sender, now.strftime("%Y/%m/%d %H:%M:%S")),),
        attachments=tuple(
            Attachment.from_bytes(f"{index}", name, content_type_of(name), data)
            for index, (name, data) in enumerate(files, start=1)
        ),
    )


@dataclass(frozen=True)
class StatusRequest:
    """What a status metadata file asks for; the adapter finds the document it names."""

    document: str
    code: StatusCode
    description: str = ""
    recipient: str = ""
    staff: StaffInfo = field(default_factory=StaffInfo)


def status_from_metadata(meta: Mapping[str, Any]) -> StatusRequest:
    _check_keys(meta, _STATUS_KEYS, "status")
    document = meta.get("document")
    if not isinstance(document, str) or not document.strip():
        raise MetadataError(f"'document' is required ({_STATUS_KEYS['document']})")
    raw = meta.get("code")
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = f"{raw:02d}"
    try:
        code = StatusCode(str(raw).strip())
    except ValueError:
        known = ", ".join(f"{c.value} ({c.meaning})" for c in StatusCode)
        raise MetadataError(f"'code' {raw!r} is not a status code: {known}") from None
    recipient = str(meta.get("recipient", "")).strip()
    if code is StatusCode.RECALL_REQUEST and not recipient:
        raise MetadataError("a recall request (13) names the 'recipient' it is addressed to")
    return StatusRequest(
        document=document.strip(),
        code=code,
        description=str(meta.get("description", "")),
        recipient=recipient,
        staff=StaffInfo(
            str(meta.get("department", "")),
            str(meta.get("staff", "")),
            str(meta.get("mobile", "")),
            str(meta.get("email", "")),
        ),
    )
