"""deadlines: a document's DueDate as an instant, and the overdue flags of its deliveries

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

VIETNAM = dt.timezone(dt.timedelta(hours=7))


def _due_at(due_date: str) -> dt.datetime | None:
    """The end of DueDate's day in Vietnam time, as naive UTC (what the column stores). A copy
    of hub.deadlines.due_deadline: a migration must not change when the application does."""
    try:
        day = dt.datetime.strptime(due_date.strip(), "%Y/%m/%d")
    except ValueError:
        return None
    end = day.replace(tzinfo=VIETNAM) + dt.timedelta(days=1)
    return end.astimezone(dt.UTC).replace(tzinfo=None)


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("due_at", sa.DateTime(), nullable=True))
        batch.create_index("ix_documents_due_at", ["due_at"], unique=False)
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("ack_overdue_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("due_overdue_at", sa.DateTime(), nullable=True))
    documents = sa.table(
        "documents", sa.column("id", sa.String), sa.column("due_date"), sa.column("due_at")
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(documents.c.id, documents.c.due_date).where(documents.c.due_date.is_not(None))
    ).all()
    for document_id, due_date in rows:
        at = _due_at(due_date)
        if at is not None:
            connection.execute(
                documents.update().where(documents.c.id == document_id).values(due_at=at)
            )


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("due_overdue_at")
        batch.drop_column("ack_overdue_at")
    with op.batch_alter_table("documents") as batch:
        batch.drop_index("ix_documents_due_at")
        batch.drop_column("due_at")
