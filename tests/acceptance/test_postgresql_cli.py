"""The command line on PostgreSQL: the demo exchange, the audit chain, search and the report,
with the real `lienthong` commands and a real `lienthong serve`, as an operator of a ministry's
hub runs them. (The HTTP-level tests already run on both databases; this is the whole product.)
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from hub.reports import VIETNAM
from tests.acceptance.conftest import Project, describe, make_project

pytestmark = pytest.mark.acceptance


@pytest.fixture
def on_postgresql(tmp_path_factory: pytest.TempPathFactory, pg_url: str) -> Project:
    project = make_project(tmp_path_factory.mktemp("pg-project"))
    project.write_config("hub.toml", listen=f"127.0.0.1:{project.port}", database_url=pg_url)
    return project


def test_the_demo_exchange_audit_search_and_report_on_postgresql(on_postgresql: Project) -> None:
    project = on_postgresql
    month = dt.datetime.now(VIETNAM).strftime("%Y-%m")
    result = project.run("demo", "--exit", timeout=180)
    assert result.returncode == 0, describe(result)
    assert "postgresql" in result.stdout, describe(result)
    assert not project.database.exists()  # nothing went to a SQLite file by mistake

    audit = project.run("audit", "verify", "--json")
    assert audit.returncode == 0, describe(audit)
    report = json.loads(audit.stdout)
    assert report["intact"] is True and report["events"] > 20
    assert report["last_checkpoint"]["seq"] == report["head_seq"]

    deliveries = json.loads(project.ok("deliveries", "list", "--json"))
    assert deliveries and all(d["state"] == "done" for d in deliveries), deliveries

    figures = json.loads(project.ok("report", "--month", month, "--json"))
    if figures["month"] == month:  # not across a month boundary in Vietnam time
        sent = {row["agency"]: row["sent"] for row in figures["agencies"]}
        assert sent["000.00.00.H26"] == 1 and sent["000.00.31.H26"] == 1
