"""Retention on a real hub database (SQLite and PostgreSQL): what is purged and what is kept, the
archive written first, 410 for those who could read a purged document, the audit chain still
verifying (and tampering with tombstones caught), and a crash between archive and delete."""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from sqlalchemy import delete, func, select, update

from hub import retention
from hub.checkpoints import audit, make_checkpoint
from hub.edxml.model import Business, BusinessType
from hub.retention import PurgeSummary, RetentionError, purge
from tests.support import AUDITOR, BA_DINH, CITY, HOAN_KIEM, PHUC_XA, Hub, document
from tracking import chain
from tracking.evidence import verify_bundle
from tracking.models import (
    Delivery,
    Document,
    DocumentLink,
    PurgedDocument,
    Receipt,
    TraceEvent,
)

LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)  # every test document is "old" by then


def hub_cert(hub: Hub) -> x509.Certificate:
    assert hub.world.hub is not None
    return hub.world.hub.certificate


async def ack_everything(hub: Hub, *codes: str) -> None:
    """Each of *codes* acknowledges everything in its inbox (documents, receipts, statuses)."""
    for code in codes:
        response = await hub.http.get("/v1/inbox", headers=hub.as_(code))
        assert response.status == 200
        for item in (await response.json())["items"]:
            acked = await hub.http.post(
                f"/v1/deliveries/{item['delivery_id']}/ack",
                json={"result": "done"},
                headers=hub.as_(code),
            )
            assert acked.status == 200, await acked.text()


async def finished(hub: Hub, number: str, recipients: tuple[str, ...] = (BA_DINH,)) -> str:
    """A document every recipient acknowledged, and whose delivery receipts its sender took."""
    answer = await hub.send(document(CITY, recipients, number=number))
    await ack_everything(hub, *recipients)
    await ack_everything(hub, CITY)
    return str(answer["document_id"])


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    folder = tmp_path / "luu-tru"
    folder.mkdir()
    return folder


async def run(hub: Hub, folder: Path, before: dt.datetime = LATER, **kw: Any) -> PurgeSummary:
    return await purge(
        hub.ctx.store,
        before=before,
        certificate=hub_cert(hub),
        hub_id=hub.ctx.hub_id,
        archive_dir=folder,
        **kw,
    )


async def chain_report(hub: Hub) -> Any:
    return (await audit(hub.ctx.store, hub_cert(hub), hub.ctx.hub_id)).chain


async def test_only_old_finished_checkpointed_documents_are_purged(hub: Hub, archive: Path) -> None:
    done = await finished(hub, "601", (BA_DINH, HOAN_KIEM))
    pending = str((await hub.send(document(CITY, (HOAN_KIEM,), number="602")))["document_id"])
    await make_checkpoint(hub.ctx)
    uncovered = await finished(hub, "603")

    # Younger than the cut-off: nothing is touched.
    early = await run(hub, archive, before=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    assert (early.planned, early.purged) == ((), 0)

    dry = await run(hub, archive, dry_run=True)
    assert dry.planned == (done,) and dry.purged == 0 and os.listdir(archive) == []
    assert "not finished" in dry.kept[pending]
    assert "not covered by a signed checkpoint" in dry.kept[uncovered]

    summary = await run(hub, archive)
    assert (summary.archived, summary.purged) == (1, 1)
    assert summary.bytes_freed > 0
    bundle = (archive / f"{done}.zip").read_bytes()
    report = verify_bundle(bundle, hub_cert(hub))
    assert report.valid, report.problems
    assert report.document_id == done and len(report.receipts) == 3  # submission + 2 delivery

    async with hub.ctx.store.read() as session:
        assert await session.get(Document, done) is None
        for model in (Delivery, Receipt):
            left = select(func.count()).select_from(model).where(model.document_id == done)
            assert (await session.execute(left)).scalar_one() == 0
        kinds = (
            await session.execute(select(TraceEvent.kind).where(TraceEvent.document_id == done))
        ).scalars()
        assert sorted(set(kinds)) == [chain.PURGED, chain.TOMBSTONE]
        gone = await session.get(PurgedDocument, done)
        assert gone is not None and gone.archive == f"{done}.zip"
        for kept in (pending, uncovered):
            assert await session.get(Document, kept) is not None

    verified = await chain_report(hub)
    assert verified.intact, verified.problem
    async with hub.ctx.store.read() as session:
        (recorded,) = (
            await session.execute(
                select(TraceEvent.detail).where(
                    TraceEvent.document_id == done, TraceEvent.kind == chain.PURGED
                )
            )
        ).scalars()
    assert verified.purged == json.loads(recorded)["events"] > 5

    again = await run(hub, archive)
    assert (again.planned, again.purged) == ((), 0)


async def test_a_purged_document_answers_410_to_those_who_could_read_it(
    hub: Hub, archive: Path
) -> None:
    done = await finished(hub, "611")
    await make_checkpoint(hub.ctx)
    await run(hub, archive)
    for code in (CITY, BA_DINH, AUDITOR):
        for path in (f"/v1/documents/{done}/trace", f"/v1/documents/{done}"):
            response = await hub.http.get(path, headers=hub.as_(code))
            assert response.status == 410, (code, path, await response.text())
            body = await response.json()
            assert body["code"] == "document.purged"
            assert body["archive"] == f"{done}.zip"
    # Anyone else learns nothing: the same 404 as for an id that never existed.
    stranger = await hub.http.get(f"/v1/documents/{done}/trace", headers=hub.as_(HOAN_KIEM))
    assert stranger.status == 404
    listed = await hub.http.get("/v1/documents", headers=hub.as_(CITY))
    assert done not in {d["document_id"] for d in (await listed.json())["items"]}


async def test_linked_documents_are_purged_together_or_not_at_all(hub: Hub, archive: Path) -> None:
    original = document(CITY, (BA_DINH,), number="621")
    first = str((await hub.send(original))["document_id"])
    revoke = replace(
        original,
        subject="Thu hồi",
        business=Business(business_type=BusinessType.REVOKE, reason="Lý do: thu hồi"),
    )
    second = str((await hub.send(revoke))["document_id"])
    await ack_everything(hub, BA_DINH)
    await ack_everything(hub, CITY)
    unrelated = await finished(hub, "622", (PHUC_XA,))
    await make_checkpoint(hub.ctx)

    # The revoke still waits for Ba Đình: so does the original it revokes.
    async with hub.ctx.store.write() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.document_id == second, Delivery.kind == "document")
            .values(state="delivered")
        )
    held = await run(hub, archive, dry_run=True)
    assert held.planned == (unrelated,)
    assert "not finished" in held.kept[second]
    assert f"linked to document {second}" in held.kept[first]

    async with hub.ctx.store.write() as session:
        await session.execute(
            update(Delivery).where(Delivery.document_id == second).values(state="done")
        )
    summary = await run(hub, archive, batch_size=1)
    assert summary.purged == 3
    async with hub.ctx.store.read() as session:
        links = (await session.execute(select(func.count()).select_from(DocumentLink))).scalar()
        assert links == 0
    assert (await chain_report(hub)).intact


