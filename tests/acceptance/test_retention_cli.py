"""`lienthong retention purge` on a real database after the demo exchange: the archived bundles
verify offline in another process, `lienthong audit verify` still passes, and tampering with the
tombstones left behind is caught."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import Project, describe, lienthong_executable, make_project

pytestmark = pytest.mark.acceptance

TOMORROW = "2099-01-01"  # every demo document was received before it


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = make_project(tmp_path_factory.mktemp("retention-project"))
    result = project.run("demo", "--exit", timeout=120)
    assert result.returncode == 0, describe(result)
    return project


@pytest.fixture
def copy(played: Project, tmp_path: Path) -> Project:
    """The played project with a copy of its database, to purge and tamper with."""
    project = Project(root=tmp_path / "copy", port=played.port)
    shutil.copytree(played.root, project.root)
    text = project.config.read_text(encoding="utf-8").replace(str(played.root), str(project.root))
    project.config.write_text(text, encoding="utf-8")
    (project.root / "archive").mkdir()
    return project


def purge(project: Project, *args: str) -> dict[str, Any]:
    stdout = project.ok("retention", "purge", "--archive-dir", "archive", "--json", *args)
    return dict(json.loads(stdout))


def audit(project: Project) -> tuple[int, dict[str, Any]]:
    result = project.run("audit", "verify", "--json")
    assert result.returncode in (0, 1), describe(result)
    return result.returncode, json.loads(result.stdout)


def documents(project: Project) -> list[str]:
    with contextlib.closing(sqlite3.connect(project.database)) as db:
        return [row[0] for row in db.execute("SELECT id FROM documents ORDER BY id")]


def test_purged_documents_stay_provable(copy: Project, tmp_path: Path) -> None:
    ids = documents(copy)
    assert len(ids) == 2
    dry = purge(copy, "--before", TOMORROW, "--dry-run")
    assert sorted(dry["purgeable"]) == ids and dry["purged"] == 0
    assert documents(copy) == ids and list((copy.root / "archive").iterdir()) == []

    summary = purge(copy, "--before", TOMORROW)
    assert (summary["archived"], summary["purged"]) == (2, 2)
    assert summary["bytes_freed"] > 0
    assert documents(copy) == []

    code, report = audit(copy)
    assert code == 0, report
    assert report["purged"] > 20
    human = copy.ok("audit", "verify")
    assert f"{report['purged']} of them purged by retention" in human

    # An auditor elsewhere, with the hub certificate only, checks every archived bundle.
    auditor = tmp_path / "auditor"
    auditor.mkdir()
    shutil.copy(copy.demo_dir / "hub" / "cert.pem", auditor / "hub-cert.pem")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIENTHONG_")}
    env["LIENTHONG_CONFIG"] = str(auditor / "no-such-hub.toml")
    for document_id in ids:
        bundle = auditor / f"{document_id}.zip"
        shutil.copy(copy.root / "archive" / f"{document_id}.zip", bundle)
        command = [lienthong_executable(), "evidence", "verify", str(bundle), "--json"]
        result = subprocess.run(
            [*command, "--certificate", "hub-cert.pem"],
            capture_output=True,
            text=True,
            env=env,
            cwd=auditor,
            timeout=60,
        )
        assert result.returncode == 0, describe(result)
        assert json.loads(result.stdout)["document_id"] == document_id

    # The hub's database no longer holds it; the operator is told where the archive is.
    export = copy.run("evidence", "export", ids[0], "--out", str(tmp_path / "again.zip"))
    assert export.returncode == 1, describe(export)
    assert f"archived as {ids[0]}.zip" in export.stderr

    again = purge(copy, "--before", TOMORROW)
    assert (again["purgeable"], again["purged"]) == ([], 0)


def test_documents_younger_than_the_retention_period_are_kept(copy: Project) -> None:
    env = copy.env(LIENTHONG_RETENTION_DAYS="30", LIENTHONG_RETENTION_ARCHIVE_DIR="archive")
    result = copy.run("retention", "purge", "--json", env=env)
    assert result.returncode == 0, describe(result)
    assert json.loads(result.stdout)["purged"] == 0
    assert len(documents(copy)) == 2


def test_retention_off_needs_an_explicit_date(copy: Project) -> None:
    result = copy.run("retention", "purge")
    assert result.returncode == 2, describe(result)
    assert "retention is off" in result.stderr
    assert len(documents(copy)) == 2


def tamper(project: Project, statement: str) -> None:
    with contextlib.closing(sqlite3.connect(project.database)) as db:
        db.execute(statement)
        db.commit()


def test_a_changed_tombstone_is_caught(copy: Project) -> None:
    purge(copy, "--before", TOMORROW)
    tamper(copy, f"UPDATE trace_events SET hash = '{'f' * 64}' WHERE seq = 5")
    code, report = audit(copy)
    assert code == 1
    assert (report["problem"]["what"], report["problem"]["seq"]) == ("altered", 5)
    human = copy.run("audit", "verify")
    assert "BROKEN at event 5" in human.stdout, describe(human)


def test_a_deleted_tombstone_is_caught(copy: Project) -> None:
    purge(copy, "--before", TOMORROW)
    tamper(copy, "DELETE FROM trace_events WHERE seq = 12")
    code, report = audit(copy)
    assert code == 1
    assert (report["problem"]["what"], report["problem"]["seq"]) == ("removed", 12)
