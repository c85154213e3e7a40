"""Bad input over HTTP: every refusal is a problem+json answer with a stable code, and leaves
exactly one ``rejected`` trace event behind and nothing else (no document, delivery, status or
blob). After all the refusals the hub is still healthy.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from sqlalchemy import select

from hub.edxml.model import StatusCode
from hub.edxml.writer import write_document, write_status
from tests.conftest import TEST_MAX_BODY
from tests.support import (
    ADMIN,
    AUDITOR,
    BA_DINH,
    CITY,
    HOAN_KIEM,
    SAMPLES,
    Hub,
    assert_matches_openapi,
    document,
    signed_document,
    signed_status,
    status,
    with_recipients,
)
from tracking.models import Blob

PROBLEM_JSON = "application/problem+json"
UNKNOWN_AGENCY = "000.00.99.H26"
MESSAGE_HEADER = "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader"

# ------------------------------------------------------------------------------------ helpers


@dataclass(frozen=True)
class Snapshot:
    """What the database holds before a request that must be refused."""

    counts: dict[str, int]
    events: int


async def snapshot(hub: Hub) -> Snapshot:
    return Snapshot(await hub.counts(), len(await hub.events()))


def assert_problem(
    status: int, content_type: str, text: str, code: str, expected: int
) -> dict[str, Any]:
    """An ``application/problem+json`` answer with *code*, and no stack trace in it."""
    assert status == expected, text
    assert content_type == PROBLEM_JSON, text
    assert "Traceback" not in text
    assert 'File "' not in text  # no traceback frame either
    problem: dict[str, Any] = json.loads(text)
    assert_matches_openapi("Problem", problem)
    assert problem["code"] == code, problem
    assert problem["status"] == expected
    assert problem["detail"], problem
    return problem


async def assert_only_rejection(
    hub: Hub, before: Snapshot, code: str, actor: str | None = None
) -> dict[str, Any]:
    """Nothing stored but one ``rejected`` event carrying *code*; returns that event's detail."""
    assert await hub.counts() == before.counts
    new = (await hub.events())[before.events :]
    assert [(kind, detail.get("code")) for kind, _, detail in new] == [("rejected", code)], new
    (_, who, detail) = new[0]
    if actor is not None:
        assert who == actor
    return detail


async def refused(
    hub: Hub,
    request: Awaitable[ClientResponse],
    status: int,
    code: str,
    *,
    actor: str | None = None,
) -> dict[str, Any]:
    """Send *request* and check the refusal; returns the problem body.

    ``hub.http.post(...)`` is lazy: nothing is sent until it is awaited here, after the snapshot.
    """
    before = await snapshot(hub)
    response = await request
    text = await response.text()
    problem = assert_problem(response.status, response.content_type, text, code, status)
    await assert_only_rejection(hub, before, code, actor)
    return problem


async def assert_healthy(hub: Hub) -> None:
    response = await hub.http.get("/healthz")
    assert response.status == 200, await response.text()


def post(hub: Hub, path: str, body: bytes, as_: str) -> Awaitable[ClientResponse]:
    return hub.http.post(path, data=body, headers=hub.as_(as_))


def replace_once(package: bytes, old: bytes, new: bytes) -> bytes:
    assert package.count(old) == 1, f"{old!r} occurs {package.count(old)} times"
    return package.replace(old, new)


def element(package: bytes, name: str) -> bytes:
    """The whole ``<edXML:name>…</edXML:name>`` element as written by the writer."""
    match = re.search(rb"<edXML:%s>.*?</edXML:%s>" % (name.encode(), name.encode()), package, re.S)
    assert match is not None, name
    return match.group(0)


def line_of(package: bytes, needle: bytes) -> int:
    return package[: package.index(needle)].count(b"\n") + 1


def masked(text: str, **values: str) -> str:
    """*text* with each value replaced by its name, to compare two answers' wording."""
    for name, value in values.items():
        text = text.replace(value, name)
    return text


def problem_at(problem: dict[str, Any], word: str) -> dict[str, Any]:
    """The first listed problem whose message names *word*."""
    found = [p for p in problem.get("problems", []) if word in p["message"]]
    assert found, problem
    return found[0]


