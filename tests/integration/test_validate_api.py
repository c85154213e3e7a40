"""POST /v1/validate: a dry run over HTTP. Every package gets a 200 report with every problem
(path, line, an explanation built with xmlschema), the signature is judged beside it, and
nothing is stored: no row, no trace event.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from hub.edxml.model import StatusCode
from hub.edxml.writer import write_document
from tests.conftest import TEST_MAX_BODY
from tests.support import (
    AUDITOR,
    BA_DINH,
    CITY,
    GOV_OFFICE,
    SAMPLES,
    Hub,
    assert_matches_openapi,
    document,
    signed_document,
    signed_status,
    status,
)

MH = "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader"


async def validate(hub: Hub, body: bytes, as_: str = CITY, **query: str) -> dict[str, Any]:
    """POST /v1/validate; the 200 report, checked against the OpenAPI document."""
    response = await hub.http.post("/v1/validate", data=body, headers=hub.as_(as_), params=query)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    assert response.headers["X-Request-Id"]
    report: dict[str, Any] = await response.json()
    assert_matches_openapi("ValidationReport", report)
    return report


def line_of(body: bytes, needle: str) -> int:
    lines = [n for n, line in enumerate(body.decode().splitlines(), 1) if needle in line]
    assert len(lines) == 1, (needle, lines)
    return lines[0]


def broken(body: bytes, old: str, new: str) -> bytes:
    text = body.decode()
    assert text.count(old) == 1, old
    return text.replace(old, new).encode()


async def test_nothing_is_ever_stored(hub: Hub) -> None:
    """Valid, invalid, malformed, forbidden, another agency's: reports only, no row, no event."""
    before = (await hub.counts(), await hub.events())
    good = signed_document(hub.world, document(CITY, (BA_DINH,)))
    bodies = [
        good,
        broken(good, "<edXML:Priority>0<", "<edXML:Priority>9<"),
        b"1212" + good,
        b'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY x "y">]><edXML/>',
        signed_document(hub.world, document(CITY, (BA_DINH,)), signer=BA_DINH),
        b"",
    ]
    for body in bodies:
        await validate(hub, body)
    await validate(hub, good, as_=AUDITOR)
    assert (await hub.counts(), await hub.events()) == before
    # The package was not taken in: sending it afterwards is a first submission.
    assert (await hub.send(document(CITY, (BA_DINH,))))["duplicate"] is False


async def test_a_valid_signed_package(hub: Hub) -> None:
    body = signed_document(hub.world, document(CITY, (BA_DINH,)))
    assert await validate(hub, body) == {
        "valid": True,
        "kind": "edoc",
        "code": None,
        "errors": [],
        "warnings": [],
        "signature": {"checked": True, "valid": True, "problem": None},
    }


async def test_every_problem_with_its_path_line_and_explanation(hub: Hub) -> None:
    good = write_document(document(CITY, (BA_DINH,)))
    body = broken(good, "<edXML:Priority>0<", "<edXML:Priority>9<")
    body = broken(body, "<edXML:Subject>", "<edXML:Urgency>high</edXML:Urgency><edXML:Subject>")
    body = broken(
        body,
        "<edXML:PromulgationDate>2026/11/22<",
        "<edXML:PromulgationDate>2026/02/30<",
    )
    report = await validate(hub, hub.world.accounts[CITY].sign(body))
    assert (report["valid"], report["kind"], report["code"]) == (False, "edoc", "schema.invalid")
    assert report["errors"] == [
        {
            # xmlschema's view of the content model: what the header may hold instead.
            "message": "Urgency is not allowed in MessageHeader; it may contain From, To, "
            "DocumentId, Code, PromulgationInfo, DocumentType, Subject, Content, SignerInfo, "
            "DueDate, ToPlaces, OtherInfo, ResponseFor, SteeringType",
            "path": f"{MH}/Urgency",
            "line": line_of(body, "Urgency"),
        },
        {
            "message": "Priority '9' is not one of 0, 1, 2, 3, 4",
            "path": f"{MH}/OtherInfo/Priority",
            "line": line_of(body, "<edXML:Priority>"),
        },
    ]
    (warning,) = report["warnings"]
    assert warning["path"] == f"{MH}/PromulgationInfo/PromulgationDate"
    assert warning["line"] == line_of(body, "2026/02/30")
    assert "no such date exists" in warning["message"]
    assert 'validation.impossible_date = "warn"' in warning["message"]
    # The signature is judged apart from the package and does not change the verdict.
    assert report["signature"] == {"checked": True, "valid": True, "problem": None}


async def test_a_malformed_package_is_reported_not_refused(hub: Hub) -> None:
    body = b"1212" + signed_document(hub.world, document(CITY, (BA_DINH,)))
    report = await validate(hub, body)
    assert (report["valid"], report["kind"], report["code"]) == (False, None, "xml.malformed")
    (error,) = report["errors"]
    assert (error["line"], error["column"]) == (1, 1)
    assert "4 stray byte(s) before the XML declaration" in error["message"]
    assert report["signature"] == {"checked": False, "valid": None, "problem": None}


async def test_a_doctype_is_reported_as_forbidden(hub: Hub) -> None:
    report = await validate(hub, b'<!DOCTYPE edXML SYSTEM "file:///etc/passwd"><edXML/>')
    assert (report["valid"], report["code"]) == (False, "xml.forbidden")
    assert report["errors"] == [{"message": "DOCTYPE declaration", "line": 1}]


