"""Retention: archive, then purge, the documents older than the retention period
(``lienthong retention purge``; README, "Retention").

A document is purgeable when it was received before the cut-off, it is **finished** (every one of
its deliveries, of any kind, is in a final transport state and no recall is pending), and every
one of its trace events is covered by a signed checkpoint. Documents linked by a revoke, update or
replace are purged **together or not at all**: the later one's meaning depends on the earlier
one, so neither is left pointing at nothing. Which documents qualify is decided by
:func:`plan`, which is pure; the rest of the module does the I/O.

The order is what makes a crash harmless. For each batch: every document's evidence bundle is
written (``hub.evidence`` + ``tracking.evidence``, as ``lienthong evidence export`` does) to the
archive folder under a temporary name, fsynced, renamed, read back from disk and verified with
the hub's certificate; only then is the batch deleted, in one transaction that first checks that
nothing happened to those documents since their bundles were written. A crash before the commit
deletes nothing (the next run writes the bundles again); after it, the bundles are complete.

Deleting keeps the audit chain verifiable: the documents' trace events become tombstones
(``tracking.chain.TOMBSTONE``: links and hash kept, content gone), and a ``purged`` event per
document records the purge, the archive's name and digest, and how many events were blanked.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from sqlalchemy import ColumnElement, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.evidence import gather
from hub.reports import VIETNAM
from hub.states import Transport
from tracking import chain
from tracking.evidence import verify_bundle, write_bundle
from tracking.files import write_atomically
from tracking.models import (
    Blob,
    ChainCheckpoint,
    Delivery,
    Document,
    DocumentLink,
    PurgedDocument,
    Receipt,
    StatusRecord,
    TraceEvent,
    utcnow,
)
from tracking.store import Store, append_event

log = logging.getLogger(__name__)

# A delivery in one of these states will not move again by itself (an operator could still resend
# a failed, expired or dead one; after the retention period that is no longer offered).
FINAL = (Transport.DONE, Transport.FAILED, Transport.EXPIRED, Transport.DEAD)
BATCH = 100  # documents archived, then deleted in one transaction
ACTOR = "hub"


class RetentionError(Exception):
    """The purge stopped; nothing that was not safely archived was deleted."""


@dataclass(frozen=True)
class Facts:
    """What :func:`plan` needs to know about one old document."""

    document_id: str
    last_seq: int  # its last trace event
    settled: bool  # every delivery in a final transport state, no recall pending
    links: frozenset[str] = frozenset()  # documents it revokes/updates/replaces, or is by


@dataclass(frozen=True)
class Plan:
    groups: tuple[tuple[str, ...], ...]  # each group is purged together (linked documents)
    kept: Mapping[str, str]  # old documents that stay, with the reason

    @property
    def documents(self) -> int:
        return sum(len(g) for g in self.groups)


def plan(facts: Mapping[str, Facts], checkpoint_seq: int) -> Plan:
    """Which of the old documents *facts* (in the order to purge them) may go, given the last
    signed checkpoint's ``seq``; the others with the reason they stay."""
    kept: dict[str, str] = {}
    for f in facts.values():
        if not f.settled:
            kept[f.document_id] = "not finished: a delivery is not settled or a recall is pending"
        elif f.last_seq > checkpoint_seq:
            kept[f.document_id] = (
                f"not covered by a signed checkpoint yet (its last event is {f.last_seq}, the "
                f"last checkpoint {checkpoint_seq})"
            )
    changed = True
    while changed:  # a kept document keeps everything linked to it, transitively
        changed = False
        for f in facts.values():
            if f.document_id in kept:
                continue
            blocker = next((d for d in sorted(f.links) if d not in facts or d in kept), None)
            if blocker is not None:
                kept[f.document_id] = f"linked to document {blocker}, which is kept"
                changed = True
    groups: list[tuple[str, ...]] = []
    placed: set[str] = set()
    position = {document_id: i for i, document_id in enumerate(facts)}
    for document_id in facts:
        if document_id in kept or document_id in placed:
            continue
        group, todo = [], [document_id]
        while todo:
            current = todo.pop()
            if current in placed:
                continue
            placed.add(current)
            group.append(current)
            todo.extend(sorted(facts[current].links - placed))
        groups.append(tuple(sorted(group, key=position.__getitem__)))
    return Plan(tuple(groups), kept)


def cutoff(before: str | None, days: int, now: dt.datetime) -> dt.datetime:
    """The instant documents must have been received before: *before* (ISO 8601; a bare date
    or time is Vietnam time, as people mean it), else *days* before *now*."""
    if before:
        try:
            when = dt.datetime.fromisoformat(before)
        except ValueError:
            raise ValueError(
                f"--before must be a date or time in ISO 8601 (2021-12-31 or "
                f"2021-12-31T17:00:00+07:00), not {before!r}"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=VIETNAM)
        return when.astimezone(dt.UTC)
    if days <= 0:
        raise ValueError(
            "retention is off ([retention] days = 0 keeps every document): set days, or give "
            "--before DATE"
        )
    return now - dt.timedelta(days=days)


