"""Intake: the checks every package passes before the hub accepts it, and the one transaction
that stores it (DESIGN §1 steps 1–7).

Order matters. The package is parsed hardened, checked against the schema, and its signature is
verified against the *caller's* registered certificates; from then on only the signed content is
read. Only then is the signed ``From`` compared with the caller and the recipients resolved.
A refused package leaves one ``rejected`` trace event and nothing else.

A peer hub's account (``role = "hub"``) sends packages on behalf of the agencies it serves
(hub.federation). Its signature check is the same, against the certificates registered for the
agency named in ``From`` (the original sender's: hubs never re-sign), and only for an agency the
peer is registered to serve; everything after that treats the package as that agency's.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from lxml import etree
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub import business, receipts
from hub.context import HubContext
from hub.deadlines import due_deadline
from hub.directory import Agency
from hub.edxml import schema
from hub.edxml.attachments import describe as describe_attachments
from hub.edxml.model import BusinessType, DocumentPackage, StatusCode, StatusPackage
from hub.edxml.reader import read_document, read_status
from hub.errors import (
    Conflict,
    Forbidden,
    LienthongError,
    Problem,
    RoutingError,
    SignatureError,
    WrongPackageKind,
)
from hub.federation import DELIVERY_MODE as PEER_MODE
from hub.states import Business, apply_status
from hub.states import Transport as T
from hub.xmlsafe import parse, text_of
from signing.pki import fingerprint
from signing.xmldsig import EDXML_NS, Verified, verify_package
from tracking.models import Agency as AgencyRow
from tracking.models import Delivery, Document, Receipt, StatusRecord, utcnow
from tracking.store import append_event, put_blob

log = logging.getLogger(__name__)


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Checked:
    """A package that passed parsing, schema and signature, read from its signed content."""

    sha256: str
    size: int
    verified: Verified
    warnings: tuple[Problem, ...]
    signer: Agency
    """Whose certificates verified the signature: the caller, or for a peer hub's account the
    agency it sends for. The signed ``From`` must name it."""


def check_package(
    ctx: HubContext, caller: Agency, body: bytes, kind: schema.PackageKind
) -> Checked:
    """Steps 1–3: hardened parse, schema, signature against the caller's certificates (for a
    peer hub: those of the agency it sends for)."""
    if not (caller.can_exchange or caller.is_hub):
        # About the caller, not the package: answered before the package is even parsed.
        raise Forbidden(f"{caller.code} is an {caller.role} account; only agencies send packages.")
    tree = parse(body)
    found = schema.detect_kind(tree)
    if found is not None and found != kind:
        expected = (
            "a document package (with To)"
            if kind == "edoc"
            else "a status package (with StatusCode)"
        )
        endpoint = "POST /v1/status" if found == "status" else "POST /v1/documents"
        raise WrongPackageKind(
            f"This endpoint takes {expected}; this is a {found} package: send it to {endpoint}."
        )
    report = schema.validate(tree, kind, ctx.validation)
    signer = _signer(ctx, caller, tree)
    verified = verify_signature(ctx, signer, tree)
    return Checked(hashlib.sha256(body).hexdigest(), len(body), verified, report.warnings, signer)


_E = f"{{{EDXML_NS}}}"
_FROM = f"{_E}edXMLEnvelope/{_E}edXMLHeader/{_E}MessageHeader/{_E}From/{_E}OrganId"


def _signer(ctx: HubContext, caller: Agency, tree: etree._ElementTree) -> Agency:
    """The agency whose certificates the signature must verify against.

    An agency signs its own packages. A peer hub's account relays packages signed by the
    agencies it serves: the ``From`` it claims (read here before the signature is checked, only
    to choose certificates) must be one of those, and have certificates registered here. The
    signature is then verified against that agency's certificates alone, and the signed
    ``From`` must name the same agency (``_require_sender``), so a claim that does not match
    what was signed is refused either way.
    """
    if caller.can_exchange:
        return caller
    claimed = text_of(tree.getroot().find(_FROM))
    if not ctx.directory.speaks_for(caller, claimed):
        raise Forbidden(
            f"The hub account {caller.code} sends for {claimed!r}, which it is not registered "
            "to serve at this hub (its serves patterns, or agencies listed with via = "
            f"{caller.code}). A peer hub may only relay packages of agencies it serves.",
            code="sender.mismatch",
        )
    signer = ctx.directory.get(claimed)
    if signer is None:
        raise SignatureError(
            f"{claimed} is served by {caller.code}, but no signing certificate of {claimed} is "
            "registered at this hub: list it in the directory with via = "
            f"{caller.code} and its certificates.",
            code="signature.untrusted",
        )
    return signer


def verify_signature(ctx: HubContext, caller: Agency, tree: etree._ElementTree) -> Verified:
    """Step 3: the signature, against the caller's registered certificates, under the caller's
    policy (SHA-1 only for a legacy agency), each certificate judged by the trust store."""
    return verify_package(tree, caller.certificates, ctx.policy_for(caller), trust=ctx.trust)


def signature_verdict(ctx: HubContext, caller: Agency, body: bytes) -> dict[str, Any]:
    """What ``POST /v1/validate`` says of the signature: exactly what intake would decide."""
    try:
        verify_signature(ctx, caller, parse(body))
    except SignatureError as exc:
        return {
            "checked": True,
            "valid": False,
            "problem": {"code": exc.code, "detail": exc.detail},
        }
    return {"checked": True, "valid": True, "problem": None}


async def _checked(
    ctx: HubContext, caller: Agency, body: bytes, kind: schema.PackageKind
) -> Checked:
    """check_package in a worker thread: parsing, the schema and the signature of a large
    package must not stall every other request (parsers and schemas are per thread)."""
    return await asyncio.to_thread(check_package, ctx, caller, body, kind)


def _require_sender(signer: Agency, organ_id: str) -> None:
    if organ_id != signer.code:
        raise Forbidden(
            f"The signed From/OrganId is {organ_id!r} but the credential belongs to {signer.code}. "
            "An agency may only send in its own name."
            if signer.is_local
            else f"The signed From/OrganId is {organ_id!r}, not {signer.code} whose signature "
            "was checked.",
            code="sender.mismatch",
        )


_TO_PATH = "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/To[{}]/OrganId"
_RECEIVER_PATH = (
    "/edXML/edXMLEnvelope/edXMLHeader/TraceHeaderList/Bussiness/BussinessDocumentInfo"
    "/ReceiverList/Receiver[{}]/OrganId"
)


@dataclass(frozen=True)
class Recipient:
    code: str
    mode: str  # how it is delivered: pull | push | peer
    peer: str | None = None  # the peer hub it is forwarded to; None: a local agency
    note: str | None = None  # why it gets the package when it is not a plain To


@dataclass(frozen=True)
class Routing:
    recipients: list[Recipient]
    # Each group address named in To, with the members it stood for (for the trace).
    expansions: dict[str, list[str]]
    # Recipients the sending peer hub serves itself (a package relayed by a hub account names
    # every recipient of the original; this hub delivers only its own part).
    left_to_sender_hub: list[str]


def _unknown(ctx: HubContext, code: str) -> str:
    """Why *code* is no recipient, in words."""
    if ctx.national and ctx.directory.get(code) is None and code not in ctx.national:
        return f"{code} is not in the national agency directory"
    return f"{code} is not an agency this hub knows, and no peer hub routes it"


def _resolve_recipients(
    ctx: HubContext, caller: Agency, pkg: DocumentPackage, extra: dict[str, str]
) -> Routing:
    """Step 4 for documents: every To (and every receiver an update names) is a known agency, a
    group address, or a code a peer hub takes, named once, not the sender. A group stands for
    its members (the sender excluded); a member also named on its own is one recipient, a plain
    To."""
    sender = pkg.sender.organ_id
    out: dict[str, Recipient] = {}
    expansions: dict[str, list[str]] = {}
    left: list[str] = []
    problems = []
    named: list[tuple[str, str, str | None]] = [
        (to.organ_id, _TO_PATH.format(i), None) for i, to in enumerate(pkg.recipients, 1)
    ]
    named += [
        (code, _RECEIVER_PATH.format(i), note) for i, (code, note) in enumerate(extra.items(), 1)
    ]
    seen_to: set[str] = set()
    for code, path, note in named:
        # Groups first: a group's code is this hub's own, whatever a peer's patterns say.
        group = ctx.directory.group(code)
        where = ctx.destination(code) if group is None else None
        if note is None and code in seen_to:
            problems.append(Problem(f"{code} is named twice", path=path))
        elif code == sender:
            problems.append(Problem("the sender cannot send to itself", path=path))
        elif group is not None:
            members = [m for m in group.members if m != sender]
            if not members:
                problems.append(Problem(f"group {code} has no member but the sender", path=path))
            expansions[code] = members
            for member in members:
                if member not in out:
                    found = ctx.destination(member)
                    assert found is not None  # groups are expanded from the directory
                    out[member] = Recipient(member, found.mode, found.peer, note or f"group {code}")
        elif caller.is_hub and (
            ctx.directory.speaks_for(caller, code)
            or (where is not None and where.peer == caller.code)
        ):
            # The hub that relayed the package delivers to these itself; sending them back
            # would loop.
            if code not in left:
                left.append(code)
        elif where is None:
            problems.append(Problem(_unknown(ctx, code), path=path))
        else:
            # Named on its own: a plain To (or the update's note), whatever a group said before.
            out[code] = Recipient(code, where.mode, where.peer, note)
        if note is None:
            seen_to.add(code)
    if not problems and not out:
        problems.append(
            Problem(f"every recipient is served by {caller.code}, which sent the package")
        )
    if problems:
        raise RoutingError(
            "; ".join(p.message for p in problems)
            + ". Check the To elements against the directory "
            "(lienthong agencies list).",
            problems=problems,
        )
    return Routing(list(out.values()), expansions, left)


async def _ensure_remote_rows(session: AsyncSession, recipients: list[Recipient]) -> None:
    """A code routed to a peer by pattern has no directory entry; deliveries still point at an
    ``agencies`` row, so it gets one (role ``remote``) the first time a package goes to it."""
    for r in recipients:
        if r.peer is not None and await session.get(AgencyRow, r.code) is None:
            session.add(
                AgencyRow(
                    code=r.code,
                    name=r.code,
                    parent_code=None,
                    role="remote",
                    delivery_mode=PEER_MODE,
                    push_url=None,
                    credential_sha256=None,
                    updated_at=utcnow(),
                )
            )
    await session.flush()


async def _earlier_answer(
    ctx: HubContext, session: AsyncSession, sender: Agency, pkg: DocumentPackage, sha256: str
) -> dict[str, Any] | None:
    """Step 5, de-duplication. The same bytes again are a retry: the original answer. For a new
    document (type 0), other bytes under a DocumentId the sender already used are refused with
    the existing document's id; revoke, update and replace reuse DocumentIds by design."""
    query = select(Document).where(
        Document.sender_code == sender.code,
        Document.edxml_document_id == pkg.document_id,
        Document.business_type == int(pkg.business_type),
    )
    if pkg.business_type is not BusinessType.NEW:
        query = query.where(Document.package_sha256 == sha256)
    existing = (await session.execute(query.limit(1))).scalar_one_or_none()
    if existing is None:
        return None
    if existing.package_sha256 != sha256:
        raise Conflict(
            f"{sender.code} already sent a document with DocumentId {pkg.document_id!r} "
            f"(hub document {existing.id}). To change it, send an update (BussinessDocType 2) "
            "or a replacement (3); to send a new document, give it a new DocumentId.",
            code="document.duplicate",
            extra={"existing_document_id": existing.id},
        )
    rows = await session.execute(
        select(Delivery).where(Delivery.document_id == existing.id, Delivery.kind == "document")
    )
    signed = await receipts.submission_receipt(ctx, session, existing)
    return _receipt(ctx, existing, list(rows.scalars()), duplicate=True, signed=signed)


