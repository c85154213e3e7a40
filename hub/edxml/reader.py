"""Read edXML packages into the typed model.

The reader accepts both layouts seen in real packages (children with or without the ``edXML:``
prefix are the same namespace, so this is free with namespace-aware lookups). It expects a tree
that already passed the schema check; anything still missing is reported as the hub's own
:class:`SchemaInvalid`, never as a Python exception.

When a package was signed, call the reader on the *signed* root the verifier returns, so that
content outside the signature can never be read (signature-wrapping defence).
"""

from __future__ import annotations

from typing import TypeVar

from lxml import etree

from hub.edxml.model import (
    EDXML_NS,
    Attachment,
    Business,
    BusinessType,
    Code,
    DocumentPackage,
    DocumentType,
    Organization,
    OtherInfo,
    Priority,
    PromulgationInfo,
    Receiver,
    ReceiverType,
    Replacement,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusCode,
    StatusPackage,
    TraceHeader,
)
from hub.errors import Problem, SchemaInvalid
from hub.xmlsafe import source_line, text_of

_Element = etree._Element
_E = TypeVar("_E", Priority, BusinessType, ReceiverType)


def _q(name: str) -> str:
    return f"{{{EDXML_NS}}}{name}"


def _child(parent: _Element | None, name: str) -> _Element | None:
    if parent is None:
        return None
    return parent.find(_q(name))


def _children(parent: _Element | None, name: str) -> list[_Element]:
    if parent is None:
        return []
    return parent.findall(_q(name))


def _text(parent: _Element | None, name: str) -> str:
    return text_of(_child(parent, name))


def _require(parent: _Element | None, name: str, where: str) -> _Element:
    found = _child(parent, name)
    if found is None:
        line = source_line(parent)
        raise SchemaInvalid(
            f"{where}/{name} is required.",
            problems=[Problem(f"missing element {name}", path=f"{where}/{name}", line=line)],
        )
    return found


def _root(tree_or_root: etree._ElementTree | _Element) -> _Element:
    root = tree_or_root.getroot() if isinstance(tree_or_root, etree._ElementTree) else tree_or_root
    if root.tag != _q("edXML"):
        raise SchemaInvalid(
            "The root element must be edXML in the QCVN 102 namespace.",
            problems=[Problem(f"root element is {root.tag}", path="/", line=source_line(root))],
        )
    return root


def message_header(tree_or_root: etree._ElementTree | _Element) -> _Element:
    root = _root(tree_or_root)
    envelope = _require(root, "edXMLEnvelope", "/edXML")
    header = _require(envelope, "edXMLHeader", "/edXML/edXMLEnvelope")
    return _require(header, "MessageHeader", "/edXML/edXMLEnvelope/edXMLHeader")


def _organization(el: _Element) -> Organization:
    return Organization(
        organ_id=_text(el, "OrganId"),
        organ_name=_text(el, "OrganName"),
        organization_in_charge=_text(el, "OrganizationInCharge"),
        organ_add=_text(el, "OrganAdd"),
        email=_text(el, "Email"),
        telephone=_text(el, "Telephone"),
        fax=_text(el, "Fax"),
        website=_text(el, "Website"),
    )


def _response_for(el: _Element) -> ResponseFor:
    return ResponseFor(
        organ_id=_text(el, "OrganId"),
        code=_text(el, "Code"),
        promulgation_date=_text(el, "PromulgationDate"),
        document_id=_text(el, "DocumentId"),
    )


def _staff(el: _Element | None) -> StaffInfo:
    return StaffInfo(
        department=_text(el, "Department"),
        staff=_text(el, "Staff"),
        mobile=_text(el, "Mobile"),
        email=_text(el, "Email"),
    )


def _int_enum(kind: type[_E], value: str, path: str, el: _Element) -> _E:
    try:
        return kind(int(value))
    except ValueError as exc:
        raise SchemaInvalid(
            f"{path} has an unknown value {value!r}.",
            problems=[Problem(f"unknown value {value!r}", path=path, line=source_line(el))],
        ) from exc


def _other_info(el: _Element | None) -> OtherInfo:
    if el is None:
        return OtherInfo()
    priority_text = _text(el, "Priority") or "0"
    priority = _int_enum(Priority, priority_text, "OtherInfo/Priority", el)
    return OtherInfo(
        priority=priority,
        sphere_of_promulgation=_text(el, "SphereOfPromulgation"),
        typer_notation=_text(el, "TyperNotation"),
        promulgation_amount=_text(el, "PromulgationAmount"),
        page_amount=_text(el, "PageAmount"),
        direction=_text(el, "Direction"),
        appendixes=tuple(text_of(a) for a in _children(_child(el, "Appendixes"), "Appendix")),
    )


def _receiver(el: _Element) -> Receiver:
    kind = _text(el, "ReceiverType")
    return Receiver(
        organ_id=_text(el, "OrganId"),
        receiver_type=_int_enum(ReceiverType, kind, "Receiver/ReceiverType", el),
    )


