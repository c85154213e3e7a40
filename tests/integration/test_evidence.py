"""Evidence bundles gathered from a real hub database (SQLite and PostgreSQL) verify with the
hub's certificate alone, and every kind of tampering is reported."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from cryptography import x509

from hub import evidence as evidence_module
from hub.checkpoints import make_checkpoint
from hub.edxml.model import StatusCode
from hub.errors import NotFound
from hub.evidence import NoCheckpoint, gather
from tests.evidence_tools import edit_event, forge_jws_payload, members, rezip
from tests.support import BA_DINH, CITY, HOAN_KIEM, Hub, document, status
from tracking.evidence import (
    CERTIFICATE,
    CHECKPOINT,
    EVENTS,
    MANIFEST,
    PACKAGE,
    RECEIPTS_DIR,
    STATUS_DIR,
    EvidenceReport,
    parse_events,
    verify_bundle,
    write_bundle,
)


def hub_cert(hub: Hub) -> x509.Certificate:
    assert hub.world.hub is not None
    return hub.world.hub.certificate


async def exchange(hub: Hub) -> str:
    """A document to two recipients, with another document's events in between; one recipient
    acknowledges it and reports 01, 03 and 06. The document's hub id."""
    letter = document(CITY, (BA_DINH, HOAN_KIEM), number="501")
    answer = await hub.send(letter)
    deliveries = {d["recipient"]: d["delivery_id"] for d in answer["deliveries"]}
    await hub.send(document(CITY, (HOAN_KIEM,), number="502"))
    ok = await hub.http.post(
        f"/v1/deliveries/{deliveries[BA_DINH]}/ack",
        json={"result": "done"},
        headers=hub.as_(BA_DINH),
    )
    assert ok.status == 200
    for code in (StatusCode.ARRIVED, StatusCode.ACCEPTED, StatusCode.FINISHED):
        reported = await hub.report(status(BA_DINH, letter, code))
        assert reported.status == 202, await reported.text()
    return str(answer["document_id"])


async def bundle_of(hub: Hub) -> bytes:
    document_id = await exchange(hub)
    evidence = await gather(
        hub.ctx.store, document_id, hub_cert(hub), "test-hub", signing_context=hub.ctx
    )
    return write_bundle(evidence)


def problems(report: EvidenceReport) -> list[tuple[str, str | None]]:
    return [(p.what, p.file) for p in report.problems]


async def test_a_bundle_from_a_real_exchange_verifies(hub: Hub) -> None:
    document_id = await exchange(hub)
    with pytest.raises(NoCheckpoint):  # nothing signed yet, and no key given to sign one
        await gather(hub.ctx.store, document_id, hub_cert(hub), "test-hub")
    evidence = await gather(
        hub.ctx.store, document_id, hub_cert(hub), "test-hub", signing_context=hub.ctx
    )
    bundle = write_bundle(evidence)
    report = verify_bundle(bundle, hub_cert(hub))
    assert report.valid, report.problems
    assert report.document_id == document_id and report.hub == "test-hub"
    assert [r["kind"] for r in report.receipts] == ["submission", "delivery"]
    assert [s["code"] for s in report.statuses] == ["01", "03", "06"]
    assert {s["reporter"] for s in report.statuses} == {BA_DINH}
    files = members(bundle)
    assert len([n for n in files if n.startswith(STATUS_DIR)]) == 3
    rows = parse_events(files[EVENTS])
    # The run starts at the document's received event and holds the other document's too.
    assert rows[0].kind == "received" and rows[0].document_id == document_id
    assert any(r.document_id not in (document_id, None) for r in rows)
    assert report.checkpoint is not None and report.checkpoint.seq == rows[-1].seq
    assert report.events == len(rows)
    assert report.notes == []


async def test_an_unknown_document_has_no_evidence(hub: Hub) -> None:
    with pytest.raises(NotFound):
        await gather(hub.ctx.store, "no-such-document", hub_cert(hub), "test-hub")


def _changed_package(files: dict[str, bytes]) -> dict[str, bytes | None]:
    return {PACKAGE: files[PACKAGE] + b"\n<!-- added after signing -->\n"}


def _misdescribed(manifest: bytes) -> bytes:
    data = json.loads(manifest)
    data["document"]["subject"] = "V/v một việc khác"
    return json.dumps(data).encode()


def _first_receipt(files: dict[str, bytes]) -> str:
    return sorted(n for n in files if n.startswith(RECEIPTS_DIR))[0]


def _first_status(files: dict[str, bytes]) -> str:
    return sorted(n for n in files if n.startswith(STATUS_DIR))[0]


