"""Durability: a burst of documents sent and delivered while the hub is killed with SIGKILL at
random moments. After each restart nothing accepted is lost, no recipient is handed a delivery it
already acknowledged, every trace is complete and the audit chain still links.

"Accepted" is what the sender was told with a 202; a send whose answer was lost in a crash is
retried with the same bytes, which the hub answers with the original receipt.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from adapters.demo import build_document
from adapters.sdk import AgencyClient, Credentials, HubError
from hub.edxml.model import Organization, Priority
from hub.edxml.writer import write_document
from tests.acceptance.conftest import (
    SERVER_START_DEADLINE,
    Project,
    healthy,
    lienthong_executable,
    make_project,
    prepare,
)
from tests.support import BA_DINH, CITY, HOAN_KIEM
from tracking import chain

pytestmark = pytest.mark.acceptance

DOCUMENTS = 40
KILLS = 4
RECIPIENTS = (BA_DINH, HOAN_KIEM)
TRANSIENT = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)


class Supervisor:
    """``lienthong serve`` that the test kills with SIGKILL and starts again."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with (self.project.root / f"serve-{self.starts}.log").open("wb") as log:
            self.process = subprocess.Popen(
                [lienthong_executable(), "serve"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.project.env(),
                cwd=self.project.root,
            )
        self.starts += 1
        deadline = time.monotonic() + SERVER_START_DEADLINE
        while not healthy(self.project.url):
            assert self.process.poll() is None, f"serve exited with {self.process.returncode}"
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def supervised(project: Project) -> Iterator[Supervisor]:
    supervisor = Supervisor(project)
    supervisor.start()
    try:
        yield supervisor
    finally:
        supervisor.stop()


def credentials(project: Project, code: str) -> Credentials:
    folder = project.demo_dir / "agencies" / code
    return Credentials(
        code=code,
        token=(folder / "credential").read_text().strip(),
        key_pem=(folder / "key.pem").read_bytes(),
        cert_pem=(folder / "cert.pem").read_bytes(),
    )


@dataclass
class Ledger:
    """What the agencies saw, from their side of the wire."""

    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)  # document id → receipt
    acked: dict[str, set[str]] = field(default_factory=lambda: {c: set() for c in RECIPIENTS})
    handed_again_after_ack: list[tuple[str, str]] = field(default_factory=list)
    corrupt_downloads: list[str] = field(default_factory=list)
    sending_done: bool = False
    progress: asyncio.Event = field(default_factory=asyncio.Event)  # set at each acceptance


async def sender(project: Project, ledger: Ledger) -> None:
    async with AgencyClient(project.url, credentials(project, CITY), timeout=5) as city:
        for n in range(1, DOCUMENTS + 1):
            doc = build_document(
                Organization(CITY),
                [Organization(code) for code in RECIPIENTS],
                str(n),
                "UBND-VP",
                f"Văn bản số {n} gửi trong lúc trục bị ngắt",
                Priority(n % 4),
                f"vb-{n}.pdf",
            )
            body = city.sign(write_document(doc))  # signed once: a retry sends the same bytes
            while True:
                try:
                    receipt = await city.send_document(body)
                    break
                except TRANSIENT:
                    await asyncio.sleep(0.05)
            ledger.accepted[receipt["document_id"]] = receipt
            ledger.progress.set()
    ledger.sending_done = True


def outstanding(ledger: Ledger, code: str) -> set[str]:
    expected = {
        d["delivery_id"]
        for receipt in ledger.accepted.values()
        for d in receipt["deliveries"]
        if d["recipient"] == code
    }
    return expected - ledger.acked[code]


async def receiver(project: Project, code: str, ledger: Ledger, deadline: float) -> None:
    async with AgencyClient(project.url, credentials(project, code), timeout=5) as agency:
        while time.monotonic() < deadline:
            if ledger.sending_done and not outstanding(ledger, code):
                return
            try:
                items = await agency.inbox(wait=1, lease=2, limit=10)
                for item in items:
                    if item["delivery_id"] in ledger.acked[code]:
                        ledger.handed_again_after_ack.append((code, item["delivery_id"]))
                        continue
                    body = await agency.fetch(item["href"])
                    if hashlib.sha256(body).hexdigest() != item["package_sha256"]:
                        ledger.corrupt_downloads.append(item["delivery_id"])
                    await agency.ack(item["delivery_id"])
                    ledger.acked[code].add(item["delivery_id"])
            except TRANSIENT:
                await asyncio.sleep(0.05)
            except HubError as exc:  # only a lost ack answer can make a repeat look odd
                raise AssertionError(f"{code}: the hub refused {exc}") from exc


