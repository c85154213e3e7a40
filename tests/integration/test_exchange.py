"""The exchange spine over HTTP: send, inbox, download, acknowledge, statuses back, trace."""

from __future__ import annotations

import asyncio
import time

from hub.edxml.model import Priority, StatusCode
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
    status,
)


async def test_document_reaches_each_recipient_byte_for_byte(hub: Hub) -> None:
    doc = document(CITY, (BA_DINH, HOAN_KIEM))
    body = signed_document(hub.world, doc)
    response = await hub.http.post("/v1/documents", data=body, headers=hub.as_(CITY))
    assert response.status == 202
    receipt = await response.json()
    assert_matches_openapi("Receipt", receipt)
    assert {d["recipient"] for d in receipt["deliveries"]} == {BA_DINH, HOAN_KIEM}
    assert receipt["receipt"]["size"] == len(body)

    for code in (BA_DINH, HOAN_KIEM):
        inbox = await (await hub.http.get("/v1/inbox", headers=hub.as_(code))).json()
        assert_matches_openapi("Inbox", inbox)
        (item,) = inbox["items"]
        assert item["document_id"] == receipt["document_id"]
        assert item["kind"] == "document" and item["sender"] == CITY
        fetched = await hub.http.get(item["href"], headers=hub.as_(code))
        assert fetched.status == 200
        assert await fetched.read() == body  # the sender's signature stays verifiable
        ack = await hub.http.post(
            f"/v1/deliveries/{item['delivery_id']}/ack",
            json={"result": "done"},
            headers=hub.as_(code),
        )
        answer = await ack.json()
        assert_matches_openapi("AckAnswer", answer)
        assert answer["state"] == "done"
        inbox = await (await hub.http.get("/v1/inbox", headers=hub.as_(code))).json()
        assert inbox["items"] == []


async def test_statuses_travel_back_to_the_sender_and_show_in_the_trace(hub: Hub) -> None:
    doc = document(CITY, (BA_DINH,))
    receipt = await hub.send(doc)
    steps = [
        (StatusCode.ARRIVED, ""),
        (StatusCode.ACCEPTED, "Đã vào sổ"),
        (StatusCode.IN_PROGRESS, "Giao phòng chuyên môn"),
        (StatusCode.IN_PROGRESS, "Đang lấy ý kiến"),  # 05 may repeat
        (StatusCode.FINISHED, "Hoàn thành"),
    ]
    for code, description in steps:
        response = await hub.report(status(BA_DINH, doc, code, description))
        assert response.status == 202, await response.text()
    # The same bytes again are a retry, not a sixth status.
    retry = await hub.report(status(BA_DINH, doc, StatusCode.FINISHED, "Hoàn thành"))
    answer = await retry.json()
    assert_matches_openapi("StatusReceipt", answer)
    assert retry.status == 202 and answer["duplicate"] is True

    inbox = await (await hub.http.get("/v1/inbox", headers=hub.as_(CITY))).json()
    assert_matches_openapi("Inbox", inbox)
    items = inbox["items"]
    assert [i["status_code"] for i in items] == ["01", "03", "05", "05", "06"]
    assert all(i["kind"] == "status" and i["reporter"] == BA_DINH for i in items)
    package = await (await hub.http.get(items[-1]["href"], headers=hub.as_(CITY))).read()
    assert b"<edXML:StatusCode>06</edXML:StatusCode>" in package

    trace = await (
        await hub.http.get(f"/v1/documents/{receipt['document_id']}/trace", headers=hub.as_(CITY))
    ).json()
    assert_matches_openapi("Trace", trace)
    (recipient,) = trace["recipients"]
    assert recipient["recipient"] == BA_DINH and recipient["business"] == "06"
    kinds = [e["kind"] for e in trace["events"]]
    assert kinds[:3] == ["received", "validated", "stored"]
    assert [e["detail"]["code"] for e in trace["events"] if e["kind"] == "status"] == [
        "01",
        "03",
        "05",
        "05",
        "06",
    ]


