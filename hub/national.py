"""The national agency directory: every agency code in the country, imported from a file.

A hub serves a few agencies itself (accounts in ``agencies.toml``, with credentials and
certificates) but may be asked to send to any of the 110,000–123,000 agencies of the national
directory. Importing that directory lets the hub refuse a code that does not exist at once,
with the sender still on the line, instead of forwarding it to a peer hub that refuses it
later, and it gives names and the hierarchy to people reading traces.

The directory is a file of ``code,name[,parent]`` rows (CSV with a header, or JSON lines).
The parent can be left out: QCVN 102 codes carry their hierarchy (``000.00.18.G12`` is under
``000.00.00.G12``), and :func:`parent_of` reads it. Imported entries live in the
``directory_entries`` table, apart from the accounts, so an import never touches a credential;
the hub loads them once at start-up into :class:`NationalDirectory`, whose look-ups are one
dict access each.

Reading and checking rows is pure (:func:`read_entries`); :func:`import_entries` and
:func:`load` are the database side.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.config import AGENCY_CODE
from tracking.models import DirectoryEntry, utcnow

NAME_MAX = 500  # DirectoryEntry.name's width
BATCH = 5000  # rows per INSERT: large enough to amortise the round trip, small enough to report
_ZERO_GROUPS = ("000", "00", "00")
_CODE_FORM = re.compile(r"^(\d{3})\.(\d{2})\.(\d{2})\.([A-Z]\d{2})$")


def parent_of(code: str) -> str:
    """The unit *code* is under by the QCVN 102 hierarchy, "" for a level-1 unit.

    The lowest level in use is zeroed: 001.05.18.G12 → 000.05.18.G12 → 000.00.18.G12 →
    000.00.00.G12 → "". Pure.
    """
    m = _CODE_FORM.match(code)
    if m is None:
        return ""
    groups = list(m.groups()[:3])
    for i, zero in enumerate(_ZERO_GROUPS):
        if groups[i] != zero:
            groups[i] = zero
            return ".".join([*groups, m.group(4)])
    return ""


@dataclass(frozen=True)
class Entry:
    code: str
    name: str
    parent: str


@dataclass(frozen=True)
class RowProblem:
    """A row the import left out, and why (the line number is the file's, header included)."""

    line: int
    message: str


def _entry(line: int, raw: dict[str, Any]) -> Entry | RowProblem:
    code = str(raw.get("code") or "").strip()
    name = " ".join(str(raw.get("name") or "").split())
    parent = str(raw.get("parent") or "").strip()
    if not AGENCY_CODE.match(code):
        return RowProblem(line, f"{code!r} is not an agency code like 000.00.00.G22")
    if not name:
        return RowProblem(line, f"{code} has no name")
    if len(name) > NAME_MAX:
        return RowProblem(line, f"{code}: the name is longer than {NAME_MAX} characters")
    if parent and not AGENCY_CODE.match(parent):
        return RowProblem(line, f"{code}: the parent {parent!r} is not an agency code")
    if parent == code:
        return RowProblem(line, f"{code} is its own parent")
    return Entry(code, name, parent or parent_of(code))


def _csv_rows(stream: TextIO) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(stream)
    fields = {f.strip().lower() for f in reader.fieldnames or ()}
    if not {"code", "name"} <= fields:
        raise ValueError("the CSV file needs a header line with the columns code,name[,parent]")
    for row in reader:
        yield reader.line_num, {k.strip().lower(): v for k, v in row.items() if k is not None}


def _json_rows(stream: TextIO) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, text in enumerate(stream, 1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except ValueError:
            yield number, {}
            continue
        yield number, value if isinstance(value, dict) else {}


def read_entries(stream: TextIO, *, json_lines: bool = False) -> Iterator[Entry | RowProblem]:
    """Each row of *stream* as an :class:`Entry`, or the :class:`RowProblem` that kept it out;
    a code seen twice keeps its first row. Pure but for reading *stream*, one row at a time."""
    seen: set[str] = set()
    rows = _json_rows(stream) if json_lines else _csv_rows(stream)
    for line, raw in rows:
        item = _entry(line, raw)
        if isinstance(item, Entry):
            if item.code in seen:
                item = RowProblem(line, f"{item.code} is listed twice; the first row is kept")
            else:
                seen.add(item.code)
        yield item


def open_text(data: bytes) -> TextIO:
    """A directory file's bytes as text: UTF-8, with or without a byte-order mark."""
    return io.StringIO(data.decode("utf-8-sig"), newline="")


class NationalDirectory:
    """The imported directory in memory: code → entry and parent → children, built once."""

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        self._by_code = {e.code: e for e in entries}
        children: defaultdict[str, list[str]] = defaultdict(list)
        for e in self._by_code.values():
            children[e.parent].append(e.code)
        self._children = dict(children)

    def __len__(self) -> int:
        return len(self._by_code)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_code)

    def get(self, code: str) -> Entry | None:
        return self._by_code.get(code)

    def children(self, code: str) -> list[Entry]:
        """The units directly under *code* ("" : the level-1 units)."""
        return [self._by_code[c] for c in self._children.get(code, ())]


@dataclass(frozen=True)
class ImportResult:
    imported: int
    removed: int
    problems: list[RowProblem]
    total: int  # entries in the directory after the import


def _insert(dialect: str) -> Any:
    """An INSERT … ON CONFLICT (code) DO UPDATE for *dialect*: importing again refreshes names."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(DirectoryEntry)
    return stmt.on_conflict_do_update(
        index_elements=[DirectoryEntry.code],
        set_={
            "name": stmt.excluded.name,
            "parent_code": stmt.excluded.parent_code,
            "imported_at": stmt.excluded.imported_at,
        },
    )


async def import_entries(
    engine: AsyncEngine,
    rows: Iterable[Entry | RowProblem],
    *,
    replace: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Write *rows* into ``directory_entries`` in one transaction (a failed import leaves the
    directory as it was), :data:`BATCH` rows per statement; *progress* gets the running count.
    With *replace*, entries the file does not list are removed: the file is the whole
    directory."""
    if engine.dialect.name not in ("sqlite", "postgresql"):
        raise ValueError(f"directory import does not support {engine.dialect.name}")
    stmt = _insert(engine.dialect.name)
    stamp: datetime = utcnow()
    problems: list[RowProblem] = []
    imported = removed = 0
    batch: list[dict[str, Any]] = []
    async with engine.begin() as conn:

        async def flush() -> None:
            nonlocal imported
            if batch:
                await conn.execute(stmt, batch)
                imported += len(batch)
                batch.clear()
                if progress is not None:
                    progress(imported)

        for item in rows:
            if isinstance(item, RowProblem):
                problems.append(item)
                continue
            batch.append(
                {
                    "code": item.code,
                    "name": item.name,
                    "parent_code": item.parent or None,
                    "imported_at": stamp,
                }
            )
            if len(batch) >= BATCH:
                await flush()
        await flush()
        if replace:
            gone = await conn.execute(
                delete(DirectoryEntry).where(DirectoryEntry.imported_at < stamp)
            )
            removed = gone.rowcount or 0
        total = (await conn.execute(select(func.count()).select_from(DirectoryEntry))).scalar_one()
    return ImportResult(imported, removed, problems, int(total))


async def load(engine: AsyncEngine) -> NationalDirectory:
    """The imported directory, read once (at start-up)."""
    async with engine.connect() as conn:
        result = await conn.execute(
            select(DirectoryEntry.code, DirectoryEntry.name, DirectoryEntry.parent_code)
        )
        return NationalDirectory(Entry(c, n, p or "") for c, n, p in result)
