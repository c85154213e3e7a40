"""Attachments: the manifest matched against the files, each file decoded, named and described.

Pure: bytes, trees and model objects in, values out; nothing is read from or written to disk.

**The manifest** (:func:`manifest_problems`). Each file appears twice in a document package: a
``Reference`` in ``edXMLBody/edXMLManifest`` and an ``Attachment`` in ``AttachmentEncoded``,
joined by ``ContentId`` (``cid:`` optional on either side, EDXML.md §2.3). Every Reference must be
matched by exactly one Attachment and every Attachment by exactly one Reference.

**Decoding** (:func:`decode`). ``ContentTransferEncoded`` is strict base64 (XML white space
allowed, nothing else). The official SDK zips each file and base64-encodes the ZIP, whatever
ContentType says; other senders base64-encode the file itself. The hub unwraps a ZIP only when it
is unmistakably the SDK's single-file wrapper, and otherwise delivers the bytes as sent:

- unwrapped: the decoded bytes are a ZIP archive with exactly one entry, a file, stored or
  deflated, not encrypted; and the attachment is not itself meant to be a ZIP (an AttachmentName
  ending in ``.zip`` is unwrapped only when the entry has the SDK's ``<uuid>.<ext>`` name);
- kept as sent, with a ``note`` saying why: any other archive. A .docx, .xlsx or .odt file sent
  as raw base64 is a ZIP with many entries, so an archive of several entries is the file itself,
  never something to pick one entry out of. An entry compressed with bzip2 or LZMA or encrypted
  is kept too: the recipient's tools can open it, and the hub does not run decompressors it
  cannot bound.

Hostile archives. The sizes a ZIP declares are never trusted: the entry is decompressed in
chunks and refused (:class:`AttachmentTooLarge`) as soon as it passes :class:`AttachmentLimits`
(a size per file, and an expansion ratio measured against the archive's real size); a declared
size that differs from what the entry really holds, a bad CRC or a damaged archive is
:class:`AttachmentInvalid`. The end-of-central-directory record is read before ``zipfile`` is
given the archive, so an archive claiming thousands of entries is never parsed at all.

**Names** (:func:`safe_filename`) keep the sender's Vietnamese name and make it safe to write.

**What refuses a package**: :func:`manifest_problems`, which the schema check runs on every
document package: a manifest that does not match the files, or a file that is not strict base64.
Both are cheap and certain. What a file holds is not a reason to refuse: :func:`describe` decodes
and unzips for the trace, and a file that cannot be (a damaged or oversized ZIP) is recorded with
an ``error``; the package is still what the sender signed and is delivered as such.
"""

from __future__ import annotations

import binascii
import hashlib
import io
import re
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from lxml import etree

from hub.edxml.model import EDXML_NS, Attachment, DocumentPackage
from hub.edxml.reader import normalise_content_id
from hub.errors import PackageError, Problem
from hub.xmlsafe import children, descend, problem_at, source_line, text_of

__all__ = [
    "AttachmentError",
    "AttachmentInvalid",
    "AttachmentLimits",
    "AttachmentTooLarge",
    "DecodedFile",
    "decode",
    "describe",
    "manifest_problems",
    "safe_filename",
]

MiB = 1024 * 1024


class AttachmentError(PackageError):
    """An attachment cannot be decoded."""

    code = "attachment.invalid"


class AttachmentInvalid(AttachmentError):
    """An attachment is not valid base64, or its ZIP archive is damaged or inconsistent."""

    code = "attachment.invalid"


class AttachmentTooLarge(AttachmentError):
    """An attachment is larger, once decoded or unzipped, than the hub accepts."""

    code = "attachment.too_large"


@dataclass(frozen=True)
class AttachmentLimits:
    """How much one attachment may expand to; the defaults are safe for real documents.

    ``max_size`` bounds the original file (after base64, after unzipping). ``max_ratio`` bounds
    the unzipped size against the archive's real size (the base64-decoded bytes, never what the
    ZIP header says); it is only applied above ``ratio_floor`` bytes, since tiny files compress
    absurdly well. ``None`` turns the ratio check off.
    """

    max_size: int = 100 * MiB
    max_ratio: int | None = 200
    ratio_floor: int = 1 * MiB
    chunk_size: int = 64 * 1024


