"""Revoke, update and replace (BussinessDocType 1–3), recall 13 → 16, and duplicate documents."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import select

from hub.edxml.model import (
    Business,
    BusinessType,
    DocumentPackage,
    Receiver,
    ReceiverType,
    Replacement,
    StatusCode,
)
from tests.support import (
    BA_DINH,
    CITY,
    HOAN_KIEM,
    PHUC_XA,
    Hub,
    assert_matches_openapi,
    document,
    signed_document,
    status,
)
from tracking.models import DocumentLink


def acting_on(original: DocumentPackage, kind: BusinessType, **business: Any) -> DocumentPackage:
    """A package of business type *kind* about *original*, sent as the SDK does: same sender."""
    return replace(
        original,
        subject=f"{original.subject} ({kind.name.lower()})",
        business=Business(business_type=kind, reason=f"Lý do: {kind.name.lower()}", **business),
    )


async def trace_of(hub: Hub, document_id: str, as_: str = CITY) -> dict[str, Any]:
    response = await hub.http.get(f"/v1/documents/{document_id}/trace", headers=hub.as_(as_))
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    assert_matches_openapi("Trace", body)
    return body


async def inbox(hub: Hub, code: str) -> list[dict[str, Any]]:
    body = await (await hub.http.get("/v1/inbox", headers=hub.as_(code))).json()
    assert_matches_openapi("Inbox", body)
    return list(body["items"])


async def links(hub: Hub) -> set[tuple[str, str, str]]:
    async with hub.ctx.store.read() as session:
        rows = (await session.execute(select(DocumentLink))).scalars()
        return {(r.document_id, r.earlier_document_id, r.relation) for r in rows}


async def test_new_document_reusing_a_document_id_is_refused_with_the_existing_id(hub: Hub) -> None:
    first = await hub.send(document(CITY, (BA_DINH,), subject="Bản gốc"))
    before = await hub.counts()
    response = await hub.post_document(document(CITY, (BA_DINH,), subject="Bản khác, cùng số"))
    assert response.status == 409
    problem = await response.json()
    assert_matches_openapi("Problem", problem)
    assert problem["code"] == "document.duplicate"
    assert problem["existing_document_id"] == first["document_id"]
    assert await hub.counts() == before


async def test_revoke_links_to_the_earlier_document_and_shows_in_its_trace(hub: Hub) -> None:
    original = document(CITY, (BA_DINH, HOAN_KIEM))
    first = await hub.send(original)
    # The official SDK's revoke carries no Bussiness/DocumentId: the header's DocumentId names it.
    revoke = await hub.send(acting_on(original, BusinessType.REVOKE))
    assert revoke["document_id"] != first["document_id"]
    assert await links(hub) == {(revoke["document_id"], first["document_id"], "revokes")}

    earlier = await trace_of(hub, first["document_id"])
    (event,) = [e for e in earlier["events"] if e["kind"] == "revoked"]
    assert event["detail"]["by_document"] == revoke["document_id"]
    assert event["detail"]["reason"] == "Lý do: revoke"
    for code in (BA_DINH, HOAN_KIEM):
        assert revoke["document_id"] in {i["document_id"] for i in await inbox(hub, code)}


async def test_update_adds_and_removes_recipients(hub: Hub) -> None:
    original = document(CITY, (BA_DINH, HOAN_KIEM))
    first = await hub.send(original)
    update = acting_on(
        original,
        BusinessType.UPDATE,
        document_id=original.document_id,
        document_info="1",
        document_receiver="1",
        receivers=(
            Receiver(PHUC_XA, ReceiverType.ADDED),
            Receiver(HOAN_KIEM, ReceiverType.REMOVED),
        ),
    )
    update = replace(update, recipients=update.recipients[:1])  # To: Ba Đình only
    receipt = await hub.send(update)
    assert {d["recipient"] for d in receipt["deliveries"]} == {BA_DINH, PHUC_XA, HOAN_KIEM}

    (added,) = [i for i in await inbox(hub, PHUC_XA) if i["document_id"] == receipt["document_id"]]
    assert added["note"] == "added by update"
    (removed,) = [
        i for i in await inbox(hub, HOAN_KIEM) if i["document_id"] == receipt["document_id"]
    ]
    assert removed["note"] == "removed by update (notice)"
    (plain,) = [i for i in await inbox(hub, BA_DINH) if i["document_id"] == receipt["document_id"]]
    assert "note" not in plain

    earlier = await trace_of(hub, first["document_id"])
    (event,) = [e for e in earlier["events"] if e["kind"] == "updated"]
    assert event["detail"]["receivers"] == {
        PHUC_XA: "added by update",
        HOAN_KIEM: "removed by update (notice)",
    }
    later = await trace_of(hub, receipt["document_id"])
    notes = {r["recipient"]: r["note"] for r in later["recipients"]}
    assert notes == {
        BA_DINH: None,
        PHUC_XA: "added by update",
        HOAN_KIEM: "removed by update (notice)",
    }


async def test_replace_links_every_replaced_document(hub: Hub) -> None:
    one = await hub.send(document(CITY, (BA_DINH,), number="1"))
    two = await hub.send(document(CITY, (BA_DINH,), number="2"))
    replacement = replace(
        document(CITY, (BA_DINH,), number="3"),
        business=Business(
            business_type=BusinessType.REPLACE,
            reason="Thay thế văn bản số 1 và 2",
            replacements=(
                Replacement(f"{CITY},2026/11/22,1/UBND-VP", (BA_DINH,)),
                Replacement(f"{CITY},2026/11/22,2/UBND-VP", (BA_DINH,)),
            ),
        ),
    )
    receipt = await hub.send(replacement)
    assert await links(hub) == {
        (receipt["document_id"], one["document_id"], "replaces"),
        (receipt["document_id"], two["document_id"], "replaces"),
    }
    for earlier in (one, two):
        kinds = [e["kind"] for e in (await trace_of(hub, earlier["document_id"]))["events"]]
        assert "replaced" in kinds


async def test_acting_on_a_document_never_sent_is_refused(hub: Hub) -> None:
    before = await hub.counts()
    stray = acting_on(document(CITY, (BA_DINH,), number="404"), BusinessType.REVOKE)
    response = await hub.post_document(stray)
    assert response.status == 422
    problem = await response.json()
    assert problem["code"] == "business.document_unknown"
    assert "404/UBND-VP" in problem["detail"]
    assert await hub.counts() == before


async def test_revoke_sent_twice_is_a_retry(hub: Hub) -> None:
    original = document(CITY, (BA_DINH,))
    await hub.send(original)
    body = signed_document(hub.world, acting_on(original, BusinessType.REVOKE))
    first = await (await hub.http.post("/v1/documents", data=body, headers=hub.as_(CITY))).json()
    again = await (await hub.http.post("/v1/documents", data=body, headers=hub.as_(CITY))).json()
    assert again["duplicate"] is True and again["document_id"] == first["document_id"]


async def test_recall_refused_16_keeps_the_document_with_the_recipient(hub: Hub) -> None:
    doc = document(CITY, (BA_DINH,))
    receipt = await hub.send(doc)
    assert (await hub.report(status(BA_DINH, doc, StatusCode.ACCEPTED, "Đã vào sổ"))).status == 202
    asked = await hub.report(
        status(CITY, doc, StatusCode.RECALL_REQUEST, "Ban hành nhầm", about=BA_DINH)
    )
    assert asked.status == 202
    assert (
        await hub.report(status(BA_DINH, doc, StatusCode.RECALL_REFUSED, "Đã xử lý"))
    ).status == 202
    (recipient,) = (await trace_of(hub, receipt["document_id"]))["recipients"]
    assert recipient["business"] == "03" and recipient["recall_pending"] is False
    # The refusal travelled back to the sender.
    assert [i["status_code"] for i in await inbox(hub, CITY)] == ["03", "16"]
    # Work goes on after a refused recall.
    assert (await hub.report(status(BA_DINH, doc, StatusCode.FINISHED, "Xong"))).status == 202
