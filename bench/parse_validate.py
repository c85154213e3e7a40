"""Parse + validate throughput of the hub's hot path, on one core.

"Parse + validate" is what the hub does with every package before it looks at the signature:
``hub.xmlsafe.parse(bytes)`` then ``hub.edxml.schema.check(tree, "edoc")``. It is measured for
document packages of about 10 KiB, 200 KiB and 5 MiB, built with ``hub.edxml.writer`` from the
model (Vietnamese text, several recipients, one base64 attachment sized to reach the target).

Next to it the *floor*: lxml alone, ``etree.fromstring`` plus a compiled ``XMLSchema.validate``
of the same XSD (``schemas/edoc.xsd``), which is the least any XSD-validating hub can do. The
two halves of the hub path (``parse`` alone, ``check`` on an already parsed tree) are measured
too, so a miss can be placed.

Everything runs in this one process and thread: the figures are per core. Each case is warmed
up, then run for a fixed wall time (``--seconds``), every operation timed with
``time.perf_counter``. MB/s counts 10^6 bytes of package per second. "ops/cpu-s" divides the
operations by this thread's CPU time over the run instead, leaving out the time it waited for a
core that other work held; time the hypervisor takes and caches shared with that work still
count, so under load the median is the steadiest figure. The target's verdict uses the
wall-clock rate.

    python bench/parse_validate.py [--seconds N] [--json]

By default a table and, last, one JSON line are printed; ``--json`` prints the JSON line only.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable from anywhere, installed or not
    sys.path.insert(0, str(ROOT))

from lxml import etree  # noqa: E402

from hub.edxml import schema  # noqa: E402
from hub.edxml.model import (  # noqa: E402
    Attachment,
    Code,
    DocumentPackage,
    DocumentType,
    Organization,
    OtherInfo,
    Priority,
    PromulgationInfo,
    ResponseFor,
    SignerInfo,
    TraceHeader,
)
from hub.edxml.writer import write_document  # noqa: E402
from hub.xmlsafe import parse  # noqa: E402

# (label, target bytes, header): "full" is a header as the SDK samples carry (five recipients
# with name, address and contacts, signer, distribution list, …); "lean" is the header of
# tests/support.document() (two recipients by code only), the rest of the bytes being the
# attachment: the same size, much less markup.
SIZES: tuple[tuple[str, int, str], ...] = (
    ("10 KB", 10 * 1024, "full"),
    ("10 KB lean", 10 * 1024, "lean"),
    ("200 KB", 200 * 1024, "full"),
    ("5 MB", 5 * 1024 * 1024, "full"),
)
TARGET_SIZES = ("10 KB", "10 KB lean")
HUB = "hub parse+check"
FLOOR = "lxml floor"
TARGET_OPS = 20_000  # parse + validate per second per core, from the issue
WARM_UP_SECONDS = 0.5
MIN_WARM_UP_OPS = 3

# ------------------------------------------------------------------------------------ packages

_RECIPIENTS = (
    ("000.00.00.H41", "UBND Tỉnh Nghệ An", "Số 03, đường Trường Thi, Thành phố Vinh, Nghệ An"),
    ("000.00.00.H14", "UBND Tỉnh Cao Bằng", "Số 011 Đường Hoàng Đình Giong, TP Cao Bằng"),
    ("000.00.31.H26", "UBND Quận Ba Đình", "Số 25 Liễu Giai, Quận Ba Đình, Hà Nội"),
    ("000.00.32.H26", "UBND Quận Hoàn Kiếm", "Số 126 Hàng Trống, Quận Hoàn Kiếm, Hà Nội"),
    ("000.00.00.H49", "UBND Tỉnh Quảng Ninh", "Phường Hồng Hà, Thành phố Hạ Long, Quảng Ninh"),
)
_SUBJECT = (
    "V/v tăng cường công tác phòng, chống thiên tai, tìm kiếm cứu nạn và khắc phục hậu quả "
    "cơn bão số 3 năm 2026 trên địa bàn các tỉnh miền Bắc"
)


def _organization(organ_id: str, name: str, address: str) -> Organization:
    return Organization(
        organ_id=organ_id,
        organ_name=name,
        organization_in_charge=name,
        organ_add=address,
        email="vanthu@" + organ_id.replace(".", "") + ".gov.vn",
        telephone="0243 825 3536",
        fax="0243 825 3537",
        website="https://" + organ_id.replace(".", "") + ".gov.vn",
    )


def _package(attachment_bytes: int, header: str = "full") -> DocumentPackage:
    data = hashlib.shake_256(b"lienthong bench").digest(attachment_bytes)  # incompressible
    if header == "lean":
        return DocumentPackage(
            sender=Organization("000.00.00.H26", "UBND Thành phố Hà Nội"),
            recipients=(Organization("000.00.31.H26"), Organization("000.00.32.H26")),
            document_id="000.00.00.H26,2026/11/22,12/UBND-VP",
            code=Code("12", "UBND-VP"),
            promulgation=PromulgationInfo("Hà Nội", "2026/11/22"),
            document_type=DocumentType("1", "", "Công văn"),
            subject="V/v kiểm thử liên thông văn bản",
            content="V/v kiểm thử liên thông văn bản",
            attachments=(Attachment.from_bytes("att-1", "cong-van.pdf", "application/pdf", data),),
        )
    return DocumentPackage(
        sender=_organization("000.00.00.G22", "Văn phòng Chính phủ", "Số 1 Hoàng Hoa Thám"),
        recipients=tuple(_organization(*r) for r in _RECIPIENTS),
        document_id="000.00.00.G22,2026/11/22,7816/VPCP-TTĐT",
        code=Code("7816", "VPCP-TTĐT"),
        promulgation=PromulgationInfo("Hà Nội", "2026/11/22"),
        document_type=DocumentType("1", "", "Công văn"),
        subject=_SUBJECT,
        content=_SUBJECT,
        signer=SignerInfo("KT. BỘ TRƯỞNG, CHỦ NHIỆM", "Phó Chủ nhiệm", "Nguyễn Văn Sơn"),
        due_date="2026/12/05",
        to_places=("Như trên", "Thủ tướng, các Phó Thủ tướng", "Lưu: VT, TTĐT (3b)"),
        other=OtherInfo(
            priority=Priority.URGENT,
            sphere_of_promulgation="Văn bản hành chính",
            typer_notation="TTĐT",
            promulgation_amount="5",
            page_amount="2",
            direction="false",
            appendixes=("Phụ lục I: Danh sách các tỉnh",),
        ),
        response_for=(
            ResponseFor("000.00.00.H41", "123/UBND-VX", "2026/11/20", "000.00.00.H41,2026/11/20"),
        ),
        steering_type="0",
        trace=(TraceHeader("000.00.00.G22", "2026/11/22 09:15:00"),),
        attachments=(
            Attachment.from_bytes(
                "a6e1c3f0-5b1d-4c7e-9f5a-2d8b7e4c1a90",
                "7816-VPCP-TTĐT.signed.pdf",
                "application/pdf",
                data,
                "Công văn số 7816/VPCP-TTĐT (bản ký số)",
            ),
        ),
    )


def build_package(target: int, header: str = "full") -> bytes:
    """A document package of about *target* bytes (within a few bytes)."""
    raw = max(0, target * 3 // 4)
    for _ in range(6):
        size = len(write_document(_package(raw, header)))
        if size == target:
            break
        # base64 carries 3 bytes in 4 characters.
        raw = max(0, raw + math.floor((target - size) * 3 / 4))
    return write_document(_package(raw, header))


# ------------------------------------------------------------------------------------ the cases


def floor_validator() -> Callable[[bytes], object]:
    """lxml alone: fromstring with the hub's parser options and the same compiled XSD."""
    xsd = etree.XMLSchema(etree.parse(str(ROOT / "schemas" / "edoc.xsd")))
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, collect_ids=False
    )

    def run(data: bytes) -> object:
        if not xsd.validate(etree.fromstring(data, parser)):
            raise AssertionError(str(xsd.error_log))
        return None

    return run


