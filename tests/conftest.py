"""Fixtures shared by every tier. See tests/support.py for the material itself.

Database fixtures are synchronous: creating a database and running Alembic (which runs its own
event loop) happen before the test's event loop starts.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from hub.api import create_app
from hub.context import HubContext
from hub.directory import sync_directory
from tests.support import Hub, World, make_world
from tracking.migrate import upgrade
from tracking.store import Store

TEST_MAX_BODY = 2 * 1024 * 1024
PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"


@pytest.fixture(scope="session")
def world() -> World:
    return make_world()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh, migrated SQLite database."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    upgrade(url)
    return url


async def _admin(statement: str) -> None:
    engine = create_async_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test, dropped afterwards.

    Skipped, with the reason shown in the summary, when no server answers at 127.0.0.1:5432.
    """
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        pytest.skip("PostgreSQL tests need asyncpg: install the project with the 'postgres' extra")
    name = f"lienthong_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, ConnectionError) as exc:
        pytest.skip(f"no PostgreSQL server reachable at 127.0.0.1:5432 ({exc})")
    url = f"{PG_SERVER}/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def hub_db_url(request: pytest.FixtureRequest) -> str:
    """Every HTTP-level test runs on embedded SQLite and on PostgreSQL."""
    return str(request.getfixturevalue("db_url" if request.param == "sqlite" else "pg_url"))


@asynccontextmanager
async def serve_hub(world: World, url: str, *, facade: bool = False) -> AsyncIterator[Hub]:
    """A hub on the database at *url* behind a real aiohttp server on loopback."""
    store = Store.open(url)
    directory = world.directory()
    async with store.write() as session:
        await sync_directory(session, directory)
    ctx = HubContext(
        hub_id="test-hub",
        store=store,
        directory=directory,
        trust=world.trust_store(),
        receipts=world.receipt_signer(),
    )
    server = TestServer(create_app(ctx, max_body_bytes=TEST_MAX_BODY, facade=facade))
    try:
        async with TestClient(server) as http:
            yield Hub(ctx, http, world)
    finally:
        await store.close()


@pytest.fixture
async def hub(world: World, hub_db_url: str) -> AsyncIterator[Hub]:
    """A hub on a fresh database behind a real aiohttp server on loopback."""
    async with serve_hub(world, hub_db_url) as served:
        yield served


@pytest.fixture
async def facade_hub(world: World, hub_db_url: str) -> AsyncIterator[Hub]:
    """The same, with the national-axis facade mounted ([facade] enabled = true)."""
    async with serve_hub(world, hub_db_url, facade=True) as served:
        yield served
