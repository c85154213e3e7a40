"""Three `lienthong serve` nodes on one PostgreSQL database, one of them killed mid-run.

Agencies send and pull through all three nodes at once, as they would behind a load balancer;
one node is killed with SIGKILL while packages are in flight. Afterwards: every document the hub
accepted is there with its whole trace, every delivery was acknowledged, no delivery was ever
leased to two pullers at the same time, a long poll on one node woke for a package accepted on
another, the audit chain verifies, and the nodes signed checkpoints once per interval between
them, not once each.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text

from adapters.demo import build_document
from hub.edxml.model import Organization, Priority
from hub.edxml.writer import write_document
from signing.xmldsig import sign_package
from tests.acceptance.conftest import (
    Project,
    describe,
    free_port,
    healthy,
    lienthong_executable,
    make_project,
    prepare,
)
from tests.support import BA_DINH, CITY, HOAN_KIEM, PHUC_XA, TRUC_BACH

pytestmark = pytest.mark.acceptance

CHECKPOINT_SECONDS = 2
LEASE_SECONDS = 4  # short, so what a killed node leased comes back within the test
DOCUMENTS = 36
SENDERS = (CITY, BA_DINH, PHUC_XA)
RECIPIENTS = {CITY: (BA_DINH, HOAN_KIEM), BA_DINH: (PHUC_XA, TRUC_BACH), PHUC_XA: (HOAN_KIEM,)}
PULLERS = (BA_DINH, HOAN_KIEM, PHUC_XA, TRUC_BACH)


@dataclass
class Node:
    config: Path
    url: str
    process: subprocess.Popen[str] | None = None
    log: Path | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Account:
    code: str
    token: str
    key: bytes
    cert: bytes

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def account(project: Project, code: str) -> Account:
    folder = project.demo_dir / "agencies" / code
    return Account(
        code,
        (folder / "credential").read_text().strip(),
        (folder / "key.pem").read_bytes(),
        (folder / "cert.pem").read_bytes(),
    )


@dataclass
class Record:
    """What the agencies saw: receipts, and every lease the hub handed out."""

    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)  # document id → receipt
    leases: list[tuple[str, str, float, dt.datetime]] = field(default_factory=list)
    acked: set[str] = field(default_factory=set)
    retried_after_kill: int = 0


def start(project: Project, node: Node, name: str) -> None:
    node.log = project.root / f"{name}.log"
    with node.log.open("w") as out:  # the child keeps its own copy of the descriptor
        node.process = subprocess.Popen(
            [lienthong_executable(), "serve"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=project.env(
                LIENTHONG_CONFIG=str(node.config),
                LIENTHONG_AUDIT_CHECKPOINT_SECONDS=str(CHECKPOINT_SECONDS),
            ),
            cwd=project.root,
            text=True,
        )
    deadline = time.monotonic() + 30
    while not healthy(node.url):
        assert node.process.poll() is None, f"{name} exited:\n{node.log.read_text()}"
        assert time.monotonic() < deadline, f"{name} did not start:\n{node.log.read_text()}"
        time.sleep(0.1)


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str) -> Iterator[tuple[Project, list[Node], str]]:
    project = prepare(make_project(tmp_path / "project"))
    nodes = []
    for i in range(3):
        port = free_port()
        config = project.write_config(
            f"node{i}.toml", listen=f"127.0.0.1:{port}", database_url=pg_url
        )
        nodes.append(Node(config, f"http://127.0.0.1:{port}"))
    try:
        for i, node in enumerate(nodes):
            start(project, node, f"node{i}")
        yield project, nodes, pg_url
    finally:
        for node in nodes:
            if node.alive:
                assert node.process is not None
                node.process.send_signal(signal.SIGTERM)
                node.process.wait(timeout=20)


async def post(
    http: aiohttp.ClientSession, nodes: list[Node], body: bytes, who: Account, record: Record
) -> dict[str, Any]:
    """Send as an agency behind a load balancer: the next node, and on a connection error the
    same bytes again to another (a retry the hub answers with the original receipt)."""
    order = list(nodes)
    random.shuffle(order)
    for attempt, node in enumerate(itertools.islice(itertools.cycle(order), 12)):
        try:
            async with http.post(
                f"{node.url}/v1/documents", data=body, headers=who.headers
            ) as response:
                answer = await response.json()
                assert response.status == 202, answer
                if attempt:
                    record.retried_after_kill += 1
                return dict(answer)
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.1)
    raise AssertionError("no node took the package")


async def pull(
    http: aiohttp.ClientSession,
    nodes: list[Node],
    who: Account,
    record: Record,
    done: asyncio.Event,
) -> None:
    """A puller of *who*'s inbox: lease, download, acknowledge, on whichever node answers."""
    while not done.is_set():
        node = random.choice(nodes)
        try:
            async with http.get(
                f"{node.url}/v1/inbox",
                params={"wait": "1", "lease": str(LEASE_SECONDS), "limit": "5"},
                headers=who.headers,
            ) as response:
                items = (await response.json())["items"]
            got = time.time()
            for item in items:
                until = dt.datetime.fromisoformat(item["lease_until"])
                record.leases.append((item["delivery_id"], who.code, got, until))
                async with http.get(f"{node.url}{item['href']}", headers=who.headers) as r:
                    assert r.status == 200
                    await r.read()
                async with http.post(
                    f"{node.url}/v1/deliveries/{item['delivery_id']}/ack",
                    json={"result": "done"},
                    headers=who.headers,
                ) as r:
                    if r.status == 200:
                        record.acked.add(item["delivery_id"])
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.1)  # that node is gone: the lease runs out, the item returns


