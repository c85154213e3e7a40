"""The hub's log formats (hub.logs): what they write, and what they never write."""

from __future__ import annotations

import json
import logging

from hub.logs import JsonFormatter, RequestIdFilter, TextFormatter, request_id


def record(**extra: object) -> logging.LogRecord:
    rec = logging.makeLogRecord(
        {
            "name": "hub.intake",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "document accepted",
            **extra,
        }
    )
    RequestIdFilter().filter(rec)
    return rec


def test_json_lines_carry_the_request_id_and_the_extra_fields() -> None:
    token = request_id.set("vp-ubnd-2026-0001")
    try:
        line = json.loads(JsonFormatter().format(record(document_id="2e81", recipients=2)))
    finally:
        request_id.reset(token)
    assert line["request_id"] == "vp-ubnd-2026-0001"
    assert (line["level"], line["logger"], line["message"]) == (
        "info",
        "hub.intake",
        "document accepted",
    )
    assert (line["document_id"], line["recipients"]) == ("2e81", 2)
    assert json.loads(JsonFormatter().format(record()))["request_id"] is None  # outside a request


def test_fields_that_would_hold_secrets_are_never_written() -> None:
    rec = record(
        authorization="Bearer abc",
        token="abc",
        credential="abc",
        body=b"<edXML>",
        package=b"<edXML>",
        data=b"<edXML>" * 3,
        package_sha256="f416",
    )
    for text in (JsonFormatter().format(rec), TextFormatter().format(rec)):
        assert "abc" not in text and "<edXML>" not in text
        assert "f416" in text and "<21 bytes>" in text