async def killer(supervisor: Supervisor, ledger: Ledger, rng: random.Random) -> int:
    """Kill the hub KILLS times mid-burst: each time once the sender has had a drawn number of
    documents accepted, after a random few milliseconds, so the kill lands inside an intake,
    a download or an acknowledgement rather than between bursts. Progress, not the clock,
    decides when: a fast machine cannot finish the burst before the first kill."""
    points = sorted(rng.sample(range(2, DOCUMENTS - 2), KILLS))
    for point in points:
        while len(ledger.accepted) < point:
            ledger.progress.clear()
            await ledger.progress.wait()
        await asyncio.sleep(rng.uniform(0, 0.05))
        supervisor.kill()
        await asyncio.to_thread(supervisor.start)
    return len(points)


def assert_chain_links(database: str) -> int:
    """Recompute every event's hash from its content and the previous hash."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        rows = db.execute(
            "SELECT seq, at, kind, actor, document_id, delivery_id, detail, prev_hash, hash "
            "FROM trace_events ORDER BY seq"
        ).fetchall()
    prev = chain.GENESIS
    for expected_seq, (seq, at, kind, actor, doc, delivery, detail, prev_hash, digest) in enumerate(
        rows, 1
    ):
        assert seq == expected_seq, f"gap in the chain before event {seq}"
        assert prev_hash == prev, f"event {seq} does not link to event {seq - 1}"
        recomputed = chain.event_hash(
            prev,
            seq=seq,
            at=datetime.fromisoformat(at).replace(tzinfo=UTC),  # stored as naive UTC
            kind=kind,
            actor=actor,
            document_id=doc,
            delivery_id=delivery,
            detail=detail,
        )
        assert recomputed == digest, f"event {seq} was altered"
        prev = digest
    return len(rows)


async def test_nothing_accepted_is_lost_when_the_hub_is_killed_mid_burst(tmp_path: Any) -> None:
    project = prepare(make_project(tmp_path / "project"))
    seed = int(os.environ.get("LIENTHONG_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    ledger = Ledger()
    with supervised(project) as supervisor:
        deadline = time.monotonic() + 120
        kills, *_ = await asyncio.gather(
            killer(supervisor, ledger, rng),
            sender(project, ledger),
            *(receiver(project, code, ledger, deadline) for code in RECIPIENTS),
        )
        traces = {}
        async with AgencyClient(project.url, credentials(project, CITY), timeout=10) as city:
            for document_id in ledger.accepted:
                traces[document_id] = await city.trace(document_id)

    context = f"(seed {seed}: rerun with LIENTHONG_CRASH_SEED={seed})"
    assert kills == KILLS, context
    assert len(ledger.accepted) == DOCUMENTS, context
    for code in RECIPIENTS:
        assert not outstanding(ledger, code), f"{code} never got some deliveries {context}"
    assert ledger.handed_again_after_ack == [], context
    assert ledger.corrupt_downloads == [], context

    for document_id, trace in traces.items():
        # Events about the document's way to its recipients (the sender's delivery receipts
        # are queued to it as well, and are not counted here).
        kinds = [
            e["kind"]
            for e in trace["events"]
            if e["detail"].get("recipient", RECIPIENTS[0]) in RECIPIENTS
        ]
        for kind, times in (
            ("received", 1),
            ("stored", 1),
            ("queued", 2),
            ("delivered", 2),
            ("acknowledged", 2),
        ):
            assert kinds.count(kind) == times, f"{document_id}: {kinds} {context}"
        assert {r["transport"] for r in trace["recipients"]} == {"done"}, context
    assert assert_chain_links(str(project.database)) > DOCUMENTS * 8
