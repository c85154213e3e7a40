"""The folder adapter: an agency system exchanges documents with the hub through plain folders.

Layout under the root folder (created at start if missing)::

    outbox/       the agency system drops what to send: signed or unsigned .edxml files, or
                  attachments (a PDF…) plus a metadata file (.toml or .json, adapters.metadata)
    status/       statuses to send: a metadata file (document, code, description) or .edxml
    sent/         what the hub accepted, with NAME.receipt.json (the hub's signed receipt) and,
                  when the adapter built or signed the package, NAME.signed.edxml
    failed/       what the hub (or the adapter) refused, with NAME.reason.txt
    inbox/<id>/   each received document: package.edxml, metadata.json, its attachments
    inbox/statuses/, inbox/receipts/, inbox/notices/   what came back about documents sent
    .lienthong/   the adapter's own state; never touch it

**Only complete files are picked up**: names that look temporary (``.tmp``, ``.part``, ``~``,
hidden files) and files modified less than ``quiet_seconds`` ago are left alone. Agency systems
write to a temporary name and rename.

**Nothing is sent twice** (adapters.base): the package built for an outbox file is written
durably into ``.lienthong/pending/`` *before* it is handed to the runner. After a crash the same
bytes are sent again and the hub answers with the original receipt (``duplicate: true``). The
file moves to sent/ or failed/ only after the hub's answer; the pending entry is removed last.

**Received documents appear atomically**: each is written into ``.lienthong/tmp/`` and renamed
into ``inbox/`` when complete, so the agency system never sees half a document; a delivery that
comes again (its lease ran out before the acknowledgement) finds its folder and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

from adapters.base import Adapter, Outgoing, Received, Settled
from adapters.files import fsync_folder, is_complete, write_atomically
from adapters.metadata import (
    METADATA_SUFFIXES,
    MetadataError,
    attachment_names,
    document_from_metadata,
    read_metadata,
    status_from_metadata,
)
from adapters.sdk import VIETNAM, AgencyClient, Credentials
from hub.edxml.attachments import AttachmentError, decode, safe_filename
from hub.edxml.model import (
    EDXML_NS,
    Code,
    DocumentPackage,
    DocumentType,
    Organization,
    PromulgationInfo,
)
from hub.edxml.reader import read_document, read_status
from hub.edxml.writer import write_document, write_status
from hub.errors import ConfigError, LienthongError
from hub.xmlsafe import parse
from signing.xmldsig import DS_NS

if TYPE_CHECKING:
    from adapters.config import AdapterConfig

__all__ = ["FolderAdapter", "Layout", "reason_text"]

log = logging.getLogger(__name__)

Kind = Literal["document", "status"]

# Names inside inbox/ that are not document folders.
_INBOX_KINDS = {"status": "statuses", "receipt": "receipts", "notice": "notices"}
_RECEIVED_FILES = {"package.edxml", "metadata.json"}
DELIVERED_KEPT_SECONDS = 30 * 86400
_SECTION_KEYS = {"root", "poll_interval", "quiet_seconds"}


@dataclass(frozen=True)
class Layout:
    """Where everything lives under the root folder."""

    root: Path

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def status(self) -> Path:
        return self.root / "status"

    @property
    def sent(self) -> Path:
        return self.root / "sent"

    @property
    def failed(self) -> Path:
        return self.root / "failed"

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def state(self) -> Path:
        return self.root / ".lienthong"

    @property
    def work(self) -> Path:
        """Where received documents are assembled before they are renamed into inbox/."""
        return self.state / "tmp"

    def pending(self, folder: str) -> Path:
        return self.state / "pending" / folder

    def drop_folder(self, kind: Kind) -> Path:
        return self.outbox if kind == "document" else self.status

    @property
    def documents(self) -> Path:
        """What statuses about each document sent or received must name, by the hub's id."""
        return self.state / "documents"

    @property
    def delivered(self) -> Path:
        """One empty file per delivery id handed over, so that a delivery that comes again is
        recognised even after the agency system moved it out of inbox/."""
        return self.state / "delivered"

    def folders(self) -> list[Path]:
        inbox = [self.inbox / name for name in _INBOX_KINDS.values()]
        pending = [self.pending("outbox"), self.pending("status")]
        state = [self.work, self.delivered, self.documents, *pending]
        return [self.outbox, self.status, self.sent, self.failed, *inbox, *state]


# ------------------------------------------------------------------------------ pure helpers