# Each case: how the forger changes the bundle, and problems (what, file) that must be reported.
TAMPERING: dict[str, tuple[Callable[[bytes], bytes], set[tuple[str, str | None]]]] = {
    "a changed file": (
        lambda b: rezip(b, _changed_package(members(b))),
        {("file", PACKAGE), ("package", PACKAGE)},
    ),
    "a changed package with the manifest fixed": (
        lambda b: rezip(b, _changed_package(members(b)), fix_manifest=True),
        {("package", PACKAGE)},
    ),
    "a file added": (
        lambda b: rezip(b, {"notes.txt": b"trust me"}),
        {("file", "notes.txt")},
    ),
    "a file missing": (
        lambda b: rezip(b, {CERTIFICATE: None}),
        {("file", CERTIFICATE)},
    ),
    "an edited event": (
        lambda b: edit_event(b, 3, rehash=False),
        {("chain", EVENTS)},
    ),
    "an edited event with every later hash recomputed": (
        lambda b: edit_event(b, 3, rehash=True),
        {("chain", EVENTS)},
    ),
    "a forged receipt": (
        lambda b: rezip(
            b,
            {
                (name := _first_receipt(members(b))): forge_jws_payload(
                    members(b)[name].decode(), recipients=["000.00.99.H26"]
                ).encode()
            },
            fix_manifest=True,
        ),
        {("receipt", None)},
    ),
    "a manifest that misdescribes the document": (
        lambda b: rezip(b, {MANIFEST: _misdescribed(members(b)[MANIFEST])}),
        {("file", MANIFEST)},
    ),
    "a forged checkpoint": (
        lambda b: rezip(
            b,
            {CHECKPOINT: forge_jws_payload(members(b)[CHECKPOINT].decode(), seq=1).encode()},
            fix_manifest=True,
        ),
        {("checkpoint", CHECKPOINT)},
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
async def test_tampering_is_reported(hub: Hub, case: str) -> None:
    bundle = await bundle_of(hub)
    change, expected = TAMPERING[case]
    report = verify_bundle(change(bundle), hub_cert(hub))
    assert not report.valid
    found = set(problems(report))
    for what, file in expected:
        assert any(w == what and (file is None or f == file) for w, f in found), (
            f"{case}: expected {what} {file}, got {report.problems}"
        )


async def test_a_removed_status_is_named(hub: Hub) -> None:
    bundle = await bundle_of(hub)
    removed = _first_status(members(bundle))
    report = verify_bundle(rezip(bundle, {removed: None}, fix_manifest=True), hub_cert(hub))
    assert problems(report) == [("status", removed)]
    assert "is not in the bundle" in report.problems[0].message


async def test_cutting_the_events_at_either_end_is_reported(hub: Hub) -> None:
    bundle = await bundle_of(hub)
    lines = members(bundle)[EVENTS].splitlines(keepends=True)
    for cut in (b"".join(lines[1:]), b"".join(lines[:-1])):
        report = verify_bundle(rezip(bundle, {EVENTS: cut}, fix_manifest=True), hub_cert(hub))
        assert ("chain", EVENTS) in problems(report), report.problems


async def test_another_certificate_verifies_nothing(hub: Hub) -> None:
    bundle = await bundle_of(hub)
    other = hub.world.accounts[CITY].issued
    assert other is not None
    report = verify_bundle(bundle, other.certificate)
    kinds = {what for what, _file in problems(report)}
    assert {"receipt", "checkpoint"} <= kinds
    assert any("not the one verified with" in note for note in report.notes)


async def test_a_status_reported_after_the_checkpoint_is_left_for_the_next_export(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Export racing a new status: the rows read may be newer than the chosen checkpoint."""
    document_id = await exchange(hub)
    assert await make_checkpoint(hub.ctx) is not None
    span = await evidence_module._document_range(hub.ctx.store, document_id)
    letter = document(CITY, (BA_DINH, HOAN_KIEM), number="501")
    late = await hub.report(status(HOAN_KIEM, letter, StatusCode.ARRIVED))
    assert late.status == 202

    async def as_before(_store: object, _document_id: str) -> evidence_module.Range:
        return span

    monkeypatch.setattr(evidence_module, "_document_range", as_before)
    bundle = write_bundle(await gather(hub.ctx.store, document_id, hub_cert(hub), "test-hub"))
    report = verify_bundle(bundle, hub_cert(hub))
    assert report.valid, report.problems
    assert [s["code"] for s in report.statuses] == ["01", "03", "06"]
