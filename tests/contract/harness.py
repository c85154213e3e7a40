"""How the contract suite drives an adapter: one :class:`Harness` per adapter kind.

A harness plays the agency system on the far side of the adapter: it hands items over (as a
clerk pressing "send" would), shows what the system has been handed, and can make a fresh
adapter on the same durable state (what a restart after a crash sees). Every adapter joins the
suite by adding a factory to ``FACTORIES`` in ``conftest.py``.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from adapters.base import Adapter, Outgoing, Received
from adapters.config import load_config
from adapters.examples.sqlite_table import SqliteTableAdapter
from adapters.files import write_atomically
from adapters.folder import FolderAdapter
from adapters.sdk import Credentials
from adapters.sdk_adapter import SdkAdapter
from adapters.webhook import WebhookAdapter
from hub.edxml.model import DocumentPackage, StatusPackage

Kind = Literal["document", "status"]


@dataclass(frozen=True)
class Outcome:
    """What the agency system recorded about one item it handed over."""

    accepted: bool
    duplicate: bool = False
    code: str = ""


class Harness(Protocol):
    @property
    def adapter(self) -> Adapter:
        """The adapter under test (a new one after ``restart``)."""

    async def hand_over(self, package: bytes, kind: Kind) -> str:
        """The agency system hands over a signed package; the item's key."""

    def handed(self) -> list[tuple[str, str]]:
        """(delivery_id, kind) of everything the system has been handed, once each."""

    def outcome(self, key: str) -> Outcome | None:
        """What the system recorded about item *key*; None while it is not settled."""

    def restart(self) -> Adapter:
        """A new adapter on the same durable state, as after a crash; becomes ``adapter``."""


@dataclass
class SdkHarness:
    """The sdk adapter with a state file; callbacks record into a list."""

    credentials: Credentials
    state: Path
    seen: list[tuple[str, str]]
    adapter: SdkAdapter

    @classmethod
    def make(cls, tmp: Path, credentials: Credentials) -> SdkHarness:
        harness = cls(credentials, tmp / "sdk-state.json", [], None)  # type: ignore[arg-type]
        harness.restart()
        return harness

    def restart(self) -> SdkAdapter:
        async def on_document(_: DocumentPackage, received: Received) -> None:
            self.seen.append((received.delivery_id, received.kind))

        async def on_status(_: StatusPackage, received: Received) -> None:
            self.seen.append((received.delivery_id, received.kind))

        async def on_other(received: Received) -> None:
            self.seen.append((received.delivery_id, received.kind))

        self.adapter = SdkAdapter(
            self.credentials,
            on_document=on_document,
            on_status=on_status,
            on_receipt=on_other,
            on_notice=on_other,
            state_file=self.state,
        )
        return self.adapter

    async def hand_over(self, package: bytes, kind: Kind) -> str:
        key = hashlib.sha256(package).hexdigest()[:16]
        return (await self.adapter.queue(Outgoing(key, kind, package))).key

    def handed(self) -> list[tuple[str, str]]:
        return list(self.seen)

    def outcome(self, key: str) -> Outcome | None:
        found = self.adapter.outcome(key)
        if found is None:
            return None
        receipt = found.get("receipt") or {}
        duplicate = bool(receipt.get("duplicate"))
        return Outcome(bool(found["accepted"]), duplicate, found.get("code", ""))


@dataclass
class WebhookHarness(SdkHarness):
    """The webhook adapter as the command line makes it: deliveries written to a folder."""

    config: Path = Path()

    @classmethod
    def make(cls, tmp: Path, credentials: Credentials) -> WebhookHarness:
        (tmp / "credential").write_text(credentials.token)
        assert credentials.key_pem is not None and credentials.cert_pem is not None
        (tmp / "hub.pem").write_bytes(credentials.cert_pem)  # any certificate: not used here
        config = tmp / "webhook.toml"
        config.write_text(
            f'hub_url = "http://127.0.0.1:1"\nagency = "{credentials.code}"\n'
            'credential_file = "credential"\n'
            '[webhook]\nhub_certificate = "hub.pem"\ninbox = "inbox"\n'
            'state_file = "webhook-state.json"\n',
            encoding="utf-8",
        )
        harness = cls(credentials, tmp / "webhook-state.json", [], None, config)  # type: ignore[arg-type]
        harness.restart()
        return harness

    def restart(self) -> WebhookAdapter:
        self.adapter = WebhookAdapter.from_config(load_config(self.config, "webhook"))
        return self.adapter

    def handed(self) -> list[tuple[str, str]]:
        inbox = self.config.parent / "inbox"
        return [
            (path.name.split(".")[0], path.name.split(".")[1])
            for path in sorted(inbox.iterdir())
            if not path.name.startswith(".")
        ]


