"""Gathering a document's evidence from the hub's database (``lienthong evidence export``); the
bundle itself and its verification are ``tracking.evidence``."""

from __future__ import annotations

import json
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select

from hub.checkpoints import make_checkpoint
from hub.context import HubContext
from hub.errors import NotFound
from hub.traces import document_facts
from tracking.audit import EventRow
from tracking.evidence import Evidence, StatusFile
from tracking.models import (
    Blob,
    ChainCheckpoint,
    Document,
    PurgedDocument,
    Receipt,
    StatusRecord,
    TraceEvent,
    utcnow,
)
from tracking.store import Store


class NoCheckpoint(NotFound):
    """No signed checkpoint covers the document's last event yet."""


@dataclass(frozen=True)
class Range:
    first_seq: int
    last_seq: int


async def _document_range(store: Store, document_id: str) -> Range:
    async with store.read() as session:
        if await session.get(Document, document_id) is None:
            purged = await session.get(PurgedDocument, document_id)
            if purged is not None:
                raise NotFound(
                    f"Document {document_id} was purged on {purged.purged_at.date().isoformat()} "
                    f"by retention; its evidence bundle was archived as {purged.archive} "
                    f"(SHA-256 {purged.bundle_sha256})."
                )
            raise NotFound(f"No document {document_id} in this hub's database.")
        first, last = (
            await session.execute(
                select(func.min(TraceEvent.seq), func.max(TraceEvent.seq)).where(
                    TraceEvent.document_id == document_id
                )
            )
        ).one()
    if first is None:
        raise NotFound(f"Document {document_id} has no trace events.")
    return Range(int(first), int(last))


async def _covering_checkpoint(store: Store, seq: int) -> ChainCheckpoint | None:
    """The nearest checkpoint at or after *seq*: the shortest run of events that proves it."""
    async with store.read() as session:
        return (
            await session.execute(
                select(ChainCheckpoint)
                .where(ChainCheckpoint.seq >= seq)
                .order_by(ChainCheckpoint.seq)
                .limit(1)
            )
        ).scalar_one_or_none()


async def gather(
    store: Store,
    document_id: str,
    certificate: x509.Certificate,
    hub_id: str,
    *,
    signing_context: HubContext | None = None,
) -> Evidence:
    """Everything :func:`tracking.evidence.write_bundle` needs for *document_id*. When no
    checkpoint covers the document's last event yet, one is signed now if *signing_context*
    (which holds the hub's key) is given, else :class:`NoCheckpoint` is raised."""
    span = await _document_range(store, document_id)
    checkpoint = await _covering_checkpoint(store, span.last_seq)
    if checkpoint is None and signing_context is not None:
        await make_checkpoint(signing_context)
        checkpoint = await _covering_checkpoint(store, span.last_seq)
    if checkpoint is None:
        raise NoCheckpoint(
            f"No signed checkpoint covers event {span.last_seq} of document {document_id} yet: "
            "the hub signs one every [audit] checkpoint_seconds and when it stops."
        )
    async with store.read() as session:
        doc = await session.get(Document, document_id)
        assert doc is not None
        package = await session.get(Blob, doc.package_sha256)
        assert package is not None
        events = (
            await session.execute(
                select(TraceEvent)
                .where(TraceEvent.seq >= span.first_seq, TraceEvent.seq <= checkpoint.seq)
                .order_by(TraceEvent.seq)
            )
        ).scalars()
        rows = tuple(
            EventRow(
                e.seq,
                e.at,
                e.kind,
                e.actor,
                e.document_id,
                e.delivery_id,
                e.detail,
                e.prev_hash,
                e.hash,
            )
            for e in events
        )
        # Only what the run of events names: a status or receipt that arrived after the
        # checkpoint belongs to a later export, not to this proof.
        named = _named_ids(rows, document_id)
        receipts = (
            await session.execute(
                select(Receipt).where(
                    Receipt.document_id == document_id,
                    Receipt.id.in_(named) | (Receipt.kind == "submission"),
                )
            )
        ).scalars()
        statuses = (
            await session.execute(
                select(StatusRecord.id, Blob.data)
                .join(Blob, Blob.sha256 == StatusRecord.package_sha256)
                .where(StatusRecord.document_id == document_id, StatusRecord.id.in_(named))
                .order_by(StatusRecord.received_at, StatusRecord.id)
            )
        ).all()
        receipt_map = {r.id: r.jws for r in receipts}
    return Evidence(
        hub=hub_id,
        document={
            **document_facts(doc),
            "package_sha256": doc.package_sha256,
            "size": doc.size,
        },
        package=package.data,
        receipts=receipt_map,
        statuses=tuple(StatusFile(status_id, data) for status_id, data in statuses),
        events=rows,
        checkpoint_jws=checkpoint.jws,
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM),
        exported_at=utcnow(),
    )


def _named_ids(rows: tuple[EventRow, ...], document_id: str) -> set[str]:
    """The status and receipt ids the document's events name."""
    named = set()
    for row in rows:
        if row.document_id == document_id:
            detail = json.loads(row.detail)
            for key in ("status_id", "receipt_id"):
                if isinstance(detail.get(key), str):
                    named.add(detail[key])
    return named
