"""Evidence bundles: everything an auditor needs to prove, offline and with the hub's certificate
alone, what the hub received for one document, whom it delivered it to and what they reported.

Pure code: :func:`write_bundle` turns an :class:`Evidence` (gathered from the database by
``hub.evidence``) into ZIP bytes, and :func:`verify_bundle` judges ZIP bytes. No database, no
configuration, no network. The bundle's layout (``BUNDLE_FORMAT`` 1)::

    manifest.json            format, version, hub, document facts, the events' range, and the
                             SHA-256 and size of every other file
    document.edxml           the signed package, byte for byte as the hub received it
    receipts/<id>.jws        each receipt the hub signed for it (submission, delivery)
    status/<id>.edxml        each status package about it, byte for byte
    events.jsonl             trace events, one full row per line (seq, at, kind, actor,
                             document_id, delivery_id, detail, prev_hash, hash), contiguous from
                             the document's ``received`` event to the checkpoint's ``seq``
    checkpoint.jws           the hub's signed checkpoint of the chain at that ``seq``
    hub-certificate.pem      the hub's certificate, for convenience: a verifier should be given
                             the certificate it trusts instead

Why a contiguous run of the *whole* chain, other documents' events included: an event's hash
covers its full content and the previous hash, so the only way to tie an event to a signed
checkpoint is to recompute every event between them. Starting at the document's ``received``
event (the first event any document has) also proves that no event of the document was left
out up to the checkpoint. The price is size and the metadata of other documents in that range.

What is signed, and so what tampering is caught even when the manifest is rewritten to match:
the receipts and the checkpoint (JWS with the hub's key), and through the checkpoint every event
of the run; the package and status packages are bound by the digests in the signed receipts and
events. The manifest itself is not signed: its digests only name which file changed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import posixpath
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from signing.checkpoints import Checkpoint, CheckpointError, verify_checkpoint
from signing.receipts import ReceiptError, verify_receipt
from tracking.audit import ChainWalk, EventRow

BUNDLE_FORMAT = "lienthong-evidence"
BUNDLE_VERSION = 1

MANIFEST = "manifest.json"
PACKAGE = "document.edxml"
EVENTS = "events.jsonl"
CHECKPOINT = "checkpoint.jws"
CERTIFICATE = "hub-certificate.pem"
RECEIPTS_DIR = "receipts/"
STATUS_DIR = "status/"

# The bundle is untrusted input: caps on what reading it may cost, checked against what is
# actually inflated, not what the ZIP headers claim.
MAX_BUNDLE_BYTES = 2 * 1024**3
MAX_MEMBER_BYTES = 1024**3
MAX_TOTAL_BYTES = 4 * 1024**3
MAX_MEMBERS = 100_000

_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_CHUNK = 1 << 20


class BundleError(ValueError):
    """The file cannot be read as an evidence bundle at all; the message says why."""


@dataclass(frozen=True)
class StatusFile:
    status_id: str
    data: bytes


@dataclass(frozen=True)
class Evidence:
    """What goes into a bundle: gathered by ``hub.evidence``."""

    hub: str
    document: Mapping[str, Any]  # facts for people: id, sender, received_at, priority, …
    package: bytes
    receipts: Mapping[str, str]  # receipt id → compact JWS
    statuses: tuple[StatusFile, ...]
    events: tuple[EventRow, ...]
    checkpoint_jws: str
    certificate_pem: bytes
    exported_at: dt.datetime


@dataclass(frozen=True)
class Problem:
    what: str  # "file" | "receipt" | "checkpoint" | "chain" | "package" | "status" | "bundle"
    message: str
    file: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"what": self.what, "file": self.file, "message": self.message}


@dataclass
class EvidenceReport:
    document_id: str | None = None
    hub: str | None = None
    events: int = 0
    checkpoint: Checkpoint | None = None
    receipts: list[dict[str, Any]] = field(default_factory=list)  # verified payloads
    statuses: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems

    def problem(self, what: str, message: str, file: str | None = None) -> None:
        self.problems.append(Problem(what, message, file))

    def as_dict(self) -> dict[str, Any]:
        cp = self.checkpoint
        return {
            "valid": self.valid,
            "document_id": self.document_id,
            "hub": self.hub,
            "events": self.events,
            "checkpoint": None
            if cp is None
            else {"seq": cp.seq, "head_hash": cp.head_hash, "signed_at": cp.signed_at.isoformat()},
            "receipts": self.receipts,
            "statuses": self.statuses,
            "problems": [p.as_dict() for p in self.problems],
            "notes": self.notes,
        }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- writing ---------------------------------------------------------------------------------


def event_line(row: EventRow) -> str:
    """One event as a JSON line; ``at`` keeps its microseconds so the hash recomputes."""
    return json.dumps(
        {
            "seq": row.seq,
            "at": row.at.isoformat(timespec="microseconds"),
            "kind": row.kind,
            "actor": row.actor,
            "document_id": row.document_id,
            "delivery_id": row.delivery_id,
            "detail": row.detail,  # the stored canonical text, not re-encoded
            "prev_hash": row.prev_hash,
            "hash": row.hash,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def bundle_files(evidence: Evidence) -> dict[str, bytes]:
    """Every file of the bundle but the manifest, by its path in the bundle."""
    files = {PACKAGE: evidence.package}
    for receipt_id, jws in sorted(evidence.receipts.items()):
        files[f"{RECEIPTS_DIR}{_safe_id(receipt_id)}.jws"] = jws.encode("ascii")
    for status in evidence.statuses:
        files[f"{STATUS_DIR}{_safe_id(status.status_id)}.edxml"] = status.data
    files[EVENTS] = "".join(event_line(e) + "\n" for e in evidence.events).encode()
    files[CHECKPOINT] = evidence.checkpoint_jws.encode("ascii")
    files[CERTIFICATE] = evidence.certificate_pem
    return files


def write_bundle(evidence: Evidence) -> bytes:
    files = bundle_files(evidence)
    manifest = {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "hub": evidence.hub,
        "exported_at": evidence.exported_at.isoformat(),
        "document": dict(evidence.document),
        "events": {
            "first_seq": evidence.events[0].seq if evidence.events else None,
            "last_seq": evidence.events[-1].seq if evidence.events else None,
        },
        "files": {
            name: {"sha256": sha256(data), "size": len(data)} for name, data in files.items()
        },
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def _safe_id(ident: str) -> str:
    if not _ID.match(ident):
        raise ValueError(f"{ident!r} cannot name a file in a bundle")
    return ident


# --- reading ---------------------------------------------------------------------------------


def _bad_name(name: str) -> str | None:
    """Why *name* is not a plain relative path inside the bundle (None: it is)."""
    if not name or "\\" in name or "\x00" in name or name.startswith("/") or ":" in name:
        return "is not a plain relative path"
    if posixpath.normpath(name) != name or name.split("/")[0] == "..":
        return "is not a normalised path inside the bundle"
    return None


def read_zip(data: bytes) -> tuple[dict[str, bytes], list[Problem]]:
    """The members of the ZIP *data*, read within the caps; members that are unsafe to read
    (names leading outside, links, encrypted, over the caps) are left out and reported. Nothing
    is ever written to disk."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(f"the bundle is larger than {MAX_BUNDLE_BYTES} bytes")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise BundleError(f"not a ZIP file: {exc}") from exc
    if len(infos) > MAX_MEMBERS:
        raise BundleError(f"the bundle has {len(infos)} entries; at most {MAX_MEMBERS} are read")
    files: dict[str, bytes] = {}
    problems: list[Problem] = []
    total = 0
    for info in infos:
        name = info.filename
        if info.is_dir():
            continue
        why = _bad_name(name)
        if why is None and name in files:
            why = "appears twice in the bundle"
        if why is None and info.flag_bits & 0x1:
            why = "is encrypted"
        if why is None and (info.external_attr >> 16) & 0o170000 == 0o120000:
            why = "is a symbolic link"
        if why is None and info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            why = "uses a compression method other than stored or deflate"
        if why is None and info.file_size > MAX_MEMBER_BYTES:
            why = f"is larger than {MAX_MEMBER_BYTES} bytes"
        if why is not None:
            problems.append(Problem("bundle", f"{name!r} {why}; not read", name[:200]))
            continue
        chunks: list[bytes] = []
        size = 0
        try:
            with zf.open(info) as fh:
                while chunk := fh.read(_CHUNK):
                    size += len(chunk)
                    total += len(chunk)
                    if size > MAX_MEMBER_BYTES or total > MAX_TOTAL_BYTES:
                        raise BundleError(
                            f"{name} inflates past the size caps ({MAX_MEMBER_BYTES} bytes a "
                            f"file, {MAX_TOTAL_BYTES} in all): refused as a ZIP bomb"
                        )
                    chunks.append(chunk)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            if isinstance(exc, BundleError):
                raise
            problems.append(Problem("bundle", f"{name} cannot be read: {exc}", name))
            continue
        files[name] = b"".join(chunks)
    return files, problems