async def test_rejection_with_reason_reaches_the_sender(hub: Hub) -> None:
    doc = document(BA_DINH, (PHUC_XA,))
    await hub.send(doc)
    assert (await hub.report(status(PHUC_XA, doc, StatusCode.ARRIVED))).status == 202
    assert (
        await hub.report(status(PHUC_XA, doc, StatusCode.REJECTED, "Thiếu chữ ký số"))
    ).status == 202
    items = (await (await hub.http.get("/v1/inbox", headers=hub.as_(BA_DINH))).json())["items"]
    assert items[-1]["status_code"] == "02"
    body = await (await hub.http.get(items[-1]["href"], headers=hub.as_(BA_DINH))).read()
    assert "Thiếu chữ ký số".encode() in body
    # Nothing follows a rejection.
    late = await hub.report(status(PHUC_XA, doc, StatusCode.ACCEPTED))
    assert late.status == 409
    assert (await late.json())["code"] == "status.transition"


async def test_invalid_and_duplicate_statuses_are_refused_with_the_rule(hub: Hub) -> None:
    doc = document(CITY, (BA_DINH,))
    await hub.send(doc)
    assert (await hub.report(status(BA_DINH, doc, StatusCode.ACCEPTED))).status == 202
    backwards = await hub.report(status(BA_DINH, doc, StatusCode.ARRIVED))
    assert backwards.status == 409
    problem = await backwards.json()
    assert_matches_openapi("Problem", problem)
    assert problem["code"] == "status.transition" and "cannot follow 03" in problem["detail"]
    again = await hub.report(status(BA_DINH, doc, StatusCode.ACCEPTED, "lần hai"))
    assert (await again.json())["code"] == "status.duplicate"
    stray_answer = await hub.report(status(BA_DINH, doc, StatusCode.RECALL_AGREED))
    assert (await stray_answer.json())["code"] == "status.transition"


async def test_recall_handshake_13_then_15(hub: Hub) -> None:
    doc = document(CITY, (BA_DINH, HOAN_KIEM))
    receipt = await hub.send(doc)
    request = await hub.report(
        status(CITY, doc, StatusCode.RECALL_REQUEST, "Ban hành nhầm", about=BA_DINH)
    )
    assert request.status == 202, await request.text()
    assert (await request.json())["delivery"]["recipient"] == BA_DINH
    items = (await (await hub.http.get("/v1/inbox", headers=hub.as_(BA_DINH))).json())["items"]
    assert [i.get("status_code") for i in items if i["kind"] == "status"] == ["13"]
    assert (await hub.report(status(BA_DINH, doc, StatusCode.RECALL_AGREED))).status == 202
    trace = await (
        await hub.http.get(f"/v1/documents/{receipt['document_id']}/trace", headers=hub.as_(CITY))
    ).json()
    states = {r["recipient"]: r["business"] for r in trace["recipients"]}
    assert states == {BA_DINH: "15", HOAN_KIEM: None}


async def test_retried_submission_is_stored_once(hub: Hub) -> None:
    doc = document(CITY, (BA_DINH,))
    body = signed_document(hub.world, doc)
    first = await (await hub.http.post("/v1/documents", data=body, headers=hub.as_(CITY))).json()
    second = await (await hub.http.post("/v1/documents", data=body, headers=hub.as_(CITY))).json()
    assert second["duplicate"] is True and first["duplicate"] is False
    assert second["document_id"] == first["document_id"]
    assert second["deliveries"] == first["deliveries"]
    assert (await hub.counts())["documents"] == 1


async def test_inbox_orders_by_priority_then_age(hub: Hub) -> None:
    for number, priority in (
        ("1", Priority.NORMAL),
        ("2", Priority.FLASH),
        ("3", Priority.URGENT),
        ("4", Priority.FLASH),
    ):
        await hub.send(document(CITY, (BA_DINH,), number=number, priority=priority))
    items = (await (await hub.http.get("/v1/inbox", headers=hub.as_(BA_DINH))).json())["items"]
    assert [i["edxml_document_id"].rsplit(",", 1)[1].split("/")[0] for i in items] == [
        "2",
        "4",
        "3",
        "1",
    ]


