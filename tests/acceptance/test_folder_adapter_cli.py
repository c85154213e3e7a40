"""`lienthong adapter folder --config FILE` against a real `lienthong serve`: two agencies
connected only through folders exchange a letter with a PDF and a status; an adapter restarted
after dying between the hub's answer and the filing sends nothing twice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.base import Outgoing, Settled
from adapters.demo import tiny_pdf
from adapters.folder import FolderAdapter
from adapters.runner import Runner
from adapters.sdk import AgencyClient, Credentials
from tests.acceptance.conftest import Project, describe, lienthong_executable
from tests.support import BA_DINH, CITY

pytestmark = pytest.mark.acceptance

DEADLINE = 30.0


def adapter_config(project: Project, code: str, root: Path) -> Path:
    material = project.demo_dir / "agencies" / code
    root.mkdir(parents=True, exist_ok=True)
    config = root.parent / f"{code}.toml"
    config.write_text(
        f'hub_url = "{project.url}"\nagency = "{code}"\n'
        f'credential_file = "{material / "credential"}"\n'
        f'key = "{material / "key.pem"}"\ncertificate = "{material / "cert.pem"}"\n'
        f'wait = 5\nlease = 30\n\n[folder]\nroot = "{root.name}"\npoll_interval = 0.3\n'
        "quiet_seconds = 0.2\n",
        encoding="utf-8",
    )
    return config


class Running:
    """One `lienthong adapter folder` process; stopped with SIGTERM, it must exit with 0."""

    def __init__(self, project: Project, config: Path) -> None:
        self.log = config.with_suffix(".log")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [lienthong_executable(), "adapter", "folder", "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=project.env(),
                cwd=config.parent,
            )

    def until(self, what: str, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + DEADLINE
        while not done():
            if self.process.poll() is not None:
                pytest.fail(f"the adapter exited with {self.process.returncode}:\n{self.output}")
            if time.monotonic() > deadline:
                pytest.fail(f"not within {DEADLINE:g} s: {what}\n{self.output}")
            time.sleep(0.1)

    @property
    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=15) == 0, self.output
        assert "Traceback" not in self.output, self.output
        return self.output


@pytest.fixture
def adapters(hub: Project) -> Iterator[Callable[[Path], Running]]:
    started: list[Running] = []

    def start(config: Path) -> Running:
        started.append(Running(hub, config))
        return started[-1]

    yield start
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()


def drop(folder: Path, name: str, data: bytes) -> None:
    temporary = folder / f"{name}.part"
    temporary.write_bytes(data)
    os.replace(temporary, folder / name)


def letter(number: str) -> bytes:
    return (
        f'subject = "V/v rà soát hồ sơ cải cách hành chính"\nnumber = "{number}"\n'
        f'notation = "UBND-VP"\nrecipients = ["{BA_DINH}"]\nattachments = ["cv-{number}.pdf"]\n'
        'priority = "khẩn"\n'
    ).encode()


def test_two_agencies_exchange_a_letter_and_a_status_through_folders(
    hub: Project, adapters: Callable[[Path], Running], tmp_path: Path
) -> None:
    city_root, ba_dinh_root = tmp_path / "ubnd-tp", tmp_path / "ubnd-ba-dinh"
    city = adapters(adapter_config(hub, CITY, city_root))
    ba_dinh = adapters(adapter_config(hub, BA_DINH, ba_dinh_root))
    number = str(time.time_ns() % 10**6)
    city.until("the layout is created", lambda: (city_root / "outbox").is_dir())
    pdf = tiny_pdf(f"Cong van {number}")
    drop(city_root / "outbox", f"cv-{number}.pdf", pdf)
    drop(city_root / "outbox", f"cv-{number}.toml", letter(number))

    receipt_file = city_root / "sent" / f"cv-{number}.toml.receipt.json"
    city.until("the letter is sent", receipt_file.exists)
    document_id = json.loads(receipt_file.read_text())["document_id"]
    arrived = ba_dinh_root / "inbox" / document_id
    ba_dinh.until("the letter arrives", (arrived / "metadata.json").exists)
    assert (arrived / f"cv-{number}.pdf").read_bytes() == pdf

    ba_dinh.until("the status folder exists", (ba_dinh_root / "status").is_dir)
    drop(
        ba_dinh_root / "status",
        "da-nhan.json",
        json.dumps({"document": document_id, "code": "01"}).encode(),
    )
    statuses = city_root / "inbox" / "statuses"
    city.until("the status reaches the city", lambda: any(statuses.glob("*.json")))
    (summary,) = (json.loads(p.read_text()) for p in statuses.glob("*.json"))
    assert (summary["document_id"], summary["status_code"]) == (document_id, "01")

    assert f"sent outbox/cv-{number}.toml: document {document_id}" in city.stop()
    assert f"received document {document_id} from {CITY}" in ba_dinh.stop()


def test_the_adapter_rejects_a_missing_folder_and_a_bad_config(
    hub: Project, tmp_path: Path
) -> None:
    config = adapter_config(hub, CITY, tmp_path / "here")
    config.write_text(config.read_text().replace('root = "here"', 'root = "not-there"'))
    result = hub.run("adapter", "folder", "--config", str(config))
    assert result.returncode == 3, describe(result)
    assert "[folder] root" in result.stderr and "not an existing folder" in result.stderr
    config.write_text(config.read_text().replace("poll_interval = 0.3", "poll_intervall = 1"))
    result = hub.run("adapter", "folder", "--config", str(config))
    assert result.returncode == 3, describe(result)
    assert "poll_intervall" in result.stderr


class Dies(BaseException):
    """The adapter process dying after the hub answered, before the answer was filed."""


class DyingFolderAdapter(FolderAdapter):
    async def settled(self, item: Outgoing, result: Settled) -> None:
        raise Dies


async def test_after_dying_between_send_and_filing_the_restarted_adapter_sends_nothing_twice(
    hub: Project, adapters: Callable[[Path], Running], tmp_path: Path
) -> None:
    root = tmp_path / "ubnd-tp"
    config = adapter_config(hub, CITY, root)
    material = hub.demo_dir / "agencies" / CITY
    credentials = Credentials(
        CITY,
        (material / "credential").read_text().strip(),
        (material / "key.pem").read_bytes(),
        (material / "cert.pem").read_bytes(),
    )
    number = str(time.time_ns() % 10**6)
    dying = DyingFolderAdapter(root, credentials, quiet_seconds=0)
    await dying.start()
    drop(root / "outbox", f"cv-{number}.pdf", tiny_pdf("Cong van"))
    drop(root / "outbox", f"cv-{number}.toml", letter(number))
    async with AgencyClient(hub.url, credentials) as client:
        with pytest.raises(Dies):
            await Runner(dying, client).run_once()
    await dying.close()
    await asyncio.sleep(1.1)  # a package built again now would carry another timestamp: other bytes

    restarted = adapters(config)
    receipt_file = root / "sent" / f"cv-{number}.toml.receipt.json"
    restarted.until("the letter is filed", receipt_file.exists)
    assert json.loads(receipt_file.read_text())["duplicate"] is True
    restarted.stop()
    with sqlite3.connect(hub.database) as db:
        (count,) = db.execute(
            "SELECT count(*) FROM documents WHERE subject LIKE 'V/v rà soát%' "
            "AND edxml_document_id LIKE ?",
            (f"%,{number}/UBND-VP",),
        ).fetchone()
    assert count == 1