async def test_a_package_signed_by_another_agency(hub: Hub) -> None:
    """The caller's own certificates decide, as when sending: Ba Đình's key is not the city's."""
    body = signed_document(hub.world, document(CITY, (BA_DINH,)), signer=BA_DINH)
    report = await validate(hub, body, as_=CITY)
    assert report["valid"] is True
    signature = report["signature"]
    assert (signature["checked"], signature["valid"]) == (True, False)
    assert signature["problem"]["code"] == "signature.untrusted"
    assert "is not one of the sender's registered certificates" in signature["problem"]["detail"]
    # Ba Đình itself would be told its signature is fine (the From is another matter: intake).
    assert (await validate(hub, body, as_=BA_DINH))["signature"]["valid"] is True


async def test_a_tampered_package(hub: Hub) -> None:
    body = signed_document(hub.world, document(CITY, (BA_DINH,), subject="V/v họp giao ban"))
    body = broken(body, "V/v họp giao ban</edXML:Subject>", "V/v họp khẩn</edXML:Subject>")
    signature = (await validate(hub, body))["signature"]
    assert signature["problem"]["code"] == "signature.invalid"


async def test_an_auditor_gets_what_needs_no_certificate(hub: Hub) -> None:
    signed = signed_document(hub.world, document(CITY, (BA_DINH,)))
    report = await validate(hub, signed, as_=AUDITOR)
    assert report["valid"] is True
    assert report["signature"] == {"checked": False, "valid": None, "problem": None}
    unsigned = write_document(document(CITY, (BA_DINH,)))
    signature = (await validate(hub, unsigned, as_=AUDITOR))["signature"]
    assert (signature["checked"], signature["problem"]["code"]) == (True, "signature.missing")


async def test_status_packages_and_the_kind_parameter(hub: Hub) -> None:
    doc = document(CITY, (BA_DINH,))
    body = signed_status(hub.world, status(BA_DINH, doc, StatusCode.ACCEPTED, "Đã vào sổ"))
    report = await validate(hub, body, as_=BA_DINH)
    assert (report["valid"], report["kind"]) == (True, "status")
    assert report["signature"]["valid"] is True
    assert (await validate(hub, body, as_=BA_DINH, kind="status"))["valid"] is True
    wrong = await validate(hub, body, as_=BA_DINH, kind="edoc")
    assert (wrong["valid"], wrong["kind"], wrong["code"]) == (False, "edoc", "package.kind")
    assert "this is a status package" in wrong["errors"][0]["message"]


async def test_a_recall_without_reason_is_a_warning(hub: Hub) -> None:
    doc = document(CITY, (BA_DINH,))
    body = signed_status(hub.world, status(CITY, doc, StatusCode.RECALL_REQUEST, about=BA_DINH))
    report = await validate(hub, body)
    assert report["valid"] is True
    (warning,) = report["warnings"]
    assert warning["path"] == f"{MH}/StatusCode"
    assert "validation.recall_without_reason" in warning["message"]


async def test_the_hub_policy_decides(hub: Hub) -> None:
    from dataclasses import replace

    body = signed_document(hub.world, document(CITY, (BA_DINH,), number="123456789012"))
    report = await validate(hub, body)
    assert (report["valid"], report["code"]) == (False, "schema.invalid")
    assert 'validation.code_number_length = "reject"' in report["errors"][0]["message"]
    hub.ctx.validation = replace(hub.ctx.validation, code_number_length="warn")
    report = await validate(hub, body)
    assert report["valid"] is True
    assert 'validation.code_number_length = "warn"' in report["warnings"][0]["message"]


@pytest.mark.parametrize("name", ["edoc_update.edxml", "status_rejection_02.edxml"])
async def test_sdk_samples(hub: Hub, name: str) -> None:
    """The SDK's Signature is in the edXML namespace: no XMLDSig signature (README)."""
    if not SAMPLES.is_dir():
        pytest.skip(f"SDK samples not found at {SAMPLES}")
    report = await validate(hub, (SAMPLES / name).read_bytes(), as_=GOV_OFFICE)
    assert (report["valid"], report["errors"], report["warnings"]) == (True, [], [])
    signature = report["signature"]
    assert (signature["checked"], signature["valid"]) == (True, False)
    assert signature["problem"]["code"] == "signature.missing"


async def test_request_errors_remain_problems(hub: Hub) -> None:
    body = write_document(document(CITY, (BA_DINH,)))
    response = await hub.http.post("/v1/validate", data=body)
    assert response.status == 401
    assert (await response.json())["code"] == "auth.required"
    response = await hub.http.post(
        "/v1/validate", data=body, headers=hub.as_(CITY), params={"kind": "receipt"}
    )
    assert response.status == 400
    problem = await response.json()
    assert_matches_openapi("Problem", problem)
    assert problem["code"] == "request.invalid"
    too_large = io.BytesIO(b"<" * (TEST_MAX_BODY + 1))  # the same limit as for sending
    response = await hub.http.post("/v1/validate", data=too_large, headers=hub.as_(CITY))
    assert response.status == 413
    assert (await response.json())["code"] == "too_large"
