"""End-to-end delivery through a real hub: intake → delivered, with throughput and latency.

A throw-away project (the committed Hà Nội directory, fresh demo keys, an empty SQLite database)
is served by a real ``lienthong serve`` in its own process. This process is the agencies: it
signs every package before the clock starts (10 KB documents, each from one agency of the
directory to another), then sends them with a fixed number of concurrent senders while every
recipient receives at the same time:

* pull: each recipient long-polls its inbox with a lease, downloads each package and
  acknowledges it, as an agency system would;
* push: every agency is configured for push to an aiohttp endpoint in this process, which takes
  each POST (a document is delivered when the hub's push is answered 2xx).

Reported: documents per second from the first send to the last delivery; intake latency (POST
to 202: parsed, validated, verified, committed, receipt signed); end-to-end latency (POST to the
recipient holding the bytes), p50/p95/p99; the hub process's CPU time and peak memory.

    python bench/delivery.py [--mode pull|push|both] [--documents N] [--concurrency C]
                             [--rate DOCS_PER_S] [--json]

The load generator shares the machine with the hub: on a 2-core machine the two compete for the
cores, which is part of what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for folder in (ROOT, ROOT / "bench"):  # runnable from anywhere, installed or not
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from parse_validate import machine  # noqa: E402

from adapters.demo import build_document  # noqa: E402
from adapters.sdk import AgencyClient, Credentials  # noqa: E402
from hub.edxml.model import Attachment, Organization, Priority  # noqa: E402
from hub.edxml.writer import write_document  # noqa: E402

PACKAGE_BYTES = 10 * 1024


def lienthong() -> str:
    beside = Path(sys.executable).parent / "lienthong"
    return str(beside) if beside.exists() else "lienthong"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Project:
    root: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    push_base: str = ""  # set: every agency is delivered by push to PUSH_BASE/CODE

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIENTHONG_")}
        env["LIENTHONG_CONFIG"] = str(self.root / "config" / "hub.toml")
        if self.push_base:
            for code in self.agencies():
                prefix = "LIENTHONG_AGENCY_" + code.replace(".", "_") + "_"
                env[prefix + "DELIVERY"] = "push"
                env[prefix + "PUSH_URL"] = f"{self.push_base}/{code}"
        return env

    def run(self, *args: str) -> None:
        subprocess.run(
            [lienthong(), *args], env=self.env(), cwd=self.root, check=True, capture_output=True
        )

    def agencies(self) -> list[str]:
        text = (self.root / "config" / "agencies.toml").read_text(encoding="utf-8")
        blocks = text.split("[[agency]]")[1:]
        return [
            re.search(r'code = "([^"]+)"', b).group(1)  # type: ignore[union-attr]
            for b in blocks
            if 'role = "agency"' in b
        ]

    def credentials(self, code: str) -> Credentials:
        folder = self.root / "var" / "demo" / "agencies" / code
        return Credentials(
            code,
            (folder / "credential").read_text().strip(),
            (folder / "key.pem").read_bytes(),
            (folder / "cert.pem").read_bytes(),
        )


def make_project(root: Path) -> Project:
    project = Project(root, free_port())
    (root / "config").mkdir(parents=True)
    shutil.copy(ROOT / "config" / "agencies.toml", root / "config" / "agencies.toml")
    text = (ROOT / "config" / "hub.toml").read_text(encoding="utf-8")
    text = re.sub(r'(?m)^listen = "[^"]*"', f'listen = "127.0.0.1:{project.port}"', text)
    text = re.sub(
        r'(?m)^url = "[^"]*"', f'url = "sqlite+aiosqlite:///{root / "var" / "hub.db"}"', text
    )
    (root / "config" / "hub.toml").write_text(text, encoding="utf-8")
    project.run("demo", "init")
    project.run("db", "upgrade")
    return project


class Server:
    def __init__(self, project: Project) -> None:
        self.project = project
        self.log = (project.root / "serve.log").open("wb")
        self.process = subprocess.Popen(
            [lienthong(), "serve"],
            env=project.env(),
            cwd=project.root,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(project.url + "/healthz", timeout=1):
                    break
            except OSError as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = project.root / "serve.log"
                    raise SystemExit(f"the hub did not start; see {log}") from exc
                time.sleep(0.1)

    def usage(self) -> dict[str, float]:
        """CPU seconds and peak resident memory of the hub process so far (Linux /proc)."""
        stat = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = (int(stat[11]) + int(stat[12])) / ticks
        peak = 0.0
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
        return {"cpu_seconds": cpu, "peak_rss_mib": peak}

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def build_packages(
    project: Project, count: int, rng: random.Random
) -> list[tuple[str, str, bytes]]:
    """(sender, edXML DocumentId, signed bytes) for *count* documents of about 10 KB."""
    codes = project.agencies()
    signers = {code: AgencyClient(project.url, project.credentials(code)) for code in codes}
    out = []
    for n in range(1, count + 1):
        sender, recipient = rng.sample(codes, 2)
        doc = build_document(
            Organization(sender),
            [Organization(recipient)],
            str(n),
            "BENCH",
            f"Văn bản đo tải số {n}",
            Priority(rng.choice((0, 0, 0, 1, 2, 3))),
            f"vb-{n}.pdf",
        )
        body = write_document(doc)
        padding = max(0, (PACKAGE_BYTES - len(body)) * 3 // 4 - 200)
        blob = rng.randbytes(padding)
        doc = replace(
            doc,
            attachments=(Attachment.from_bytes(f"{n}-1", f"vb-{n}.pdf", "application/pdf", blob),),
        )
        out.append((sender, doc.document_id, signers[sender].sign(write_document(doc))))
    return out


@dataclass
class Clock:
    sent_at: dict[str, float] = field(default_factory=dict)  # DocumentId → POST started
    started: dict[str, float] = field(default_factory=dict)  # hub document id → POST started
    pushed_at: dict[str, float] = field(default_factory=dict)  # hub document id → pushed
    expected: int = 0
    all_pushed: asyncio.Event = field(default_factory=asyncio.Event)
    intake: list[float] = field(default_factory=list)
    end_to_end: list[float] = field(default_factory=list)
    delivered: int = 0
    last_delivery: float = 0.0


async def send_all(
    project: Project,
    packages: list[tuple[str, str, bytes]],
    concurrency: int,
    clock: Clock,
    rate: float = 0,
) -> None:
    """Send every package with *concurrency* senders; with *rate*, document k leaves no
    earlier than k / rate seconds after the start (an offered load, not a closed loop)."""
    queue: asyncio.Queue[tuple[int, tuple[str, str, bytes]]] = asyncio.Queue()
    for k, item in enumerate(packages):
        queue.put_nowait((k, item))
    clients = {
        code: AgencyClient(project.url, project.credentials(code)) for code in project.agencies()
    }
    for client in clients.values():
        await client.__aenter__()

    begin = time.monotonic()

    async def worker() -> None:
        while not queue.empty():
            k, (sender, document_id, body) = queue.get_nowait()
            if rate:
                await asyncio.sleep(max(0.0, begin + k / rate - time.monotonic()))
            started = time.monotonic()
            clock.sent_at[document_id] = started
            receipt = await clients[sender].send_document(body)
            clock.intake.append(time.monotonic() - started)
            clock.started[receipt["document_id"]] = started

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        for client in clients.values():
            await client.__aexit__(None, None, None)


async def receive_pull(project: Project, code: str, total: int, clock: Clock) -> None:
    async with AgencyClient(project.url, project.credentials(code)) as agency:
        while clock.delivered < total:
            items = await agency.inbox(wait=1, lease=60, limit=100)
            for item in items:
                await agency.fetch(item["href"])
                if item["kind"] == "document":  # not the delivery receipts senders get back
                    now = time.monotonic()
                    clock.end_to_end.append(now - clock.sent_at[item["edxml_document_id"]])
                    clock.delivered += 1
                    clock.last_delivery = now
                await agency.ack(item["delivery_id"])


async def push_endpoint(clock: Clock) -> tuple[Any, str]:
    """An aiohttp server standing for every agency's push endpoint; records each document."""
    from aiohttp import web

    async def take(request: web.Request) -> web.Response:
        await request.read()
        if request.headers.get("Lienthong-Kind") == "document":
            # Keyed by the hub's document id: the push can arrive before the sender has read
            # its 202; latencies are worked out at the end.
            now = time.monotonic()
            clock.pushed_at.setdefault(request.headers["Lienthong-Document-Id"], now)
            clock.delivered = len(clock.pushed_at)
            clock.last_delivery = max(clock.last_delivery, now)
            if clock.delivered >= clock.expected:
                clock.all_pushed.set()
        return web.Response(status=204)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/push/{code}", take)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/push"


