"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agencies",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("parent_code", sa.String(length=64), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("delivery_mode", sa.String(length=16), nullable=False),
        sa.Column("push_url", sa.String(length=1000), nullable=True),
        sa.Column("credential_sha256", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_agencies")),
    )
    with op.batch_alter_table("agencies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_agencies_credential_sha256"), ["credential_sha256"], unique=False
        )

    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_blobs")),
    )
    op.create_table(
        "trace_events",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("document_id", sa.String(length=40), nullable=True),
        sa.Column("delivery_id", sa.String(length=40), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_trace_events")),
        sa.UniqueConstraint("hash", name=op.f("uq_trace_events_hash")),
    )
    with op.batch_alter_table("trace_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_trace_events_document_id"), ["document_id"], unique=False
        )

    op.create_table(
        "agency_certificates",
        sa.Column("fingerprint", sa.String(length=80), nullable=False),
        sa.Column("agency_code", sa.String(length=64), nullable=False),
        sa.Column("pem", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_code"],
            ["agencies.code"],
            name=op.f("fk_agency_certificates_agency_code_agencies"),
        ),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_agency_certificates")),
    )
    with op.batch_alter_table("agency_certificates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_agency_certificates_agency_code"), ["agency_code"], unique=False
        )

    op.create_table(
        "documents",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("sender_code", sa.String(length=64), nullable=False),
        sa.Column("edxml_document_id", sa.String(length=500), nullable=False),
        sa.Column("code_number", sa.String(length=64), nullable=False),
        sa.Column("code_notation", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("business_type", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.String(length=20), nullable=True),
        sa.Column("package_sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("signer_fingerprint", sa.String(length=80), nullable=False),
        sa.Column("signature_method", sa.String(length=200), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["package_sha256"], ["blobs.sha256"], name=op.f("fk_documents_package_sha256_blobs")
        ),
        sa.ForeignKeyConstraint(
            ["sender_code"], ["agencies.code"], name=op.f("fk_documents_sender_code_agencies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
        sa.UniqueConstraint(
            "sender_code",
            "edxml_document_id",
            "business_type",
            "package_sha256",
            name="uq_documents_dedup",
        ),
    )
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_documents_edxml_document_id"), ["edxml_document_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_documents_received_at"), ["received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_documents_sender_code"), ["sender_code"], unique=False)

    op.create_table(
        "status_packages",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("document_id", sa.String(length=40), nullable=False),
        sa.Column("reporter_code", sa.String(length=64), nullable=False),
        sa.Column("target_code", sa.String(length=64), nullable=False),
        sa.Column("recipient_code", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.String(length=2), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("reported_at", sa.String(length=32), nullable=False),
        sa.Column("package_sha256", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_status_packages_document_id_documents")
        ),
        sa.ForeignKeyConstraint(
            ["package_sha256"],
            ["blobs.sha256"],
            name=op.f("fk_status_packages_package_sha256_blobs"),
        ),
        sa.ForeignKeyConstraint(
            ["recipient_code"],
            ["agencies.code"],
            name=op.f("fk_status_packages_recipient_code_agencies"),
        ),
        sa.ForeignKeyConstraint(
            ["reporter_code"],
            ["agencies.code"],
            name=op.f("fk_status_packages_reporter_code_agencies"),
        ),
        sa.ForeignKeyConstraint(
            ["target_code"], ["agencies.code"], name=op.f("fk_status_packages_target_code_agencies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_packages")),
    )
    with op.batch_alter_table("status_packages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_status_packages_document_id"), ["document_id"], unique=False
        )

    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("document_id", sa.String(length=40), nullable=False),
        sa.Column("status_id", sa.String(length=40), nullable=True),
        sa.Column("recipient_code", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("business_state", sa.String(length=2), nullable=True),
        sa.Column("recall_pending", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("ack_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("acked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_deliveries_document_id_documents")
        ),
        sa.ForeignKeyConstraint(
            ["recipient_code"],
            ["agencies.code"],
            name=op.f("fk_deliveries_recipient_code_agencies"),
        ),
        sa.ForeignKeyConstraint(
            ["status_id"],
            ["status_packages.id"],
            name=op.f("fk_deliveries_status_id_status_packages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deliveries_document_id"), ["document_id"], unique=False
        )
        batch_op.create_index(
            "ix_deliveries_inbox",
            ["recipient_code", "state", "priority", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_inbox")
        batch_op.drop_index(batch_op.f("ix_deliveries_document_id"))

    op.drop_table("deliveries")
    with op.batch_alter_table("status_packages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_status_packages_document_id"))

    op.drop_table("status_packages")
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_documents_sender_code"))
        batch_op.drop_index(batch_op.f("ix_documents_received_at"))
        batch_op.drop_index(batch_op.f("ix_documents_edxml_document_id"))

    op.drop_table("documents")
    with op.batch_alter_table("agency_certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agency_certificates_agency_code"))

    op.drop_table("agency_certificates")
    with op.batch_alter_table("trace_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trace_events_document_id"))

    op.drop_table("trace_events")
    op.drop_table("blobs")
    with op.batch_alter_table("agencies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agencies_credential_sha256"))

    op.drop_table("agencies")