def reason_text(
    key: str,
    code: str,
    detail: str,
    problems: Sequence[Mapping[str, Any]] = (),
    *,
    status: int | None = None,
    by: str = "the hub",
    when: dt.datetime,
) -> str:
    """The plain-language NAME.reason.txt beside a file in failed/."""
    lines = [
        f"{key} was not sent: {by} refused it.",
        f"Time: {when.astimezone(VIETNAM):%Y-%m-%d %H:%M:%S} (Vietnam time)",
        f"Problem code: {code}" + (f" (HTTP {status})" if status else ""),
        f"What is wrong: {detail}",
    ]
    if problems:
        lines.append("Each problem:")
        for problem in problems:
            where = []
            if problem.get("line") is not None:
                where.append(f"line {problem['line']}")
            if problem.get("path"):
                where.append(str(problem["path"]))
            lines.append(f"  - {', '.join(where) + ': ' if where else ''}{problem.get('message')}")
    lines.append(
        "What to do: correct it and drop it into the folder again (under a temporary name, "
        "then rename). This copy is kept here for reference only and is never sent."
    )
    return "\n".join(lines) + "\n"


def is_signed(package: bytes) -> bool:
    """Whether *package* already carries a signature (XMLDSig, or the old SDK's edXML one).
    A package that does not parse counts as signed: it is sent as it is, and the hub's
    refusal (xml.malformed, with the line) is more useful than anything said here."""
    try:
        root = parse(package).getroot()
    except LienthongError:
        return True
    tags = (f"{{{DS_NS}}}Signature", f"{{{EDXML_NS}}}Signature")
    return any(True for _ in root.iter(*tags))


def document_metadata(
    pkg: DocumentPackage, received: Received, files: Sequence[Mapping[str, Any]], now: dt.datetime
) -> dict[str, Any]:
    """metadata.json of a received document: what a document-management system registers."""
    return {
        "document_id": received.document_id,
        "delivery_id": received.delivery_id,
        "edxml_document_id": pkg.document_id,
        "sender": {"code": pkg.sender.organ_id, "name": pkg.sender.organ_name},
        "recipients": [r.organ_id for r in pkg.recipients],
        "subject": pkg.subject,
        "content": pkg.content,
        "code": {"number": pkg.code.number, "notation": pkg.code.notation},
        "promulgation": {"place": pkg.promulgation.place, "date": pkg.promulgation.date},
        "document_type": pkg.document_type.type_name,
        "priority": int(pkg.priority),
        "priority_name": pkg.priority.name.lower(),
        "due_date": pkg.due_date,
        "signer": {
            "competence": pkg.signer.competence,
            "position": pkg.signer.position,
            "full_name": pkg.signer.full_name,
        },
        "business_type": pkg.business_type.name.lower(),
        "received_at": now.isoformat(),
        "attachments": list(files),
    }


# ---------------------------------------------------------------------------------- adapter