async def test_long_poll_wakes_when_a_document_arrives(hub: Hub) -> None:
    started = time.monotonic()
    waiting = asyncio.create_task(
        hub.http.get("/v1/inbox", params={"wait": "20"}, headers=hub.as_(BA_DINH))
    )
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await hub.send(document(CITY, (BA_DINH,)))
    response = await asyncio.wait_for(waiting, 10)
    assert len((await response.json())["items"]) == 1
    assert time.monotonic() - started < 10  # woken, not timed out


async def test_long_poll_returns_empty_after_the_wait(hub: Hub) -> None:
    response = await hub.http.get("/v1/inbox", params={"wait": "0.2"}, headers=hub.as_(BA_DINH))
    assert (await response.json())["items"] == []


async def test_acknowledgement_is_idempotent_and_fail_needs_a_reason(hub: Hub) -> None:
    receipt = await hub.send(document(CITY, (BA_DINH,)))
    delivery = receipt["deliveries"][0]["delivery_id"]
    url = f"/v1/deliveries/{delivery}/ack"
    no_reason = await hub.http.post(url, json={"result": "fail"}, headers=hub.as_(BA_DINH))
    assert no_reason.status == 400
    first = await (
        await hub.http.post(url, json={"result": "done"}, headers=hub.as_(BA_DINH))
    ).json()
    again = await (
        await hub.http.post(url, json={"result": "done"}, headers=hub.as_(BA_DINH))
    ).json()
    assert first["changed"] is True and again["changed"] is False and again["state"] == "done"
    contradict = await hub.http.post(
        url, json={"result": "fail", "reason": "x"}, headers=hub.as_(BA_DINH)
    )
    assert contradict.status == 409
    kinds = [k for k, _, _ in await hub.events()]
    assert kinds.count("acknowledged") == 1


async def test_recipient_sees_only_its_own_part_of_the_trace(hub: Hub) -> None:
    doc = document(CITY, (BA_DINH, HOAN_KIEM))
    receipt = await hub.send(doc)
    await hub.report(status(HOAN_KIEM, doc, StatusCode.ARRIVED))
    view = await (
        await hub.http.get(
            f"/v1/documents/{receipt['document_id']}/trace", headers=hub.as_(BA_DINH)
        )
    ).json()
    assert [r["recipient"] for r in view["recipients"]] == [BA_DINH]
    assert not any(e["kind"] == "status" for e in view["events"])
    auditor = await (
        await hub.http.get(
            f"/v1/documents/{receipt['document_id']}/trace", headers=hub.as_(AUDITOR)
        )
    ).json()
    assert {r["recipient"] for r in auditor["recipients"]} == {BA_DINH, HOAN_KIEM}


async def test_auditor_reads_any_document_and_every_event_is_chained(hub: Hub) -> None:
    doc = document(CITY, (BA_DINH,))
    receipt = await hub.send(doc)
    response = await hub.http.get(
        f"/v1/documents/{receipt['document_id']}", headers=hub.as_(AUDITOR)
    )
    assert response.status == 200
    trace = await (
        await hub.http.get(
            f"/v1/documents/{receipt['document_id']}/trace", headers=hub.as_(AUDITOR)
        )
    ).json()
    hashes = [e["hash"] for e in trace["events"]]
    assert len(set(hashes)) == len(hashes)


async def test_openapi_document_is_served(hub: Hub) -> None:
    response = await hub.http.get("/v1/openapi.json")
    spec = await response.json()
    assert spec["openapi"].startswith("3.1")
    for path in (
        "/v1/documents",
        "/v1/inbox",
        "/v1/documents/{id}",
        "/v1/deliveries/{id}/ack",
        "/v1/status",
        "/v1/documents/{id}/trace",
    ):
        assert path in spec["paths"], path