def package(sender: Account, number: int) -> bytes:
    doc = build_document(
        Organization(sender.code),
        [Organization(code) for code in RECIPIENTS[sender.code]],
        str(number),
        "UBND-VP",
        f"Văn bản thử cụm máy chủ số {number}",
        Priority.NORMAL,
        f"cong-van-{number}.pdf",
    )
    return sign_package(write_document(doc), sender.key, sender.cert)


async def cross_node_wake(
    http: aiohttp.ClientSession, nodes: list[Node], city: Account, ba_dinh: Account
) -> float:
    """Seconds a long poll on node 1 took to return a package accepted on node 0."""
    body = package(city, 9000)

    async def poll() -> tuple[float, list[dict[str, Any]]]:
        start = time.monotonic()
        # Leased, so the pullers below do not get this document again.
        async with http.get(
            f"{nodes[1].url}/v1/inbox",
            params={"wait": "20", "lease": "300"},
            headers=ba_dinh.headers,
        ) as response:
            items = (await response.json())["items"]
        return time.monotonic() - start, items

    waiting = asyncio.create_task(poll())
    await asyncio.sleep(1)  # the poll is waiting on node 1 now
    sent = time.monotonic()
    async with http.post(f"{nodes[0].url}/v1/documents", data=body, headers=city.headers) as r:
        receipt = await r.json()
        assert r.status == 202, receipt
    _, items = await waiting
    woke = time.monotonic() - sent
    assert [i["document_id"] for i in items] == [receipt["document_id"]]
    async with http.post(
        f"{nodes[1].url}/v1/deliveries/{items[0]['delivery_id']}/ack",
        json={"result": "done"},
        headers=ba_dinh.headers,
    ) as r:
        assert r.status == 200
    return woke


