"""Finding documents, what each role may read, and the audit trail of auditors' reads."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hub.edxml.model import StatusCode
from tests.support import (
    ADMIN,
    AUDITOR,
    BA_DINH,
    CITY,
    DEPT,
    HOAN_KIEM,
    PHUC_XA,
    TRACE_AUDITOR,
    Hub,
    assert_matches_openapi,
    document,
    status,
)


async def find(hub: Hub, as_: str, **params: str) -> dict[str, Any]:
    response = await hub.http.get("/v1/documents", params=params, headers=hub.as_(as_))
    assert response.status == 200, await response.text()
    body = await response.json()
    assert_matches_openapi("DocumentSearch", body)
    return dict(body)


def ids(page: dict[str, Any]) -> list[str]:
    return [item["document_id"] for item in page["items"]]


async def test_an_agency_finds_what_it_sent_or_was_sent_and_nothing_else(hub: Hub) -> None:
    to_ba_dinh = await hub.send(document(CITY, (BA_DINH, HOAN_KIEM), number="1"))
    from_ba_dinh = await hub.send(document(BA_DINH, (PHUC_XA,), number="2"))
    elsewhere = await hub.send(document(CITY, (DEPT,), number="3"))
    found = await find(hub, BA_DINH)
    assert ids(found) == [from_ba_dinh["document_id"], to_ba_dinh["document_id"]]  # newest first
    (received,) = [i for i in found["items"] if i["document_id"] == to_ba_dinh["document_id"]]
    assert [r["recipient"] for r in received["recipients"]] == [BA_DINH]  # not Hoàn Kiếm's state
    assert elsewhere["document_id"] not in ids(await find(hub, BA_DINH, q="3"))
    everything = await find(hub, AUDITOR)
    assert len(everything["items"]) == 3


async def test_filters_combine(hub: Hub) -> None:
    storm = document(CITY, (BA_DINH, HOAN_KIEM), number="11", subject="Về phòng chống bão")
    first = await hub.send(storm)
    await hub.send(document(CITY, (DEPT,), number="12", subject="Về kế hoạch năm"))
    await hub.send(document(BA_DINH, (PHUC_XA,), number="13", subject="Về bão số 3"))
    assert ids(await find(hub, AUDITOR, sender=CITY, q="bão")) == [first["document_id"]]
    assert ids(await find(hub, AUDITOR, recipient=HOAN_KIEM)) == [first["document_id"]]
    assert ids(await find(hub, AUDITOR, q="11/UBND")) == [first["document_id"]]
    assert (await find(hub, AUDITOR, q="100%"))["items"] == []  # % is a character here
    # Ba Đình accepts (03) and acknowledges the first document; Hoàn Kiếm does neither.
    assert (await hub.report(status(BA_DINH, storm, StatusCode.ACCEPTED))).status == 202
    assert ids(await find(hub, AUDITOR, status="03")) == [first["document_id"]]
    assert ids(await find(hub, HOAN_KIEM, status="03")) == []  # its own state is not 03
    ba_dinh = next(d for d in first["deliveries"] if d["recipient"] == BA_DINH)
    await hub.http.post(
        f"/v1/deliveries/{ba_dinh['delivery_id']}/ack",
        json={"result": "done"},
        headers=hub.as_(BA_DINH),
    )
    assert ids(await find(hub, CITY, state="done")) == [first["document_id"]]
    assert ids(await find(hub, HOAN_KIEM, state="done")) == []
    hour_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    assert len((await find(hub, AUDITOR, since=hour_ago))["items"]) == 3
    assert (await find(hub, AUDITOR, until=hour_ago))["items"] == []


async def test_pages_follow_the_cursor_without_repeats_or_gaps(hub: Hub) -> None:
    sent = [
        (await hub.send(document(CITY, (BA_DINH,), number=str(n))))["document_id"]
        for n in range(1, 8)
    ]
    page = await find(hub, CITY, limit="3")
    seen = ids(page)
    late = await hub.send(document(CITY, (BA_DINH,), number="99"))  # arrives while paging
    while page["next_cursor"]:
        page = await find(hub, CITY, limit="3", cursor=page["next_cursor"])
        seen += ids(page)
    assert seen == list(reversed(sent))
    assert late["document_id"] not in seen


async def test_bad_queries_are_refused_with_the_parameter_named(hub: Hub) -> None:
    for params, word in (
        ({"state": "sent"}, "state"),
        ({"status": "07"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"limit": "0"}, "limit"),
        ({"cursor": "!!!"}, "cursor"),
        ({"colour": "red"}, "colour"),
    ):
        response = await hub.http.get("/v1/documents", params=params, headers=hub.as_(CITY))
        assert response.status == 400, params
        problem = await response.json()
        assert problem["code"] == "request.invalid" and word in problem["detail"]
    admin = await hub.http.get("/v1/documents", headers=hub.as_(ADMIN))
    assert admin.status == 403


async def test_an_auditor_reads_traces_but_bodies_only_with_the_right(hub: Hub) -> None:
    receipt = await hub.send(document(CITY, (BA_DINH,)))
    url = f"/v1/documents/{receipt['document_id']}"
    trace = await hub.http.get(url + "/trace", headers=hub.as_(TRACE_AUDITOR))
    assert trace.status == 200
    refused = await hub.http.get(url, headers=hub.as_(TRACE_AUDITOR))
    assert refused.status == 403
    problem = await refused.json()
    assert problem["code"] == "forbidden" and "read_bodies" in problem["detail"]
    granted = await hub.http.get(url, headers=hub.as_(AUDITOR))
    assert granted.status == 200


async def test_every_auditor_read_is_recorded_in_the_chain_and_no_agency_read_is(hub: Hub) -> None:
    receipt = await hub.send(document(CITY, (BA_DINH,)))
    url = f"/v1/documents/{receipt['document_id']}"
    await hub.http.get(url + "/trace", headers=hub.as_(CITY))
    await find(hub, CITY)
    before = [e for e in await hub.events() if e[0] == "audit_access"]
    assert before == []
    await hub.http.get(url + "/trace", headers=hub.as_(AUDITOR))
    await hub.http.get(url, headers=hub.as_(AUDITOR))
    await find(hub, AUDITOR, sender=CITY)
    accesses = [
        (actor, detail) for kind, actor, detail in await hub.events() if kind == "audit_access"
    ]
    assert accesses == [
        (AUDITOR, {"what": "trace", "document_id": receipt["document_id"]}),
        (AUDITOR, {"what": "document", "document_id": receipt["document_id"]}),
        (AUDITOR, {"what": "search", "query": {"sender": CITY}, "results": 1}),
    ]
    # The document's own trace, which its sender reads, does not show who audited it.
    trace = await (await hub.http.get(url + "/trace", headers=hub.as_(CITY))).json()
    assert "audit_access" not in [e["kind"] for e in trace["events"]]


async def test_the_sender_sees_who_has_not_acknowledged_or_finished(hub: Hub) -> None:
    doc = document(CITY, (BA_DINH, HOAN_KIEM))
    receipt = await hub.send(doc)
    url = f"/v1/documents/{receipt['document_id']}/trace"
    summary = (await (await hub.http.get(url, headers=hub.as_(CITY))).json())["summary"]
    assert summary == {
        "recipients": 2,
        "not_acknowledged": [BA_DINH, HOAN_KIEM],
        "not_finished": [BA_DINH, HOAN_KIEM],
        "overdue": [],
    }
    ba_dinh = next(d for d in receipt["deliveries"] if d["recipient"] == BA_DINH)
    await hub.http.post(
        f"/v1/deliveries/{ba_dinh['delivery_id']}/ack",
        json={"result": "done"},
        headers=hub.as_(BA_DINH),
    )
    assert (await hub.report(status(BA_DINH, doc, StatusCode.FINISHED))).status == 202
    trace = await (await hub.http.get(url, headers=hub.as_(CITY))).json()
    assert_matches_openapi("Trace", trace)
    assert trace["summary"] == {
        "recipients": 2,
        "not_acknowledged": [HOAN_KIEM],
        "not_finished": [HOAN_KIEM],
        "overdue": [],
    }