def batches(groups: Sequence[tuple[str, ...]], size: int) -> Iterator[list[tuple[str, ...]]]:
    """*groups* in batches of about *size* documents; a group is never split."""
    batch: list[tuple[str, ...]] = []
    count = 0
    for group in groups:
        if batch and count + len(group) > size:
            yield batch
            batch, count = [], 0
        batch.append(group)
        count += len(group)
    if batch:
        yield batch


@dataclass(frozen=True)
class Archived:
    document_id: str
    name: str  # the bundle's file name in the archive folder
    sha256: str
    size: int
    last_seq: int  # the document's last event in the bundle


@dataclass
class PurgeSummary:
    before: dt.datetime
    archive_dir: Path | None
    dry_run: bool
    planned: tuple[str, ...] = ()
    kept: Mapping[str, str] = field(default_factory=dict)
    archived: int = 0
    purged: int = 0
    bytes_freed: int = 0  # package and status package bytes deleted
    archive_bytes: int = 0
    changed: list[str] = field(default_factory=list)  # touched after archiving: left for later

    def as_dict(self) -> dict[str, object]:
        return {
            "before": self.before.isoformat(),
            "archive_dir": str(self.archive_dir) if self.archive_dir else None,
            "dry_run": self.dry_run,
            "purgeable": list(self.planned),
            "kept": dict(self.kept),
            "archived": self.archived,
            "purged": self.purged,
            "bytes_freed": self.bytes_freed,
            "archive_bytes": self.archive_bytes,
            "changed_since_archived": self.changed,
        }


async def _facts(session: AsyncSession, which: ColumnElement[bool]) -> dict[str, Facts]:
    """Facts about the documents *which* selects, oldest first."""
    last_seq = (
        select(func.max(TraceEvent.seq))
        .where(TraceEvent.document_id == Document.id)
        .scalar_subquery()
    )
    unsettled = exists().where(
        Delivery.document_id == Document.id,
        or_(Delivery.state.not_in([s.value for s in FINAL]), Delivery.recall_pending),
    )
    rows = (
        await session.execute(
            select(Document.id, last_seq, unsettled)
            .where(which)
            .order_by(Document.received_at, Document.id)
        )
    ).all()
    ids = select(Document.id).where(which)
    links: dict[str, set[str]] = {row[0]: set() for row in rows}
    for later, earlier in (
        await session.execute(
            select(DocumentLink.document_id, DocumentLink.earlier_document_id).where(
                or_(DocumentLink.document_id.in_(ids), DocumentLink.earlier_document_id.in_(ids))
            )
        )
    ).all():
        for mine, other in ((later, earlier), (earlier, later)):
            if mine in links:
                links[mine].add(other)
    return {
        doc_id: Facts(doc_id, int(seq or 0), not busy, frozenset(links[doc_id]))
        for doc_id, seq, busy in rows
    }


async def make_plan(store: Store, before: dt.datetime) -> Plan:
    async with store.read() as session:
        facts = await _facts(session, Document.received_at < before)
        checkpoint = (await session.execute(select(func.max(ChainCheckpoint.seq)))).scalar_one()
    return plan(facts, int(checkpoint or 0))


async def archive(
    store: Store, folder: Path, document_id: str, certificate: x509.Certificate, hub_id: str
) -> Archived:
    """Write *document_id*'s evidence bundle into *folder* and check the copy on disk."""
    evidence = await gather(store, document_id, certificate, hub_id)
    name = f"{document_id}.zip"
    path = await asyncio.to_thread(write_atomically, folder, name, write_bundle(evidence))
    on_disk = await asyncio.to_thread(path.read_bytes)
    report = await asyncio.to_thread(verify_bundle, on_disk, certificate)
    if not report.valid or report.document_id != document_id:
        problems = "; ".join(p.message for p in report.problems) or "another document's bundle"
        raise RetentionError(f"the archived bundle {path} does not verify: {problems}")
    return Archived(
        document_id,
        name,
        hashlib.sha256(on_disk).hexdigest(),
        len(on_disk),
        max(e.seq for e in evidence.events if e.document_id == document_id),
    )


