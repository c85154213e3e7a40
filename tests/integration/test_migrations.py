"""Alembic migrations create exactly what the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text

from tracking.db import create_engine
from tracking.migrate import current_revision, head_revision, upgrade
from tracking.models import Base


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def assert_matches_models(url: str) -> None:
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    try:
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_sqlite_upgrade_from_empty_matches_the_models(db_url: str) -> None:
    await assert_matches_models(db_url)  # db_url was migrated from empty by the fixture
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
        assert mode == "wal"
    finally:
        await engine.dispose()


async def test_upgrade_twice_is_harmless(db_url: str) -> None:
    await asyncio.to_thread(upgrade, db_url)
    await assert_matches_models(db_url)


async def test_postgresql_upgrade_from_empty_matches_the_models(pg_url: str) -> None:
    await assert_matches_models(pg_url)
