"""``lienthong serve`` with the national-axis facade switched on by configuration, and off.

The agency systems here are plain HTTP clients speaking the SDK's protocol (``XroadVnpt-``
headers, the raw upload followed by CRLF), with the demo material ``lienthong demo init`` made.
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request
from typing import Any

from hub.edxml.model import Code, DocumentPackage, DocumentType, Organization, PromulgationInfo
from hub.edxml.writer import write_document
from signing.xmldsig import sign_package
from tests.acceptance.conftest import Project, serving
from tests.support import BA_DINH, CITY


def sdk_post(
    project: Project, verb: str, code: str, header: dict[str, str], body: bytes = b""
) -> tuple[int, dict[str, Any]]:
    token = (project.demo_dir / "agencies" / code / "credential").read_text().strip()
    params = {"systemid": code, "token": token, **header}
    request = urllib.request.Request(
        f"{project.url}/vxp/{verb}",
        data=body,
        headers={
            **{f"XroadVnpt-{k}": v for k, v in params.items()},
            "Content-Type": "application/octet-stream",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def signed_letter(project: Project) -> bytes:
    folder = project.demo_dir / "agencies" / CITY
    package = DocumentPackage(
        sender=Organization(CITY, "Ủy ban nhân dân Thành phố Hà Nội"),
        recipients=(Organization(BA_DINH),),
        document_id=f"{CITY},2026/11/22,77/UBND-VP",
        code=Code("77", "UBND-VP"),
        promulgation=PromulgationInfo("Hà Nội", "2026/11/22"),
        document_type=DocumentType("1", "", "Công văn"),
        subject="V/v thử nghiệm trục liên thông",
        content="V/v thử nghiệm trục liên thông",
    )
    return sign_package(
        write_document(package),
        (folder / "key.pem").read_bytes(),
        (folder / "cert.pem").read_bytes(),
    )


def test_enabled_by_environment_a_letter_goes_through_the_sdk_verbs(project: Project) -> None:
    with serving(project, env=project.env(LIENTHONG_FACADE_ENABLED="true")):
        package = signed_letter(project)
        sdk_hash = "".join(format(b, "x") for b in hashlib.sha256(package).digest())
        code, sent = sdk_post(
            project, "sendEdoc", CITY, {"from": CITY, "hash-file": sdk_hash}, package + b"\r\n"
        )
        assert (code, sent["status"]) == (200, "OK"), sent
        code, listed = sdk_post(project, "getReceivedEdocList", BA_DINH, {"messagetype": "edoc"})
        (item,) = [i for i in listed["data"] if i["lienthong"]["document_id"] == sent["DocId"]]
        assert item["from"] == CITY
        code, got = sdk_post(project, "getEdoc", BA_DINH, {"docId": item["docId"]})
        assert base64.b64decode(got["data"]) == package
        code, acked = sdk_post(
            project, "updateStatus", BA_DINH, {"docId": item["docId"], "status": "done"}
        )
        assert (code, acked["status"]) == (200, "OK"), acked


def test_off_by_default(project: Project) -> None:
    with serving(project):
        code, answer = sdk_post(project, "getAgenciesList", CITY, {})
        assert (code, answer["code"]) == (404, "not_found")