async def delete_archived(
    store: Store, groups: Sequence[tuple[str, ...]], archived: Mapping[str, Archived]
) -> tuple[list[str], list[str], int]:
    """Purge the archived *groups* in one transaction: (purged ids, ids left because they
    changed after archiving, bytes freed)."""
    async with store.write() as session:
        wanted = [d for g in groups for d in g]
        now = await _facts(session, Document.id.in_(wanted))

        def unchanged(doc: str) -> bool:
            f = now.get(doc)
            return f is not None and f.settled and f.last_seq == archived[doc].last_seq

        ids = [d for g in groups if all(unchanged(d) for d in g) for d in g]
        changed = [d for d in wanted if d not in ids]
        if not ids:
            return [], changed, 0
        docs = list((await session.execute(select(Document).where(Document.id.in_(ids)))).scalars())
        recipients: dict[str, set[str]] = {d: set() for d in ids}
        for doc_id, code in (
            await session.execute(
                select(Delivery.document_id, Delivery.recipient_code).where(
                    Delivery.document_id.in_(ids), Delivery.kind == "document"
                )
            )
        ).all():
            recipients[doc_id].add(code)
        blobs = {d.package_sha256 for d in docs} | set(
            (
                await session.execute(
                    select(StatusRecord.package_sha256).where(StatusRecord.document_id.in_(ids))
                )
            ).scalars()
        )
        events = dict(
            (
                await session.execute(
                    select(TraceEvent.document_id, func.count())
                    .where(TraceEvent.document_id.in_(ids))
                    .group_by(TraceEvent.document_id)
                )
            ).all()
        )
        # Children before parents: deliveries point at status packages and receipts.
        for statement in (
            delete(Delivery).where(Delivery.document_id.in_(ids)),
            delete(StatusRecord).where(StatusRecord.document_id.in_(ids)),
            delete(Receipt).where(Receipt.document_id.in_(ids)),
            delete(DocumentLink).where(
                or_(DocumentLink.document_id.in_(ids), DocumentLink.earlier_document_id.in_(ids))
            ),
            delete(Document).where(Document.id.in_(ids)),
        ):
            await session.execute(statement)
        freed = await _delete_unused_blobs(session, blobs)
        await session.execute(
            update(TraceEvent)
            .where(TraceEvent.document_id.in_(ids))
            .values(kind=chain.TOMBSTONE, actor="", delivery_id=None, detail="")
        )
        at = utcnow()
        for doc in docs:
            made = archived[doc.id]
            session.add(
                PurgedDocument(
                    document_id=doc.id,
                    sender_code=doc.sender_code,
                    recipients=json.dumps(sorted(recipients[doc.id])),
                    received_at=doc.received_at,
                    purged_at=at,
                    archive=made.name,
                    bundle_sha256=made.sha256,
                    bundle_size=made.size,
                )
            )
            await append_event(
                session,
                chain.PURGED,
                ACTOR,
                document_id=doc.id,
                detail={
                    "archive": made.name,
                    "bundle_sha256": made.sha256,
                    "events": int(events.get(doc.id, 0)),
                },
            )
    return ids, changed, freed


async def _delete_unused_blobs(session: AsyncSession, candidates: set[str]) -> int:
    """Delete the package bytes among *candidates* nothing points at any more (blobs are shared
    by content); the bytes freed."""
    if not candidates:
        return 0
    still_used = set(
        (
            await session.execute(
                select(Document.package_sha256).where(Document.package_sha256.in_(candidates))
            )
        ).scalars()
    ) | set(
        (
            await session.execute(
                select(StatusRecord.package_sha256).where(
                    StatusRecord.package_sha256.in_(candidates)
                )
            )
        ).scalars()
    )
    unused = candidates - still_used
    if not unused:
        return 0
    freed = (
        await session.execute(select(func.sum(Blob.size)).where(Blob.sha256.in_(unused)))
    ).scalar_one()
    await session.execute(delete(Blob).where(Blob.sha256.in_(unused)))
    return int(freed or 0)


async def purge(
    store: Store,
    *,
    before: dt.datetime,
    certificate: x509.Certificate,
    hub_id: str,
    archive_dir: Path | None,
    dry_run: bool = False,
    batch_size: int = BATCH,
    progress: Callable[[PurgeSummary], None] | None = None,
) -> PurgeSummary:
    """Archive and purge every purgeable document received before *before*; with *dry_run*,
    only say which. *progress* is called after every batch."""
    found = await make_plan(store, before)
    summary = PurgeSummary(
        before=before,
        archive_dir=archive_dir,
        dry_run=dry_run,
        planned=tuple(d for g in found.groups for d in g),
        kept=found.kept,
    )
    if dry_run or not found.groups:
        return summary
    if archive_dir is None or not await asyncio.to_thread(archive_dir.is_dir):
        raise RetentionError(
            f"the archive folder {archive_dir} does not exist: create it, or name another with "
            "--archive-dir or [retention] archive_dir"
            if archive_dir
            else "no archive folder: give --archive-dir or set [retention] archive_dir"
        )
    for batch in batches(found.groups, batch_size):
        made: dict[str, Archived] = {}
        for document_id in (d for g in batch for d in g):
            made[document_id] = await archive(store, archive_dir, document_id, certificate, hub_id)
        summary.archived += len(made)
        summary.archive_bytes += sum(a.size for a in made.values())
        purged, changed, freed = await delete_archived(store, batch, made)
        summary.purged += len(purged)
        summary.changed.extend(changed)
        summary.bytes_freed += freed
        log.info(
            "retention: batch purged",
            extra={"purged": len(purged), "changed": len(changed), "bytes_freed": freed},
        )
        if progress is not None:
            progress(summary)
    return summary