def hub_parse_validate(data: bytes) -> object:
    return schema.check(parse(data), "edoc")


def cases(data: bytes) -> list[tuple[str, Callable[[bytes], object]]]:
    tree = parse(data)
    return [
        (FLOOR, floor_validator()),
        (HUB, hub_parse_validate),
        ("  hub parse only", parse),
        ("  hub check only", lambda _: schema.check(tree, "edoc")),
    ]


@dataclass(frozen=True)
class Result:
    size: str
    nbytes: int
    case: str
    ops: int
    seconds: float
    cpu_seconds: float  # this thread's CPU time over the same run
    median_us: float
    p95_us: float

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds

    @property
    def cpu_ops_per_s(self) -> float:
        """Operations per second of this thread's CPU time: the wall-clock rate without the time
        the thread waited for a core that other work held."""
        return self.ops / self.cpu_seconds

    @property
    def mb_per_s(self) -> float:
        return self.ops_per_s * self.nbytes / 1e6

    def as_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "bytes": self.nbytes,
            "case": self.case.strip(),
            "ops": self.ops,
            "seconds": round(self.seconds, 3),
            "ops_per_s": round(self.ops_per_s, 1),
            "cpu_ops_per_s": round(self.cpu_ops_per_s, 1),
            "median_us": round(self.median_us, 2),
            "p95_us": round(self.p95_us, 2),
            "mb_per_s": round(self.mb_per_s, 1),
        }


