"""SQLAlchemy 2 models. The Alembic migrations in ``tracking/migrations`` create exactly these.

Package bytes live once in ``blobs``, addressed by their SHA-256: documents and status packages
point at them, so the exact bytes a sender signed are what every recipient and auditor gets.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Agency(Base):
    __tablename__ = "agencies"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    parent_code: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    delivery_mode: Mapped[str] = mapped_column(String(16))
    push_url: Mapped[str | None] = mapped_column(String(1000))
    credential_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DirectoryEntry(Base):
    """An agency of the imported national directory (hub.national): known to exist, with its
    name and place in the hierarchy, whether or not this hub serves it."""

    __tablename__ = "directory_entries"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    parent_code: Mapped[str | None] = mapped_column(String(64), index=True)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())


class JobRun(Base):
    """When a scheduled job last ran, and on which node: several hub nodes on one database
    run each job once per interval (hub.cluster)."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    node: Mapped[str] = mapped_column(String(200))


class AgencyCertificate(Base):
    __tablename__ = "agency_certificates"

    fingerprint: Mapped[str] = mapped_column(String(80), primary_key=True)
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"), index=True)
    pem: Mapped[str] = mapped_column(Text)


class Blob(Base):
    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        # De-duplication of retried submissions (DESIGN §1 step 5).
        UniqueConstraint(
            "sender_code",
            "edxml_document_id",
            "business_type",
            "package_sha256",
            name="uq_documents_dedup",
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    sender_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"), index=True)
    edxml_document_id: Mapped[str] = mapped_column(String(500), index=True)
    code_number: Mapped[str] = mapped_column(String(64))
    code_notation: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer)
    business_type: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[str | None] = mapped_column(String(20))
    # DueDate as the instant it ends: midnight after that day in Vietnam time (hub.deadlines);
    # None without a DueDate, or with one that is no real date (accepted under a "warn" policy).
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    package_sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    size: Mapped[int] = mapped_column(Integer)
    signer_fingerprint: Mapped[str] = mapped_column(String(80))
    signature_method: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class DocumentLink(Base):
    """A revoke, update or replace package points at the earlier document it acts on."""

    __tablename__ = "document_links"

    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    earlier_document_id: Mapped[str] = mapped_column(
        ForeignKey("documents.id"), primary_key=True, index=True
    )
    relation: Mapped[str] = mapped_column(String(16))  # "revokes" | "updates" | "replaces"


class StatusRecord(Base):
    __tablename__ = "status_packages"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    reporter_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"))
    target_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"))
    # The document recipient the status is about (the reporter, except for 13).
    recipient_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"))
    status_code: Mapped[str] = mapped_column(String(2))
    description: Mapped[str] = mapped_column(Text)
    reported_at: Mapped[str] = mapped_column(String(32))
    package_sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Receipt(Base):
    """A receipt the hub signed (``signing.receipts``): kept as issued, byte for byte."""

    __tablename__ = "receipts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "submission" | "delivery"
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    # For a delivery receipt: the recipient's delivery that was acknowledged (no foreign key:
    # deliveries point back at receipts).
    delivery_id: Mapped[str | None] = mapped_column(String(40), index=True)
    issued_to: Mapped[str] = mapped_column(ForeignKey("agencies.code"))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    jws: Mapped[str] = mapped_column(Text)


class Delivery(Base):
    """One package for one recipient: a document to a To, or a status back to the other side."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_inbox", "recipient_code", "state", "priority", "created_at"),
        # The dispatcher's look-up: push and forward deliveries that are due.
        Index("ix_deliveries_due", "state", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "document" | "status" | "receipt" | "notice"
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    status_id: Mapped[str | None] = mapped_column(ForeignKey("status_packages.id"))
    receipt_id: Mapped[str | None] = mapped_column(ForeignKey("receipts.id"))
    recipient_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"))
    priority: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))  # transport state (hub.states.Transport)
    # Business state of a document delivery: the last status code the recipient reported.
    business_state: Mapped[str | None] = mapped_column(String(2))
    recall_pending: Mapped[bool] = mapped_column(default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Push and forward: when the next attempt is due (None: not the hub's to send, or settled).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    # Pull: a delivery handed out by the inbox (or downloaded) is hidden from the inbox until
    # this time; unacknowledged by then, it comes back.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Why this recipient gets the package when it is not a plain To (e.g. added by an update).
    note: Mapped[str | None] = mapped_column(String(200))
    ack_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the deadlines job flagged this document delivery overdue (hub.deadlines): its
    # acknowledgement window, and the document's DueDate. Set once, never cleared, so each is
    # flagged exactly once whatever the number of runs or hub nodes.
    ack_overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    due_overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class TraceEvent(Base):
    """Append-only. Each event carries the hash of the one before it (``tracking.chain``)."""

    __tablename__ = "trace_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(64))
    document_id: Mapped[str | None] = mapped_column(String(40), index=True)
    delivery_id: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class ChainCheckpoint(Base):
    """The hub's signature over the audit chain's head at one moment (``signing.checkpoints``)."""

    __tablename__ = "checkpoints"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    head_hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    jws: Mapped[str] = mapped_column(Text)


class ConsoleSession(Base):
    """A signed-in web console session (hub.console.sessions). The cookie carries a random id;
    only its SHA-256 is stored, so a copy of the database signs nobody in."""

    __tablename__ = "console_sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    # The account's credential digest at sign-in: a credential the operators replace ends the
    # sessions opened with it.
    credential_sha256: Mapped[str] = mapped_column(String(64))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class PurgedDocument(Base):
    """A document removed by retention (``hub.retention``): what is left to answer ``410 Gone``
    to those who could read it, and where its evidence bundle was archived."""

    __tablename__ = "purged_documents"

    document_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    sender_code: Mapped[str] = mapped_column(String(64))
    # The codes its document deliveries went to, as a JSON list: who may still be told it is gone.
    recipients: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    purged_at: Mapped[datetime] = mapped_column(UTCDateTime())
    archive: Mapped[str] = mapped_column(String(200))  # the bundle's file name in the archive
    bundle_sha256: Mapped[str] = mapped_column(String(64))
    bundle_size: Mapped[int] = mapped_column(Integer)


class HubFlag(Base):
    """An operator's switch that every hub node sharing the database obeys (e.g. maintenance),
    so that turning it on once reaches them all without a restart."""

    __tablename__ = "hub_flags"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)  # JSON: what the flag says (reason, …)
    set_by: Mapped[str] = mapped_column(String(64))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime())
