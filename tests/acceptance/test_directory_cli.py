"""`lienthong agencies import`: the national directory imported from a file, as an operator
does it, and used by the hub it is imported into."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.synthetic_directory import generate, write_csv
from tests.acceptance.conftest import Project, describe, make_project, prepare, serving
from tests.acceptance.test_cli import as_json, expect, write_package
from tests.support import BA_DINH, CITY

pytestmark = pytest.mark.acceptance

COUNT = 25_000  # enough for the progress lines a log shows every 20,000 rows


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return prepare(make_project(tmp_path_factory.mktemp("directory-project")))


@pytest.fixture(scope="module")
def directory_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("directory") / "danh-ba.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        write_csv(generate(COUNT), out)
        out.write("01.02.G22,Mã rút gọn\n")  # a shortened code: skipped and named
    return path


def test_import_reports_progress_counts_and_skipped_rows(
    project: Project, directory_file: Path
) -> None:
    result = project.run("agencies", "import", str(directory_file))
    expect(result, 0)
    assert f"imported {COUNT:,} agencies" in result.stdout, describe(result)
    assert f"({COUNT:,} in the directory)" in result.stdout, describe(result)
    assert f"line {COUNT + 2}: skipped: '01.02.G22' is not an agency code" in result.stdout
    assert "Restart the hub" in result.stdout
    # Not a terminal: a progress line every 20,000 rows, for a log to show the job is alive.
    assert "20,000 agencies" in result.stderr, describe(result)


def test_replace_removes_what_the_file_no_longer_lists(project: Project, tmp_path: Path) -> None:
    smaller = tmp_path / "smaller.csv"
    with smaller.open("w", encoding="utf-8", newline="") as out:
        write_csv(generate(COUNT - 1000), out)
    result = project.run("agencies", "import", str(smaller), "--replace", "--json")
    expect(result, 0)
    answer = as_json(result)
    assert answer == {
        "imported": COUNT - 1000,
        "removed": 1000,
        "total": COUNT - 1000,
        "skipped": [],
    }
    assert result.stderr == ""  # --json is quiet on stderr


def test_a_file_that_is_not_a_directory_is_refused_and_changes_nothing(
    project: Project, tmp_path: Path
) -> None:
    before = as_json(project.run("agencies", "import", "/dev/null", "--format", "jsonl", "--json"))
    headless = tmp_path / "no-header.csv"
    headless.write_text("000.00.00.G12,Bộ Tài chính\n", encoding="utf-8")
    result = project.run("agencies", "import", str(headless), "--replace")
    expect(result, 1, "needs a header line with the columns code,name")
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(b"code,name\n000.00.00.G12,B\xe9\n")  # Latin-1, not UTF-8
    expect(project.run("agencies", "import", str(latin1)), 1, "is not UTF-8 text")
    expect(project.run("agencies", "import", str(tmp_path / "missing.csv")), 2, "cannot read")
    after = as_json(project.run("agencies", "import", "/dev/null", "--format", "jsonl", "--json"))
    assert before["total"] == after["total"] == COUNT - 1000


def test_the_hub_refuses_a_recipient_missing_from_the_imported_directory(
    project: Project, tmp_path: Path
) -> None:
    with serving(project):
        # Its own agencies need no entry in the national directory; 000.00.77.H26 is in
        # neither the hub's accounts nor the imported directory.
        path = write_package(tmp_path, CITY, (BA_DINH, "000.00.77.H26"), "931", "Thử danh bạ")
        result = project.run("send", str(path), "--as", CITY)
        expect(
            result, 4, "recipient.unknown: 000.00.77.H26 is not in the national agency directory"
        )
