"""Revoke, update and replace (BussinessDocType 1–3): which earlier documents a package acts on,
and who else must hear of it.

Pure planning first (``plan``), then the database part (``link``), called inside the intake
transaction so that a package and its links are stored together or not at all.

* A revoke (1) names the earlier document in ``Bussiness/DocumentId`` or, as the official SDK
  does, only through the header's ``DocumentId`` (the same document, sent again to revoke it).
* An update (2) names it the same way; its ``ReceiverList`` adds recipients, who get the package
  (the updated document), and removes recipients, who get it as a notice.
* A replace (3) names one or more earlier documents in ``ReplacementInfoList``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.edxml.model import BusinessType, DocumentPackage, ReceiverType
from hub.errors import RoutingError
from tracking.models import Document, DocumentLink

RELATION = {
    BusinessType.REVOKE: "revokes",
    BusinessType.UPDATE: "updates",
    BusinessType.REPLACE: "replaces",
}
EVENT = {
    BusinessType.REVOKE: "revoked",
    BusinessType.UPDATE: "updated",
    BusinessType.REPLACE: "replaced",
}
NOTE = {
    ReceiverType.ADDED: "added by update",
    ReceiverType.REMOVED: "removed by update (notice)",
}


@dataclass(frozen=True)
class Plan:
    business_type: BusinessType
    earlier: tuple[str, ...]  # edXML DocumentIds of the earlier documents
    extra: dict[str, str]  # recipient code → why it gets the package (update receivers)
    reason: str


def plan(pkg: DocumentPackage) -> Plan | None:
    """What a package does to earlier documents; None for a new document (type 0)."""
    business = pkg.business
    if business is None or business.business_type is BusinessType.NEW:
        return None
    kind = business.business_type
    if kind is BusinessType.REPLACE and business.replacements:
        earlier = tuple(dict.fromkeys(r.document_id for r in business.replacements))
    else:
        earlier = (business.document_id or pkg.document_id,)
    extra = {}
    if kind is BusinessType.UPDATE:
        extra = {r.organ_id: NOTE[r.receiver_type] for r in business.receivers}
    return Plan(kind, earlier, extra, business.reason)


async def find_earlier(session: AsyncSession, sender: str, the_plan: Plan) -> list[Document]:
    """The sender's earlier documents the plan names, or a RoutingError naming what is missing.

    The original (type 0) is preferred when a DocumentId was used by several packages, then the
    most recent.
    """
    found = []
    for edxml_id in the_plan.earlier:
        row = (
            await session.execute(
                select(Document)
                .where(Document.sender_code == sender, Document.edxml_document_id == edxml_id)
                .order_by(Document.business_type != 0, Document.received_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if row is None:
            raise RoutingError(
                f"This {RELATION[the_plan.business_type][:-1]} package refers to document "
                f"{edxml_id!r}, which {sender} never sent through this hub. Check "
                "Bussiness/DocumentId (or ReplacementInfo/DocumentId).",
                code="business.document_unknown",
            )
        found.append(row)
    return found


def link(session: AsyncSession, document_id: str, earlier: list[Document], the_plan: Plan) -> None:
    for doc in earlier:
        session.add(
            DocumentLink(
                document_id=document_id,
                earlier_document_id=doc.id,
                relation=RELATION[the_plan.business_type],
            )
        )


def event_kind(the_plan: Plan) -> str:
    return EVENT[the_plan.business_type]