@dataclass(frozen=True)
class DecodedFile:
    """One attachment as the original file: its bytes, and what the trace records of it."""

    content_id: str
    name: str  # AttachmentName as sent (not yet made safe: see safe_filename)
    content_type: str  # ContentType as sent (the SDK may say application/zip or application/pdf)
    data: bytes = field(repr=False)  # the original file
    zipped: bool  # True when unwrapped from the SDK's single-file ZIP
    size: int  # len(data)
    sha256: str  # hex SHA-256 of data
    encoded_size: int  # characters of base64 carried in the package (white space excluded)
    entry_name: str = ""  # the ZIP entry's name, when zipped
    note: str = ""  # why a ZIP archive was kept as sent, when it was


DEFAULT_LIMITS = AttachmentLimits()


# ----------------------------------------------------------------------------------- manifest


def _q(name: str) -> str:
    return f"{{{EDXML_NS}}}{name}"


def manifest_problems(
    tree_or_root: etree._ElementTree | etree._Element, *, already: Iterable[Problem] = ()
) -> list[Problem]:
    """Every Reference matched by exactly one Attachment and back; every file strict base64.

    Reports, each at the element's path and line: a duplicate content id on either side, a
    Reference without Attachment, an Attachment without Reference (content ids compared without
    ``cid:``), a missing or empty ContentId (``cid:`` alone counts as empty), and a
    ContentTransferEncoded that is missing or not strict base64. The last is here because
    libxml2's base64Binary check skips characters it does not know: ``!`` or a Vietnamese
    letter in the base64 passes the XSD. Nothing is decoded or unzipped: this runs on every
    package, and what the files hold is :func:`describe`'s business.

    *already*: problems the caller has found (the schema passes the XSD's). A missing or empty
    ContentId, or a missing or bad ContentTransferEncoded, at an element that already has a
    problem is not reported twice. Matching problems are always reported.

    Without a manifest (no edXMLBody/edXMLManifest) there is nothing to match against: that is
    a structural fault the schema reports, and only the encodings are checked.
    """
    root = tree_or_root.getroot() if isinstance(tree_or_root, etree._ElementTree) else tree_or_root
    found = _Found({(p.path, p.line) for p in already})
    attachment_parts = [
        _Parts.of(attachment)
        for encoded in children(root, _ATTACHMENT_ENCODED)
        for attachment in children(encoded, _ATTACHMENT)
    ]
    for parts in attachment_parts:
        _check_encoding(parts, found)
    manifest = descend(root, _ENVELOPE, _BODY, _MANIFEST)
    if manifest is None:
        return found.sorted()
    described = [_Parts.of(reference) for reference in children(manifest, _REFERENCE)]
    references = _by_content_id(described, "Reference", "Attachment", found)
    attachments = _by_content_id(attachment_parts, "Attachment", "Reference", found)
    for cid, refs in references.items():
        _repeats(refs, "Reference", cid, "the manifest", found)
        if cid not in attachments:
            found.add(
                refs[0],
                f"Reference cid:{cid} in the manifest has no Attachment in "
                "AttachmentEncoded: the file it describes is missing; attach it with the "
                "same ContentId or remove the Reference",
            )
    for cid, atts in attachments.items():
        _repeats(atts, "Attachment", cid, "AttachmentEncoded", found)
        if cid not in references:
            found.add(
                atts[0],
                f"Attachment cid:{cid} has no Reference in the manifest "
                "(edXMLBody/edXMLManifest); describe every attached file there with a "
                "Reference of the same ContentId",
            )
    return found.sorted()


_ATTACHMENT_ENCODED, _ATTACHMENT = _q("AttachmentEncoded"), _q("Attachment")
_REFERENCE = _q("Reference")
_ENVELOPE, _BODY, _MANIFEST = _q("edXMLEnvelope"), _q("edXMLBody"), _q("edXMLManifest")
_CONTENT_ID, _ENCODED = _q("ContentId"), _q("ContentTransferEncoded")


