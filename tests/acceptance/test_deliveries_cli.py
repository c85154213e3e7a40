"""``lienthong deliveries`` against a real ``lienthong serve`` that pushes to a real receiver.

Ba Đình is configured for push (agencies.toml) at a loopback endpoint that answers 503 until the
test lets it succeed; Hoàn Kiếm pulls. The operator commands run in their own subprocesses on the
hub's database while the hub serves.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import (
    Project,
    PushEndpoint,
    describe,
    make_project,
    prepare,
    serving,
)
from tests.acceptance.test_cli import write_package
from tests.support import BA_DINH, CITY, HOAN_KIEM

pytestmark = pytest.mark.acceptance


@pytest.fixture(scope="module")
def endpoint() -> Iterator[PushEndpoint]:
    """An agency's push endpoint: 503 (down) at first."""
    with PushEndpoint(503).running() as ep:
        yield ep


@pytest.fixture(scope="module")
def pushing_hub(
    tmp_path_factory: pytest.TempPathFactory, endpoint: PushEndpoint
) -> Iterator[Project]:
    project = prepare(make_project(tmp_path_factory.mktemp("push")))
    agencies = project.root / "config" / "agencies.toml"
    text = agencies.read_text(encoding="utf-8")
    block = re.compile(rf'(code = "{re.escape(BA_DINH)}"(?:\n(?!\[\[).*)*?)\ndelivery = "pull"')
    text, count = block.subn(
        rf'\1\ndelivery = "push"\npush_url = "{endpoint.url}"\nmax_attempts = 2', text
    )
    assert count == 1
    agencies.write_text(text, encoding="utf-8")
    config = project.config.read_text(encoding="utf-8")
    config = config.replace("retry_base_ms = 2000", "retry_base_ms = 50")
    config = config.replace("retry_max_delay_seconds = 3600", "retry_max_delay_seconds = 1")
    project.config.write_text(config, encoding="utf-8")
    with serving(project) as running:
        yield running


def run_json(project: Project, *args: str) -> Any:
    result = project.run(*args, "--json")
    assert result.returncode == 0, describe(result)
    return json.loads(result.stdout)


def wait_for(check: Any, seconds: float = 15) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def send(project: Project, tmp: Path, recipient: str, number: str) -> dict[str, Any]:
    path = write_package(tmp, CITY, (recipient,), number, f"Công văn số {number}")
    receipt = run_json(project, "send", str(path), "--as", CITY)
    assert isinstance(receipt, dict)
    return receipt


def test_a_dead_push_is_resent_by_id_and_reaches_the_endpoint(
    pushing_hub: Project, endpoint: PushEndpoint, tmp_path: Path
) -> None:
    receipt = send(pushing_hub, tmp_path, BA_DINH, "71")
    (delivery,) = receipt["deliveries"]
    delivery_id = delivery["delivery_id"]

    def dead() -> Any:
        rows = run_json(pushing_hub, "deliveries", "list", "--agency", BA_DINH, "--state", "dead")
        return [r for r in rows if r["delivery_id"] == delivery_id]

    (row,) = wait_for(dead)
    assert row["attempts"] == 2 and row["last_error"] == "HTTP 503"
    table = pushing_hub.ok("deliveries", "list", "--agency", BA_DINH)
    assert delivery_id in table and "dead" in table and "HTTP 503" in table

    inbox = run_json(pushing_hub, "inbox", "--as", CITY)
    (notice,) = [i for i in inbox if i["kind"] == "notice"]
    assert BA_DINH in notice["reason"] and delivery_id in notice["reason"]

    endpoint.status = 200
    out = pushing_hub.ok("deliveries", "resend", delivery_id, "--by", "nguyen.van.an")
    assert f"resent {delivery_id} to {BA_DINH}" in out and "pushed again" in out

    def delivered() -> Any:
        rows = run_json(pushing_hub, "deliveries", "list", "--agency", BA_DINH)
        return [r for r in rows if r["delivery_id"] == delivery_id and r["state"] == "delivered"]

    wait_for(delivered)  # the running hub picked the change up
    assert endpoint.delivery_ids == [delivery_id] * 3  # two attempts, then the resent one

    trace = run_json(pushing_hub, "trace", receipt["document_id"], "--as", CITY)
    resent = [e for e in trace["events"] if e["kind"] == "resent"]
    assert [(e["actor"], e["detail"]["via"]) for e in resent] == [("nguyen.van.an", "cli")]


def test_failed_pull_deliveries_of_an_agency_are_resent_together(
    pushing_hub: Project, tmp_path: Path
) -> None:
    receipts = [send(pushing_hub, tmp_path, HOAN_KIEM, n) for n in ("81", "82")]
    ids = [r["deliveries"][0]["delivery_id"] for r in receipts]
    for delivery_id in ids:
        pushing_hub.ok("ack", delivery_id, "--as", HOAN_KIEM, "--fail", "Ổ đĩa đầy")
    listed = run_json(pushing_hub, "deliveries", "list", "--agency", HOAN_KIEM, "--state", "failed")
    assert {r["delivery_id"] for r in listed} >= set(ids)

    out = pushing_hub.ok("deliveries", "resend", "--failed", "--agency", HOAN_KIEM)
    for delivery_id in ids:
        assert f"resent {delivery_id} to {HOAN_KIEM} (document): back in its inbox" in out
    inbox = run_json(pushing_hub, "inbox", "--as", HOAN_KIEM)
    assert {i["delivery_id"] for i in inbox if i["state"] == "queued"} >= set(ids)

    again = pushing_hub.ok("deliveries", "resend", "--failed", "--agency", HOAN_KIEM)
    assert "no dead, failed or expired deliveries" in again


def test_resend_refuses_what_it_cannot_do(pushing_hub: Project, tmp_path: Path) -> None:
    receipt = send(pushing_hub, tmp_path, HOAN_KIEM, "91")
    delivery_id = receipt["deliveries"][0]["delivery_id"]
    pushing_hub.ok("ack", delivery_id, "--as", HOAN_KIEM)

    cases: list[tuple[tuple[str, ...], int, str]] = [
        ((delivery_id,), 1, "state.conflict"),
        (("no-such-delivery",), 1, "not_found"),
        ((), 2, "give a delivery ID"),
        (("--failed",), 2, "--failed needs --agency"),
        (("--failed", "--agency", "000.99.99.H26"), 2, "not in the directory"),
    ]
    for args, code, says in cases:
        result: subprocess.CompletedProcess[str] = pushing_hub.run("deliveries", "resend", *args)
        assert result.returncode == code, describe(result)
        assert says in result.stderr and "Traceback" not in result.stderr, describe(result)
    bad_state = pushing_hub.run("deliveries", "list", "--state", "lost")
    assert bad_state.returncode == 2 and "not a state" in bad_state.stderr