def _receipt(
    ctx: HubContext,
    doc: Document,
    deliveries: list[Delivery],
    duplicate: bool,
    signed: Receipt | None = None,
) -> dict[str, Any]:
    """The 202 answer. ``receipt`` is the plain summary clients have always read;
    ``signed_receipt`` is the hub-signed proof of the same facts (hub.receipts)."""
    answer: dict[str, Any] = {
        "document_id": doc.id,
        "duplicate": duplicate,
        "deliveries": [
            {"delivery_id": d.id, "recipient": d.recipient_code, "state": d.state}
            for d in deliveries
        ],
        "receipt": {
            "hub": ctx.hub_id,
            "package_sha256": doc.package_sha256,
            "size": doc.size,
            "sender": doc.sender_code,
            "received_at": doc.received_at.isoformat(),
        },
    }
    if signed is not None:
        answer["signed_receipt"] = receipts.answer(signed)
    return answer


async def accept_document(ctx: HubContext, caller: Agency, body: bytes) -> dict[str, Any]:
    """Check and store a document package; return the receipt (202)."""
    checked = await _checked(ctx, caller, body, "edoc")
    sender = checked.signer  # the caller, or the agency a peer hub relays for
    pkg = read_document(checked.verified.signed_root)
    _require_sender(sender, pkg.sender.organ_id)
    the_plan = business.plan(pkg)
    routing = _resolve_recipients(ctx, caller, pkg, the_plan.extra if the_plan else {})
    recipients = routing.recipients
    # Unzipping can take a moment on large files: off the event loop, outside the transaction.
    attachments = await asyncio.to_thread(describe_attachments, pkg)

    async with ctx.store.write() as session:
        answer = await _earlier_answer(ctx, session, sender, pkg, checked.sha256)
        if answer is not None:
            return answer
        earlier = await business.find_earlier(session, sender.code, the_plan) if the_plan else []
        await _ensure_remote_rows(session, recipients)

        now = utcnow()
        await put_blob(session, checked.sha256, body)
        doc = Document(
            id=new_id(),
            sender_code=sender.code,
            edxml_document_id=pkg.document_id,
            code_number=pkg.code.number,
            code_notation=pkg.code.notation,
            subject=pkg.subject,
            priority=int(pkg.priority),
            business_type=int(pkg.business_type),
            due_date=pkg.due_date or None,
            due_at=due_deadline(pkg.due_date),
            package_sha256=checked.sha256,
            size=checked.size,
            signer_fingerprint=fingerprint(checked.verified.certificate),
            signature_method=checked.verified.signature_method,
            received_at=now,
        )
        session.add(doc)
        await session.flush()
        received: dict[str, Any] = {
            "package_sha256": checked.sha256,
            "size": checked.size,
            "edxml_document_id": pkg.document_id,
            "code": f"{pkg.code.number}/{pkg.code.notation}",
            "subject": pkg.subject,
            "priority": int(pkg.priority),
            "business_type": int(pkg.business_type),
            "attachments": attachments,
        }
        if earlier:
            received["earlier_documents"] = [d.id for d in earlier]
        if caller.is_hub:
            received["via"] = caller.code  # relayed by this peer hub's account
        await append_event(session, "received", sender.code, document_id=doc.id, detail=received)
        await append_event(
            session, "validated", "hub", document_id=doc.id, detail=_validated(checked)
        )
        if the_plan is not None:
            business.link(session, doc.id, earlier, the_plan)
            for earlier_doc in earlier:
                # The earlier document's own trace says what happened to it, and by what.
                await append_event(
                    session,
                    business.event_kind(the_plan),
                    sender.code,
                    document_id=earlier_doc.id,
                    detail={
                        "by_document": doc.id,
                        "reason": the_plan.reason,
                        "recipients": [r.code for r in recipients],
                        **({"receivers": the_plan.extra} if the_plan.extra else {}),
                    },
                )
        deliveries = []
        for recipient in recipients:
            delivery = Delivery(
                id=new_id(),
                kind="document",
                document_id=doc.id,
                recipient_code=recipient.code,
                priority=int(pkg.priority),
                state=T.QUEUED,
                note=recipient.note,
                created_at=now,
                next_attempt_at=ctx.first_attempt_at(recipient.code, now),
                attempts=0,
                recall_pending=False,
            )
            session.add(delivery)
            deliveries.append(delivery)
        await session.flush()
        signed = await receipts.submission_receipt(ctx, session, doc, [r.code for r in recipients])
        stored: dict[str, Any] = {
            "recipients": [r.code for r in recipients],
            "receipt_id": signed.id,
        }
        if routing.left_to_sender_hub:
            stored["left_to_sender_hub"] = routing.left_to_sender_hub
        await append_event(session, "stored", "hub", document_id=doc.id, detail=stored)
        for code, members in routing.expansions.items():
            group = ctx.directory.group(code)
            assert group is not None
            await append_event(
                session,
                "expanded",
                "hub",
                document_id=doc.id,
                detail={"group": code, "name": group.name, "members": members},
            )
        for recipient, delivery in zip(recipients, deliveries, strict=True):
            queued = {"recipient": recipient.code, "mode": recipient.mode}
            if recipient.peer:
                queued["via"] = recipient.peer
            if recipient.note:
                queued["note"] = recipient.note
            await append_event(
                session, "queued", "hub", document_id=doc.id, delivery_id=delivery.id, detail=queued
            )
    for recipient in recipients:
        if recipient.peer is None:
            ctx.notifier.notify(recipient.code)
    if any(d.next_attempt_at is not None for d in deliveries):
        ctx.outbox.ring()
    ctx.metrics.documents_accepted.inc()
    log.info(
        "document accepted",
        extra={"document_id": doc.id, "sender": sender.code, "recipients": len(recipients)},
    )
    return _receipt(ctx, doc, deliveries, duplicate=False, signed=signed)