class _Parts(NamedTuple):
    """A Reference or an Attachment, with what the manifest check reads of it, each looked up
    once: this runs on every package. ``cid`` is the ContentId without ``cid:``."""

    element: etree._Element
    content_id: etree._Element | None
    encoded: etree._Element | None
    cid: str

    @classmethod
    def of(cls, element: etree._Element) -> _Parts:
        content_id = encoded = None
        for child in element:  # the first of each, as find() would
            tag = child.tag
            if tag == _CONTENT_ID and content_id is None:
                content_id = child
            elif tag == _ENCODED and encoded is None:
                encoded = child
        return cls(element, content_id, encoded, normalise_content_id(text_of(content_id)))


@dataclass
class _Found:
    """The problems found so far, and where the caller had already found some."""

    reported: set[tuple[str | None, int | None]]
    problems: list[Problem] = field(default_factory=list)

    def add(self, element: etree._Element, message: str) -> None:
        self.problems.append(problem_at(element, message))

    def add_unless_reported(self, element: etree._Element, message: str) -> None:
        problem = problem_at(element, message)
        if (problem.path, problem.line) not in self.reported:
            self.problems.append(problem)

    def sorted(self) -> list[Problem]:
        return sorted(self.problems, key=lambda p: p.line if p.line is not None else 1 << 30)


def _check_encoding(attachment: _Parts, found: _Found) -> None:
    encoded = attachment.encoded
    label = f"Attachment cid:{attachment.cid}" if attachment.cid else "Attachment"
    if encoded is None:
        found.add_unless_reported(
            attachment.element, f"{label} has no ContentTransferEncoded: the file itself is missing"
        )
        return
    try:
        _check_base64(text_of(encoded))
    except _NotBase64 as exc:
        found.add_unless_reported(
            encoded,
            f"ContentTransferEncoded of {label} is not valid base64: {exc}; "
            "the file must be base64-encoded as a whole",
        )


def _by_content_id(
    elements: list[_Parts], what: str, counterpart: str, found: _Found
) -> dict[str, list[etree._Element]]:
    by_id: dict[str, list[etree._Element]] = {}
    for parts in elements:
        element, content_id = parts.element, parts.content_id
        if content_id is None:
            found.add_unless_reported(
                element,
                f"{what} has no ContentId, so it cannot be matched with its "
                f"{counterpart}; give both the same ContentId (e.g. cid:1)",
            )
            continue
        cid = parts.cid
        if not cid:
            raw = text_of(content_id)
            shown = f" ({raw!r} without the cid: prefix)" if raw else ""
            found.add_unless_reported(
                content_id,
                f"{what} has an empty ContentId{shown}, so it cannot be matched with "
                f"its {counterpart}; give both the same ContentId (e.g. cid:1)",
            )
            continue
        by_id.setdefault(cid, []).append(element)
    return by_id


def _repeats(
    elements: list[etree._Element], what: str, cid: str, where: str, found: _Found
) -> None:
    if len(elements) < 2:
        return
    first = source_line(elements[0])
    on_line = f" (first on line {first})" if first is not None else ""
    for extra in elements[1:]:
        found.add(
            extra,
            f"{what} cid:{cid} appears {len(elements)} times in {where}{on_line}; "
            f"each attached file needs exactly one {what}, with its own ContentId",
        )


# ----------------------------------------------------------------------------------- decoding

_XML_SPACE = b" \t\r\n"
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/= \t\r\n]")
_BASE64_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \t\r\n"
# The characters that may stand last before one or two = (RFC 4648 §3.5, the canonical
# encoding; the lexical form of xs:base64Binary): the bits the padding leaves out are zero.
# With this, whatever the strict check accepts, libxml2's xs:base64Binary accepts too, which
# lets the schema check skip libxml2's slower test of the content (hub.edxml.schema).
_BEFORE_PADDING = {1: b"AEIMQUYcgkosw048", 2: b"AQgw"}
_ZIP_LOCAL_HEADER = b"PK\x03\x04"
_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_MAX_ONE_ENTRY_DIRECTORY = 46 + 3 * 0xFFFF  # fixed part + name + extra + comment
_SDK_ENTRY = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(\.[^/\\]*)?", re.IGNORECASE
)
_UNWRAPPABLE = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
# What zipfile and zlib raise on a damaged or hostile archive.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    OverflowError,
    IndexError,
    struct.error,
    OSError,
)


