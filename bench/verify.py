"""Signature verification throughput of the hub's hot path, on one core, chain cache warm.

"Verification" is what the hub does with a parsed package once its schema is checked:
``signing.xmldsig.verify_package(tree, registered, policy, trust=store)``: the signature's
place and algorithms, the KeyInfo certificate bound to the sender's registered one, the trust
store's verdict on that certificate (its validated chain is cached, so this is a look-up plus
a CRL-freshness check), the XMLDSig schema check of the Signature element, and the hub's own
verification core (``signing.xmldsig_core``: one copy and one C14N of the document, one C14N
of SignedInfo, the digest and the RSA verification with the certificate pinned), which returns
the signed content. It is measured for document packages of about 10 KiB, 200 KiB and 5 MiB
(the packages of ``bench/parse_validate.py``), signed with RSA-2048 by an agency certificate
issued by a CA whose (empty) CRL is loaded.

Next to it the *floor* the hub had before its own core: signxml alone,
``XMLVerifier().verify`` with the certificate pinned and the same parser and configuration;
and the hub path including the hardened parse (``hub.xmlsafe.parse``), for the whole cost of a
package.

Everything runs in this one process and thread: the figures are per core. Besides wall-clock
operations per second, each case reports operations per CPU-second of this process
(``time.process_time``, warm-up included): on a machine whose cores are shared with other work
the wall-clock figure drops with the load, the CPU-time one much less.

    python bench/verify.py [--seconds N] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for folder in (ROOT, ROOT / "bench"):  # runnable from anywhere, installed or not
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from parse_validate import Result, build_package, machine, measure  # noqa: E402
from signxml.algorithms import DigestAlgorithm, SignatureMethod  # noqa: E402
from signxml.verifier import SignatureConfiguration, XMLVerifier  # noqa: E402

from hub.xmlsafe import hardened_parser, parse  # noqa: E402
from signing import pki  # noqa: E402
from signing.trust import TrustStore  # noqa: E402
from signing.xmldsig import SignaturePolicy, sign_package, verify_package  # noqa: E402

SIZES: tuple[tuple[str, int, str], ...] = (
    ("10 KB", 10 * 1024, "full"),
    ("10 KB lean", 10 * 1024, "lean"),
    ("200 KB", 200 * 1024, "full"),
    ("5 MB", 5 * 1024 * 1024, "full"),
)
TARGET_SIZES = ("10 KB", "10 KB lean")
HUB = "hub verify"
FLOOR = "signxml pinned"
TARGET_OPS = 3_000  # verifications per second per core at 10 KB, from the issue


def _loadavg() -> str | None:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return None


def cases(
    data: bytes, agency: pki.Issued, store: TrustStore
) -> list[tuple[str, Callable[[bytes], object]]]:
    tree = parse(data)
    cert = agency.certificate
    registered = [cert]
    policy = SignaturePolicy()
    config = signxml_config(policy)
    reparser = hardened_parser(huge_tree=True)

    def floor(_: bytes) -> object:
        return XMLVerifier().verify(
            tree.getroot(), x509_cert=cert, parser=reparser, expect_config=config
        )

    def hub(_: bytes) -> object:
        return verify_package(tree, registered, policy, trust=store)

    def hub_with_parse(raw: bytes) -> object:
        return verify_package(parse(raw), registered, policy, trust=store)

    return [(FLOOR, floor), (HUB, hub), ("  hub parse+verify", hub_with_parse)]


def measure_with_cpu(
    size: str, data: bytes, case: str, run: Callable[[bytes], object], seconds: float
) -> tuple[Result, float]:
    """:func:`parse_validate.measure`, and the operations per CPU-second of this process."""
    calls = 0

    def counted(raw: bytes) -> object:
        nonlocal calls
        calls += 1
        return run(raw)

    cpu = time.process_time()
    result = measure(size, data, case, counted, seconds)
    return result, calls / (time.process_time() - cpu)


def signxml_config(policy: SignaturePolicy) -> SignatureConfiguration:
    """signxml's configuration for *policy*, as the hub used it before its own core."""
    return SignatureConfiguration(
        require_x509=True,
        location=".//",
        expect_references=1,
        signature_methods=frozenset(SignatureMethod(m) for m in policy.allowed_signature_methods),
        digest_algorithms=frozenset(DigestAlgorithm(m) for m in policy.allowed_digest_methods),
    )


