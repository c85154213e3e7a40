"""Signing the audit chain's head on a schedule, and verifying the chain against those
signatures (``lienthong audit verify``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from sqlalchemy import func, select

from hub.context import HubContext
from signing.checkpoints import CheckpointError, sign_checkpoint, verify_checkpoint
from tracking.audit import ChainReport, Tampering, verify_store
from tracking.models import ChainCheckpoint, TraceEvent, utcnow
from tracking.store import Store

log = logging.getLogger(__name__)


async def make_checkpoint(ctx: HubContext) -> ChainCheckpoint | None:
    """Sign the current chain head, unless it was already signed. Under the write lock, so the
    head cannot move while it is read and signed."""
    async with ctx.store.write() as session:
        head = (
            await session.execute(
                select(TraceEvent.seq, TraceEvent.hash).order_by(TraceEvent.seq.desc()).limit(1)
            )
        ).first()
        if head is None:
            return None
        last = (await session.execute(select(func.max(ChainCheckpoint.seq)))).scalar_one()
        if last is not None and last >= head.seq:
            return None
        at = utcnow()
        row = ChainCheckpoint(
            seq=head.seq,
            head_hash=head.hash,
            signed_at=at,
            jws=sign_checkpoint(
                ctx.receipt_signer, hub=ctx.hub_id, seq=head.seq, head_hash=head.hash, at=at
            ),
        )
        session.add(row)
    log.info("audit chain checkpoint signed", extra={"seq": row.seq, "head_hash": row.head_hash})
    return row


@dataclass(frozen=True)
class AuditReport:
    chain: ChainReport
    checkpoints: int
    last_checkpoint: ChainCheckpoint | None


async def audit(
    store: Store,
    certificate: x509.Certificate,
    hub_id: str,
    progress: Callable[[int], None] | None = None,
) -> AuditReport:
    """Verify every checkpoint's signature with the hub's *certificate*, then the chain against
    them. A checkpoint that does not verify, or names another hub, is itself the problem."""
    async with store.read() as session:
        rows = list(
            (await session.execute(select(ChainCheckpoint).order_by(ChainCheckpoint.seq))).scalars()
        )
    signed: dict[int, str] = {}
    for row in rows:
        try:
            checkpoint = verify_checkpoint(row.jws, certificate)
            if (checkpoint.seq, checkpoint.head_hash, checkpoint.hub) != (
                row.seq,
                row.head_hash,
                hub_id,
            ):
                raise CheckpointError(
                    f"its signed content (hub {checkpoint.hub}, event {checkpoint.seq}) is not "
                    "what its row says"
                )
        except CheckpointError as exc:
            problem = Tampering(
                "checkpoint", row.seq, f"the checkpoint of event {row.seq} is not valid: {exc}"
            )
            return AuditReport(ChainReport(0, 0, "", problem), len(rows), None)
        signed[checkpoint.seq] = checkpoint.head_hash
    report = await verify_store(store, signed, progress)
    return AuditReport(report, len(rows), rows[-1] if rows else None)