def parse_events(data: bytes) -> list[EventRow]:
    rows = []
    for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            at = dt.datetime.fromisoformat(item["at"])
            if at.tzinfo is None:
                raise ValueError("a time without a time zone")
            rows.append(
                EventRow(
                    seq=_typed(item["seq"], int),
                    at=at.astimezone(dt.UTC),
                    kind=_typed(item["kind"], str),
                    actor=_typed(item["actor"], str),
                    document_id=_optional(item["document_id"]),
                    delivery_id=_optional(item["delivery_id"]),
                    detail=_typed(item["detail"], str),
                    prev_hash=_typed(item["prev_hash"], str),
                    hash=_typed(item["hash"], str),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"line {number} is not an event: {exc}") from exc
    return rows


def _typed(value: Any, kind: type[Any]) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"{value!r} is not a {kind.__name__}")
    return value


def _optional(value: Any) -> str | None:
    return None if value is None else str(_typed(value, str))


# --- verifying -------------------------------------------------------------------------------


def verify_bundle(data: bytes, certificate: x509.Certificate) -> EvidenceReport:
    """Judge the bundle *data* with the hub *certificate* the auditor trusts; every problem
    found is listed (a broken file does not stop the other checks)."""
    report = EvidenceReport()
    files, problems = read_zip(data)
    report.problems.extend(problems)
    manifest = _manifest(files, report)
    _check_digests(files, manifest, report)
    document = manifest.get("document") if isinstance(manifest.get("document"), dict) else {}
    assert isinstance(document, dict)
    report.document_id = str(document.get("document_id") or "") or None
    package = files.get(PACKAGE)
    if package is None:
        report.problem("package", "the bundle has no document package", PACKAGE)

    checkpoint = _checkpoint(files, certificate, report)
    receipts = _receipts(files, certificate, report)
    report.hub = checkpoint.hub if checkpoint else next((r["hub"] for r in receipts), None)
    for r in receipts:
        if report.hub is not None and r["hub"] != report.hub:
            report.problem("receipt", f"signed for hub {r['hub']}, not {report.hub}", r["_file"])
        if report.document_id is not None and r["document_id"] != report.document_id:
            report.problem(
                "receipt",
                f"is about document {r['document_id']}, not {report.document_id}",
                r["_file"],
            )
        if package is not None and (r["package_sha256"], r["size"]) != (
            sha256(package),
            len(package),
        ):
            report.problem(
                "package",
                f"the package's SHA-256 is not the one the hub signed in receipt "
                f"{r['receipt_id']} ({r['package_sha256']})",
                PACKAGE,
            )
    if not any(r["kind"] == "submission" for r in receipts):
        report.problem("receipt", "the bundle holds no valid submission receipt")
    report.receipts = sorted(
        ({k: v for k, v in r.items() if k != "_file"} for r in receipts),
        key=lambda r: (r["kind"] != "submission", str(r["issued_at"]), str(r["receipt_id"])),
    )

    events = _events(files, checkpoint, report)
    _check_against_events(files, events, receipts, package, report)
    _check_document_facts(document, events, report)
    if isinstance(manifest.get("hub"), str) and report.hub and manifest["hub"] != report.hub:
        report.problem(
            "file",
            f"the manifest names hub {manifest['hub']}, the signatures {report.hub}",
            MANIFEST,
        )
    bundled = files.get(CERTIFICATE)
    if bundled is not None:
        try:
            if x509.load_pem_x509_certificate(bundled) != certificate:
                report.notes.append(
                    "the bundled hub certificate is not the one verified with; every signature "
                    "was checked with the certificate given"
                )
        except ValueError:
            report.notes.append("the bundled hub certificate is not a PEM certificate")
    return report