class FolderAdapter(Adapter):
    """Folders on disk as the agency system's side of the exchange (see the module doc)."""

    name = "folder"

    def __init__(
        self,
        root: Path,
        credentials: Credentials,
        *,
        poll_interval: float = 5.0,
        quiet_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.layout = Layout(Path(root))
        self.credentials = credentials
        self.poll_interval = poll_interval
        self.quiet_seconds = quiet_seconds
        self._clock = clock
        # Used only for what it does offline: signing with the agency's key and building status
        # packages; the runner's own client does the talking to the hub.
        self._identity = AgencyClient("http://unused.invalid", credentials)
        self._lock: int | None = None  # the descriptor holding the folder's lock

    @classmethod
    def from_config(cls, config: AdapterConfig) -> Self:
        section = dict(config.section)
        unknown = sorted(set(section) - _SECTION_KEYS)
        if unknown:
            raise config.error(", ".join(unknown), f"unknown key (known: {sorted(_SECTION_KEYS)})")
        raw_root = section.get("root")
        if not isinstance(raw_root, str) or not raw_root.strip():
            raise config.error("root", "required: the folder shared with the agency system")
        root = config.resolve(raw_root)
        if not root.is_dir():
            raise config.error(
                "root", f"{root} is not an existing folder; create it and let the adapter write"
            )
        return cls(
            root,
            config.credentials,
            poll_interval=_seconds(config, section, "poll_interval", 5.0, 0.1, 3600),
            quiet_seconds=_seconds(config, section, "quiet_seconds", 1.0, 0, 600),
        )

    # ----------------------------------------------------------------------- start and close

    async def start(self) -> None:
        await asyncio.to_thread(self._start)

    def _start(self) -> None:
        if self._lock is not None:
            return  # started already
        for folder in self.layout.folders():
            folder.mkdir(parents=True, exist_ok=True)
        self._lock = _lock(self.layout.state / "lock")
        # Half-assembled received documents from a crash: they come again from the hub.
        for leftover in self.layout.work.iterdir():
            shutil.rmtree(leftover, ignore_errors=True)
        # A delivery comes again only until it is acknowledged (a lease is at most an hour), so
        # old marks can go.
        horizon = self._clock() - DELIVERED_KEPT_SECONDS
        for mark in self.layout.delivered.iterdir():
            with contextlib.suppress(OSError):
                if mark.lstat().st_mtime < horizon:
                    mark.unlink()

    async def close(self) -> None:
        self.unlock()

    def unlock(self) -> None:
        """Let another adapter work on the folder (what the end of this process does)."""
        if self._lock is not None:
            os.close(self._lock)  # releases the lock
            self._lock = None

    # ------------------------------------------------------------------------------- sending

    async def outgoing(self) -> Sequence[Outgoing]:
        return await asyncio.to_thread(self._outgoing)

    def _outgoing(self) -> list[Outgoing]:
        items = []
        for kind in ("document", "status"):
            items += self._pending(kind)
            items += self._new(kind)
        return items

    def _pending(self, kind: Kind) -> list[Outgoing]:
        """Packages built before and not settled yet: sent again, byte for byte."""
        folder = self.layout.drop_folder(kind)
        pending = self.layout.pending(folder.name)
        out = []
        for entry in sorted(pending.glob("*.edxml")):
            name = entry.name.removesuffix(".edxml")
            if (folder / name).exists():
                out.append(Outgoing(f"{folder.name}/{name}", kind, entry.read_bytes()))
            else:  # settled, then stopped before the entry was removed
                _forget(pending, name)
        return out

    def _new(self, kind: Kind) -> list[Outgoing]:
        folder = self.layout.drop_folder(kind)
        pending = self.layout.pending(folder.name)
        now = self._clock()
        complete = {p.name: p for p in folder.iterdir() if is_complete(p, now, self.quiet_seconds)}
        mtimes = {n: _mtime(p) for n, p in complete.items()}
        metadata = {n: _try_read(p) for n, p in complete.items() if _is_metadata(n)}
        # Files a metadata file names are attachments, even if they end in .json or .toml.
        named = {a for meta in metadata.values() if meta is not None for a in _names(meta)}
        out = []
        for name in sorted(complete, key=lambda n: (mtimes[n], n)):
            if name in named or (pending / f"{name}.edxml").exists():
                continue
            key = f"{folder.name}/{name}"
            companions: list[str] = []
            try:
                if name.lower().endswith(".edxml"):
                    package = self._from_edxml(complete[name].read_bytes())
                elif _is_metadata(name):
                    prepared = self._from_metadata(kind, folder, name, now)
                    if prepared is None:
                        continue  # an attachment is still being written
                    package, companions = prepared
                else:
                    continue  # an attachment whose metadata file has not come yet
            except _LocalRefusal as refusal:
                self._refuse_locally(key, refusal, _names(metadata.get(name)))
                continue
            # Durably, before anyone sends it: what makes a resend after a crash the same bytes.
            write_atomically(pending, f"{name}.files.json", json.dumps(companions).encode())
            write_atomically(pending, f"{name}.edxml", package)
            out.append(Outgoing(key, kind, package))
        return out

    def _from_edxml(self, data: bytes) -> bytes:
        if is_signed(data):
            return data
        return self._sign(data)

    def _sign(self, data: bytes) -> bytes:
        if self.credentials.key_pem is None or self.credentials.cert_pem is None:
            raise _LocalRefusal(
                "folder.unsigned",
                "the package is not signed, and no key and certificate are configured to sign "
                "it with (set key and certificate in the adapter's configuration)",
            )
        try:
            return self._identity.sign(data)
        except ValueError as exc:
            raise _LocalRefusal("folder.sign", str(exc)) from exc

    def _from_metadata(
        self, kind: Kind, folder: Path, name: str, now: float
    ) -> tuple[bytes, list[str]] | None:
        try:
            meta = read_metadata(name, (folder / name).read_bytes())
            if kind == "status":
                return self._status_package(meta), []
            names = attachment_names(meta)
        except MetadataError as exc:
            raise _LocalRefusal("folder.metadata", str(exc)) from exc
        files = []
        for attachment in names:
            path = folder / attachment
            if path.is_symlink() or not path.is_file():
                raise _LocalRefusal(
                    "folder.attachment_missing",
                    f"{name} names the attachment {attachment!r}, which is not a file in "
                    f"{folder.name}/ (write the attachments first, the metadata file last; "
                    "symbolic links are not followed)",
                )
            if not is_complete(path, now, self.quiet_seconds):
                return None
            files.append((attachment, path.read_bytes()))
        try:
            pkg = document_from_metadata(
                meta,
                sender=self.credentials.code,
                files=files,
                now=dt.datetime.now(dt.UTC).astimezone(VIETNAM),
            )
            unsigned = write_document(pkg)
        except (MetadataError, ValueError) as exc:
            raise _LocalRefusal("folder.metadata", str(exc)) from exc
        return self._sign(unsigned), names

    def _status_package(self, meta: dict[str, Any]) -> bytes:
        request = status_from_metadata(meta)
        document = self._find_document(request.document)
        if document is None:
            raise _LocalRefusal(
                "folder.document_unknown",
                f"this adapter neither received nor sent a document {request.document!r}: "
                "'document' is the hub's document id, the name of its folder in inbox/ (or "
                "document_id in the receipt in sent/)",
            )
        pkg = self._identity.status_package(
            document,
            request.code,
            request.description,
            about_recipient=request.recipient or None,
            staff=request.staff,
        )
        return self._sign(write_status(pkg))

    def _find_document(self, document_id: str) -> DocumentPackage | None:
        """What a status must say of a document this agency received or sent, by the hub's id
        (from the adapter's own record: the agency system may have moved the files away)."""
        record = self.layout.documents / f"{_folder_name(document_id)}.json"
        try:
            facts = json.loads(record.read_bytes())
            # Only what a status's ResponseFor names (AgencyClient.status_package reads no more).
            return DocumentPackage(
                sender=Organization(str(facts["sender"])),
                recipients=(),
                document_id=str(facts["edxml_document_id"]),
                code=Code(str(facts["number"]), str(facts["notation"])),
                promulgation=PromulgationInfo(date=str(facts["promulgation_date"])),
                document_type=DocumentType(),
                subject="",
                content="",
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _remember_document(self, document_id: str, pkg: DocumentPackage) -> None:
        facts = {
            "document_id": document_id,
            "sender": pkg.sender.organ_id,
            "edxml_document_id": pkg.document_id,
            "number": pkg.code.number,
            "notation": pkg.code.notation,
            "promulgation_date": pkg.promulgation.date,
        }
        write_atomically(self.layout.documents, f"{_folder_name(document_id)}.json", _json(facts))

    def _refuse_locally(self, key: str, refusal: _LocalRefusal, companions: list[str]) -> None:
        text = reason_text(key, refusal.code, refusal.detail, by="the folder adapter", when=_now())
        self._file_away(key, self.layout.failed, companions, "reason.txt", text.encode())
        log.warning("failed %s: %s: %s", key, refusal.code, refusal.detail)

    async def settled(self, item: Outgoing, result: Settled) -> None:
        await asyncio.to_thread(self._settled, item, result)

    def _settled(self, item: Outgoing, result: Settled) -> None:
        folder_name, name = item.key.split("/", 1)
        pending = self.layout.pending(folder_name)
        companions = _companions(pending, name)
        source = self.layout.root / folder_name / name
        if result.accepted:
            receipt = dict(result.receipt or {})
            if item.kind == "document" and receipt.get("document_id"):
                with contextlib.suppress(LienthongError):  # for a recall (13) later
                    pkg = read_document(parse(item.package))
                    self._remember_document(str(receipt["document_id"]), pkg)
            sent_as = None
            with contextlib.suppress(OSError):
                if source.read_bytes() != item.package:  # built or signed here: keep the copy
                    sent_as = item.package
            self._file_away(
                item.key,
                self.layout.sent,
                companions,
                "receipt.json",
                json.dumps(receipt, ensure_ascii=False, indent=2).encode(),
                sent_as,
            )
            again = (
                " (the hub already had it: same receipt as before)"
                if receipt.get("duplicate")
                else ""
            )
            log.info("sent %s: document %s%s", item.key, receipt.get("document_id"), again)
        else:
            problem = result.problem
            code = problem.code if problem else "unknown"
            detail = problem.detail if problem else "no reason given"
            text = reason_text(
                item.key,
                code,
                detail,
                problem.problems if problem else (),
                status=problem.status if problem else None,
                when=_now(),
            )
            self._file_away(item.key, self.layout.failed, companions, "reason.txt", text.encode())
            log.warning("failed %s: %s: %s", item.key, code, detail)
        _forget(pending, name)  # last: until here, a restart sends the same bytes again

    def _file_away(
        self,
        key: str,
        destination: Path,
        companions: list[str],
        note: str,
        note_bytes: bytes,
        package: bytes | None = None,
    ) -> None:
        """Move the file of *key* and its attachments into *destination* under names free
        there, the note (receipt or reason) written first and the file itself moved last."""
        folder_name, name = key.split("/", 1)
        folder = self.layout.root / folder_name
        taken = set(os.listdir(destination))
        target = _free_name(name, taken, (f".{note}", ".signed.edxml"))
        write_atomically(destination, f"{target}.{note}", note_bytes)
        if package is not None:
            write_atomically(destination, f"{target}.signed.edxml", package)
        for companion in companions:
            path = folder / companion
            if path.is_file():
                moved = _free_name(companion, taken, ())
                os.replace(path, destination / moved)
        with contextlib.suppress(FileNotFoundError):
            os.replace(folder / name, destination / target)
        fsync_folder(destination)
        fsync_folder(folder)

    # ----------------------------------------------------------------------------- receiving

    async def deliver(self, received: Received) -> None:
        await asyncio.to_thread(self._deliver, received)

    def _deliver(self, received: Received) -> None:
        mark = _folder_name(received.delivery_id)
        if (self.layout.delivered / mark).exists():
            return  # handed over before: the lease ran out before the acknowledgement
        if received.kind == "document":
            self._deliver_document(received)
        else:
            self._deliver_about_sent(received)
        write_atomically(self.layout.delivered, mark, b"")

    def _deliver_about_sent(self, received: Received) -> None:
        """A status, receipt or notice about a document this agency sent."""
        folder = self.layout.inbox / _INBOX_KINDS.get(received.kind, "notices")
        name = _folder_name(received.delivery_id)
        if (folder / f"{name}.json").exists():
            return  # delivered before: the lease ran out before the acknowledgement
        if received.kind == "status" and received.package is not None:
            write_atomically(folder, f"{name}.edxml", received.package)
            summary = _status_summary(received)
        elif received.kind == "receipt" and received.package is not None:
            summary = _receipt_summary(received.package)
        else:
            summary = dict(received.item)
        summary.setdefault("delivery_id", received.delivery_id)
        summary.setdefault("document_id", received.document_id)
        # The .json is written last: the agency system can take its presence as "complete".
        write_atomically(folder, f"{name}.json", _json(summary))
        log.info("received %s %s about document %s", received.kind, name, received.document_id)

    def _deliver_document(self, received: Received) -> None:
        target = self.layout.inbox / _folder_name(received.document_id)
        if target.exists():
            return  # delivered before under another lease: same folder, nothing new
        package = received.package or b""
        work = self.layout.work / f"{secrets.token_hex(8)}"
        work.mkdir()
        try:
            _write(work, "package.edxml", package)
            try:
                pkg = read_document(parse(package))
            except LienthongError as exc:
                meta: dict[str, Any] = {
                    "document_id": received.document_id,
                    "delivery_id": received.delivery_id,
                    "sender": {"code": received.sender, "name": ""},
                    "subject": str(received.item.get("subject", "")),
                    "error": f"the package could not be read: {exc.detail}",
                    "received_at": _now().isoformat(),
                    "attachments": [],
                }
            else:
                files = _extract(work, pkg)
                meta = document_metadata(pkg, received, files, _now())
                self._remember_document(received.document_id, pkg)
            _write(work, "metadata.json", _json(meta))
            fsync_folder(work)
            try:
                os.rename(work, target)
            except OSError:
                if not target.exists():
                    raise
                return  # another poller was quicker
            fsync_folder(self.layout.inbox)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        log.info(
            "received document %s from %s: %s (%d attachment(s))",
            received.document_id,
            received.sender,
            meta.get("subject", ""),
            len(meta["attachments"]),
        )


# ---------------------------------------------------------------------------- small helpers


class _LocalRefusal(Exception):
    """The adapter cannot make a package of a dropped file; it goes to failed/ unsent."""

    def __init__(self, code: str, detail: str) -> None:
        self.code, self.detail = code, detail
        super().__init__(f"{code}: {detail}")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")


def _seconds(
    config: AdapterConfig, section: Mapping[str, Any], key: str, default: float, *bounds: float
) -> float:
    low, high = bounds
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise config.error(key, f"expected a number of seconds from {low:g} to {high:g}")
    return float(value)


def _lock(path: Path) -> int:
    """Hold *path* locked: two adapters on one folder would each send every file."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; run one adapter per folder
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ConfigError(
            str(path.parent.parent),
            "[folder] root",
            "another folder adapter is already running on this folder; run one per folder",
        ) from None
    return fd


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:  # gone meanwhile: it will not be read either
        return 0.0


def _is_metadata(name: str) -> bool:
    return name.lower().endswith(METADATA_SUFFIXES)


def _try_read(path: Path) -> dict[str, Any] | None:
    try:
        return read_metadata(path.name, path.read_bytes())
    except (MetadataError, OSError):
        return None


def _names(meta: Mapping[str, Any] | None) -> list[str]:
    if meta is None:
        return []
    try:
        return attachment_names(meta)
    except MetadataError:
        return []


def _companions(pending: Path, name: str) -> list[str]:
    try:
        return [str(n) for n in json.loads((pending / f"{name}.files.json").read_bytes())]
    except (OSError, ValueError, TypeError):
        return []


def _forget(pending: Path, name: str) -> None:
    for suffix in (".edxml", ".files.json"):
        with contextlib.suppress(FileNotFoundError):
            (pending / f"{name}{suffix}").unlink()
    fsync_folder(pending)


def _free_name(name: str, taken: set[str], with_suffixes: tuple[str, ...]) -> str:
    """*name*, or ``name (2)``…, such that it and its companions are all free; added to
    *taken*. An agency reusing a file name never overwrites what sent/ already holds."""
    while True:
        candidate = safe_filename(name, taken)
        if not any(f"{candidate}{s}" in taken for s in with_suffixes):
            break
        taken.add(candidate)
    taken.add(candidate)
    taken.update(f"{candidate}{s}" for s in with_suffixes)
    return candidate


def _folder_name(document_id: str) -> str:
    """A hub id made safe as a folder name, never one of inbox/'s own folders."""
    return safe_filename(document_id, set(_INBOX_KINDS.values()))


def _write(folder: Path, name: str, data: bytes) -> None:
    """A file in a folder nobody else sees yet: flushed to disk, no rename needed."""
    with (folder / name).open("xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _extract(folder: Path, pkg: DocumentPackage) -> list[dict[str, Any]]:
    """Every attachment decoded (as ``lienthong attachments`` does) under a safe name; one
    that cannot be decoded is described with its error and left in package.edxml."""
    taken = set(_RECEIVED_FILES)
    out: list[dict[str, Any]] = []
    for att in pkg.attachments:
        entry: dict[str, Any] = {"name": att.name, "content_type": att.content_type}
        try:
            decoded = decode(att)
        except AttachmentError as exc:
            entry["error"] = {"code": exc.code, "detail": exc.detail}
            out.append(entry)
            continue
        file = safe_filename(decoded.name, taken)
        taken.add(file)
        _write(folder, file, decoded.data)
        entry.update(file=file, size=decoded.size, sha256=decoded.sha256)
        if decoded.note:
            entry["note"] = decoded.note
        out.append(entry)
    return out


def _status_summary(received: Received) -> dict[str, Any]:
    item = received.item
    summary: dict[str, Any] = {
        "delivery_id": received.delivery_id,
        "document_id": received.document_id,
        "status_id": item.get("status_id"),
        "reporter": received.sender,
        "status_code": item.get("status_code"),
        "received_at": _now().isoformat(),
    }
    try:
        pkg = read_status(parse(received.package or b""))
    except LienthongError as exc:
        summary["error"] = f"the status package could not be read: {exc.detail}"
        return summary
    summary.update(
        status_code=pkg.status_code.value,
        meaning=pkg.status_code.meaning,
        description=pkg.description,
        timestamp=pkg.timestamp,
        edxml_document_id=pkg.response_for.document_id,
        staff={
            "department": pkg.staff.department,
            "staff": pkg.staff.staff,
            "mobile": pkg.staff.mobile,
            "email": pkg.staff.email,
        },
    )
    return summary


def _receipt_summary(package: bytes) -> dict[str, Any]:
    """A signed delivery receipt as the hub gave it (JSON with its JWS), kept whole."""
    try:
        value = json.loads(package)
    except ValueError:
        value = None
    if isinstance(value, dict):
        return value
    return {"receipt": package.decode("utf-8", errors="replace")}
