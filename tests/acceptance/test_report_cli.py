"""`lienthong report` on the database of a real demo exchange: table, CSV and JSON."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest

from hub.reports import VIETNAM
from tests.acceptance.conftest import Project, describe, make_project

pytestmark = pytest.mark.acceptance


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, str]:
    project = make_project(tmp_path_factory.mktemp("report-project"))
    before = dt.datetime.now(VIETNAM).strftime("%Y-%m")
    result = project.run("demo", "--exit", timeout=120)
    assert result.returncode == 0, describe(result)
    month = dt.datetime.now(VIETNAM).strftime("%Y-%m")
    if month != before:
        pytest.skip("the demo ran across a month boundary in Vietnam time")
    return project, month


def test_the_demo_month_in_figures(played: tuple[Project, str]) -> None:
    project, month = played
    report = json.loads(project.ok("report", "--month", month, "--json"))
    assert report["month"] == month
    by_code = {row["agency"]: row for row in report["agencies"]}
    # The city sends one letter to two districts; Ba Đình sends one to two wards. Every
    # recipient acknowledges at once; all but Trúc Bạch (which rejects, 02) report 06.
    assert {c: (r["sent"], r["received"]) for c, r in by_code.items()} == {
        "000.00.00.H26": (1, 0),
        "000.00.31.H26": (1, 1),
        "000.00.32.H26": (0, 1),
        "000.01.31.H26": (0, 1),
        "000.02.31.H26": (0, 1),
    }
    for code, row in by_code.items():
        assert (row["overdue"], row["pending"]) == (0, 0)
        assert row["acknowledged_in_time"] == row["received"]
        finished = 0 if code in ("000.00.00.H26", "000.02.31.H26") else 1
        assert row["finished"] == finished
        assert (row["median_hours_to_06"] is None) == (finished == 0)

    rows = list(csv.DictReader(io.StringIO(project.ok("report", "--month", month, "--csv"))))
    assert [r["agency"] for r in rows] == sorted(by_code)
    assert rows[1]["received"] == "1" and rows[0]["median_hours_to_06"] == ""
    table = project.ok("report", "--month", month)
    assert "Vietnam time" in table and "000.02.31.H26" in table


def test_an_empty_month_and_a_bad_month(played: tuple[Project, str]) -> None:
    project, _month = played
    assert "no documents in that month" in project.ok("report", "--month", "2001-01")
    bad = project.run("report", "--month", "2026-13")
    assert bad.returncode == 2 and "not a month" in bad.stderr, describe(bad)


def test_a_missing_database_is_a_configuration_error_and_stays_missing(
    played: tuple[Project, str],
) -> None:
    project, month = played
    missing = project.root / "var" / "missing.db"
    env = project.env(LIENTHONG_DATABASE_URL=f"sqlite+aiosqlite:///{missing}")
    for args in (("report", "--month", month), ("evidence", "export", "x", "--out", "x.zip")):
        result = project.run(*args, env=env)
        assert result.returncode == 3 and "db upgrade" in result.stderr, describe(result)
    assert not missing.exists()