def decode(att: Attachment, *, limits: AttachmentLimits = DEFAULT_LIMITS) -> DecodedFile:
    """The original file of *att*: base64 decoded strictly, the SDK's ZIP wrapper removed.

    Raises :class:`AttachmentInvalid` (``attachment.invalid``) or :class:`AttachmentTooLarge`
    (``attachment.too_large``) with a detail naming the attachment.
    """
    try:
        text = _base64_text(att.encoded)
    except _NotBase64 as exc:
        raise _invalid(att, f"ContentTransferEncoded is not valid base64: {exc}") from None
    if len(text) // 4 * 3 > limits.max_size + 2:
        raise _too_large(att, f"its base64 text alone stands for about {len(text) // 4 * 3} bytes")
    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error as exc:
        raise _invalid(att, f"ContentTransferEncoded is not valid base64 ({exc})") from exc
    if len(raw) > limits.max_size:
        raise _too_large(att, f"it is {len(raw)} bytes")
    data, zipped, entry, note = raw, False, "", ""
    if raw.startswith(_ZIP_LOCAL_HEADER):
        data, zipped, entry, note = _unwrap(att, raw, limits)
    return DecodedFile(
        content_id=att.content_id,
        name=att.name,
        content_type=att.content_type,
        data=data,
        zipped=zipped,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        encoded_size=len(text),
        entry_name=entry,
        note=note,
    )


def _label(att: Attachment) -> str:
    return f"Attachment cid:{att.content_id}" + (f" ({att.name!r})" if att.name else "")


def _invalid(att: Attachment, why: str) -> AttachmentInvalid:
    return AttachmentInvalid(
        f"{_label(att)} cannot be decoded: {why}.",
        extra={"content_id": att.content_id, "attachment": att.name},
    )


def _too_large(att: Attachment, why: str) -> AttachmentTooLarge:
    return AttachmentTooLarge(
        f"{_label(att)} is refused as too large: {why}.",
        extra={"content_id": att.content_id, "attachment": att.name},
    )


class _NotBase64(ValueError):
    """Why a text is not strict base64 (the message completes "… is not valid base64: ")."""


def _base64_text(encoded: str) -> bytes:
    """*encoded* without XML white space, checked to be strict base64 (RFC 4648, padded)."""
    return _check_base64(encoded).translate(None, _XML_SPACE)


def _check_base64(encoded: str) -> bytes:
    """Raise :class:`_NotBase64` unless *encoded* is strict base64 (RFC 4648, padded, in its
    canonical form); its ASCII bytes if it is.

    Linear and cheap, and copies the text once (a 5 MB copy costs page faults): the manifest
    check runs it on every package. Deleting every allowed byte leaves nothing of a good text;
    the regular expression, ten times slower, only runs to say where a stray character is.
    """
    raw = encoded.encode("ascii") if encoded.isascii() else b"\x80"
    if raw.translate(None, _BASE64_BYTES):
        stray = _NOT_BASE64.search(encoded)
        where = f"character {stray.group()!r} at position {stray.start() + 1}" if stray else "?"
        raise _NotBase64(
            f"{where} is not base64 "
            "(only A-Z, a-z, 0-9, +, / and = padding, with white space between)"
        )
    length = len(raw)
    if any(space in raw for space in (b" ", b"\t", b"\r", b"\n")):  # one memchr each
        length = len(raw.translate(None, _XML_SPACE))
    if length % 4:
        raise _NotBase64(
            f"it has {length} characters, not a multiple of 4 (cut short, or padding lost)"
        )
    pad = raw.find(b"=")
    if pad >= 0:
        padding = raw[pad:].translate(None, _XML_SPACE)
        if padding not in (b"=", b"=="):
            raise _NotBase64("= padding may only end it, at most twice")
        end = pad  # the last character before the padding, white space skipped (no copy)
        while end and raw[end - 1] in _XML_SPACE:
            end -= 1
        last = raw[end - 1 : end] if end else b""
        if not last or last not in _BEFORE_PADDING[len(padding)]:
            raise _NotBase64(
                f"{last.decode()!r} before {padding.decode()} sets bits the padding leaves out "
                "(only the canonical encoding is accepted, as xs:base64Binary requires)"
            )
    return raw


