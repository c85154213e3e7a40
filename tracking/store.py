"""The store: sessions, serialised writes, content-addressed blobs and the trace.

Writes go through :meth:`Store.write`, which opens one transaction. On SQLite, writers are
serialised in-process with a lock: SQLite has one writer anyway, and taking the lock before
``BEGIN`` means a transaction never has to upgrade from a read lock (which is where
``database is locked`` comes from). The same lock makes appending to the audit chain safe:
reading the chain head and inserting the next event happen under it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tracking import chain
from tracking.db import create_engine, is_sqlite
from tracking.models import Blob, TraceEvent, utcnow


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._sqlite = engine.dialect.name == "sqlite"
        self._write_lock = asyncio.Lock()

    @classmethod
    def open(cls, url: str) -> Store:
        return cls(create_engine(url))

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        async with self._write_lock, self.sessions() as session, session.begin():
            if not self._sqlite:
                # One chain, one writer at a time across hub nodes.
                await session.execute(text("SELECT pg_advisory_xact_lock(7263)"))
            yield session

    async def ping(self) -> None:
        async with self.sessions() as session:
            await session.execute(text("SELECT 1"))


async def put_blob(session: AsyncSession, sha256: str, data: bytes) -> None:
    """Store *data* once under its digest (content addressing makes retries free)."""
    if await session.get(Blob, sha256) is None:
        session.add(Blob(sha256=sha256, size=len(data), data=data))


_HEAD = "chain_head"  # session.info key: (seq, hash) of the last event appended in it


async def append_event(
    session: AsyncSession,
    kind: str,
    actor: str,
    *,
    document_id: str | None = None,
    delivery_id: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> TraceEvent:
    """Append one event to the trace, linked to the previous one. Call inside ``write()``.

    The chain head is read once per transaction and then carried along in the session: the
    write lock (and on PostgreSQL the advisory lock) keeps every other writer out until the
    commit, so nobody else can move it meanwhile. Events are inserted together at the flush
    (their ``seq`` is set here, not by the database), so a document's eight events cost one
    look-up and one batched insert instead of sixteen round trips.
    """
    head: tuple[int, str] | None = session.info.get(_HEAD)
    if head is None:
        row = (
            await session.execute(
                select(TraceEvent.seq, TraceEvent.hash).order_by(TraceEvent.seq.desc()).limit(1)
            )
        ).first()
        head = (row[0], row[1]) if row else (0, chain.GENESIS)
    seq, prev = head[0] + 1, head[1]
    at = utcnow()
    detail_text = chain.canonical_detail(detail or {})
    event = TraceEvent(
        seq=seq,
        at=at,
        kind=kind,
        actor=actor,
        document_id=document_id,
        delivery_id=delivery_id,
        detail=detail_text,
        prev_hash=prev,
        hash=chain.event_hash(
            prev,
            seq=seq,
            at=at,
            kind=kind,
            actor=actor,
            document_id=document_id,
            delivery_id=delivery_id,
            detail=detail_text,
        ),
    )
    session.add(event)
    session.info[_HEAD] = (seq, event.hash)
    return event


__all__ = ["Store", "append_event", "is_sqlite", "put_blob"]
