"""document links and delivery notes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "document_links",
        sa.Column("document_id", sa.String(length=40), nullable=False),
        sa.Column("earlier_document_id", sa.String(length=40), nullable=False),
        sa.Column("relation", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_document_links_document_id_documents")
        ),
        sa.ForeignKeyConstraint(
            ["earlier_document_id"],
            ["documents.id"],
            name=op.f("fk_document_links_earlier_document_id_documents"),
        ),
        sa.PrimaryKeyConstraint(
            "document_id", "earlier_document_id", name=op.f("pk_document_links")
        ),
    )
    with op.batch_alter_table("document_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_document_links_earlier_document_id"),
            ["earlier_document_id"],
            unique=False,
        )

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("note")

    with op.batch_alter_table("document_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_document_links_earlier_document_id"))

    op.drop_table("document_links")