def _entry_count(raw: bytes) -> int | None:
    """Entries in the end-of-central-directory record, or None if it cannot be trusted as one."""
    at = raw.rfind(_EOCD, max(0, len(raw) - _EOCD_SIZE - 0xFFFF))
    if at < 0 or len(raw) - at < _EOCD_SIZE:
        return None
    _, disk, cd_disk, on_disk, total, cd_size, _, _ = struct.unpack(
        "<4s4H2LH", raw[at : at + _EOCD_SIZE]
    )
    if disk or cd_disk or on_disk != total or cd_size > _MAX_ONE_ENTRY_DIRECTORY * max(total, 1):
        return None
    return int(total)


def _unwrap(att: Attachment, raw: bytes, limits: AttachmentLimits) -> tuple[bytes, bool, str, str]:
    """(bytes, zipped, entry name, note): the SDK wrapper removed, or the archive kept."""
    count = _entry_count(raw)
    if count is None:
        raise _invalid(
            att,
            "it starts like a ZIP archive but has no readable end of central directory "
            "(the archive is damaged or cut short)",
        )
    if count == 0xFFFF:
        return raw, False, "", "a ZIP64 archive, which the hub does not unwrap; kept as sent"
    if count != 1:
        return raw, False, "", f"a ZIP archive of {count} entries (the file itself); kept as sent"
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            infos = archive.infolist()
            if len(infos) != 1:
                return raw, False, "", f"a ZIP archive of {len(infos)} entries; kept as sent"
            (info,) = infos
            kept = _why_kept(att, info)
            if kept:
                return raw, False, "", kept
            if info.file_size > limits.max_size:
                raise _too_large(
                    att,
                    f"its ZIP entry {info.filename!r} declares {info.file_size} bytes; "
                    f"at most {limits.max_size} are accepted",
                )
            data = _inflate(att, archive, info, len(raw), limits)
    except _ZIP_ERRORS as exc:
        raise _invalid(att, f"it looks like a ZIP archive but cannot be read ({exc})") from exc
    return data, True, info.filename, ""


def _why_kept(att: Attachment, info: zipfile.ZipInfo) -> str:
    if info.is_dir():
        return "a ZIP archive holding only a folder; kept as sent"
    if info.flag_bits & 0x1:
        return "an encrypted ZIP archive; kept as sent"
    if info.compress_type not in _UNWRAPPABLE:
        return (
            f"a ZIP archive compressed with method {info.compress_type} (the hub unwraps only "
            "stored or deflated entries); kept as sent"
        )
    if att.name.lower().endswith(".zip") and not _SDK_ENTRY.fullmatch(info.filename):
        return "the attachment is itself a ZIP file; kept as sent"
    return ""


def _inflate(
    att: Attachment,
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    archive_size: int,
    limits: AttachmentLimits,
) -> bytes:
    """Decompress the entry in chunks, stopping at the first byte past a limit."""
    cap, why = limits.max_size, f"at most {limits.max_size} bytes are accepted per file"
    if limits.max_ratio is not None:
        by_ratio = max(limits.ratio_floor, limits.max_ratio * archive_size)
        if by_ratio < cap:
            cap = by_ratio
            why = (
                f"a {archive_size}-byte archive may expand at most {limits.max_ratio} times "
                "(a ZIP bomb?)"
            )
    out = io.BytesIO()
    with archive.open(info) as stream:
        while chunk := stream.read(limits.chunk_size):
            out.write(chunk)
            if out.tell() > cap:
                raise _too_large(
                    att, f"its ZIP entry {info.filename!r} expands past {cap} bytes; {why}"
                )
    if out.tell() != info.file_size:
        raise _invalid(
            att,
            f"its ZIP entry {info.filename!r} declares {info.file_size} bytes but holds "
            f"{out.tell()}",
        )
    return out.getvalue()


# -------------------------------------------------------------------------------------- names

MAX_NAME_BYTES = 255
DEFAULT_NAME = "attachment"
_SEPARATORS = re.compile(r"[/\\]")
_DRIVE = re.compile(r"[A-Za-z]:")
_FORBIDDEN = frozenset('<>:"|?*')
_SPACE_LIKE = frozenset("\t\n\r\x0b\x0c\x85\u2028\u2029")
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"}
    | {f"{port}{n}" for port in ("COM", "LPT") for n in (*"0123456789", "¹", "²", "³")}
)
_MAX_EXTENSION = 16


