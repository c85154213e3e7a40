"""Reading an evidence bundle is safe: it is untrusted input, read in memory within caps."""

from __future__ import annotations

import io
import zipfile

import pytest

from tracking import evidence
from tracking.evidence import BundleError, read_zip


def zipped(*entries: tuple[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize(
    "name", ["../escape.txt", "/etc/passwd", "a/../../b", "c:\\x", "status\\x.edxml", "./m"]
)
def test_names_leading_outside_the_bundle_are_not_read(name: str) -> None:
    files, problems = read_zip(zipped((name, b"x"), ("manifest.json", b"{}")))
    assert list(files) == ["manifest.json"]
    assert [p.what for p in problems] == ["bundle"]


def test_a_symbolic_link_is_not_read() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        info = zipfile.ZipInfo("document.edxml")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    files, problems = read_zip(out.getvalue())
    assert files == {} and "symbolic link" in problems[0].message


def test_an_oversized_member_is_not_inflated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evidence, "MAX_MEMBER_BYTES", 1000)
    files, problems = read_zip(zipped(("events.jsonl", b"0" * 5000), ("ok", b"1")))
    assert list(files) == ["ok"] and "larger than 1000 bytes" in problems[0].message


def test_too_much_inflated_in_all_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evidence, "MAX_TOTAL_BYTES", 3000)
    with pytest.raises(BundleError, match="ZIP bomb"):
        read_zip(zipped(("a", b"0" * 2000), ("b", b"0" * 2000)))


def test_not_a_zip_is_a_bundle_error() -> None:
    with pytest.raises(BundleError, match="not a ZIP"):
        read_zip(b"PK\x03\x04 but not really")


def test_a_bundle_without_anything_reports_what_is_missing() -> None:
    from cryptography import x509

    from tests.support import make_cert

    cert = x509.load_pem_x509_certificate(make_cert(None).cert_pem)
    report = evidence.verify_bundle(zipped(("hello.txt", b"hi")), cert)
    assert not report.valid
    whats = {p.what for p in report.problems}
    assert {"file", "package", "checkpoint", "receipt", "chain"} <= whats


def test_a_run_from_inside_the_chain_verifies_against_a_checkpoint_after_it() -> None:
    import dataclasses

    from tests.unit.test_audit_chain import build
    from tracking.audit import ChainWalk

    rows = build(12)[4:]  # events 5–12, as a bundle carries them
    walk = ChainWalk.from_event(rows[0], {12: rows[-1].hash})
    assert all(walk.feed(r) for r in rows) and walk.report().intact
    assert walk.report().events == 8

    gap = rows[:3] + rows[4:]  # event 8 left out
    walk = ChainWalk.from_event(gap[0], {12: rows[-1].hash})
    for r in gap:
        if not walk.feed(r):
            break
    problem = walk.report().problem
    assert problem is not None and (problem.what, problem.seq) == ("removed", 8)

    short = rows[:-2]  # stops before the checkpoint's event
    walk = ChainWalk.from_event(short[0], {12: rows[-1].hash})
    assert all(walk.feed(r) for r in short)
    problem = walk.report().problem
    assert problem is not None and problem.what == "removed"

    forged = [dataclasses.replace(rows[0], seq=4), *rows[1:]]  # renumbered first event
    walk = ChainWalk.from_event(forged[0], {12: rows[-1].hash})
    assert not all(walk.feed(r) for r in forged)


def test_a_rewritten_run_names_the_range_from_its_first_event() -> None:
    import dataclasses

    from tests.unit.test_audit_chain import build
    from tracking.audit import ChainWalk, recompute

    original = build(12)
    rows = original[4:]
    rewritten, prev = [], rows[0].prev_hash
    for i, row in enumerate(rows):  # the first event edited, every later hash recomputed
        row = dataclasses.replace(row, prev_hash=prev, actor="someone" if i == 0 else row.actor)
        row = dataclasses.replace(row, hash=recompute(row))
        rewritten.append(row)
        prev = row.hash
    walk = ChainWalk.from_event(rewritten[0], {12: original[-1].hash})
    for row in rewritten:
        if not walk.feed(row):
            break
    problem = walk.report().problem
    assert problem is not None and problem.what == "rewritten"
    assert "from 5 to 12" in problem.message