def signed_package(target: int, header: str, agency: pki.Issued) -> bytes:
    """A signed package of about *target* bytes, the signature included (~2 KB with RSA)."""
    unsigned = build_package(target, header)
    overhead = len(sign_package(unsigned, agency.key_pem, agency.cert_pem)) - len(unsigned)
    return sign_package(build_package(target - overhead, header), agency.key_pem, agency.cert_pem)


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
        f"python:  {info['python']}; lxml {info['lxml']}, libxml2 {info['libxml2']}\n"
        "one process, one thread; RSA-2048 agency certificate, chain cache warm\n"
    )
    ca = pki.new_ca("Bench CA")
    agency = pki.issue_agency_certificate(ca, code="000.00.00.G22", name="Văn phòng Chính phủ")
    store = TrustStore(anchors=[ca.certificate], crl_sources=["bench"])
    store.apply_crl("bench", pki.issue_crl(ca))

    columns = (
        f"{'size':>10} {'bytes':>9}  {'case':<19} {'ops/s':>10} {'median µs':>11} "
        f"{'p95 µs':>11} {'vs floor':>9} {'cpu ops/s':>10}"
    )
    say(columns)
    say("-" * len(columns))
    results = []
    cpu_rates: dict[tuple[str, str], float] = {}
    for size, target, header in SIZES:
        data = signed_package(target, header, agency)
        verify_package(parse(data), [agency.certificate], trust=store)  # warms the chain cache
        floor_rate = None
        for case, run in cases(data, agency, store):
            result, cpu_rate = measure_with_cpu(size, data, case, run, args.seconds)
            results.append(result)
            cpu_rates[(size, case)] = cpu_rate
            if case == FLOOR:
                floor_rate = result.ops_per_s
            ratio = (
                f"{result.ops_per_s / floor_rate:>8.2f}x" if floor_rate and case != FLOOR else ""
            )
            say(
                f"{size:>10} {len(data):>9}  {case:<19} {result.ops_per_s:>10,.0f} "
                f"{result.median_us:>11,.1f} {result.p95_us:>11,.1f} {ratio:>9} {cpu_rate:>10,.0f}"
            )

    verdicts: list[dict[str, Any]] = []
    for size in TARGET_SIZES:
        hub = next(r for r in results if r.size == size and r.case == HUB)
        floor = next(r for r in results if r.size == size and r.case == FLOOR)
        verdicts.append(
            {
                "size": size,
                "ops_per_s": TARGET_OPS,
                "hub_ops_per_s": round(hub.ops_per_s, 1),
                "floor_ops_per_s": round(floor.ops_per_s, 1),
                "met": hub.ops_per_s >= TARGET_OPS,
                "hub_cpu_ops_per_s": round(cpu_rates[(size, HUB)], 1),
            }
        )
        say(
            f"target >= {TARGET_OPS:,}/s per core at {size:<10}: "
            f"{'MET' if verdicts[-1]['met'] else 'MISSED'} (hub {hub.ops_per_s:,.0f}/s, "
            f"{cpu_rates[(size, HUB)]:,.0f} per CPU-second; signxml alone {floor.ops_per_s:,.0f}/s)"
        )
    info["loadavg_after"] = _loadavg()
    say(f"load average before {info['loadavg_before']}, after {info['loadavg_after']}\n")
    print(
        json.dumps(
            {
                "bench": "verify",
                "machine": info,
                "seconds_per_case": args.seconds,
                "results": [
                    r.as_dict() | {"cpu_ops_per_s": round(cpu_rates[(r.size, r.case)], 1)}
                    for r in results
                ],
                "target": verdicts,
            },
            ensure_ascii=False,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