@dataclass
class SqliteTableHarness:
    """The guide's worked example: the DMS's own tables."""

    database: Path
    adapter: SqliteTableAdapter

    @classmethod
    def make(cls, tmp: Path, credentials: Credentials) -> SqliteTableHarness:
        database = tmp / "qlvb.db"
        return cls(database, SqliteTableAdapter(database))

    def restart(self) -> SqliteTableAdapter:
        self.adapter = SqliteTableAdapter(self.database)
        return self.adapter

    async def hand_over(self, package: bytes, kind: Kind) -> str:
        await self.adapter.start()
        with sqlite3.connect(self.database) as db:
            sql = "INSERT INTO outgoing (kind, package) VALUES (?, ?)"
            cursor = db.execute(sql, (kind, package))
            return str(cursor.lastrowid)

    def handed(self) -> list[tuple[str, str]]:
        with sqlite3.connect(self.database) as db:
            rows = db.execute("SELECT delivery_id, kind FROM incoming ORDER BY rowid").fetchall()
        return [(str(d), str(k)) for d, k in rows]

    def outcome(self, key: str) -> Outcome | None:
        with sqlite3.connect(self.database) as db:
            state, duplicate, problem = db.execute(
                "SELECT state, duplicate, problem FROM outgoing WHERE id = ?", (int(key),)
            ).fetchone()
        if state == "new":
            return None
        code = (problem or "").split(":")[0]
        return Outcome(state == "sent", bool(duplicate), code)


@dataclass
class FolderHarness:
    """The folder adapter: items are files dropped in outbox/ and status/, outcomes are what
    sent/ and failed/ hold, and what was handed over is what inbox/ holds."""

    root: Path
    credentials: Credentials
    adapter: FolderAdapter

    @classmethod
    def make(cls, tmp: Path, credentials: Credentials) -> FolderHarness:
        root = tmp / "folder"
        return cls(root, credentials, FolderAdapter(root, credentials, quiet_seconds=0))

    def restart(self) -> FolderAdapter:
        self.adapter.unlock()  # the crashed process's lock went with it
        self.adapter = FolderAdapter(self.root, self.credentials, quiet_seconds=0)
        return self.adapter

    async def hand_over(self, package: bytes, kind: Kind) -> str:
        await self.adapter.start()
        folder = "outbox" if kind == "document" else "status"
        name = hashlib.sha256(package).hexdigest()[:16] + ".edxml"
        write_atomically(self.root / folder, name, package)  # write, then rename
        return f"{folder}/{name}"

    def handed(self) -> list[tuple[str, str]]:
        inbox = self.root / "inbox"
        found: list[tuple[int, str, str]] = []
        for meta in inbox.glob("*/metadata.json"):
            delivery_id = json.loads(meta.read_text(encoding="utf-8"))["delivery_id"]
            found.append((meta.stat().st_mtime_ns, delivery_id, "document"))
        for folder, kind in (
            ("statuses", "status"),
            ("receipts", "receipt"),
            ("notices", "notice"),
        ):
            for summary in (inbox / folder).glob("*.json"):
                found.append((summary.stat().st_mtime_ns, summary.stem, kind))
        return [(delivery_id, kind) for _, delivery_id, kind in sorted(found)]

    def outcome(self, key: str) -> Outcome | None:
        name = key.split("/", 1)[1]
        receipt = self.root / "sent" / f"{name}.receipt.json"
        if receipt.exists():
            return Outcome(True, bool(json.loads(receipt.read_text())["duplicate"]))
        reason = self.root / "failed" / f"{name}.reason.txt"
        if reason.exists():
            code = re.search(r"^Problem code: (\S+)", reason.read_text(), re.MULTILINE)
            return Outcome(False, code=code.group(1) if code else "")
        return None


Factory = Callable[[Path, Credentials], Harness]

FACTORIES: dict[str, Factory] = {
    "sdk": SdkHarness.make,
    "webhook": WebhookHarness.make,
    "sqlite-table": SqliteTableHarness.make,
    "folder": FolderHarness.make,
}

__all__ = ["FACTORIES", "Factory", "Harness", "Outcome"]
