"""Hub-signed receipts through the API: on intake, and for the sender on every acknowledgement."""

from __future__ import annotations

import hashlib

from cryptography import x509

from signing.receipts import verify_receipt
from tests.support import (
    AUDITOR,
    BA_DINH,
    CITY,
    HOAN_KIEM,
    PHUC_XA,
    Hub,
    assert_matches_openapi,
    document,
    signed_document,
)


def hub_cert(hub: Hub) -> x509.Certificate:
    assert hub.world.hub is not None
    return hub.world.hub.certificate


async def test_the_202_answer_carries_a_signed_submission_receipt(hub: Hub) -> None:
    doc = document(number="301")
    body = signed_document(hub.world, doc)
    response = await hub.http.post("/v1/documents", data=body, headers=hub.as_(CITY))
    assert response.status == 202
    answer = await response.json()
    assert_matches_openapi("Receipt", answer)
    signed = answer["signed_receipt"]
    assert signed["kind"] == "submission"

    verified = verify_receipt(signed["jws"], hub_cert(hub))  # the hub's certificate alone
    p = verified.payload
    assert p["kind"] == "submission"
    assert p["receipt_id"] == signed["receipt_id"]
    assert p["hub"] == "test-hub"
    assert p["document_id"] == answer["document_id"]
    assert p["edxml_document_id"] == doc.document_id
    assert p["package_sha256"] == hashlib.sha256(body).hexdigest()
    assert p["size"] == len(body)
    assert p["sender"] == CITY
    assert p["recipients"] == [BA_DINH, HOAN_KIEM]

    # A retry gets the very same receipt; nothing new is signed.
    again = await (await hub.http.post("/v1/documents", data=body, headers=hub.as_(CITY))).json()
    assert again["duplicate"] is True
    assert again["signed_receipt"] == signed

    # The stored event names it, and the sender (only) can fetch it again.
    trace = await (
        await hub.http.get(f"/v1/documents/{answer['document_id']}/trace", headers=hub.as_(CITY))
    ).json()
    (stored,) = [e for e in trace["events"] if e["kind"] == "stored"]
    assert stored["detail"]["receipt_id"] == signed["receipt_id"]
    fetched = await hub.http.get(f"/v1/receipts/{signed['receipt_id']}", headers=hub.as_(CITY))
    assert fetched.status == 200
    assert await fetched.json() == signed
    for other in (BA_DINH, PHUC_XA):
        refused = await hub.http.get(f"/v1/receipts/{signed['receipt_id']}", headers=hub.as_(other))
        assert refused.status == 404
    audited = await hub.http.get(f"/v1/receipts/{signed['receipt_id']}", headers=hub.as_(AUDITOR))
    assert audited.status == 200


async def test_each_acknowledgement_gives_the_sender_a_delivery_receipt(hub: Hub) -> None:
    answer = await hub.send(document(number="302"))
    deliveries = {d["recipient"]: d["delivery_id"] for d in answer["deliveries"]}
    assert (await hub.http.get("/v1/inbox", headers=hub.as_(CITY))).status == 200
    assert (await (await hub.http.get("/v1/inbox", headers=hub.as_(CITY))).json())["items"] == []

    ok = await hub.http.post(
        f"/v1/deliveries/{deliveries[BA_DINH]}/ack",
        json={"result": "done"},
        headers=hub.as_(BA_DINH),
    )
    assert ok.status == 200
    reason = "Tệp đính kèm bị hỏng"
    failed = await hub.http.post(
        f"/v1/deliveries/{deliveries[HOAN_KIEM]}/ack",
        json={"result": "fail", "reason": reason},
        headers=hub.as_(HOAN_KIEM),
    )
    assert failed.status == 200
    # Repeating an acknowledgement changes nothing and issues nothing.
    await hub.http.post(
        f"/v1/deliveries/{deliveries[BA_DINH]}/ack",
        json={"result": "done"},
        headers=hub.as_(BA_DINH),
    )

    inbox = (await (await hub.http.get("/v1/inbox", headers=hub.as_(CITY))).json())["items"]
    assert [i["kind"] for i in inbox] == ["receipt", "receipt"]
    results = {}
    for item in inbox:
        assert_matches_openapi("InboxItem", item)
        assert item["document_id"] == answer["document_id"]
        response = await hub.http.get(item["href"], headers=hub.as_(CITY))
        assert response.status == 200
        signed = await response.json()
        assert_matches_openapi("SignedReceipt", signed)
        assert signed["receipt_id"] == item["receipt_id"]
        p = verify_receipt(signed["jws"], hub_cert(hub)).payload
        assert p["kind"] == "delivery"
        assert p["sender"] == CITY
        assert p["delivery_id"] == deliveries[p["recipient"]]
        assert p["package_sha256"] == answer["receipt"]["package_sha256"]
        results[p["recipient"]] = (p["result"], p["reason"])
        # Downloading it moved the item to delivered; the sender acknowledges it like any item.
        ack = await hub.http.post(
            f"/v1/deliveries/{item['delivery_id']}/ack",
            json={"result": "done"},
            headers=hub.as_(CITY),
        )
        assert (await ack.json())["state"] == "done"
    assert results == {BA_DINH: ("done", ""), HOAN_KIEM: ("fail", reason)}
    assert (await (await hub.http.get("/v1/inbox", headers=hub.as_(CITY))).json())["items"] == []

    # Acknowledging a receipt issues no receipt of a receipt.
    assert (await hub.counts())["deliveries"] == 4
    events = [(k, d) for k, _a, d in await hub.events() if k in ("acknowledged", "failed")]
    assert sum(1 for _k, d in events if "receipt_id" in d) == 2
