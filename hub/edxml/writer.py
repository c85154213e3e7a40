"""Write edXML packages in the official SDK layout.

The root declares the edXML namespace as the default namespace, the envelope re-binds it to the
``edXML:`` prefix and its children are prefixed, and ``AttachmentEncoded`` stands beside the
envelope, unprefixed: byte for byte the shape other systems on the national axis expect. The
output is built as text so the layout is deterministic (lxml would pick prefixes itself).

Signing is not done here: ``signing.xmldsig.sign_package`` takes the bytes this writes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from xml.sax.saxutils import escape

from hub.edxml.model import (
    EDXML_NS,
    Attachment,
    Business,
    DocumentPackage,
    Organization,
    OtherInfo,
    ResponseFor,
    StaffInfo,
    StatusPackage,
)

_KEEP = {"\r": "&#13;"}

# Characters XML 1.0 cannot carry at all, even escaped.
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def open(self, depth: int, name: str, attrs: str = "") -> None:
        self.lines.append(f"{'  ' * depth}<{name}{attrs}>")

    def close(self, depth: int, name: str) -> None:
        self.lines.append(f"{'  ' * depth}</{name}>")

    def leaf(self, depth: int, name: str, value: str, *, always: bool = False) -> None:
        if not value and not always:
            return
        if _ILLEGAL.search(value):
            raise ValueError(f"{name} contains a character XML cannot carry")
        # A bare CR would come back as LF (XML end-of-line handling): keep it as a reference.
        self.lines.append(f"{'  ' * depth}<{name}>{escape(value, _KEEP)}</{name}>")

    def raw(self, depth: int, text: str) -> None:
        self.lines.append(f"{'  ' * depth}{text}")


def _e(name: str) -> str:
    return f"edXML:{name}"


def _organization(out: _Out, depth: int, tag: str, org: Organization) -> None:
    out.open(depth, _e(tag))
    out.leaf(depth + 1, _e("OrganId"), org.organ_id, always=True)
    out.leaf(depth + 1, _e("OrganizationInCharge"), org.organization_in_charge)
    out.leaf(depth + 1, _e("OrganName"), org.organ_name)
    out.leaf(depth + 1, _e("OrganAdd"), org.organ_add)
    out.leaf(depth + 1, _e("Email"), org.email)
    out.leaf(depth + 1, _e("Telephone"), org.telephone)
    out.leaf(depth + 1, _e("Fax"), org.fax)
    out.leaf(depth + 1, _e("Website"), org.website)
    out.close(depth, _e(tag))


def _response_for(out: _Out, depth: int, rf: ResponseFor) -> None:
    out.open(depth, _e("ResponseFor"))
    out.leaf(depth + 1, _e("OrganId"), rf.organ_id, always=True)
    out.leaf(depth + 1, _e("Code"), rf.code, always=True)
    out.leaf(depth + 1, _e("PromulgationDate"), rf.promulgation_date, always=True)
    out.leaf(depth + 1, _e("DocumentId"), rf.document_id, always=True)
    out.close(depth, _e("ResponseFor"))


def _staff(out: _Out, depth: int, staff: StaffInfo) -> None:
    if staff == StaffInfo():
        return
    out.open(depth, _e("StaffInfo"))
    out.leaf(depth + 1, _e("Department"), staff.department)
    out.leaf(depth + 1, _e("Staff"), staff.staff)
    out.leaf(depth + 1, _e("Mobile"), staff.mobile)
    out.leaf(depth + 1, _e("Email"), staff.email)
    out.close(depth, _e("StaffInfo"))


def _other_info(out: _Out, depth: int, other: OtherInfo) -> None:
    out.open(depth, _e("OtherInfo"))
    out.leaf(depth + 1, _e("Priority"), str(int(other.priority)), always=True)
    out.leaf(depth + 1, _e("SphereOfPromulgation"), other.sphere_of_promulgation)
    out.leaf(depth + 1, _e("TyperNotation"), other.typer_notation)
    out.leaf(depth + 1, _e("PromulgationAmount"), other.promulgation_amount)
    out.leaf(depth + 1, _e("PageAmount"), other.page_amount)
    out.leaf(depth + 1, _e("Direction"), other.direction)
    if other.appendixes:
        out.open(depth + 1, _e("Appendixes"))
        for appendix in other.appendixes:
            out.leaf(depth + 2, _e("Appendix"), appendix, always=True)
        out.close(depth + 1, _e("Appendixes"))
    out.close(depth, _e("OtherInfo"))


def _business(out: _Out, depth: int, business: Business) -> None:
    out.open(depth, _e("Bussiness"))
    out.leaf(depth + 1, _e("DocumentId"), business.document_id)
    out.leaf(depth + 1, _e("BussinessDocType"), str(int(business.business_type)), always=True)
    out.leaf(depth + 1, _e("BussinessDocReason"), business.reason)
    out.leaf(depth + 1, _e("Paper"), business.paper)
    d = depth + 1
    if business.has_update_info:
        out.open(d, _e("BussinessDocumentInfo"))
        out.leaf(d + 1, _e("DocumentInfo"), business.document_info)
        out.leaf(d + 1, _e("DocumentReceiver"), business.document_receiver)
        if business.receivers:
            out.open(d + 1, _e("ReceiverList"))
            for receiver in business.receivers:
                out.open(d + 2, _e("Receiver"))
                out.leaf(d + 3, _e("OrganId"), receiver.organ_id, always=True)
                out.leaf(d + 3, _e("ReceiverType"), str(int(receiver.receiver_type)), always=True)
                out.close(d + 2, _e("Receiver"))
            out.close(d + 1, _e("ReceiverList"))
        out.close(d, _e("BussinessDocumentInfo"))
    if business.replacements:
        out.open(d, _e("ReplacementInfoList"))
        for replacement in business.replacements:
            out.open(d + 1, _e("ReplacementInfo"))
            out.leaf(d + 2, _e("DocumentId"), replacement.document_id, always=True)
            out.open(d + 2, _e("OrganIdList"))
            for organ_id in replacement.organ_ids:
                out.leaf(d + 3, _e("OrganId"), organ_id, always=True)
            out.close(d + 2, _e("OrganIdList"))
            out.close(d + 1, _e("ReplacementInfo"))
        out.close(d, _e("ReplacementInfoList"))
    _staff(out, d, business.staff)
    out.close(depth, _e("Bussiness"))


def _start(out: _Out) -> None:
    out.raw(0, '<?xml version="1.0" encoding="UTF-8"?>')
    out.open(0, "edXML", f' xmlns="{EDXML_NS}"')
    out.open(1, _e("edXMLEnvelope"), f' xmlns:edXML="{EDXML_NS}"')
    out.open(2, _e("edXMLHeader"))
    out.open(3, _e("MessageHeader"))


def _end_header(out: _Out) -> None:
    out.close(2, _e("edXMLHeader"))


def _attachments(out: _Out, attachments: Iterable[Attachment]) -> None:
    attachments = tuple(attachments)
    out.open(2, _e("edXMLBody"))
    out.open(3, _e("edXMLManifest"), ' version="1.0"')
    for att in attachments:
        out.open(4, _e("Reference"))
        out.leaf(5, _e("ContentId"), f"cid:{att.content_id}", always=True)
        out.leaf(5, _e("ContentType"), att.content_type, always=True)
        out.leaf(5, _e("Description"), att.description)
        out.leaf(5, _e("AttachmentName"), att.name, always=True)
        out.close(4, _e("Reference"))
    out.close(3, _e("edXMLManifest"))
    out.close(2, _e("edXMLBody"))
    out.close(1, _e("edXMLEnvelope"))
    if attachments:
        out.open(1, "AttachmentEncoded")
        for att in attachments:
            out.open(2, "Attachment")
            out.leaf(3, "ContentId", f"cid:{att.content_id}", always=True)
            out.leaf(3, "AttachmentName", att.name, always=True)
            out.leaf(3, "Description", att.description)
            out.leaf(3, "ContentType", att.content_type, always=True)
            out.leaf(3, "ContentTransferEncoded", att.encoded, always=True)
            out.close(2, "Attachment")
        out.close(1, "AttachmentEncoded")


def write_document(pkg: DocumentPackage) -> bytes:
    """Serialise a document package (unsigned)."""
    out = _Out()
    _start(out)
    d = 4
    _organization(out, d, "From", pkg.sender)
    for recipient in pkg.recipients:
        _organization(out, d, "To", recipient)
    out.leaf(d, _e("DocumentId"), pkg.document_id)
    out.open(d, _e("Code"))
    out.leaf(d + 1, _e("CodeNumber"), pkg.code.number, always=True)
    out.leaf(d + 1, _e("CodeNotation"), pkg.code.notation, always=True)
    out.close(d, _e("Code"))
    out.open(d, _e("PromulgationInfo"))
    out.leaf(d + 1, _e("Place"), pkg.promulgation.place, always=True)
    out.leaf(d + 1, _e("PromulgationDate"), pkg.promulgation.date, always=True)
    out.close(d, _e("PromulgationInfo"))
    out.open(d, _e("DocumentType"))
    out.leaf(d + 1, _e("Type"), pkg.document_type.type, always=True)
    out.leaf(d + 1, _e("TypeDetail"), pkg.document_type.type_detail)
    out.leaf(d + 1, _e("TypeName"), pkg.document_type.type_name, always=True)
    out.close(d, _e("DocumentType"))
    out.leaf(d, _e("Subject"), pkg.subject, always=True)
    out.leaf(d, _e("Content"), pkg.content, always=True)
    if any((pkg.signer.competence, pkg.signer.position, pkg.signer.full_name)):
        out.open(d, _e("SignerInfo"))
        out.leaf(d + 1, _e("Competence"), pkg.signer.competence)
        out.leaf(d + 1, _e("Position"), pkg.signer.position)
        out.leaf(d + 1, _e("FullName"), pkg.signer.full_name)
        out.close(d, _e("SignerInfo"))
    out.leaf(d, _e("DueDate"), pkg.due_date)
    if pkg.to_places:
        out.open(d, _e("ToPlaces"))
        for place in pkg.to_places:
            out.leaf(d + 1, _e("Place"), place, always=True)
        out.close(d, _e("ToPlaces"))
    _other_info(out, d, pkg.other)
    for rf in pkg.response_for:
        _response_for(out, d, rf)
    out.leaf(d, _e("SteeringType"), pkg.steering_type)
    out.close(3, _e("MessageHeader"))
    if pkg.trace or pkg.business:
        out.open(3, _e("TraceHeaderList"))
        for th in pkg.trace:
            out.open(4, _e("TraceHeader"))
            out.leaf(5, _e("OrganId"), th.organ_id, always=True)
            out.leaf(5, _e("Timestamp"), th.timestamp, always=True)
            out.close(4, _e("TraceHeader"))
        if pkg.business:
            _business(out, 4, pkg.business)
        out.close(3, _e("TraceHeaderList"))
    _end_header(out)
    _attachments(out, pkg.attachments)
    out.close(0, "edXML")
    return ("\n".join(out.lines) + "\n").encode("utf-8")


def write_status(pkg: StatusPackage) -> bytes:
    """Serialise a status package (unsigned)."""
    out = _Out()
    _start(out)
    d = 4
    _organization(out, d, "From", pkg.reporter)
    _response_for(out, d, pkg.response_for)
    _staff(out, d, pkg.staff)
    out.leaf(d, _e("StatusCode"), pkg.status_code.value, always=True)
    out.leaf(d, _e("Description"), pkg.description)
    out.leaf(d, _e("Timestamp"), pkg.timestamp, always=True)
    out.close(3, _e("MessageHeader"))
    _end_header(out)
    out.close(1, _e("edXMLEnvelope"))
    out.close(0, "edXML")
    return ("\n".join(out.lines) + "\n").encode("utf-8")