def _validated(checked: Checked) -> dict[str, Any]:
    """The ``validated`` event: how the signature was checked. ``weak`` marks a SHA-1 signature
    accepted from an agency flagged legacy, so auditors can find every one."""
    detail: dict[str, Any] = {
        "signature_method": checked.verified.signature_method,
        "digest_method": checked.verified.digest_method,
        "signer": fingerprint(checked.verified.certificate),
        "weak": checked.verified.weak,
        "warnings": [p.as_dict() for p in checked.warnings],
    }
    if checked.verified.weak:
        detail["weak_reason"] = "SHA-1, accepted because the sender is marked legacy_sha1"
    return detail


async def _find_reported_document(
    session: Any, reporter: Agency, status: StatusPackage
) -> tuple[Document, Delivery]:
    """The document a status is about, and the delivery (document → recipient) it moves.

    *reporter* is the agency whose signature was checked: the caller, or the agency a peer
    hub relays for (never the hub account itself). For 13 (recall) the reporter is the
    document's sender and ResponseFor/OrganId names the recipient; for every other code the
    reporter is a recipient and ResponseFor/OrganId the sender. The answer is the same whether
    the document does not exist or is not the reporter's to report on, so nothing leaks.
    """
    rf = status.response_for
    if status.status_code is StatusCode.RECALL_REQUEST:
        sender, recipient = reporter.code, rf.organ_id
    else:
        sender, recipient = rf.organ_id, reporter.code
    row = (
        await session.execute(
            select(Document, Delivery)
            .join(Delivery, Delivery.document_id == Document.id)
            .where(
                Document.sender_code == sender,
                Document.edxml_document_id == rf.document_id,
                Delivery.kind == "document",
                Delivery.recipient_code == recipient,
            )
            .order_by(Document.received_at.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        who = "sent by you to" if status.status_code is StatusCode.RECALL_REQUEST else "from"
        raise RoutingError(
            f"No document {rf.document_id!r} {who} {rf.organ_id} was delivered "
            + ("" if status.status_code is StatusCode.RECALL_REQUEST else f"to {reporter.code} ")
            + "through this hub; check ResponseFor/OrganId and ResponseFor/DocumentId.",
            code="status.document_unknown",
        )
    return row[0], row[1]


async def accept_status(ctx: HubContext, caller: Agency, body: bytes) -> dict[str, Any]:
    """Check a status package, move the business state, route it to the other side (202)."""
    checked = await _checked(ctx, caller, body, "status")
    reporter = checked.signer  # the caller, or the agency a peer hub relays for
    status = read_status(checked.verified.signed_root)
    _require_sender(reporter, status.reporter.organ_id)

    async with ctx.store.write() as session:
        doc, target_delivery = await _find_reported_document(session, reporter, status)
        existing = (
            await session.execute(
                select(StatusRecord).where(
                    StatusRecord.reporter_code == reporter.code,
                    StatusRecord.package_sha256 == checked.sha256,
                )
            )
        ).scalar_one_or_none()
        if existing is not None:
            delivery_id = (
                await session.execute(select(Delivery.id).where(Delivery.status_id == existing.id))
            ).scalar_one()
            return _status_answer(existing, delivery_id, duplicate=True)

        before = Business(
            StatusCode(target_delivery.business_state) if target_delivery.business_state else None,
            target_delivery.recall_pending,
        )
        after = apply_status(before, status.status_code)  # raises Conflict with the rule broken
        target_delivery.business_state = after.code.value if after.code else None
        target_delivery.recall_pending = after.recall_pending

        # Reports go back to the sender; a recall request goes to the recipient.
        route_to = (
            target_delivery.recipient_code
            if status.status_code is StatusCode.RECALL_REQUEST
            else doc.sender_code
        )
        # The other party may be served by a peer hub: then the status is forwarded there.
        where = ctx.destination(route_to)
        peer = where.peer if where is not None else None
        now = utcnow()
        await put_blob(session, checked.sha256, body)
        record = StatusRecord(
            id=new_id(),
            document_id=doc.id,
            reporter_code=reporter.code,
            target_code=route_to,
            recipient_code=target_delivery.recipient_code,
            status_code=status.status_code.value,
            description=status.description,
            reported_at=status.timestamp,
            package_sha256=checked.sha256,
            received_at=now,
        )
        session.add(record)
        await session.flush()
        delivery = Delivery(
            id=new_id(),
            kind="status",
            document_id=doc.id,
            status_id=record.id,
            recipient_code=route_to,
            priority=doc.priority,
            state=T.QUEUED,
            created_at=now,
            next_attempt_at=ctx.first_attempt_at(route_to, now),
            attempts=0,
            recall_pending=False,
        )
        session.add(delivery)
        await session.flush()
        reported: dict[str, Any] = {
            "status_id": record.id,
            "code": status.status_code.value,
            "meaning": status.status_code.meaning,
            "description": status.description,
            "reported_at": status.timestamp,
            "package_sha256": checked.sha256,
        }
        if caller.is_hub:
            reported["via"] = caller.code  # relayed by this peer hub's account
        await append_event(
            session,
            "status",
            reporter.code,
            document_id=doc.id,
            delivery_id=target_delivery.id,
            detail=reported,
        )
        queued: dict[str, Any] = {
            "recipient": route_to,
            "status_id": record.id,
            "code": status.status_code.value,
        }
        if peer:
            queued.update(mode=PEER_MODE, via=peer)
        await append_event(
            session, "queued", "hub", document_id=doc.id, delivery_id=delivery.id, detail=queued
        )
    if peer is None:
        ctx.notifier.notify(route_to)
    if delivery.next_attempt_at is not None:
        ctx.outbox.ring()
    ctx.metrics.statuses_accepted.inc(code=record.status_code)
    return _status_answer(record, delivery.id, duplicate=False)


def _status_answer(record: StatusRecord, delivery_id: str, duplicate: bool) -> dict[str, Any]:
    return {
        "status_id": record.id,
        "document_id": record.document_id,
        "code": record.status_code,
        "duplicate": duplicate,
        "delivery": {"delivery_id": delivery_id, "recipient": record.target_code},
        "receipt": {
            "package_sha256": record.package_sha256,
            "received_at": record.received_at.isoformat(),
        },
    }


async def record_rejection(
    ctx: HubContext, actor: str, action: str, error: LienthongError, body: bytes | None = None
) -> None:
    """The one trace event a refused request leaves behind."""
    detail: dict[str, Any] = {"action": action, "code": error.code, "detail": error.detail[:2000]}
    if body is not None:
        detail["package_sha256"] = hashlib.sha256(body).hexdigest()
        detail["size"] = len(body)
    async with ctx.store.write() as session:
        await append_event(session, "rejected", actor, detail=detail)
