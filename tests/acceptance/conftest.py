"""Acceptance fixtures: a throw-away project folder and a real ``lienthong serve`` on loopback.

Everything here drives the installed console script in subprocesses, exactly as a user would;
nothing runs in-process. Each project folder is a copy of the committed Hà Nội directory with its
own free port, its own SQLite file and its own demo keys, so the repository's ``var/`` is never
touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
COMMITTED_CONFIG = REPO / "config"
SERVER_START_DEADLINE = 20.0
SERVER_STOP_DEADLINE = 15.0


def lienthong_executable() -> str:
    """The console script of the venv running the tests, else whatever is on PATH."""
    beside = Path(sys.executable).parent / "lienthong"
    if beside.exists():
        return str(beside)
    found = shutil.which("lienthong")
    if found is None:
        pytest.fail("the lienthong console script is not installed (pip install -e '.[test]')")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def describe(result: subprocess.CompletedProcess[str]) -> str:
    """What a failed assertion shows: the command, its exit code and everything it printed."""
    return (
        f"\n$ {' '.join(result.args)}\nexit code {result.returncode}"
        f"\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )


@dataclass
class Project:
    """A temporary project folder: config/hub.toml, config/agencies.toml, var/."""

    root: Path
    port: int

    @property
    def config(self) -> Path:
        return self.root / "config" / "hub.toml"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database(self) -> Path:
        return self.root / "var" / "hub.db"

    @property
    def demo_dir(self) -> Path:
        return self.root / "var" / "demo"

    def env(self, **overrides: str) -> dict[str, str]:
        """The environment of a user whose LIENTHONG_CONFIG names this project, and only that."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIENTHONG_")}
        env["LIENTHONG_CONFIG"] = str(self.config)
        env.update(overrides)
        return env

    def run(
        self, *args: str, timeout: float = 60, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [lienthong_executable(), *args],
            capture_output=True,
            text=True,
            env=env or self.env(),
            timeout=timeout,
            cwd=self.root,
        )

    def ok(self, *args: str, timeout: float = 60) -> str:
        """Run a command that must succeed; its standard output."""
        result = self.run(*args, timeout=timeout)
        assert result.returncode == 0, describe(result)
        assert "Traceback" not in result.stderr, describe(result)
        return result.stdout

    def write_config(self, name: str, *, listen: str, database_url: str) -> Path:
        """A hub.toml like the committed one with its own listen address and database."""
        text = (COMMITTED_CONFIG / "hub.toml").read_text(encoding="utf-8")
        text, listens = re.subn(r'(?m)^listen = "[^"]*"', f'listen = "{listen}"', text, count=1)
        text, urls = re.subn(r'(?m)^url = "[^"]*"', f'url = "{database_url}"', text, count=1)
        assert (listens, urls) == (1, 1), "config/hub.toml no longer has hub.listen / database.url"
        path = self.root / "config" / name
        path.write_text(text, encoding="utf-8")
        return path


def make_project(root: Path) -> Project:
    """Copy the committed directory, write hub.toml, generate demo material, upgrade the db."""
    project = Project(root=root, port=free_port())
    (root / "config").mkdir(parents=True)
    (root / "var").mkdir()
    shutil.copy(COMMITTED_CONFIG / "agencies.toml", root / "config" / "agencies.toml")
    project.write_config(
        "hub.toml",
        listen=f"127.0.0.1:{project.port}",
        database_url=f"sqlite+aiosqlite:///{project.database}",
    )
    return project


def prepare(project: Project) -> Project:
    project.ok("demo", "init")
    assert (project.demo_dir / "hub" / "key.pem").exists()
    project.ok("db", "upgrade")
    assert project.database.exists()
    return project


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A prepared project (demo keys, upgraded database), shared by the tests of a module."""
    return prepare(make_project(tmp_path_factory.mktemp("project")))


@contextlib.contextmanager
def serving(project: Project, env: dict[str, str] | None = None) -> Iterator[Project]:
    """``lienthong serve`` running for *project* (with *env*, else the project's environment);
    stopped with SIGTERM, must exit with 0."""
    out = (project.root / "serve.stdout").open("w+", encoding="utf-8")
    err = (project.root / "serve.stderr").open("w+", encoding="utf-8")

    def output() -> str:
        out.flush()
        err.flush()
        return (
            f"\n--- serve stdout ---\n{(project.root / 'serve.stdout').read_text()}"
            f"\n--- serve stderr ---\n{(project.root / 'serve.stderr').read_text()}"
        )

    process = subprocess.Popen(
        [lienthong_executable(), "serve"],
        stdout=out,
        stderr=err,
        env=env or project.env(),
        cwd=project.root,
        text=True,
    )
    try:
        deadline = time.monotonic() + SERVER_START_DEADLINE
        while not healthy(project.url):
            if process.poll() is not None:
                pytest.fail(f"lienthong serve exited with {process.returncode}{output()}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"lienthong serve did not answer {project.url}/healthz within "
                    f"{SERVER_START_DEADLINE:g} s{output()}"
                )
            time.sleep(0.1)
        yield project
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=SERVER_STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                pytest.fail(f"lienthong serve ignored SIGTERM for {SERVER_STOP_DEADLINE:g} s")
        code = process.returncode
        logs = output()
        out.close()
        err.close()
    assert code == 0, f"lienthong serve exited with {code} on SIGTERM{logs}"
    assert "Traceback" not in logs, logs


@pytest.fixture(scope="module")
def hub(project: Project) -> Iterator[Project]:
    """``lienthong serve`` running for the project, for the tests of a module."""
    with serving(project) as running:
        yield running


class PushEndpoint:
    """An agency's push endpoint in a thread, answering every push with ``status`` (set it to
    make the agency's system refuse, fail or take what the hub pushes) and recording the
    delivery id of each."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.delivery_ids: list[str] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                endpoint.delivery_ids.append(self.headers["Lienthong-Delivery-Id"])
                self.send_response(endpoint.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/lienthong"

    @contextlib.contextmanager
    def running(self) -> Iterator[PushEndpoint]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
