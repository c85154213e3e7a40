"""National-size directory: import time, the hub's start-up load, and routing cost per recipient.

    .venv/bin/python bench/directory_import.py [--count 120000] [--postgresql URL] [--json]

1. Writes a synthetic QCVN 102 directory of COUNT agencies (bench/synthetic_directory.py).
2. Times ``lienthong agencies import`` on it in a subprocess, as an operator runs it, against a
   fresh SQLite database (and, with --postgresql, a fresh PostgreSQL database at that server,
   e.g. postgresql+asyncpg://postgres@127.0.0.1:5432), then a second import of the same file
   (the refresh an operator runs when the national directory changes).
3. Times loading the imported directory as the hub does at start-up, and its memory.
4. Times routing look-ups (``hub.federation.destination``, what intake calls per recipient) for
   codes in and not in the directory, with 1,000 agencies imported and with COUNT: the same
   cost per look-up means routing does not grow with the directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.synthetic_directory import generate, write_csv  # noqa: E402
from hub import national  # noqa: E402
from hub.directory import Directory  # noqa: E402
from hub.federation import destination  # noqa: E402
from hub.routing import PeerRoutes  # noqa: E402
from tracking.db import create_engine  # noqa: E402


def lienthong() -> str:
    beside = Path(sys.executable).parent / "lienthong"
    return str(beside) if beside.exists() else "lienthong"


def _env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIENTHONG_")}
    env["LIENTHONG_CONFIG"] = str(ROOT / "config" / "hub.toml")
    env["LIENTHONG_DATABASE_URL"] = database_url
    return env


def _run(database_url: str, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [lienthong(), *args], env=_env(database_url), cwd=ROOT, check=True, capture_output=True
    )
    return time.perf_counter() - start


async def _pg_admin(server: str, statement: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(statement))
    await engine.dispose()


async def _load(database_url: str) -> tuple[national.NationalDirectory, float, float]:
    engine = create_engine(database_url)
    try:
        tracemalloc.start()
        start = time.perf_counter()
        loaded = await national.load(engine)
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        await engine.dispose()
    return loaded, seconds, peak / 2**20


def _lookup_ns(known: national.NationalDirectory, rounds: int = 200_000) -> float:
    """Mean ns per routing decision over codes half in, half not in the directory."""
    peers = (PeerRoutes("truc.quocgia", ("*.*.*.G*",), default=True),)
    accounts = Directory([])
    codes = list(known)
    rng = random.Random(1)
    sample = [rng.choice(codes) for _ in range(1000)] + [
        f"{rng.randint(900, 999)}.00.00.G{rng.randint(10, 99)}" for _ in range(1000)
    ]
    start = time.perf_counter_ns()
    for i in range(rounds):
        destination(accounts, peers, sample[i % len(sample)], known)
    return (time.perf_counter_ns() - start) / rounds


def _machine() -> str:
    impl = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{platform.machine()}, {os.cpu_count()} CPUs, {impl}"


async def run(count: int, pg_server: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {"count": count, "machine": _machine(), "backends": {}}
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "directory.csv"
        with csv_path.open("w", encoding="utf-8", newline="") as out:
            write_csv(generate(count), out)
        urls = {"sqlite": f"sqlite+aiosqlite:///{Path(tmp) / 'hub.db'}"}
        pg_name = f"lienthong_bench_{uuid.uuid4().hex[:8]}"
        if pg_server:
            await _pg_admin(pg_server, f'CREATE DATABASE "{pg_name}"')
            urls["postgresql"] = f"{pg_server}/{pg_name}"
        try:
            await _measure(urls, csv_path, count, result)
        finally:
            if pg_server:
                await _pg_admin(pg_server, f'DROP DATABASE IF EXISTS "{pg_name}"')
        small = national.NationalDirectory(
            national.Entry(u.code, u.name, u.parent) for u in generate(1000)
        )
        full, _, _ = await _load(urls["sqlite"])
        result["lookup_ns"] = {
            "1000": round(_lookup_ns(small)),
            str(count): round(_lookup_ns(full)),
        }
    return result


async def _measure(
    urls: dict[str, str], csv_path: Path, count: int, result: dict[str, Any]
) -> None:
    for backend, url in urls.items():
        _run(url, "db", "upgrade")
        first = _run(url, "agencies", "import", str(csv_path))
        again = _run(url, "agencies", "import", str(csv_path), "--replace")
        loaded, load_s, load_mib = await _load(url)
        assert len(loaded) == count, (len(loaded), count)
        result["backends"][backend] = {
            "import_s": round(first, 2),
            "reimport_replace_s": round(again, 2),
            "rows_per_s": round(count / first),
            "startup_load_s": round(load_s, 2),
            "startup_load_peak_mib": round(load_mib, 1),
        }


def show(result: dict[str, Any]) -> str:
    lines = [f"{result['count']:,} agencies; {result['machine']}"]
    for backend, r in result["backends"].items():
        lines.append(
            f"  {backend:10} import {r['import_s']:.2f} s ({r['rows_per_s']:,} rows/s), "
            f"again with --replace {r['reimport_replace_s']:.2f} s, "
            f"start-up load {r['startup_load_s']:.2f} s, peak {r['startup_load_peak_mib']} MiB"
        )
    ns = result["lookup_ns"]
    lines.append(
        "  routing per recipient: "
        + ", ".join(f"{int(k):,} agencies {v} ns" for k, v in ns.items())
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=120_000)
    parser.add_argument(
        "--postgresql",
        metavar="URL",
        help="also measure PostgreSQL at this server (a fresh database is created there)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args.count, args.postgresql))
    print(json.dumps(result, indent=2) if args.json else show(result))


if __name__ == "__main__":
    main()