def _manifest(files: Mapping[str, bytes], report: EvidenceReport) -> dict[str, Any]:
    raw = files.get(MANIFEST)
    if raw is None:
        report.problem("file", "the bundle has no manifest", MANIFEST)
        return {}
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        report.problem("file", f"the manifest is not JSON: {exc}", MANIFEST)
        return {}
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        report.problem("file", "the manifest is not a Lienthong evidence manifest", MANIFEST)
        return {}
    if manifest.get("version") != BUNDLE_VERSION:
        report.problem("file", f"unknown bundle version {manifest.get('version')!r}", MANIFEST)
    return manifest


def _check_digests(
    files: Mapping[str, bytes], manifest: Mapping[str, Any], report: EvidenceReport
) -> None:
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        if manifest:
            report.problem("file", "the manifest lists no files", MANIFEST)
        return
    for name, entry in sorted(listed.items()):
        if name not in files:
            report.problem("file", f"{name} is missing from the bundle", name)
            continue
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        if digest != sha256(files[name]):
            report.problem("file", f"{name} was changed: its SHA-256 is not the manifest's", name)
    for name in sorted(set(files) - set(listed) - {MANIFEST}):
        report.problem("file", f"{name} was added: the manifest does not list it", name)


def _checkpoint(
    files: Mapping[str, bytes], certificate: x509.Certificate, report: EvidenceReport
) -> Checkpoint | None:
    raw = files.get(CHECKPOINT)
    if raw is None:
        report.problem("checkpoint", "the bundle has no signed checkpoint", CHECKPOINT)
        return None
    try:
        report.checkpoint = verify_checkpoint(raw.decode("ascii", "replace"), certificate)
    except CheckpointError as exc:
        report.problem("checkpoint", f"the checkpoint is not valid: {exc}", CHECKPOINT)
    return report.checkpoint