def _business(trace_list: _Element | None) -> Business | None:
    el = _child(trace_list, "Bussiness")
    if el is None:
        return None
    doc_type = _text(el, "BussinessDocType") or "0"
    info = _child(el, "BussinessDocumentInfo")
    return Business(
        business_type=_int_enum(BusinessType, doc_type, "Bussiness/BussinessDocType", el),
        document_id=_text(el, "DocumentId"),
        reason=_text(el, "BussinessDocReason"),
        paper=_text(el, "Paper"),
        document_info=_text(info, "DocumentInfo"),
        document_receiver=_text(info, "DocumentReceiver"),
        receivers=tuple(_receiver(r) for r in _children(_child(info, "ReceiverList"), "Receiver")),
        replacements=tuple(
            Replacement(
                document_id=_text(r, "DocumentId"),
                organ_ids=tuple(text_of(o) for o in _children(_child(r, "OrganIdList"), "OrganId")),
            )
            for r in _children(_child(el, "ReplacementInfoList"), "ReplacementInfo")
        ),
        staff=_staff(_child(el, "StaffInfo")),
    )


def normalise_content_id(value: str) -> str:
    """``cid:abc`` and ``abc`` name the same attachment; some writers drop the prefix."""
    value = value.strip()
    return value[4:] if value.lower().startswith("cid:") else value


def _attachments(root: _Element, envelope: _Element) -> tuple[Attachment, ...]:
    manifest = _child(_child(envelope, "edXMLBody"), "edXMLManifest")
    described = {
        normalise_content_id(_text(ref, "ContentId")): ref
        for ref in _children(manifest, "Reference")
    }
    out = []
    for att in _children(_child(root, "AttachmentEncoded"), "Attachment"):
        cid = normalise_content_id(_text(att, "ContentId"))
        ref = described.get(cid)
        out.append(
            Attachment(
                content_id=cid,
                name=_text(att, "AttachmentName") or _text(ref, "AttachmentName"),
                content_type=_text(att, "ContentType") or _text(ref, "ContentType"),
                encoded="".join(text_of(_child(att, "ContentTransferEncoded")).split()),
                description=_text(att, "Description") or _text(ref, "Description"),
            )
        )
    return tuple(out)


def read_document(tree_or_root: etree._ElementTree | _Element) -> DocumentPackage:
    """Read a document package (messagetype "edoc")."""
    root = _root(tree_or_root)
    header = message_header(root)
    envelope = _require(root, "edXMLEnvelope", "/edXML")
    where = "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader"
    sender = _organization(_require(header, "From", where))
    recipients = tuple(_organization(el) for el in _children(header, "To"))
    if not recipients:
        _require(header, "To", where)
    code_el = _child(header, "Code")
    promulgation_el = _child(header, "PromulgationInfo")
    type_el = _child(header, "DocumentType")
    signer_el = _child(header, "SignerInfo")
    trace_list = _child(_child(envelope, "edXMLHeader"), "TraceHeaderList")
    return DocumentPackage(
        sender=sender,
        recipients=recipients,
        document_id=_text(header, "DocumentId"),
        code=Code(_text(code_el, "CodeNumber"), _text(code_el, "CodeNotation")),
        promulgation=PromulgationInfo(
            _text(promulgation_el, "Place"), _text(promulgation_el, "PromulgationDate")
        ),
        document_type=DocumentType(
            _text(type_el, "Type"), _text(type_el, "TypeDetail"), _text(type_el, "TypeName")
        ),
        subject=_text(header, "Subject"),
        content=_text(header, "Content"),
        signer=SignerInfo(
            _text(signer_el, "Competence"),
            _text(signer_el, "Position"),
            _text(signer_el, "FullName"),
        ),
        due_date=_text(header, "DueDate"),
        to_places=tuple(text_of(p) for p in _children(_child(header, "ToPlaces"), "Place")),
        other=_other_info(_child(header, "OtherInfo")),
        response_for=tuple(_response_for(el) for el in _children(header, "ResponseFor")),
        steering_type=_text(header, "SteeringType"),
        trace=tuple(
            TraceHeader(_text(th, "OrganId"), _text(th, "Timestamp"))
            for th in _children(trace_list, "TraceHeader")
        ),
        business=_business(trace_list),
        attachments=_attachments(root, envelope),
    )


def read_status(tree_or_root: etree._ElementTree | _Element) -> StatusPackage:
    """Read a status package (messagetype "status")."""
    header = message_header(tree_or_root)
    where = "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader"
    code_el = _require(header, "StatusCode", where)
    code_text = text_of(code_el)
    try:
        status_code = StatusCode(code_text)
    except ValueError as exc:
        allowed = ", ".join(c.value for c in StatusCode)
        raise SchemaInvalid(
            f"StatusCode {code_text!r} is not one of {allowed}.",
            problems=[
                Problem(
                    f"unknown status code {code_text!r}",
                    path=f"{where}/StatusCode",
                    line=source_line(code_el),
                )
            ],
        ) from exc
    return StatusPackage(
        reporter=_organization(_require(header, "From", where)),
        response_for=_response_for(_require(header, "ResponseFor", where)),
        status_code=status_code,
        description=_text(header, "Description"),
        timestamp=_text(header, "Timestamp"),
        staff=_staff(_child(header, "StaffInfo")),
    )
