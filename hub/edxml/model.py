"""The typed model of edXML document and status packages (see shared EDXML.md §2–3).

Objects are frozen: a package read from the wire is a fact, not something to edit. Text fields
hold the exact string value; empty optional fields are empty strings rather than ``None`` so that
writer → reader round-trips compare equal.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from hub.errors import PackageError

EDXML_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"


class Priority(IntEnum):
    """OtherInfo/Priority: higher values are delivered first."""

    NORMAL = 0  # thường
    URGENT = 1  # khẩn
    VERY_URGENT = 2  # thượng khẩn
    FLASH = 3  # hỏa tốc
    FLASH_TIMED = 4  # hỏa tốc hẹn giờ


class BusinessType(IntEnum):
    """Bussiness/BussinessDocType."""

    NEW = 0
    REVOKE = 1
    UPDATE = 2
    REPLACE = 3


class ReceiverType(IntEnum):
    """Bussiness/…/Receiver/ReceiverType in an update package."""

    REMOVED = 0
    ADDED = 1


class StatusCode(StrEnum):
    """MessageHeader/StatusCode of a status package."""

    ARRIVED = "01"
    REJECTED = "02"
    ACCEPTED = "03"
    ASSIGNED = "04"
    IN_PROGRESS = "05"
    FINISHED = "06"
    RECALL_REQUEST = "13"
    RECALL_AGREED = "15"
    RECALL_REFUSED = "16"

    @property
    def meaning(self) -> str:
        return _STATUS_MEANINGS[self]


_STATUS_MEANINGS = {
    StatusCode.ARRIVED: "arrived",
    StatusCode.REJECTED: "rejected",
    StatusCode.ACCEPTED: "accepted and registered",
    StatusCode.ASSIGNED: "assigned for handling",
    StatusCode.IN_PROGRESS: "in progress",
    StatusCode.FINISHED: "finished",
    StatusCode.RECALL_REQUEST: "recall requested",
    StatusCode.RECALL_AGREED: "recall agreed",
    StatusCode.RECALL_REFUSED: "recall refused",
}


@dataclass(frozen=True)
class Organization:
    """From or To: who sends, who receives. Routing uses ``organ_id`` only."""

    organ_id: str
    organ_name: str = ""
    organization_in_charge: str = ""
    organ_add: str = ""
    email: str = ""
    telephone: str = ""
    fax: str = ""
    website: str = ""


@dataclass(frozen=True)
class Code:
    number: str = ""  # số
    notation: str = ""  # ký hiệu


@dataclass(frozen=True)
class PromulgationInfo:
    place: str = ""
    date: str = ""  # yyyy/MM/dd, kept as text: impossible dates are seen in the wild


@dataclass(frozen=True)
class DocumentType:
    type: str = "1"
    type_detail: str = ""
    type_name: str = ""


@dataclass(frozen=True)
class SignerInfo:
    competence: str = ""
    position: str = ""
    full_name: str = ""


@dataclass(frozen=True)
class OtherInfo:
    priority: Priority = Priority.NORMAL
    sphere_of_promulgation: str = ""
    typer_notation: str = ""
    promulgation_amount: str = ""
    page_amount: str = ""
    direction: str = ""
    appendixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResponseFor:
    """The document a package answers: in a status package, the document it reports on."""

    organ_id: str = ""
    code: str = ""
    promulgation_date: str = ""
    document_id: str = ""


@dataclass(frozen=True)
class StaffInfo:
    department: str = ""
    staff: str = ""
    mobile: str = ""
    email: str = ""


@dataclass(frozen=True)
class TraceHeader:
    organ_id: str
    timestamp: str


@dataclass(frozen=True)
class Receiver:
    """A recipient an update adds (it gets the document) or removes (it gets a notice)."""

    organ_id: str
    receiver_type: ReceiverType


@dataclass(frozen=True)
class Replacement:
    """ReplacementInfo: an earlier document this one replaces, for the agencies listed."""

    document_id: str
    organ_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Business:
    """TraceHeaderList/Bussiness (double "s" on the wire): revoke, update or replace."""

    business_type: BusinessType = BusinessType.NEW
    document_id: str = ""  # the earlier document acted on; a revoke may leave it to the header
    reason: str = ""
    paper: str = ""
    # Update (2): BussinessDocumentInfo. The two flags say whether the document's content and
    # its recipients changed ("0"/"1" as on the wire; empty when absent).
    document_info: str = ""
    document_receiver: str = ""
    receivers: tuple[Receiver, ...] = ()
    # Replace (3): ReplacementInfoList.
    replacements: tuple[Replacement, ...] = ()
    staff: StaffInfo = field(default_factory=StaffInfo)

    @property
    def has_update_info(self) -> bool:
        return bool(self.document_info or self.document_receiver or self.receivers)


@dataclass(frozen=True)
class Attachment:
    """One attached file: the manifest metadata and the base64 content, joined by content id."""

    content_id: str  # normalised: without the "cid:" prefix
    name: str
    content_type: str
    encoded: str  # base64 as carried in ContentTransferEncoded
    description: str = ""

    @property
    def data(self) -> bytes:
        """The decoded bytes, as sent (still zipped if the sender zipped them): lenient about
        whitespace. ``hub.edxml.attachments.decode`` is the strict path that also unzips."""
        try:
            return base64.b64decode(self.encoded.encode("ascii"), validate=False)
        except (UnicodeEncodeError, binascii.Error) as exc:
            raise PackageError(
                f"Attachment {self.name or self.content_id!r} is not valid base64.",
                code="attachment.invalid",
            ) from exc

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @classmethod
    def from_bytes(
        cls, content_id: str, name: str, content_type: str, data: bytes, description: str = ""
    ) -> Attachment:
        encoded = base64.b64encode(data).decode("ascii")
        return cls(content_id, name, content_type, encoded, description)


@dataclass(frozen=True)
class DocumentPackage:
    """An official document being sent (messagetype "edoc")."""

    sender: Organization
    recipients: tuple[Organization, ...]
    document_id: str
    code: Code
    promulgation: PromulgationInfo
    document_type: DocumentType
    subject: str
    content: str
    signer: SignerInfo = field(default_factory=SignerInfo)
    due_date: str = ""
    to_places: tuple[str, ...] = ()
    other: OtherInfo = field(default_factory=OtherInfo)
    response_for: tuple[ResponseFor, ...] = ()
    steering_type: str = ""
    trace: tuple[TraceHeader, ...] = ()
    business: Business | None = None
    attachments: tuple[Attachment, ...] = ()

    @property
    def priority(self) -> Priority:
        return self.other.priority

    @property
    def business_type(self) -> BusinessType:
        return self.business.business_type if self.business else BusinessType.NEW


@dataclass(frozen=True)
class StatusPackage:
    """A business status about a document (messagetype "status")."""

    reporter: Organization
    response_for: ResponseFor
    status_code: StatusCode
    description: str = ""
    timestamp: str = ""
    staff: StaffInfo = field(default_factory=StaffInfo)