def _receipts(
    files: Mapping[str, bytes], certificate: x509.Certificate, report: EvidenceReport
) -> list[dict[str, Any]]:
    out = []
    for name in sorted(n for n in files if n.startswith(RECEIPTS_DIR)):
        try:
            verified = verify_receipt(files[name].decode("ascii", "replace"), certificate)
        except ReceiptError as exc:
            report.problem("receipt", f"{name} is not a valid receipt of this hub: {exc}", name)
            continue
        if name != f"{RECEIPTS_DIR}{verified.payload['receipt_id']}.jws":
            report.problem(
                "receipt", f"{name} holds receipt {verified.payload['receipt_id']}", name
            )
        out.append({**verified.payload, "_file": name})
    return out


def _events(
    files: Mapping[str, bytes], checkpoint: Checkpoint | None, report: EvidenceReport
) -> list[EventRow]:
    raw = files.get(EVENTS)
    if raw is None:
        report.problem("chain", "the bundle has no events", EVENTS)
        return []
    try:
        rows = parse_events(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        report.problem("chain", f"the events cannot be read: {exc}", EVENTS)
        return []
    if not rows:
        report.problem("chain", "the bundle has no events", EVENTS)
        return []
    first = rows[0]
    if first.kind != "received" or first.document_id != report.document_id:
        report.problem(
            "chain",
            f"the events do not start with the received event of document {report.document_id}, "
            "so events of the document may be left out",
            EVENTS,
        )
    if checkpoint is None:
        report.problem("chain", "without a valid checkpoint the events prove nothing", EVENTS)
        return rows
    if rows[-1].seq > checkpoint.seq:
        report.problem(
            "chain",
            f"events after the checkpoint's event {checkpoint.seq} are not covered by it",
            EVENTS,
        )
    # The same walk as ``lienthong audit verify``, from the run's first event.
    walk = ChainWalk.from_event(first, {checkpoint.seq: checkpoint.head_hash})
    for row in rows:
        if row.seq > checkpoint.seq or not walk.feed(row):
            break
    chain = walk.report()
    report.events = chain.events
    if chain.problem is not None:
        report.problem("chain", chain.problem.message, EVENTS)
    return rows


def _check_against_events(
    files: Mapping[str, bytes],
    events: Iterable[EventRow],
    receipts: list[dict[str, Any]],
    package: bytes | None,
    report: EvidenceReport,
) -> None:
    """The package and the status packages are the ones the signed events name."""
    doc_id = report.document_id
    mine = [(e, _detail(e)) for e in events if e.document_id == doc_id and doc_id is not None]
    named_receipts: set[str] = set()
    status_events: dict[str, tuple[EventRow, dict[str, Any]]] = {}
    for event, detail in mine:
        received = event.kind == "received" and package is not None
        if received and detail.get("package_sha256") != sha256(package or b""):
            report.problem(
                "package",
                f"the package's SHA-256 is not the one in the received event {event.seq}",
                PACKAGE,
            )
        if isinstance(detail.get("receipt_id"), str):
            named_receipts.add(detail["receipt_id"])
        if event.kind == "status" and isinstance(detail.get("status_id"), str):
            status_events[detail["status_id"]] = (event, detail)
    have = {r["receipt_id"] for r in receipts}
    for missing in sorted(named_receipts - have):
        report.problem("receipt", f"receipt {missing}, named in the events, is not in the bundle")
    for extra in sorted(have - named_receipts):
        report.notes.append(f"receipt {extra} is signed by the hub but named by no event")
    status_files = {
        n[len(STATUS_DIR) : -len(".edxml")]: n
        for n in files
        if n.startswith(STATUS_DIR) and n.endswith(".edxml")
    }
    for status_id, (event, detail) in sorted(status_events.items()):
        name = status_files.get(status_id)
        if name is None:
            report.problem(
                "status",
                f"status {detail.get('code')} ({status_id}) of event {event.seq} is not in the "
                "bundle",
                f"{STATUS_DIR}{status_id}.edxml",
            )
            continue
        if sha256(files[name]) != detail.get("package_sha256"):
            report.problem(
                "status",
                f"{name} is not the status package of event {event.seq}: its SHA-256 differs",
                name,
            )
            continue
        report.statuses.append(
            {
                "status_id": status_id,
                "code": detail.get("code"),
                "reporter": event.actor,
                "event": event.seq,
                "at": event.at.isoformat(),
            }
        )
    report.statuses.sort(key=lambda st: int(st["event"]))
    for status_id, name in sorted(status_files.items()):
        if status_id not in status_events:
            report.problem("status", f"{name} is named by no status event of the document", name)


def _check_document_facts(
    document: Mapping[str, Any], events: Iterable[EventRow], report: EvidenceReport
) -> None:
    """The manifest's description of the document (not signed) says what the signed received
    event says, so a reader of the manifest is not misled."""
    received = next((e for e in events if e.kind == "received"), None)
    if received is None or received.document_id != report.document_id:
        return
    detail = _detail(received)
    # (The document's received_at is taken a moment before its event's time: not compared.)
    signed: dict[str, Any] = {"sender": received.actor}
    signed.update({k: detail.get(k) for k in _FACTS if k in detail})
    for key, value in signed.items():
        stated = document.get(key)
        if stated != value:
            report.problem(
                "file",
                f"the manifest says the document's {key} is {stated!r}; its signed received "
                f"event says {value!r}",
                MANIFEST,
            )


# What both the manifest and a document's received event record.
_FACTS = ("edxml_document_id", "code", "subject", "priority", "package_sha256", "size")


def _detail(event: EventRow) -> dict[str, Any]:
    try:
        value = json.loads(event.detail)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
