"""`lienthong evidence export` on a real database after the demo exchange, and `lienthong
evidence verify` in a separate process that has no database and no hub configuration: only the
bundle and the hub certificate the auditor trusts."""

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
from tests.evidence_tools import edit_event, forge_jws_payload, members, rezip
from tracking.evidence import PACKAGE, RECEIPTS_DIR, STATUS_DIR

pytestmark = pytest.mark.acceptance


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = make_project(tmp_path_factory.mktemp("evidence-project"))
    result = project.run("demo", "--exit", timeout=120)
    assert result.returncode == 0, describe(result)
    return project


def first_document(project: Project) -> str:
    with contextlib.closing(sqlite3.connect(project.database)) as db:
        (doc_id,) = db.execute("SELECT id FROM documents ORDER BY received_at LIMIT 1").fetchone()
    return str(doc_id)


@pytest.fixture(scope="module")
def exported(played: Project, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "bang-chung.zip"
    stdout = played.ok("evidence", "export", first_document(played), "--out", str(out))
    assert f"wrote {out}" in stdout
    return out


@pytest.fixture(scope="module")
def auditor(tmp_path_factory: pytest.TempPathFactory, played: Project) -> Path:
    """An auditor's folder elsewhere, holding only the hub certificate they were given."""
    folder = tmp_path_factory.mktemp("auditor")
    shutil.copy(played.demo_dir / "hub" / "cert.pem", folder / "hub-cert.pem")
    return folder


def verify_offline(
    folder: Path, bundle: bytes, *extra: str, certificate: str | None = "hub-cert.pem"
) -> tuple[int, dict[str, Any], subprocess.CompletedProcess[str]]:
    """`lienthong evidence verify --json` in *folder*, with no configuration to be found."""
    path = folder / "bundle.zip"
    path.write_bytes(bundle)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIENTHONG_")}
    env["LIENTHONG_CONFIG"] = str(folder / "no-such-hub.toml")
    args = [lienthong_executable(), "evidence", "verify", str(path), "--json", *extra]
    if certificate:
        args += ["--certificate", certificate]
    result = subprocess.run(args, capture_output=True, text=True, env=env, cwd=folder, timeout=60)
    assert "Traceback" not in result.stderr, describe(result)
    report = json.loads(result.stdout) if result.stdout.startswith("{") else {}
    return result.returncode, report, result


def test_a_bundle_exported_from_the_demo_verifies_offline(exported: Path, auditor: Path) -> None:
    code, report, result = verify_offline(auditor, exported.read_bytes())
    assert code == 0, describe(result)
    assert report["valid"] is True and report["problems"] == []
    assert report["hub"] == "lienthong.hanoi"
    assert [r["kind"] for r in report["receipts"]] == ["submission", "delivery", "delivery"]
    # The demo's city letter: two districts each report 01, 03, 05 and 06.
    assert sorted(s["code"] for s in report["statuses"]) == sorted(["01", "03", "05", "06"] * 2)
    assert report["checkpoint"]["seq"] >= report["events"] > 20
    bundle = str(auditor / "bundle.zip")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIENTHONG_")}
    human = subprocess.run(
        [lienthong_executable(), "evidence", "verify", bundle, "--certificate", "hub-cert.pem"],
        capture_output=True,
        text=True,
        cwd=auditor,
        env={**env, "LIENTHONG_CONFIG": str(auditor / "none.toml")},
        timeout=60,
    )
    assert human.returncode == 0 and "VALID evidence" in human.stdout, describe(human)


def test_without_a_certificate_the_auditor_is_told_to_give_one(
    exported: Path, auditor: Path
) -> None:
    code, _report, result = verify_offline(auditor, exported.read_bytes(), certificate=None)
    assert code == 2 and "--certificate" in result.stderr, describe(result)
    code, report, result = verify_offline(
        auditor, exported.read_bytes(), "--trust-bundled-certificate", certificate=None
    )
    assert code == 0 and report["valid"], describe(result)


def _status(bundle: bytes) -> str:
    return sorted(n for n in members(bundle) if n.startswith(STATUS_DIR))[0]


def _receipt(bundle: bytes) -> str:
    return sorted(n for n in members(bundle) if n.startswith(RECEIPTS_DIR))[0]


@pytest.mark.parametrize(
    "case", ["changed file", "edited event", "removed status", "forged receipt"]
)
def test_tampering_is_reported_with_exit_1(exported: Path, auditor: Path, case: str) -> None:
    bundle = exported.read_bytes()
    if case == "changed file":
        tampered = rezip(bundle, {PACKAGE: members(bundle)[PACKAGE] + b"\n"})
        expected = {("file", PACKAGE), ("package", PACKAGE)}
    elif case == "edited event":
        tampered = edit_event(bundle, 5, rehash=True)
        expected = {("chain", "events.jsonl")}
    elif case == "removed status":
        tampered = rezip(bundle, {_status(bundle): None})
        expected = {("file", _status(bundle)), ("status", _status(bundle))}
    else:
        name = _receipt(bundle)
        forged = forge_jws_payload(members(bundle)[name].decode(), package_sha256="0" * 64)
        tampered = rezip(bundle, {name: forged.encode()}, fix_manifest=True)
        expected = {("receipt", name)}
    code, report, result = verify_offline(auditor, tampered)
    assert code == 1, describe(result)
    assert report["valid"] is False
    found = {(p["what"], p["file"]) for p in report["problems"]}
    assert expected <= found, report["problems"]


def test_a_wrong_certificate_is_reported_with_exit_1(
    played: Project, exported: Path, auditor: Path
) -> None:
    other = auditor / "other-cert.pem"  # an agency's certificate given as the hub's
    shutil.copy(played.demo_dir / "agencies" / "000.00.31.H26" / "cert.pem", other)
    code, report, result = verify_offline(auditor, exported.read_bytes(), certificate=str(other))
    assert code == 1, describe(result)
    whats = {p["what"] for p in report["problems"]}
    assert {"receipt", "checkpoint"} <= whats


def test_export_signs_a_checkpoint_when_none_covers_the_document(
    played: Project, tmp_path: Path
) -> None:
    project = Project(root=tmp_path / "copy", port=played.port)
    shutil.copytree(played.root, project.root)
    text = project.config.read_text(encoding="utf-8").replace(str(played.root), str(project.root))
    project.config.write_text(text, encoding="utf-8")
    with contextlib.closing(sqlite3.connect(project.database)) as db:
        db.execute("DELETE FROM checkpoints")
        db.commit()
    out = tmp_path / "b.zip"
    stdout = project.ok("evidence", "export", first_document(project), "--out", str(out))
    assert "signed a new checkpoint" in stdout
    assert project.ok("audit", "verify")  # the new checkpoint is one audit verify accepts
    missing = project.run("evidence", "export", "no-such-document", "--out", str(out))
    assert missing.returncode == 1 and "No document no-such-document" in missing.stderr
