"""What the hub answers about a document that retention purged (``hub.retention``)."""

from __future__ import annotations

import json

from sqlalchemy.ext.asyncio import AsyncSession

from hub.directory import Agency
from hub.errors import Gone
from tracking.models import PurgedDocument


async def raise_if_purged(session: AsyncSession, caller: Agency, document_id: str) -> None:
    """``410 Gone`` for a purged document, to those who could read it before (its sender, its
    recipients, auditors); anyone else gets the caller's usual ``404`` (this returns)."""
    row = await session.get(PurgedDocument, document_id)
    if row is None:
        return
    recipients = json.loads(row.recipients)
    if caller.role == "auditor" or caller.code == row.sender_code or caller.code in recipients:
        raise Gone(
            f"Document {document_id} was purged on {row.purged_at.date().isoformat()}, after "
            f"the hub's retention period; its evidence bundle is archived as {row.archive} "
            "(ask the hub's operators).",
            extra={
                "purged_at": row.purged_at.isoformat(),
                "archive": row.archive,
                "bundle_sha256": row.bundle_sha256,
            },
        )