def percentiles(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49] * 1000, 1),
        "p95_ms": round(cuts[94] * 1000, 1),
        "p99_ms": round(cuts[98] * 1000, 1),
    }


async def run(
    project: Project, mode: str, documents: int, concurrency: int, seed: int, rate: float
) -> dict[str, Any]:
    packages = build_packages(project, documents, random.Random(seed))
    sizes = [len(body) for _, _, body in packages]
    clock = Clock(expected=documents)
    endpoint = None
    if mode == "push":
        endpoint, project.push_base = await push_endpoint(clock)
    server = Server(project)
    try:
        before = server.usage()
        started = time.monotonic()
        receivers = (
            [
                asyncio.create_task(receive_pull(project, code, documents, clock))
                for code in project.agencies()
            ]
            if mode == "pull"
            else []
        )
        await send_all(project, packages, concurrency, clock, rate)
        sent = time.monotonic()
        if mode == "pull":
            await asyncio.wait_for(asyncio.gather(*receivers), timeout=300)
        else:
            await asyncio.wait_for(clock.all_pushed.wait(), timeout=300)
        after = server.usage()
    finally:
        server.stop()
        project.push_base = ""
        if endpoint is not None:
            await endpoint.cleanup()
    if mode == "push":
        clock.end_to_end = [clock.pushed_at[d] - clock.started[d] for d in clock.pushed_at]
    elapsed = clock.last_delivery - started
    cpu = after["cpu_seconds"] - before["cpu_seconds"]
    return {
        "mode": mode,
        "documents": documents,
        "delivered": clock.delivered,
        "concurrency": concurrency,
        "offered_rate": rate or None,
        "package_bytes_mean": round(statistics.fmean(sizes)),
        "accepted_per_s": round(documents / (sent - started), 1),
        "delivered_per_s": round(clock.delivered / elapsed, 1),
        "intake": percentiles(clock.intake),
        "end_to_end": percentiles(clock.end_to_end),
        "hub_cpu_seconds": round(cpu, 1),
        "hub_cpu_per_document_ms": round(cpu / documents * 1000, 2),
        "hub_peak_rss_mib": round(after["peak_rss_mib"], 1),
    }


