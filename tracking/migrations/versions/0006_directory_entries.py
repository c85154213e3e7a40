"""the imported national agency directory

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directory_entries",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("parent_code", sa.String(length=64), nullable=True),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_directory_entries")),
    )
    op.create_index(
        op.f("ix_directory_entries_parent_code"),
        "directory_entries",
        ["parent_code"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_directory_entries_parent_code"), table_name="directory_entries")
    op.drop_table("directory_entries")
