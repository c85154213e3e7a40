"""The imported national directory in the database: import, refresh, replace, load."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from hub import national
from hub.national import Entry, RowProblem
from tracking.db import create_engine
from tracking.models import Agency, DirectoryEntry


def _rows(text: str) -> list[Entry | RowProblem]:
    return list(national.read_entries(io.StringIO(text, newline="")))


@pytest.fixture
async def engine(hub_db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(hub_db_url)  # migrated by the fixture
    yield engine
    await engine.dispose()


async def test_an_import_is_loaded_as_it_was_written_and_reports_what_it_skipped(
    engine: AsyncEngine,
) -> None:
    seen: list[int] = []
    result = await national.import_entries(
        engine,
        _rows(
            "code,name\n000.00.00.G12,Bộ Tài chính\n000.00.18.G12,Tổng cục Thuế\nbad,Không hợp lệ\n"
        ),
        progress=seen.append,
    )
    assert (result.imported, result.removed, result.total) == (2, 0, 2)
    assert result.problems == [RowProblem(4, "'bad' is not an agency code like 000.00.00.G22")]
    assert seen == [2]
    loaded = await national.load(engine)
    assert loaded.get("000.00.18.G12") == Entry("000.00.18.G12", "Tổng cục Thuế", "000.00.00.G12")
    assert [e.code for e in loaded.children("000.00.00.G12")] == ["000.00.18.G12"]
    # The accounts (agencies.toml's mirror) are another table: an import never touches them.
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(Agency))).scalar_one() == 0


async def test_importing_again_refreshes_names_and_replace_removes_what_is_gone(
    engine: AsyncEngine,
) -> None:
    await national.import_entries(
        engine, _rows("code,name\n000.00.00.G12,Bộ Tài chính\n000.00.19.G12,Tổng cục Hải quan\n")
    )
    renamed = _rows("code,name\n000.00.00.G12,Bộ Tài chính (mới)\n")
    result = await national.import_entries(engine, renamed)
    assert (result.imported, result.removed, result.total) == (1, 0, 2)
    loaded = await national.load(engine)
    assert loaded.get("000.00.00.G12") == Entry("000.00.00.G12", "Bộ Tài chính (mới)", "")
    result = await national.import_entries(engine, renamed, replace=True)
    assert (result.removed, result.total) == (1, 1)
    assert "000.00.19.G12" not in await national.load(engine)


async def test_a_large_import_goes_in_batches_in_one_transaction(
    engine: AsyncEngine,
) -> None:
    from bench.synthetic_directory import generate

    units = [Entry(u.code, u.name, u.parent) for u in generate(national.BATCH * 2 + 7)]
    seen: list[int] = []
    result = await national.import_entries(engine, units, progress=seen.append)
    assert seen == [national.BATCH, national.BATCH * 2, national.BATCH * 2 + 7]
    assert result.total == len(units)

    def broken() -> list[Entry]:
        raise RuntimeError("the file went away")

    class Failing:
        def __iter__(self) -> Iterator[Entry]:
            yield Entry("000.00.00.G98", "Cơ quan mới", "")
            yield from broken()

    with pytest.raises(RuntimeError):
        await national.import_entries(engine, Failing(), replace=True)
    async with engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(DirectoryEntry))).scalar_one()
        assert count == len(units)  # nothing replaced, nothing added: the import was undone