def safe_filename(name: str, taken: set[str]) -> str:
    """*name* (an AttachmentName) made safe to create in one folder, and not yet in *taken*.

    The sender's name is kept as far as possible (NFC-normalised Vietnamese included):

    - path parts are never path parts: ``/`` and ``\\`` join the parts with ``_`` (a Vietnamese
      notation such as ``12/UBND-VP`` stays readable), and empty, ``.``, ``..`` and drive parts
      (``C:``) are dropped, so ``../../etc/passwd`` becomes ``etc_passwd``;
    - control characters become ``_`` (line breaks and tabs a space), invisible format
      characters (bidirectional overrides, zero-width spaces) are removed, and ``< > : " | ? *``
      (which Windows refuses, ``:`` naming an NTFS stream) become ``_``;
    - leading dots and spaces (hidden files) and trailing dots and spaces (dropped by Windows)
      are removed; a reserved Windows name (CON, NUL, COM1, LPT1…, with any extension) gets a
      leading ``_``;
    - at most 255 bytes of UTF-8, cut in the name and not in its extension; empty gives
      ``attachment``;
    - unique among *taken* (compared case-insensitively, as on Windows and macOS) by adding
      `` (2)``, `` (3)``… before the extension. *taken* is not changed: add the result to it.
    """
    clean = _clean(name)
    used = {unicodedata.normalize("NFC", t).casefold() for t in taken}
    if clean.casefold() not in used:
        return clean
    stem, extension = _split_extension(clean)
    n = 2
    while True:
        candidate = _fit(stem, f" ({n}){extension}")
        if candidate.casefold() not in used:
            return candidate
        n += 1


def _clean(name: str) -> str:
    text = unicodedata.normalize("NFC", name)
    parts = [
        part for part in _SEPARATORS.split(text) if part.strip(" .") and not _DRIVE.fullmatch(part)
    ]
    text = "".join(_safe_char(c) for c in "_".join(parts))
    text = text.lstrip(" .").rstrip(" .")
    if text.split(".", 1)[0].rstrip(" ").upper() in _RESERVED:
        text = "_" + text
    stem, extension = _split_extension(text)
    return _fit(stem, extension) or DEFAULT_NAME


def _safe_char(char: str) -> str:
    if char in _SPACE_LIKE:
        return " "
    if char in _FORBIDDEN:
        return "_"
    category = unicodedata.category(char)
    if category == "Cf":
        return ""
    if category in ("Cc", "Cs", "Zl", "Zp"):
        return "_"
    return char


def _split_extension(name: str) -> tuple[str, str]:
    dot = name.rfind(".")
    extension = name[dot:] if dot > 0 else ""
    if not extension or len(extension) > _MAX_EXTENSION or " " in extension:
        return name, ""
    return name[:dot], extension


def _fit(stem: str, suffix: str) -> str:
    """``stem + suffix`` in at most MAX_NAME_BYTES bytes of UTF-8, shortening the stem first."""
    room = MAX_NAME_BYTES - len(suffix.encode("utf-8"))
    if room <= 0:  # an absurd suffix: cut the whole name instead
        stem, suffix, room = stem + suffix, "", MAX_NAME_BYTES
    encoded = stem.encode("utf-8")
    if len(encoded) > room:
        stem = encoded[:room].decode("utf-8", errors="ignore").rstrip(" .")
    return stem + suffix


# -------------------------------------------------------------------------------------- trace


def describe(
    pkg: DocumentPackage,
    *,
    limits: AttachmentLimits = DEFAULT_LIMITS,
) -> list[dict[str, Any]]:
    """What the trace records of each attachment; a file that fails to decode gets ``error``.

    Each entry: content_id, name, content_type, then zipped, size and sha256 (and ``note`` when
    a ZIP archive was kept as sent), or ``error`` {code, detail}. Never raises for a bad file.
    """
    out: list[dict[str, Any]] = []
    for att in pkg.attachments:
        entry: dict[str, Any] = {
            "content_id": att.content_id,
            "name": att.name,
            "content_type": att.content_type,
        }
        try:
            decoded = decode(att, limits=limits)
        except AttachmentError as exc:
            entry["error"] = {"code": exc.code, "detail": exc.detail}
        else:
            entry.update(zipped=decoded.zipped, size=decoded.size, sha256=decoded.sha256)
            if decoded.note:
                entry["note"] = decoded.note
        out.append(entry)
    return out