async def test_a_crash_between_archive_and_delete_loses_nothing(
    hub: Hub, archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = await finished(hub, "631")
    await make_checkpoint(hub.ctx)

    async def crash(*_args: Any, **_kw: Any) -> Any:
        raise RuntimeError("power cut")

    monkeypatch.setattr(retention, "delete_archived", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        await run(hub, archive)
    assert verify_bundle((archive / f"{done}.zip").read_bytes(), hub_cert(hub)).valid
    trace = await hub.http.get(f"/v1/documents/{done}/trace", headers=hub.as_(CITY))
    assert trace.status == 200  # still all there

    monkeypatch.undo()
    summary = await run(hub, archive)
    assert summary.purged == 1
    assert verify_bundle((archive / f"{done}.zip").read_bytes(), hub_cert(hub)).valid
    assert (await chain_report(hub)).intact


async def test_nothing_is_deleted_when_the_archive_cannot_be_written(
    hub: Hub, tmp_path: Path
) -> None:
    done = await finished(hub, "641")
    await make_checkpoint(hub.ctx)
    with pytest.raises(RetentionError, match="does not exist"):
        await purge(
            hub.ctx.store,
            before=LATER,
            certificate=hub_cert(hub),
            hub_id=hub.ctx.hub_id,
            archive_dir=tmp_path / "missing",
        )
    async with hub.ctx.store.read() as session:
        assert await session.get(Document, done) is not None


async def test_a_document_changed_after_archiving_is_kept_for_the_next_run(
    hub: Hub, archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = await finished(hub, "651")
    await make_checkpoint(hub.ctx)
    real_archive = retention.archive

    async def archive_then_event(*args: Any) -> retention.Archived:
        made = await real_archive(*args)
        # A late event about the document arrives between its archiving and the delete.
        async with hub.ctx.store.write() as session:
            from tracking.store import append_event

            await append_event(session, "resent", "admin", document_id=done)
        return made

    monkeypatch.setattr(retention, "archive", archive_then_event)
    summary = await run(hub, archive)
    assert (summary.purged, summary.changed) == (0, [done])
    async with hub.ctx.store.read() as session:
        assert await session.get(Document, done) is not None


TAMPERING = {
    "a tombstone's hash changed": "hash",
    "a tombstone deleted": "delete",
    "an intact event blanked as a tombstone": "blank",
}


@pytest.mark.parametrize("how", TAMPERING.values(), ids=TAMPERING.keys())
async def test_tampering_with_tombstones_is_caught(hub: Hub, archive: Path, how: str) -> None:
    await finished(hub, "661")
    kept = await finished(hub, "662")
    await make_checkpoint(hub.ctx)
    async with hub.ctx.store.write() as session:  # keep the second document out of the purge
        await session.execute(
            update(Delivery).where(Delivery.document_id == kept).values(state="delivered")
        )
    await run(hub, archive)
    await make_checkpoint(hub.ctx)
    async with hub.ctx.store.read() as session:
        tombstones = list(
            (
                await session.execute(
                    select(TraceEvent.seq)
                    .where(TraceEvent.kind == chain.TOMBSTONE)
                    .order_by(TraceEvent.seq)
                )
            ).scalars()
        )
        intact = (
            await session.execute(
                select(func.min(TraceEvent.seq)).where(TraceEvent.document_id == kept)
            )
        ).scalar_one()
    target = tombstones[2]
    async with hub.ctx.store.write() as session:
        if how == "hash":
            await session.execute(
                update(TraceEvent).where(TraceEvent.seq == target).values(hash="f" * 64)
            )
        elif how == "delete":
            await session.execute(delete(TraceEvent).where(TraceEvent.seq == target))
        else:
            target = intact
            await session.execute(
                update(TraceEvent)
                .where(TraceEvent.seq == target)
                .values(kind=chain.TOMBSTONE, actor="", detail="")
            )
    report = await chain_report(hub)
    assert report.problem is not None
    expected = {"hash": "altered", "delete": "removed", "blank": "altered"}[how]
    assert (report.problem.what, report.problem.seq) == (expected, target), report.problem
