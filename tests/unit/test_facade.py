"""The national-axis facade's pure parts: reading sendEdoc's upload, and the answer shapes."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.errors import BadRequest, Forbidden
from hub.facade import failed, file_from_multipart, ok, package_from_raw_body, sdk_hash


class _Sink:
    def __init__(self) -> None:
        self.data = b""

    async def write(self, chunk: bytes) -> None:
        self.data += bytes(chunk)


def form(fields: list[tuple[str, bytes]]) -> tuple[str, bytes]:
    """The Content-Type and body aiohttp's client sends for these fields."""
    data = aiohttp.FormData()
    for name, value in fields:
        data.add_field(name, value, filename=f"{name}.bin", content_type="application/octet-stream")
    writer = data()
    sink = _Sink()
    asyncio.run(writer.write(sink))  # type: ignore[arg-type]
    return writer.headers["Content-Type"], sink.data


PACKAGE = (
    b'<?xml version="1.0" encoding="UTF-8"?>\r\n<edXML:edXMLEnvelope>\n'
    b"<edXML:Subject>V/v li\xc3\xaan th\xc3\xb4ng</edXML:Subject>\r\n\r\n--not-a-boundary\r\n"
    b"</edXML:edXMLEnvelope>\r\n"
)


def test_the_sdk_hash_drops_each_bytes_leading_zero() -> None:
    # SHA-256 of b"abc" starts ba 78 16 bf 8f 01 cf ea: 0x01 is written "1".
    assert sdk_hash(b"abc").startswith("ba7816bf8f1cfea")
    assert len(sdk_hash(b"abc")) < 64


def test_the_crlf_the_sdk_appends_goes_when_its_hash_says_so() -> None:
    sent = PACKAGE + b"\r\n"
    assert package_from_raw_body(sent, sdk_hash(PACKAGE)) == PACKAGE
    assert package_from_raw_body(sent, hashlib.sha256(PACKAGE).hexdigest().upper()) == PACKAGE
    assert package_from_raw_body(sent, sdk_hash(sent)) == sent  # the file did end with CRLF
    assert package_from_raw_body(sent, "") == sent  # no hash: nothing to go by, nothing dropped
    with pytest.raises(BadRequest, match="hash-file"):
        package_from_raw_body(sent.replace(b"li", b"LI"), sdk_hash(PACKAGE))


def test_a_form_field_comes_out_byte_for_byte() -> None:
    content_type, body = form([("note", b"x"), ("file_doc", PACKAGE)])
    assert file_from_multipart(content_type, body) == PACKAGE


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=2048))
def test_any_package_bytes_survive_the_form(package: bytes) -> None:
    assert file_from_multipart(*form([("file_doc", package)])) == package


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=512), st.sampled_from(["", "; boundary=", "; boundary=abc"]))
def test_a_broken_form_is_a_bad_request_never_a_crash(body: bytes, params: str) -> None:
    # Whatever the bytes: either a part named file_doc, or the refusal naming it. Anything else
    # raised here would reach the client as a 500.
    with contextlib.suppress(BadRequest):
        file_from_multipart(f"multipart/form-data{params}", body)


def test_a_form_without_the_field_names_it() -> None:
    with pytest.raises(BadRequest, match="file_doc"):
        file_from_multipart(*form([("file", PACKAGE)]))


def test_answers_never_carry_a_null() -> None:
    assert ok(data=[{"a": None, "b": 1}], DocId=None) == {
        "status": "OK",
        "ErrorCode": "0",
        "ErrorDesc": "Success",
        "data": [{"b": 1}],
    }
    refused = failed(Forbidden("not yours", code="sender.mismatch"), "rid")
    assert (refused["status"], refused["ErrorCode"], refused["ErrorDesc"]) == (
        "FAIL",
        "sender.mismatch",
        "not yours",
    )
    assert refused["problem"]["status"] == 403 and refused["problem"]["request_id"] == "rid"