# -------------------------------------------------------------------------------- XML level


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"this is not XML", id="not-xml"),
        pytest.param(b"<edXML><edXMLEnvelope></edXML>", id="mismatched-tags"),
        pytest.param(None, id="truncated"),
        pytest.param(b"", id="empty"),
    ],
)
async def test_malformed_xml_is_refused_with_its_position(hub: Hub, body: bytes | None) -> None:
    if body is None:
        signed = signed_document(hub.world, document(CITY, (BA_DINH,)))
        body = signed[: len(signed) // 2]
    problem = await refused(
        hub, post(hub, "/v1/documents", body, CITY), 400, "xml.malformed", actor=CITY
    )
    (where,) = problem["problems"]
    assert isinstance(where["line"], int)
    await assert_healthy(hub)


async def test_stray_bytes_before_the_declaration_in_the_sdk_sample(hub: Hub) -> None:
    sample = SAMPLES / "edoc_new.edxml"
    if not sample.exists():
        pytest.skip(f"the SDK sample {sample} is not available")
    body = sample.read_bytes()
    assert body.startswith(b"1212<?xml")  # the sample as it is, quirk included
    problem = await refused(hub, post(hub, "/v1/documents", body, CITY), 400, "xml.malformed")
    assert problem["problems"][0]["line"] == 1
    assert "before the XML declaration" in problem["detail"]
    await assert_healthy(hub)


REPO = Path(__file__).resolve().parents[2]


def passwd_lines() -> list[str]:
    """What an external entity naming /etc/passwd would pull in, if it were ever read."""
    passwd = Path("/etc/passwd")
    return [line for line in passwd.read_text().splitlines() if line] if passwd.exists() else []


def sqlite_files(db_url: str) -> list[bytes]:
    """The raw bytes of an SQLite database and its WAL/SHM files; nothing for other databases."""
    if not db_url.startswith("sqlite"):
        return []
    database = Path(db_url.partition(":///")[2])
    return [p.read_bytes() for p in sorted(database.parent.glob(database.name + "*"))]


def with_doctype(package: bytes, declarations: bytes, reference: bytes) -> bytes:
    """*package* with a DOCTYPE after its XML declaration and *reference* as its Subject."""
    head, end_of_declaration, rest = package.partition(b"?>")
    body = head + end_of_declaration + b"\n<!DOCTYPE edXML [" + declarations + b"]>" + rest
    return replace_once(
        body, element(body, "Subject"), b"<edXML:Subject>" + reference + b"</edXML:Subject>"
    )


async def everything_stored(hub: Hub, db_url: str) -> bytes:
    """The trace, every blob and (on SQLite) the raw database files, to search for leaks."""
    parts = [json.dumps(await hub.events(), ensure_ascii=False).encode(), *sqlite_files(db_url)]
    async with hub.ctx.store.read() as session:
        parts += [b.data for b in (await session.execute(select(Blob))).scalars()]
    return b"\n".join(parts)


@pytest.mark.parametrize(
    ("declarations", "reference"),
    [
        pytest.param(
            b'<!ENTITY greeting "Noi dung chen vao">', b"&greeting;", id="internal-entity"
        ),
        pytest.param(b'<!ENTITY xxe SYSTEM "file:///etc/passwd">', b"&xxe;", id="external-entity"),
        pytest.param(
            b'<!ENTITY % remote SYSTEM "file:///etc/passwd"> %remote;', b"x", id="parameter-entity"
        ),
        pytest.param(
            b'<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
            b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">',
            b"&c;",
            id="entity-expansion",
        ),
        pytest.param(b"", b"x", id="empty-doctype"),
    ],
)
async def test_doctype_and_entities_are_forbidden_and_never_expanded(
    hub: Hub, hub_db_url: str, declarations: bytes, reference: bytes
) -> None:
    await hub.send(document(CITY, (BA_DINH,), number="1"))  # something real in the database
    signed = signed_document(hub.world, document(CITY, (BA_DINH,), number="2"))
    body = with_doctype(signed, declarations, reference)
    problem = await refused(
        hub, post(hub, "/v1/documents", body, CITY), 400, "xml.forbidden", actor=CITY
    )
    assert "DOCTYPE" in problem["detail"]

    # Nothing of /etc/passwd reached the answer, the trace or the database.
    answer = json.dumps(problem, ensure_ascii=False)
    stored = await everything_stored(hub, hub_db_url)
    for line in passwd_lines():
        assert line not in answer
        assert line.encode() not in stored
    assert b"aaaaaaaaaaaaaaaaaaaa" not in answer.encode() + stored  # and no expansion
    await assert_healthy(hub)


async def test_the_answer_does_not_depend_on_which_local_files_exist(hub: Hub) -> None:
    """An external parameter entity must not be loaded: a package naming /etc/passwd and one naming
    a file that does not exist get the same answer, or the hub is a file-existence oracle."""
    signed = signed_document(hub.world, document(CITY, (BA_DINH,)))
    answers = []
    for target in (b"file:///etc/passwd", b"file:///nonexistent/lienthong-probe.dtd"):
        declarations = b'<!ENTITY % remote SYSTEM "' + target + b'"> %remote;'
        before = await snapshot(hub)
        response = await post(hub, "/v1/documents", with_doctype(signed, declarations, b"x"), CITY)
        problem = await response.json(content_type=None)
        await assert_only_rejection(hub, before, problem["code"], CITY)
        answers.append(
            (response.status, problem["code"], problem["detail"], problem.get("problems"))
        )
    assert answers[0] == answers[1]
    assert answers[0][:2] == (400, "xml.forbidden")
    await assert_healthy(hub)


class FifoWatch:
    """A named pipe that records whether anyone opened it: a local file the hub must never read.

    A thread waits to write into the pipe (opening a FIFO blocks until a reader opens it too), so
    a parser that opens it gets a short DTD and end of file instead of hanging.
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / "entity.fifo"
        os.mkfifo(self.path)
        self.opened = threading.Event()
        self._feeder = threading.Thread(target=self._feed, daemon=True)
        self._feeder.start()

    def _feed(self) -> None:
        with open(self.path, "wb") as pipe:
            self.opened.set()
            pipe.write(b'<!ENTITY leaked "read from the hub host">')

    def close(self) -> bool:
        """Release the feeder thread; return whether the pipe had been opened by then."""
        was_opened = self.opened.is_set()
        reader = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            self._feeder.join(5)
        finally:
            os.close(reader)
        return was_opened


@pytest.mark.parametrize(
    "doctype",
    [
        pytest.param('<!ENTITY % local SYSTEM "{uri}"> %local;', id="parameter-entity"),
        pytest.param('<!ENTITY local SYSTEM "{uri}">', id="general-entity"),
    ],
)
async def test_no_local_file_named_in_a_package_is_ever_opened(
    hub: Hub, tmp_path: Path, doctype: str
) -> None:
    """Refusing the DOCTYPE after libxml2 has read the file it names is too late: the file must
    not be opened at all (a file-existence oracle, and a FIFO or device can hang the hub)."""
    signed = signed_document(hub.world, document(CITY, (BA_DINH,)))
    watch = FifoWatch(tmp_path)
    try:
        declarations = doctype.format(uri=watch.path.as_uri()).encode()
        body = with_doctype(signed, declarations, b"&local;" if "%" not in doctype else b"x")
        await refused(hub, post(hub, "/v1/documents", body, CITY), 400, "xml.forbidden", actor=CITY)
    finally:
        opened = watch.close()
    assert not opened, f"the hub opened {watch.path}, a local file named in the package's DTD"
    await assert_healthy(hub)


_PARSE_PROBE = """
import sys
from hub.xmlsafe import parse
try:
    parse(sys.stdin.buffer.read())
except Exception as exc:
    print(getattr(exc, "code", type(exc).__name__))
"""


async def test_an_entity_naming_an_endless_device_does_not_hang_the_hub(hub: Hub) -> None:
    """``file:///dev/zero`` as an external parameter entity. The hub parses on its event loop, so a
    parser that reads the device for ever would freeze the whole hub (and this test run): the
    hub's parser is first tried in a subprocess with a time limit, and only then is the package
    sent to the hub."""
    signed = signed_document(hub.world, document(CITY, (BA_DINH,)))
    body = with_doctype(signed, b'<!ENTITY % zero SYSTEM "file:///dev/zero"> %zero;', b"x")
    probe = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _PARSE_PROBE,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    try:
        out, _ = await asyncio.wait_for(probe.communicate(body), 10)
    except TimeoutError:
        probe.kill()
        await probe.wait()
        pytest.fail(
            "hub.xmlsafe.parse() did not return within 10 s for a DOCTYPE whose parameter entity "
            "names file:///dev/zero: libxml2 reads the device for ever, and the hub would hang"
        )
    assert out.decode().strip() == "xml.forbidden"
    await refused(hub, post(hub, "/v1/documents", body, CITY), 400, "xml.forbidden", actor=CITY)
    await assert_healthy(hub)


# ------------------------------------------------------------------------------------- size


async def test_a_declared_length_over_the_limit_is_refused(hub: Hub) -> None:
    body = io.BytesIO(b"<" * (TEST_MAX_BODY + 1))  # a file-like body: aiohttp sends its length
    request = hub.http.post("/v1/documents", data=body, headers=hub.as_(CITY))
    problem = await refused(hub, request, 413, "too_large", actor=CITY)
    assert str(TEST_MAX_BODY) in problem["detail"]
    await assert_healthy(hub)


async def test_a_declared_length_over_the_limit_is_answered_before_the_body_is_sent(
    hub: Hub,
) -> None:
    """Only the headers and 1 KiB are sent: the hub answers from Content-Length alone."""
    server = hub.http.server
    before = await snapshot(hub)
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        token = hub.world.accounts[CITY].token
        writer.write(
            (
                "POST /v1/documents HTTP/1.1\r\n"
                f"Host: {server.host}:{server.port}\r\n"
                f"Authorization: Bearer {token}\r\n"
                "Content-Type: application/xml\r\n"
                f"Content-Length: {TEST_MAX_BODY + 1}\r\n"
                "\r\n"
            ).encode()
            + b"<" * 1024
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (h.partition(":") for h in header_lines if h)
        }
        text = (
            await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
        ).decode()
    finally:
        writer.close()
    status_code = int(status_line.split()[1])
    content_type = headers["content-type"].split(";")[0]
    assert_problem(status_code, content_type, text, "too_large", 413)
    await assert_only_rejection(hub, before, "too_large", CITY)
    await assert_healthy(hub)


async def test_a_chunked_body_growing_past_the_limit_is_refused(hub: Hub) -> None:
    sent = 0
    chunk = b"<" * (64 * 1024)

    async def growing() -> AsyncIterator[bytes]:
        nonlocal sent
        while sent < 3 * TEST_MAX_BODY:
            sent += len(chunk)
            yield chunk

    request = hub.http.post("/v1/documents", data=growing(), headers=hub.as_(CITY))
    problem = await refused(hub, request, 413, "too_large", actor=CITY)
    assert str(TEST_MAX_BODY) in problem["detail"]
    assert sent > TEST_MAX_BODY  # no Content-Length: the hub had to count
    await assert_healthy(hub)


# ----------------------------------------------------------------------------------- schema


# endpoint, caller, signed body, element named in the problem, its path, text on its line
Case = tuple[str, str, bytes, str, str, str]


def _document_without_subject(hub: Hub) -> Case:
    unsigned = write_document(document(CITY, (BA_DINH,), number="2"))
    unsigned = replace_once(unsigned, element(unsigned, "Subject"), b"")
    body = hub.world.accounts[CITY].sign(unsigned)
    # The missing element is reported where it should have been: on MessageHeader.
    return "/v1/documents", CITY, body, "Subject", MESSAGE_HEADER, "<edXML:MessageHeader>"


def _status_with_code_07(hub: Hub) -> Case:
    doc = document(CITY, (BA_DINH,), number="1")
    unsigned = write_status(status(BA_DINH, doc, StatusCode.ACCEPTED))
    unsigned = replace_once(unsigned, b"<edXML:StatusCode>03<", b"<edXML:StatusCode>07<")
    body = hub.world.accounts[BA_DINH].sign(unsigned)
    return (
        "/v1/status",
        BA_DINH,
        body,
        "StatusCode",
        f"{MESSAGE_HEADER}/StatusCode",
        "<edXML:StatusCode>07<",
    )


@pytest.mark.parametrize(
    "build", [_document_without_subject, _status_with_code_07], ids=["no-subject", "status-07"]
)
async def test_schema_invalid_package_names_the_element_and_its_line(hub: Hub, build: Any) -> None:
    """Edited, then signed: only the schema is wrong, and the problem says where."""
    await hub.send(document(CITY, (BA_DINH,), number="1"))
    endpoint, caller, body, name, path, marker = build(hub)
    problem = await refused(
        hub, post(hub, endpoint, body, caller), 422, "schema.invalid", actor=caller
    )
    where = problem_at(problem, name)
    assert where["path"] == path
    assert where["line"] == line_of(body, marker.encode())
    assert name in problem["detail"]
    await assert_healthy(hub)


# -------------------------------------------------------------------------------- signature


async def test_unsigned_package_is_refused(hub: Hub) -> None:
    body = write_document(document(CITY, (BA_DINH,)))
    await refused(hub, post(hub, "/v1/documents", body, CITY), 422, "signature.missing", actor=CITY)
    await assert_healthy(hub)


async def test_package_changed_after_signing_is_refused(hub: Hub) -> None:
    signed = signed_document(hub.world, document(CITY, (BA_DINH,)))
    body = replace_once(
        signed,
        element(signed, "Subject"),
        "<edXML:Subject>V/v nội dung đã sửa</edXML:Subject>".encode(),
    )
    await refused(hub, post(hub, "/v1/documents", body, CITY), 422, "signature.invalid", actor=CITY)
    await assert_healthy(hub)


async def test_package_signed_with_another_agencys_certificate_is_untrusted(hub: Hub) -> None:
    """From=CITY, sent with CITY's credential, but signed by BA_DINH: not CITY's certificate."""
    body = signed_document(hub.world, document(CITY, (HOAN_KIEM,)), signer=BA_DINH)
    await refused(
        hub, post(hub, "/v1/documents", body, CITY), 422, "signature.untrusted", actor=CITY
    )
    await assert_healthy(hub)


async def test_package_of_another_agency_sent_with_my_credential_is_refused(hub: Hub) -> None:
    """From=CITY and signed by CITY, sent by BA_DINH: the signature is checked against the caller's
    certificates first, so either refusal is right; both stop it."""
    body = signed_document(hub.world, document(CITY, (HOAN_KIEM,)))
    before = await snapshot(hub)
    response = await post(hub, "/v1/documents", body, BA_DINH)
    text = await response.text()
    code = json.loads(text).get("code") if response.content_type == PROBLEM_JSON else None
    expected = {"signature.untrusted": 422, "sender.mismatch": 403}
    assert code in expected, text
    assert_problem(response.status, response.content_type, text, code, expected[code])
    await assert_only_rejection(hub, before, code, BA_DINH)
    await assert_healthy(hub)


async def test_signed_from_that_is_not_the_caller_is_a_sender_mismatch(hub: Hub) -> None:
    """From=CITY, signed with BA_DINH's registered key, sent by BA_DINH: a valid signature by the
    caller, but in someone else's name."""
    body = signed_document(hub.world, document(CITY, (HOAN_KIEM,)), signer=BA_DINH)
    problem = await refused(
        hub, post(hub, "/v1/documents", body, BA_DINH), 403, "sender.mismatch", actor=BA_DINH
    )
    assert CITY in problem["detail"] and BA_DINH in problem["detail"]
    await assert_healthy(hub)


# ---------------------------------------------------------------------------------- routing


@pytest.mark.parametrize(
    ("recipients", "bad_index", "words"),
    [
        pytest.param((BA_DINH, UNKNOWN_AGENCY), 2, (UNKNOWN_AGENCY,), id="unknown"),
        pytest.param((BA_DINH, BA_DINH), 2, (BA_DINH, "twice"), id="same-recipient-twice"),
        pytest.param((BA_DINH, CITY), 2, ("itself",), id="to-itself"),
    ],
)
async def test_unroutable_recipients_are_refused_with_the_to_path(
    hub: Hub, recipients: tuple[str, ...], bad_index: int, words: tuple[str, ...]
) -> None:
    doc = with_recipients(document(CITY, (BA_DINH,)), *recipients)
    body = signed_document(hub.world, doc)
    problem = await refused(
        hub, post(hub, "/v1/documents", body, CITY), 422, "recipient.unknown", actor=CITY
    )
    (where,) = problem["problems"]  # the good recipient is not reported, and not stored either
    assert where["path"] == f"{MESSAGE_HEADER}/To[{bad_index}]/OrganId"
    for word in words:
        assert word in where["message"]
    await assert_healthy(hub)


async def test_status_about_a_document_the_caller_never_received(hub: Hub) -> None:
    doc = document(CITY, (BA_DINH,))
    await hub.send(doc)
    # HOAN_KIEM received nothing; it reports 03 about the document sent to BA_DINH.
    not_mine = signed_status(hub.world, status(HOAN_KIEM, doc, StatusCode.ACCEPTED))
    first = await refused(
        hub,
        post(hub, "/v1/status", not_mine, HOAN_KIEM),
        422,
        "status.document_unknown",
        actor=HOAN_KIEM,
    )
    # A DocumentId that does not exist at all gets the same kind of answer.
    ghost = document(CITY, (BA_DINH,), number="999")
    nowhere = signed_status(hub.world, status(BA_DINH, ghost, StatusCode.ACCEPTED))
    second = await refused(
        hub,
        post(hub, "/v1/status", nowhere, BA_DINH),
        422,
        "status.document_unknown",
        actor=BA_DINH,
    )
    # Same wording either way, so the answer reveals nothing about other agencies' documents.
    assert masked(first["detail"], ID=doc.document_id, ME=HOAN_KIEM) == masked(
        second["detail"], ID=ghost.document_id, ME=BA_DINH
    )
    assert BA_DINH not in first["detail"]  # who did receive it is not disclosed
    await assert_healthy(hub)


@pytest.mark.parametrize(
    ("path", "make"),
    [
        pytest.param("/v1/documents", "status", id="status-as-document"),
        pytest.param("/v1/status", "document", id="document-as-status"),
    ],
)
async def test_package_of_the_wrong_kind_for_the_endpoint(hub: Hub, path: str, make: str) -> None:
    doc = document(CITY, (BA_DINH,))
    await hub.send(doc)
    if make == "status":
        body, caller = signed_status(hub.world, status(BA_DINH, doc, StatusCode.ARRIVED)), BA_DINH
    else:
        body, caller = signed_document(hub.world, document(CITY, (BA_DINH,), number="2")), CITY
    problem = await refused(hub, post(hub, path, body, caller), 422, "package.kind", actor=caller)
    other = "/v1/status" if make == "status" else "/v1/documents"
    assert other in problem["detail"]  # says where to send it instead
    await assert_healthy(hub)


# ------------------------------------------------------------------------------- credentials


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/documents"), ("POST", "/v1/status"), ("GET", "/v1/inbox")],
)
async def test_no_credential_is_401_with_a_challenge(hub: Hub, method: str, path: str) -> None:
    body = signed_document(hub.world, document(CITY, (BA_DINH,)))
    before = await snapshot(hub)
    response = await hub.http.request(method, path, data=body if method == "POST" else None)
    text = await response.text()
    assert_problem(response.status, response.content_type, text, "auth.required", 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    await assert_only_rejection(hub, before, "auth.required")
    (_, actor, _) = (await hub.events())[-1]
    assert actor.startswith("anonymous@")
    await assert_healthy(hub)


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Bearer not-a-credential-of-this-hub", id="unknown-token"),
        pytest.param("Basic dXNlcjpwYXNz", id="basic-scheme"),
        pytest.param("Bearer", id="no-token"),
    ],
)
async def test_bad_credential_is_401(hub: Hub, authorization: str) -> None:
    body = signed_document(hub.world, document(CITY, (BA_DINH,)))
    before = await snapshot(hub)
    response = await hub.http.post(
        "/v1/documents", data=body, headers={"Authorization": authorization}
    )
    text = await response.text()
    assert_problem(response.status, response.content_type, text, "auth.invalid", 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    token = authorization.partition(" ")[2]
    if token:
        assert token not in text  # a credential is never echoed
    await assert_only_rejection(hub, before, "auth.invalid")
    (_, actor, detail) = (await hub.events())[-1]
    assert actor.startswith("anonymous@")
    if token:
        assert token not in json.dumps(detail)
    await assert_healthy(hub)


@pytest.mark.parametrize("account", [AUDITOR, ADMIN])
async def test_accounts_that_are_not_agencies_cannot_send(hub: Hub, account: str) -> None:
    body = signed_document(hub.world, document(CITY, (BA_DINH,)))
    await refused(hub, post(hub, "/v1/documents", body, account), 403, "forbidden", actor=account)
    await assert_healthy(hub)


# ---------------------------------------------------------------------- other agencies' things


async def test_another_agencys_document_is_not_found_like_a_random_id(hub: Hub) -> None:
    receipt = await hub.send(document(CITY, (BA_DINH,)))
    doc_id, random_id = receipt["document_id"], str(uuid.uuid4())
    for suffix in ("", "/trace"):
        theirs = await refused(
            hub,
            hub.http.get(f"/v1/documents/{doc_id}{suffix}", headers=hub.as_(HOAN_KIEM)),
            404,
            "not_found",
            actor=HOAN_KIEM,
        )
        nothing = await refused(
            hub,
            hub.http.get(f"/v1/documents/{random_id}{suffix}", headers=hub.as_(HOAN_KIEM)),
            404,
            "not_found",
            actor=HOAN_KIEM,
        )
        assert masked(theirs["detail"], ID=doc_id) == masked(nothing["detail"], ID=random_id)
    # The sender and the recipient still see it.
    for code in (CITY, BA_DINH):
        assert (
            await hub.http.get(f"/v1/documents/{doc_id}/trace", headers=hub.as_(code))
        ).status == 200
    await assert_healthy(hub)


async def test_acknowledging_another_agencys_delivery_is_not_found(hub: Hub) -> None:
    receipt = await hub.send(document(CITY, (BA_DINH,)))
    delivery_id = receipt["deliveries"][0]["delivery_id"]
    for ident, caller in (
        (delivery_id, HOAN_KIEM),
        (delivery_id, CITY),
        (str(uuid.uuid4()), BA_DINH),
    ):
        request = hub.http.post(
            f"/v1/deliveries/{ident}/ack", json={"result": "done"}, headers=hub.as_(caller)
        )
        await refused(hub, request, 404, "not_found", actor=caller)
    trace = await (
        await hub.http.get(f"/v1/documents/{receipt['document_id']}/trace", headers=hub.as_(CITY))
    ).json()
    assert trace["recipients"][0]["transport"] == "queued"  # untouched
    await assert_healthy(hub)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"result": ', id="malformed-json"),
        pytest.param(b"\xff\xfe not utf-8", id="not-utf8"),
        pytest.param(b'["done"]', id="not-an-object"),
        pytest.param(b'{"result": "maybe"}', id="unknown-result"),
        pytest.param(b'{"result": "fail", "reason": 42}', id="reason-not-a-string"),
    ],
)
async def test_malformed_acknowledgement_is_400(hub: Hub, body: bytes) -> None:
    receipt = await hub.send(document(CITY, (BA_DINH,)))
    delivery_id = receipt["deliveries"][0]["delivery_id"]
    request = hub.http.post(
        f"/v1/deliveries/{delivery_id}/ack",
        data=body,
        headers={**hub.as_(BA_DINH), "Content-Type": "application/json"},
    )
    await refused(hub, request, 400, "request.invalid", actor=BA_DINH)
    await assert_healthy(hub)
