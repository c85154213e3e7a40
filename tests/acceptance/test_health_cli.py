"""`lienthong serve` with JSON logs, /healthz and /metrics of the real server, and
`lienthong maintenance` turning intake off and on while the hub runs."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from hub.maintenance import RECHECK_SECONDS
from tests.acceptance.conftest import Project, make_project, prepare, serving
from tests.acceptance.test_cli import as_json, expect, send, write_package
from tests.support import BA_DINH, CITY, HOAN_KIEM, parse_prometheus, value

pytestmark = pytest.mark.acceptance


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A project whose hub.toml asks for JSON logs from info up."""
    project = prepare(make_project(tmp_path_factory.mktemp("health")))
    text = project.config.read_text(encoding="utf-8")
    text, formats = re.subn(r'(?m)^format = "text"', 'format = "json"', text)
    text, levels = re.subn(r'(?m)^level = "warning"', 'level = "info"', text)
    assert (formats, levels) == (1, 1), "config/hub.toml no longer has [logging] format, level"
    project.config.write_text(text, encoding="utf-8")
    return project


def get(url: str, request_id: str = "") -> tuple[int, dict[str, str], bytes]:
    headers = {"X-Request-Id": request_id} if request_id else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def health(project: Project) -> tuple[int, dict[str, Any]]:
    code, _, body = get(f"{project.url}/healthz")
    return code, json.loads(body)


def test_maintenance_health_metrics_and_json_logs_of_a_running_hub(
    project: Project, tmp_path: Path
) -> None:
    credential = (project.demo_dir / "agencies" / CITY / "credential").read_text().strip()
    with serving(project) as hub:
        code, body = health(hub)
        assert code == 200, body
        assert body["checks"]["scheduler"]["ok"] is True
        assert body["checks"]["dispatcher"]["ok"] is True
        assert "crl-refresh" in body["checks"]["scheduler"]["jobs"]
        assert body["checks"]["crls"]["ok"] is True

        first = send(hub, write_package(tmp_path, CITY, (BA_DINH, HOAN_KIEM), "101", "Họp"), CITY)

        out = hub.ok("maintenance", "on", "--reason", "sao lưu CSDL", "--retry-after", "45")
        assert "maintenance mode on" in out and "45" in out
        code, body = health(hub)
        assert code == 503
        assert body["checks"]["maintenance"]["reason"] == "sao lưu CSDL"
        time.sleep(RECHECK_SECONDS + 0.2)  # what intake had read of the flag is now too old

        second = write_package(tmp_path, CITY, (BA_DINH,), "102", "Về việc sao lưu")
        refused = hub.run("send", str(second), "--as", CITY)
        expect(refused, 4, "hub.maintenance")
        inbox = hub.run("inbox", "--as", BA_DINH, "--json")  # reads still work
        expect(inbox, 0)
        assert [i["document_id"] for i in as_json(inbox)] == [first["document_id"]]
        status = json.loads(hub.ok("maintenance", "status", "--json"))
        assert status["maintenance"] is True and status["retry_after"] == 45

        _, headers, text = get(f"{hub.url}/metrics", request_id="prometheus-scrape-1")
        assert headers["X-Request-Id"] == "prometheus-scrape-1"
        _, samples = parse_prometheus(text.decode())
        assert value(samples, "lienthong_documents_accepted_total") == 1
        assert value(samples, "lienthong_rejections_total", code="hub.maintenance") == 1
        assert value(samples, "lienthong_queue_depth", recipient=BA_DINH, state="queued") == 1
        assert value(samples, "lienthong_maintenance") == 1

        assert "maintenance mode off" in hub.ok("maintenance", "off")
        time.sleep(RECHECK_SECONDS + 0.2)
        assert health(hub)[0] == 200
        send(hub, second, CITY)

    lines = [
        json.loads(line)
        for line in (project.root / "serve.stderr").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    assert lines
    for line in lines:
        assert {"time", "level", "logger", "message", "request_id"} <= set(line), line
    scrape = [line for line in lines if line["request_id"] == "prometheus-scrape-1"]
    assert [(line["message"], line["path"], line["status"]) for line in scrape] == [
        ("request", "/metrics", 200)
    ]
    refused_sends = [
        line
        for line in lines
        if line["message"] == "request" and line["status"] == 503 and line["path"] != "/healthz"
    ]
    assert [(line["path"], line["caller"]) for line in refused_sends] == [("/v1/documents", CITY)]
    log_text = (project.root / "serve.stderr").read_text(encoding="utf-8")
    assert credential not in log_text
    assert "Bearer" not in log_text


def test_maintenance_status_off_and_bad_retry_after(project: Project) -> None:
    assert "maintenance mode off" in project.ok("maintenance", "status")
    assert "already off" in project.ok("maintenance", "off")
    result = project.run("maintenance", "on", "--retry-after", "0")
    expect(result, 2, "--retry-after must be at least 1")
    assert json.loads(project.ok("maintenance", "status", "--json")) == {"maintenance": False}
