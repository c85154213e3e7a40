"""retention: what is left of purged documents

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "purged_documents",
        sa.Column("document_id", sa.String(length=40), nullable=False),
        sa.Column("sender_code", sa.String(length=64), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("purged_at", sa.DateTime(), nullable=False),
        sa.Column("archive", sa.String(length=200), nullable=False),
        sa.Column("bundle_sha256", sa.String(length=64), nullable=False),
        sa.Column("bundle_size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("document_id", name=op.f("pk_purged_documents")),
    )


def downgrade() -> None:
    op.drop_table("purged_documents")
