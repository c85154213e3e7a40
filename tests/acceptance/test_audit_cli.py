"""`lienthong audit verify` on a real database: intact after the demo exchange, and each kind
of tampering done directly in SQLite is caught and named."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import Project, describe, make_project
from tracking.audit import EventRow, recompute

pytestmark = pytest.mark.acceptance


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A project whose database holds the whole demo exchange."""
    project = make_project(tmp_path_factory.mktemp("audit-project"))
    result = project.run("demo", "--exit", timeout=120)
    assert result.returncode == 0, describe(result)
    return project


def verify(project: Project) -> tuple[int, dict[str, Any]]:
    result = project.run("audit", "verify", "--json")
    assert result.returncode in (0, 1), describe(result)
    return result.returncode, json.loads(result.stdout)


@pytest.fixture
def copy(played: Project, tmp_path: Path) -> Project:
    """The played project with a copy of its database, to tamper with."""
    project = Project(root=tmp_path / "copy", port=played.port)
    shutil.copytree(played.root, project.root)
    text = project.config.read_text(encoding="utf-8").replace(str(played.root), str(project.root))
    project.config.write_text(text, encoding="utf-8")
    return project


def tamper(project: Project, change: Callable[[sqlite3.Connection], None]) -> None:
    with contextlib.closing(sqlite3.connect(project.database)) as db:
        change(db)
        db.commit()


def test_the_chain_of_a_real_exchange_is_intact(played: Project) -> None:
    code, report = verify(played)
    assert code == 0 and report["intact"] is True
    assert report["events"] > 20
    # The demo's hub stopped cleanly, so its last checkpoint covers the whole chain.
    assert report["checkpoints"] >= 1
    assert report["last_checkpoint"]["seq"] == report["head_seq"]
    human = played.ok("audit", "verify")
    assert f"audit chain intact: {report['events']} events" in human


def test_an_edited_event_is_caught(copy: Project) -> None:
    tamper(
        copy,
        lambda db: db.execute("UPDATE trace_events SET actor = '000.00.32.H26' WHERE seq = 7"),
    )
    code, report = verify(copy)
    assert code == 1
    assert report["problem"]["what"] == "altered" and report["problem"]["seq"] == 7
    assert report["events"] == 6
    human = copy.run("audit", "verify")
    assert "BROKEN at event 7" in human.stdout, describe(human)


def test_a_deleted_event_is_caught(copy: Project) -> None:
    tamper(copy, lambda db: db.execute("DELETE FROM trace_events WHERE seq = 12"))
    code, report = verify(copy)
    assert code == 1
    assert (report["problem"]["what"], report["problem"]["seq"]) == ("removed", 12)


def test_an_inserted_event_with_a_recomputed_hash_is_caught(copy: Project) -> None:
    def insert(db: sqlite3.Connection) -> None:
        (last,) = db.execute("SELECT max(seq) FROM trace_events").fetchone()
        # Make room at seq 10 by moving every later event up one, as a forger would.
        for seq in range(last, 9, -1):
            db.execute("UPDATE trace_events SET seq = ? WHERE seq = ?", (seq + 1, seq))
        (prev_hash, at) = db.execute("SELECT hash, at FROM trace_events WHERE seq = 9").fetchone()
        forged = EventRow(
            10,
            datetime.fromisoformat(at).replace(tzinfo=UTC),
            "acknowledged",
            "000.00.31.H26",
            None,
            None,
            '{"result":"done"}',
            prev_hash,
            "",
        )
        db.execute(
            "INSERT INTO trace_events (seq, at, kind, actor, document_id, delivery_id, detail, "
            "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                10,
                at,
                forged.kind,
                forged.actor,
                None,
                None,
                forged.detail,
                prev_hash,
                recompute(forged),
            ),
        )

    tamper(copy, insert)
    code, report = verify(copy)
    assert code == 1
    assert (report["problem"]["what"], report["problem"]["seq"]) == ("inserted", 10)


def rehash_from(db: sqlite3.Connection, first: int) -> None:
    """What a careful forger does after an edit: recompute every later link and hash."""
    rows = db.execute(
        "SELECT seq, at, kind, actor, document_id, delivery_id, detail, prev_hash FROM "
        "trace_events WHERE seq >= ? ORDER BY seq",
        (first,),
    ).fetchall()
    (prev,) = db.execute("SELECT hash FROM trace_events WHERE seq = ?", (first - 1,)).fetchone()
    for seq, at, kind, actor, doc, delivery, detail, _ in rows:
        row = EventRow(
            seq,
            datetime.fromisoformat(at).replace(tzinfo=UTC),
            kind,
            actor,
            doc,
            delivery,
            detail,
            prev,
            "",
        )
        digest = recompute(row)
        db.execute(
            "UPDATE trace_events SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, seq)
        )
        prev = digest


def test_a_chain_edited_and_rehashed_end_to_end_is_caught_by_the_signed_checkpoint(
    copy: Project,
) -> None:
    def rewrite(db: sqlite3.Connection) -> None:
        db.execute("UPDATE trace_events SET actor = '000.00.32.H26' WHERE seq = 7")
        rehash_from(db, 7)

    tamper(copy, rewrite)
    code, report = verify(copy)
    assert code == 1
    assert report["problem"]["what"] == "rewritten"
    assert report["problem"]["seq"] <= 7


def test_events_cut_off_the_end_are_caught(copy: Project) -> None:
    tamper(
        copy,
        lambda db: db.execute(
            "DELETE FROM trace_events WHERE seq > (SELECT max(seq) - 3 FROM trace_events)"
        ),
    )
    code, report = verify(copy)
    assert code == 1
    assert report["problem"]["what"] == "removed"


def test_a_forged_checkpoint_is_caught(copy: Project) -> None:
    def forge(db: sqlite3.Connection) -> None:
        (jws,) = db.execute("SELECT jws FROM checkpoints ORDER BY seq DESC LIMIT 1").fetchone()
        header, payload, signature = jws.split(".")
        db.execute(
            "UPDATE checkpoints SET jws = ? WHERE jws = ?",
            (f"{header}.{payload}.{signature[:-4]}AAAA", jws),
        )

    tamper(copy, forge)
    code, report = verify(copy)
    assert code == 1
    assert report["problem"]["what"] == "checkpoint"
    assert "does not verify" in report["problem"]["message"]