async def exchange(project: Project, nodes: list[Node]) -> tuple[Record, float]:
    accounts = {code: account(project, code) for code in {*SENDERS, *PULLERS}}
    record = Record()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        wake = await cross_node_wake(http, nodes, accounts[CITY], accounts[BA_DINH])
        done = asyncio.Event()
        pullers = [
            asyncio.create_task(pull(http, nodes, accounts[code], record, done))
            for code in PULLERS
            for _ in range(2)
        ]
        sends = []
        for number in range(DOCUMENTS):
            sender = accounts[SENDERS[number % len(SENDERS)]]
            sends.append(
                asyncio.create_task(
                    post(http, nodes, package(sender, 100 + number), sender, record)
                )
            )
            if number == DOCUMENTS // 3:
                victim = nodes[2].process
                assert victim is not None
                victim.send_signal(signal.SIGKILL)  # mid-run, packages in flight
            await asyncio.sleep(0.05)
        for receipt in await asyncio.gather(*sends):
            record.receipts[receipt["document_id"]] = receipt
        expected = {d["delivery_id"] for r in record.receipts.values() for d in r["deliveries"]}
        deadline = time.monotonic() + 90
        while not expected <= record.acked and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.5)  # the pullers add to record.acked
        done.set()
        await asyncio.gather(*pullers)
        missing = expected - record.acked
        assert not missing, f"{len(missing)} deliveries never acknowledged: {sorted(missing)[:5]}"
    return record, wake


def test_three_nodes_one_killed_nothing_lost_nothing_leased_twice(
    cluster: tuple[Project, list[Node], str],
) -> None:
    project, nodes, pg_url = cluster
    began = time.monotonic()
    record, wake = asyncio.run(exchange(project, nodes))
    run_seconds = time.monotonic() - began
    assert not nodes[2].alive
    assert wake < 5, f"a long poll on another node took {wake:.1f} s to wake (waits 20 s)"

    # No delivery was leased to two pullers at once: a second hand-out of a delivery comes
    # only after the first lease ran out (what a killed node handed out comes back that way).
    by_delivery: dict[str, list[tuple[str, str, float, dt.datetime]]] = {}
    for lease in record.leases:
        by_delivery.setdefault(lease[0], []).append(lease)
    for delivery_id, leases in by_delivery.items():
        leases.sort(key=lambda lease: lease[2])
        for first, second in itertools.pairwise(leases):
            assert second[2] >= first[3].timestamp() - 0.5, (
                f"delivery {delivery_id} leased twice at once: {first} and {second}"
            )

    # Every accepted document is complete, read through a surviving node.
    live = nodes[0]
    senders = {code: account(project, code) for code in SENDERS}

    async def traces() -> None:
        async with aiohttp.ClientSession() as http:
            for doc_id, receipt in record.receipts.items():
                sender = senders[receipt["receipt"]["sender"]]
                async with http.get(
                    f"{live.url}/v1/documents/{doc_id}/trace", headers=sender.headers
                ) as response:
                    assert response.status == 200
                    trace = await response.json()
                kinds = [e["kind"] for e in trace["events"]]
                assert kinds.count("received") == 1 and kinds.count("stored") == 1, kinds
                # Each recipient's delivery: queued, then acknowledged (the trace also holds
                # the receipts queued back to the sender, under their own delivery ids).
                for delivery in receipt["deliveries"]:
                    its = [
                        e["kind"]
                        for e in trace["events"]
                        if e.get("delivery_id") == delivery["delivery_id"]
                    ]
                    assert its[0] == "queued" and its.count("acknowledged") == 1, its

    asyncio.run(traces())

    # Stop the survivors cleanly (each signs a checkpoint), then check the chain.
    for node in nodes[:2]:
        assert node.process is not None
        node.process.send_signal(signal.SIGTERM)
        assert node.process.wait(timeout=20) == 0
    env = project.env(LIENTHONG_CONFIG=str(nodes[0].config))
    result = subprocess.run(
        [lienthong_executable(), "audit", "verify", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=project.root,
        timeout=60,
    )
    assert result.returncode == 0, describe(result)
    assert json.loads(result.stdout)["intact"] is True

    # Checkpoints: once per interval across the cluster (plus one per clean stop), not once
    # per interval per node.
    count = asyncio.run(_checkpoints(pg_url))
    assert count <= run_seconds / (CHECKPOINT_SECONDS * 0.9) + 4, (count, run_seconds)


async def _checkpoints(pg_url: str) -> int:
    from tracking.db import create_engine

    engine = create_engine(pg_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM checkpoints"))).scalar_one())
    finally:
        await engine.dispose()