def measure(
    size: str, data: bytes, case: str, run: Callable[[bytes], object], seconds: float
) -> Result:
    clock = time.perf_counter
    warm_until = clock() + WARM_UP_SECONDS
    warm = 0
    while warm < MIN_WARM_UP_OPS or clock() < warm_until:
        run(data)
        warm += 1
    gc.collect()
    times: list[float] = []
    append = times.append
    cpu_start = time.thread_time()
    start = clock()
    stop = start + seconds
    now = start
    while now < stop:
        before = clock()
        run(data)
        now = clock()
        append(now - before)
    elapsed = now - start
    cpu = time.thread_time() - cpu_start
    times.sort()
    median = times[len(times) // 2]
    p95 = times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]
    return Result(size, len(data), case, len(times), elapsed, cpu, median * 1e6, p95 * 1e6)


# ------------------------------------------------------------------------------------ machine


def _loadavg() -> str | None:
    """Other processes share the cores: the load average says how much (1, 5, 15 min)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return None


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "memory_gib": memory,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "lxml": ".".join(map(str, etree.LXML_VERSION)),
        "libxml2": ".".join(map(str, etree.LIBXML_VERSION)),
        "libxml2_compiled": ".".join(map(str, etree.LIBXML_COMPILED_VERSION)),
    }


_COLUMNS = (
    f"{'size':>10} {'bytes':>9}  {'case':<17} {'ops/s':>10} {'ops/cpu-s':>10} {'median µs':>11} "
    f"{'p95 µs':>11} {'MB/s':>8} {'vs floor':>9}"
)


def _row(r: Result, floor: Result | None) -> str:
    ratio = f"{r.ops_per_s / floor.ops_per_s:>8.2f}x" if floor else f"{'':>9}"
    return (
        f"{r.size:>10} {r.nbytes:>9}  {r.case:<17} {r.ops_per_s:>10,.0f} {r.cpu_ops_per_s:>10,.0f} "
        f"{r.median_us:>11,.1f} {r.p95_us:>11,.1f} {r.mb_per_s:>8,.0f} {ratio}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="measured wall time per case (default 3)"
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)

    info = machine()
    info["loadavg_before"] = _loadavg()
    say = (lambda *_: None) if args.json else print
    say(
        f"machine: {info['platform']}\n"
        f"cpu:     {info['cpu']} ({info['cores']} cores, {info['cores_usable']} usable, "
        f"{info['memory_gib']} GiB)\n"
        f"python:  {info['python']}; lxml {info['lxml']}, libxml2 {info['libxml2']} "
        f"(compiled against {info['libxml2_compiled']})\n"
        f"one process, one thread; {WARM_UP_SECONDS} s warm-up + {args.seconds} s per case\n"
    )

    say(_COLUMNS)
    say("-" * len(_COLUMNS))
    results: list[Result] = []
    for size, target, header in SIZES:
        data = build_package(target, header)
        report = schema.check(parse(data), "edoc")
        if not report.ok:  # measure the accepting path, not the error path
            raise SystemExit(f"the {size} bench package is invalid: {report.errors}")
        floor: Result | None = None
        for case, run in cases(data):
            result = measure(size, data, case, run, args.seconds)
            results.append(result)
            floor = result if case == FLOOR else floor
            say(_row(result, floor if case != FLOOR else None))

    verdicts = []
    for size in TARGET_SIZES:
        hub = next(r for r in results if r.size == size and r.case == HUB)
        floor = next(r for r in results if r.size == size and r.case == FLOOR)
        verdicts.append(
            {
                "size": size,
                "ops_per_s": TARGET_OPS,
                "hub_ops_per_s": round(hub.ops_per_s, 1),
                "floor_ops_per_s": round(floor.ops_per_s, 1),
                "hub_cpu_ops_per_s": round(hub.cpu_ops_per_s, 1),
                "hub_over_floor": round(hub.ops_per_s / floor.ops_per_s, 3),
                "met": hub.ops_per_s >= TARGET_OPS,
                "floor_met": floor.ops_per_s >= TARGET_OPS,
            }
        )
        say(
            f"target >= {TARGET_OPS:,}/s per core at {size:<10}: "
            f"{'MET' if verdicts[-1]['met'] else 'MISSED'} (hub {hub.ops_per_s:,.0f}/s, "
            f"{hub.ops_per_s / floor.ops_per_s:.2f}x of the lxml floor, "
            f"which itself does {floor.ops_per_s:,.0f}/s; hub per CPU-second "
            f"{hub.cpu_ops_per_s:,.0f}/s)"
        )
    info["loadavg_after"] = _loadavg()
    say(f"load average before {info['loadavg_before']}, after {info['loadavg_after']}\n")
    summary = {
        "bench": "parse_validate",
        "machine": info,
        "seconds_per_case": args.seconds,
        "results": [r.as_dict() for r in results],
        "target": verdicts,
    }
    print(json.dumps(summary, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