def show(result: dict[str, Any]) -> str:
    i, e = result["intake"], result["end_to_end"]
    return (
        f"{result['mode']:5}  {result['documents']} documents of "
        f"~{result['package_bytes_mean']} B, "
        f"{result['concurrency']} concurrent senders"
        + (f", offered {result['offered_rate']:g}/s" if result["offered_rate"] else "")
        + "\n"
        f"  accepted   {result['accepted_per_s']:8.1f} documents/s   intake latency p50 "
        f"{i['p50_ms']} ms, p95 {i['p95_ms']} ms, p99 {i['p99_ms']} ms\n"
        f"  delivered  {result['delivered_per_s']:8.1f} documents/s   end to end     p50 "
        f"{e['p50_ms']} ms, p95 {e['p95_ms']} ms, p99 {e['p99_ms']} ms\n"
        f"  hub process: {result['hub_cpu_seconds']} CPU s ({result['hub_cpu_per_document_ms']} ms "
        f"per document), peak RSS {result['hub_peak_rss_mib']} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=2000, help="documents to send")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent senders")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the traffic")
    parser.add_argument(
        "--rate",
        type=float,
        default=0,
        help="offer this many documents per second (default 0: as fast as the senders go)",
    )
    parser.add_argument(
        "--mode", choices=("pull", "push", "both"), default="both", help="how recipients receive"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lienthong-bench-") as tmp:
        modes = ("pull", "push") if args.mode == "both" else (args.mode,)
        try:
            results = [  # each mode on its own fresh project and database
                asyncio.run(
                    run(
                        make_project(Path(tmp) / mode),
                        mode,
                        args.documents,
                        args.concurrency,
                        args.seed,
                        args.rate,
                    )
                )
                for mode in modes
            ]
        except Exception:
            for log in Path(tmp).glob("*/serve.log"):  # what the hub said, before it is gone
                print(f"--- {log.parent.name} hub log (end) ---", file=sys.stderr)
                print(log.read_text(errors="replace")[-6000:], file=sys.stderr)
            raise
    if args.json:
        print(json.dumps({"machine": machine(), "results": results}, indent=2, ensure_ascii=False))
        return
    info = machine()
    print(f"{info['cpu']}, {info['cores']} cores, {info['python']}, {info['platform']}")
    for result in results:
        print(show(result))


if __name__ == "__main__":
    main()
