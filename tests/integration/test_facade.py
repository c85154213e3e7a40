"""The national-axis facade (/vxp) played by an SDK-shaped client against a real hub.

The client below does on the wire what SDKVXP 2.0.1 does: POST ``<endpoint>/<verb>``, every
key of the application's JSON header sent as an ``XroadVnpt-<key>`` HTTP header next to the
SDK's own ``systemid``, ``timestamp`` and HMAC headers; sendEdoc's package as the raw body
followed by CRLF, with its ``hash-file``; it reads ``status``/``ErrorCode``/``ErrorDesc`` and
the verb's fields. Its credential travels as the header key ``token``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
from typing import Any

import aiohttp
import pytest

from hub.edxml.model import StatusCode
from hub.edxml.writer import write_document
from tests.conftest import TEST_MAX_BODY
from tests.support import (
    AGENCIES,
    AUDITOR,
    BA_DINH,
    CITY,
    HOAN_KIEM,
    Hub,
    assert_matches_openapi,
    document,
    signed_document,
    signed_status,
    status,
)


class Sdk:
    """An agency system using the national axis's SDK, configured for this hub."""

    def __init__(self, hub: Hub, code: str, *, token: str | None = None) -> None:
        self.hub, self.code = hub, code
        self.token = hub.world.accounts[code].token if token is None else token

    def headers(
        self, json_header: dict[str, str], *, system_id: str | None = None
    ) -> dict[str, str]:
        sdk = {"timestamp": "22112026T101500+0000", "systemid": system_id or self.code}
        sdk.update(json_header)
        if self.token:
            sdk["token"] = self.token
        out = {f"XroadVnpt-{k}": v for k, v in sdk.items()}
        signed = json.dumps(out, separators=(",", ":"))
        out["XroadVnpt-sign-header-key"] = ";".join(sdk)
        out["XroadVnpt-sign-header"] = signed
        out["XroadVnpt-hash-header"] = hmac.new(
            b"sdk-secret", signed.encode(), "sha256"
        ).hexdigest()
        out["XroadVnpt-version"] = "3.0.201608"
        out["User-Agent"] = "JAVASDKAgent/1.0.0 XRoad/VPCP"
        return out

    async def call(
        self,
        verb: str,
        json_header: dict[str, str] | None = None,
        *,
        system_id: str | None = None,
        data: Any = None,
        content_type: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        headers = self.headers(json_header or {}, system_id=system_id)
        if content_type:
            headers["Content-Type"] = content_type
        response = await self.hub.http.post(f"/vxp/{verb}", headers=headers, data=data)
        assert response.content_type == "application/json", await response.text()
        return response.status, dict(await response.json())

    async def send_edoc(
        self,
        package: bytes,
        *,
        messagetype: str = "edoc",
        system_id: str | None = None,
        **header: str,
    ) -> tuple[int, dict[str, Any]]:
        """As the SDK uploads: the file's bytes then CRLF as the raw body, with the hash of the
        file in the SDK's format (hex bytes without leading zeros)."""
        json_header = {
            "from": self.code,
            "servicetype": "eDoc",
            "messagetype": messagetype,
            "hash-file": "".join(format(b, "x") for b in hashlib.sha256(package).digest()),
        }
        return await self.call(
            "sendEdoc",
            {**json_header, **header},
            system_id=system_id,
            data=io.BytesIO(package + b"\r\n"),
            content_type="application/octet-stream",
        )


def no_nulls(value: Any) -> bool:
    """The SDK reads fields with gson's getAsString(), which throws on a JSON null."""
    if isinstance(value, dict):
        return all(no_nulls(v) for v in value.values())
    if isinstance(value, list):
        return all(no_nulls(v) for v in value)
    return value is not None


def assert_ok(answer: dict[str, Any]) -> None:
    assert (answer["status"], answer["ErrorCode"]) == ("OK", "0"), answer
    assert no_nulls(answer), answer


async def test_an_sdk_client_sends_receives_acknowledges_and_follows_statuses(
    facade_hub: Hub,
) -> None:
    city, ba_dinh = Sdk(facade_hub, CITY), Sdk(facade_hub, BA_DINH)
    doc = document(CITY, (BA_DINH, HOAN_KIEM), subject="V/v triển khai liên thông văn bản")
    package = signed_document(facade_hub.world, doc)

    code, sent = await city.send_edoc(package)
    assert code == 200
    assert_ok(sent)
    assert_matches_openapi("SdkSendAnswer", sent)
    doc_id = sent["DocId"]
    assert sent["lienthong"]["document_id"] == doc_id
    assert sent["lienthong"]["receipt"]["package_sha256"] == hashlib.sha256(package).hexdigest()

    code, listed = await ba_dinh.call(
        "getReceivedEdocList", {"servicetype": "eDoc", "messagetype": "edoc"}
    )
    assert_ok(listed)
    assert_matches_openapi("SdkReceivedList", listed)
    (item,) = listed["data"]
    assert (item["from"], item["to"], item["messageType"]) == (CITY, BA_DINH, "edoc")
    assert item["serviceType"] == "eDoc" and item["status"] == "queued"
    assert item["lienthong"]["document_id"] == doc_id

    code, got = await ba_dinh.call("getEdoc", {"filePath": "xml", "docId": item["docId"]})
    assert_ok(got)
    assert_matches_openapi("SdkEdoc", got)
    assert base64.b64decode(got["data"]) == package  # byte for byte: the signature still holds

    code, acked = await ba_dinh.call("updateStatus", {"status": "done", "docId": item["docId"]})
    assert_ok(acked)
    assert_matches_openapi("SdkUpdateStatusAnswer", acked)
    assert acked["lienthong"]["state"] == "done"
    code, listed = await ba_dinh.call("getReceivedEdocList", {"messagetype": "edoc"})
    assert listed["data"] == []

    # A business status goes back signed, through the same send call as the SDK's.
    report = signed_status(facade_hub.world, status(BA_DINH, doc, StatusCode.ACCEPTED, "Đã vào sổ"))
    code, reported = await ba_dinh.send_edoc(report, messagetype="status")
    assert code == 200
    assert_ok(reported)
    assert reported["lienthong"]["code"] == "03"

    code, statuses = await city.call("getReceivedEdocList", {"messagetype": "status"})
    (status_item,) = statuses["data"]
    assert (status_item["from"], status_item["messageType"]) == (BA_DINH, "status")
    code, got = await city.call("getEdoc", {"docId": status_item["docId"]})
    assert base64.b64decode(got["data"]) == report
    # The documents list holds documents only: the sender's delivery receipts stay in /v1.
    code, documents = await city.call("getReceivedEdocList", {"messagetype": "edoc"})
    assert documents["data"] == []

    code, sent_list = await city.call("getSentEdocList", {"servicetype": "eDoc"})
    assert_ok(sent_list)
    assert_matches_openapi("SdkSentList", sent_list)
    rows = {row["toCode"]: row for row in sent_list["data"]}
    assert set(rows) == {BA_DINH, HOAN_KIEM}
    assert rows[BA_DINH]["receiverDocId"] == item["docId"]
    assert all(r["senderDocId"] == doc_id and r["fromCode"] == CITY for r in rows.values())
    assert rows[BA_DINH]["title"] == "V/v triển khai liên thông văn bản"
    assert (rows[BA_DINH]["sendStatus"], rows[BA_DINH]["receiveStatus"]) == ("done", "03")
    assert "receivedTime" in rows[BA_DINH]
    assert rows[HOAN_KIEM]["sendStatus"] == "queued"
    assert "receiveStatus" not in rows[HOAN_KIEM] and "receivedTime" not in rows[HOAN_KIEM]

    # The same facts through the hub's own API.
    trace = await facade_hub.http.get(f"/v1/documents/{doc_id}/trace", headers=facade_hub.as_(CITY))
    recipients = {r["recipient"]: r for r in (await trace.json())["recipients"]}
    assert (recipients[BA_DINH]["transport"], recipients[BA_DINH]["business"]) == ("done", "03")

    other = signed_document(facade_hub.world, document(CITY, (BA_DINH,), number="13"))
    code, second = await city.send_edoc(other)
    code, one = await city.call("getSentEdocList", {"docId": second["DocId"]})
    assert [r["senderDocId"] for r in one["data"]] == [second["DocId"]]


async def test_a_sender_reads_its_own_document_back_by_its_doc_id(facade_hub: Hub) -> None:
    city = Sdk(facade_hub, CITY)
    package = signed_document(facade_hub.world, document(CITY, (BA_DINH,)))
    _, sent = await city.send_edoc(package)
    _, got = await city.call("getEdoc", {"docId": sent["DocId"]})
    assert base64.b64decode(got["data"]) == package
    # Sent again after a lost answer: the same document, no second copy.
    _, again = await city.send_edoc(package)
    assert again["DocId"] == sent["DocId"] and again["lienthong"]["duplicate"] is True


async def test_a_failed_acknowledgement_without_a_reason_is_recorded_as_the_sdk_sends_it(
    facade_hub: Hub,
) -> None:
    await Sdk(facade_hub, CITY).send_edoc(
        signed_document(facade_hub.world, document(CITY, (BA_DINH,)))
    )
    ba_dinh = Sdk(facade_hub, BA_DINH)
    _, listed = await ba_dinh.call("getReceivedEdocList")
    (item,) = listed["data"]
    _, failed = await ba_dinh.call("updateStatus", {"status": "fail", "docId": item["docId"]})
    assert_ok(failed)
    assert failed["lienthong"]["state"] == "failed"
    events = [e for e in await facade_hub.events() if e[0] == "failed"]
    assert "no reason" in events[0][2]["reason"]


async def test_the_agency_directory(facade_hub: Hub) -> None:
    code, answer = await Sdk(facade_hub, HOAN_KIEM).call("getAgenciesList")
    assert code == 200
    assert_ok(answer)
    assert_matches_openapi("SdkAgencies", answer)
    assert [a["code"] for a in answer["data"]] == sorted(AGENCIES)
    assert all(a["id"] == a["code"] and a["name"] == f"Agency {a['code']}" for a in answer["data"])


def _unsigned(hub: Hub) -> bytes:
    return write_document(document(CITY, (BA_DINH,)))


def _spoofed(hub: Hub) -> bytes:
    # Ba Đình's own valid signature over a package that claims to come from the city.
    return signed_document(hub.world, document(CITY, (HOAN_KIEM,)), signer=BA_DINH)


def _genuine(hub: Hub) -> bytes:
    return signed_document(hub.world, document(CITY, (BA_DINH,)))


REFUSALS = [
    # (who calls, how, the verb and its header, the package, HTTP status, ErrorCode)
    pytest.param(CITY, {"token": ""}, "sendEdoc", {}, _genuine, 401, "auth.required", id="none"),
    pytest.param(
        CITY, {"token": "not-a-credential"}, "sendEdoc", {}, _genuine, 401, "auth.invalid", id="bad"
    ),
    pytest.param(
        CITY, {"system_id": BA_DINH}, "sendEdoc", {}, _genuine, 403, "sender.mismatch", id="sysid"
    ),
    pytest.param(
        CITY, {}, "sendEdoc", {"from": BA_DINH}, _genuine, 403, "sender.mismatch", id="from"
    ),
    pytest.param(BA_DINH, {}, "sendEdoc", {}, _spoofed, 403, "sender.mismatch", id="spoofed"),
    pytest.param(CITY, {}, "sendEdoc", {}, _unsigned, 422, "signature.missing", id="unsigned"),
    pytest.param(
        CITY,
        {},
        "sendEdoc",
        {"messagetype": "edoc"},
        lambda h: b"1212<?xml",
        400,
        "xml.malformed",
        id="malformed",
    ),
    pytest.param(
        CITY, {}, "sendEdoc", {}, lambda h: b"x" * (TEST_MAX_BODY + 1), 413, "too_large", id="big"
    ),
    pytest.param(
        CITY, {}, "sendEdoc", {"messagetype": "fax"}, _genuine, 400, "request.invalid", id="kind"
    ),
    pytest.param(
        CITY, {}, "sendEdoc", {"hash-file": "0" * 64}, _genuine, 400, "request.invalid", id="hash"
    ),
    pytest.param(AUDITOR, {}, "getAgenciesList", {}, None, 403, "forbidden", id="auditor"),
]


@pytest.mark.parametrize(("who", "how", "verb", "header", "package", "http", "code"), REFUSALS)
async def test_refusals_in_the_sdks_shape_change_nothing(
    facade_hub: Hub,
    who: str,
    how: dict[str, str],
    verb: str,
    header: dict[str, str],
    package: Any,
    http: int,
    code: str,
) -> None:
    before = await facade_hub.counts()
    sdk = Sdk(facade_hub, who, token=how.get("token"))
    if package is not None:
        status_code, answer = await sdk.send_edoc(
            package(facade_hub), system_id=how.get("system_id"), **header
        )
    else:
        status_code, answer = await sdk.call(verb, header, system_id=how.get("system_id"))
    assert status_code == http, answer
    assert_matches_openapi("SdkFailure", answer)
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", code)
    assert answer["ErrorDesc"] and answer["problem"]["code"] == code
    assert answer["problem"]["request_id"]
    assert no_nulls(answer)
    assert await facade_hub.counts() == before
    assert [e[0] for e in await facade_hub.events()][-1:] == ["rejected"]


async def test_no_agency_reads_or_acknowledges_another_agencys_document(facade_hub: Hub) -> None:
    city, ba_dinh, hoan_kiem = (Sdk(facade_hub, c) for c in (CITY, BA_DINH, HOAN_KIEM))
    _, sent = await city.send_edoc(signed_document(facade_hub.world, document(CITY, (BA_DINH,))))
    _, listed = await ba_dinh.call("getReceivedEdocList")
    (item,) = listed["data"]
    for ident in (item["docId"], sent["DocId"]):
        code, answer = await hoan_kiem.call("getEdoc", {"docId": ident})
        assert (code, answer["ErrorCode"]) == (404, "not_found")
        code, answer = await hoan_kiem.call("updateStatus", {"status": "done", "docId": ident})
        assert (code, answer["ErrorCode"]) == (404, "not_found")
    _, hers = await hoan_kiem.call("getSentEdocList", {"docId": sent["DocId"]})
    assert hers["data"] == []
    _, listed = await ba_dinh.call("getReceivedEdocList")
    assert [i["status"] for i in listed["data"]] == ["queued"]  # nobody downloaded it


@pytest.mark.parametrize("word", ["acceptance", "processing", "inbox", "rejection", "03"])
async def test_unsigned_business_statuses_are_refused_with_the_way_to_send_them(
    facade_hub: Hub, word: str
) -> None:
    await Sdk(facade_hub, CITY).send_edoc(
        signed_document(facade_hub.world, document(CITY, (BA_DINH,)))
    )
    ba_dinh = Sdk(facade_hub, BA_DINH)
    _, listed = await ba_dinh.call("getReceivedEdocList")
    (item,) = listed["data"]
    before = await facade_hub.counts()
    code, answer = await ba_dinh.call("updateStatus", {"status": word, "docId": item["docId"]})
    assert (code, answer["status"], answer["ErrorCode"]) == (422, "FAIL", "status.unsigned")
    assert "sendEdoc" in answer["ErrorDesc"] and "messagetype" in answer["ErrorDesc"]
    assert await facade_hub.counts() == before
    _, listed = await ba_dinh.call("getReceivedEdocList")
    assert [i["status"] for i in listed["data"]] == ["queued"]


async def test_a_form_posting_client_sends_the_package_as_the_field_file_doc(
    facade_hub: Hub,
) -> None:
    package = _genuine(facade_hub)
    form = aiohttp.FormData()
    form.add_field("file_doc", package, filename="edoc.edxml", content_type="application/xml")
    city = Sdk(facade_hub, CITY)
    code, sent = await city.call("sendEdoc", {"from": CITY}, data=form)
    assert code == 200 and sent["status"] == "OK", sent
    _, got = await city.call("getEdoc", {"docId": sent["DocId"]})
    assert base64.b64decode(got["data"]) == package


async def test_a_form_without_the_package_field_is_refused(facade_hub: Hub) -> None:
    form = aiohttp.FormData()
    form.add_field("file", _genuine(facade_hub), filename="edoc.edxml")
    code, answer = await Sdk(facade_hub, CITY).call("sendEdoc", {"from": CITY}, data=form)
    assert (code, answer["ErrorCode"]) == (400, "request.invalid")
    assert "file_doc" in answer["ErrorDesc"]


async def test_a_bearer_credential_works_as_well(facade_hub: Hub) -> None:
    response = await facade_hub.http.post("/vxp/getAgenciesList", headers=facade_hub.as_(CITY))
    answer = await response.json()
    assert response.status == 200 and answer["status"] == "OK"


async def test_without_the_facade_enabled_its_paths_do_not_exist(hub: Hub) -> None:
    for verb in ("sendEdoc", "getReceivedEdocList", "getAgenciesList"):
        response = await hub.http.post(f"/vxp/{verb}", headers=hub.as_(CITY))
        assert response.status == 404
        assert (await response.json())["code"] == "not_found"
