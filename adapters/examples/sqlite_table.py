"""A worked example (adapters/GUIDE.md): a document-management system that keeps its letters in
two tables of an SQLite database.

The DMS writes a signed package into ``outgoing`` (``state = 'new'``) when a clerk presses
"send"; the adapter sends it and writes the outcome back (``sent`` with the hub's document id,
or ``refused`` with the hub's problem code and detail). Whatever arrives is inserted into
``incoming``, keyed by delivery id, so a delivery offered twice is stored once.

Configuration (``lienthong adapter sqlite-table --config FILE``)::

    [sqlite-table]
    database = "qlvb.db"
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adapters.base import Adapter, Outgoing, Received, Settled
from adapters.config import AdapterConfig

SCHEMA = """
CREATE TABLE IF NOT EXISTS outgoing (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('document', 'status')),
    package     BLOB NOT NULL,                -- signed edXML, never changed once written
    state       TEXT NOT NULL DEFAULT 'new',  -- new | sent | refused
    hub_id      TEXT,                         -- the hub's document id, once sent
    duplicate   INTEGER,                      -- 1: the hub had it already (a resend)
    problem     TEXT                          -- code: detail, when refused
);
CREATE TABLE IF NOT EXISTS incoming (
    delivery_id TEXT PRIMARY KEY,             -- the hub's id: a repeated delivery is one row
    kind        TEXT NOT NULL,
    document_id TEXT NOT NULL,
    sender      TEXT NOT NULL,
    package     BLOB                          -- NULL for a notice
);
"""


class SqliteTableAdapter(Adapter):
    """Outgoing rows in, incoming rows out; every method is one short transaction."""

    name = "sqlite-table"

    def __init__(self, database: Path) -> None:
        self.database = database

    @classmethod
    def from_config(cls, config: AdapterConfig) -> SqliteTableAdapter:
        value = config.section.get("database")
        if not isinstance(value, str):
            raise config.error("database", "required: the DMS's SQLite file")
        return cls(config.resolve(value))

    def _run(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.database) as db:  # commits on success
            return db.execute(sql, params).fetchall()

    async def start(self) -> None:
        def create() -> None:
            with sqlite3.connect(self.database) as db:
                db.executescript(SCHEMA)

        await asyncio.to_thread(create)

    async def outgoing(self) -> Sequence[Outgoing]:
        rows = await asyncio.to_thread(
            self._run, "SELECT id, kind, package FROM outgoing WHERE state = 'new' ORDER BY id"
        )
        return [Outgoing(str(row_id), kind, bytes(package)) for row_id, kind, package in rows]

    async def settled(self, item: Outgoing, result: Settled) -> None:
        if result.accepted:
            receipt = result.receipt or {}
            hub_id = receipt.get("status_id") or receipt.get("document_id")
            await asyncio.to_thread(
                self._run,
                "UPDATE outgoing SET state = 'sent', hub_id = ?, duplicate = ? WHERE id = ?",
                hub_id,
                int(bool(receipt.get("duplicate"))),
                int(item.key),
            )
        else:
            problem = result.problem
            text = f"{problem.code}: {problem.detail}" if problem else "refused"
            await asyncio.to_thread(
                self._run,
                "UPDATE outgoing SET state = 'refused', problem = ? WHERE id = ?",
                text,
                int(item.key),
            )

    async def deliver(self, received: Received) -> None:
        await asyncio.to_thread(
            self._run,
            "INSERT OR IGNORE INTO incoming (delivery_id, kind, document_id, sender, package) "
            "VALUES (?, ?, ?, ?, ?)",
            received.delivery_id,
            received.kind,
            received.document_id,
            received.sender,
            received.package,
        )
