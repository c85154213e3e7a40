"""A facade that speaks the national axis's SDK (SDKVXP), so that a system written against the
national axis can be pointed at this hub (README, "Compatibility with the national axis").

Mounted under ``/vxp`` only with ``[facade] enabled = true``. The SDK calls
``<endpoint>/<verb>`` with POST and carries its parameters as HTTP headers: every key of the
JSON "header" string an application gives the SDK is sent as ``XroadVnpt-<key>``, next to the
SDK's own ``XroadVnpt-systemid``, ``XroadVnpt-timestamp`` and an HMAC of them. It reads a JSON
answer ``{"status": "OK"|"FAIL", "ErrorCode": "0"|…, "ErrorDesc": …, …}``. (Learned from the
decompiled SDKVXP 2.0.1 and the SDK's sample application; the README names the files.)

Each verb is the /v1 API's own service underneath, with every one of its checks: intake for
``sendEdoc`` (documents and, with ``messagetype: status``, signed status packages), the inbox
for ``getReceivedEdocList``, downloads for ``getEdoc``, transport acknowledgements for
``updateStatus``, search for ``getSentEdocList``, the directory for ``getAgenciesList``. What is
here is the translation only: headers in, the SDK's field names out, refusals in the SDK's shape
with the hub's problem code as ``ErrorCode``.

Authentication is the hub's own credential, never the SDK's HMAC: the hub keeps only a hash of
each credential, so it cannot check an HMAC keyed with it. The credential comes as
``Authorization: Bearer`` or, from an unmodified SDK, as the header key ``token``.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from hub import api, deliveries, intake, search
from hub.context import HubContext
from hub.directory import Agency
from hub.edxml.model import StatusCode
from hub.errors import AuthError, BadRequest, Forbidden, LienthongError, NotFound, PackageError
from hub.traces import document_facts
from tracking.models import Delivery, Document

PREFIX = "/vxp"
SDK_HEADER = "XroadVnpt-"
# The multipart field a form-posting client puts the package in. (The SDK names its upload
# "file_doc" too, but writes the file's bytes as the raw body followed by CRLF, with no part
# headers, and the Content-Type it sends is application/octet-stream.)
FILE_FIELD = "file_doc"
# What the SDK calls the two kinds of package, and the hub's delivery kinds for them.
MESSAGE_KINDS = {"edoc": "document", "status": "status"}
SERVICE_TYPE = "eDoc"
# updateStatus values that are transport acknowledgements; the rest of the SDK's status words
# are business statuses, which the hub only takes signed (a status package through sendEdoc).
ACKS = {"done": "done", "fail": "fail"}
BUSINESS_WORDS = {
    "inbox": "01",
    "rejection": "02",
    "acceptance": "03",
    "assignment": "04",
    "processing": "05",
    "finish": "06",
    "cancellation": "13",
}
FAIL_WITHOUT_REASON = "reported as fail through the national-axis SDK, which gives no reason"
TRANSPORT_WORDS = {
    "queued": "chờ nhận (queued)",
    "delivered": "đã tải về (downloaded)",
    "done": "đã nhận (acknowledged)",
    "failed": "nhận lỗi (acknowledged as failed)",
    "retrying": "đang gửi lại (retrying)",
    "expired": "quá hạn (expired)",
    "dead": "không gửi được (undeliverable)",
}
DEFAULT_PAGE_SIZE = 100

Verb = Callable[[web.Request, Agency], Awaitable[dict[str, Any]]]


# --- the SDK's answer shapes (pure) -----------------------------------------------------------


def _no_nulls(value: Any) -> Any:
    # The SDK reads every field with gson's getAsString(), which throws on a JSON null: a field
    # with no value is left out instead.
    if isinstance(value, dict):
        return {k: _no_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_no_nulls(v) for v in value]
    return value


def ok(**fields: Any) -> dict[str, Any]:
    answer: dict[str, Any] = _no_nulls(
        {"status": "OK", "ErrorCode": "0", "ErrorDesc": "Success", **fields}
    )
    return answer


def failed(error: LienthongError, request_id: str) -> dict[str, Any]:
    """A refusal as the SDK reads one; the hub's whole problem answer rides along."""
    answer: dict[str, Any] = _no_nulls(
        {
            "status": "FAIL",
            "ErrorCode": error.code,
            "ErrorDesc": error.detail,
            "problem": {**error.as_problem(), "request_id": request_id},
        }
    )
    return answer


def received_item(caller: Agency, item: Mapping[str, Any]) -> dict[str, Any]:
    """One inbox item (hub.deliveries) as the SDK's Knobstick. ``docId`` is the delivery id:
    the one id getEdoc and updateStatus take for that item."""
    status = item["kind"] == "status"
    return {
        "docId": item["delivery_id"],
        "serviceType": SERVICE_TYPE,
        "messageType": "status" if status else "edoc",
        "created_time": item["created_at"],
        "from": item["reporter"] if status else item["sender"],
        "to": caller.code,
        "status": item["state"],
        "status_desc": TRANSPORT_WORDS.get(item["state"], item["state"]),
        "lienthong": dict(item),
    }


def sent_rows(doc: Document, recipients: list[Delivery]) -> list[dict[str, Any]]:
    """A document the caller sent, one row per recipient, as the SDK's StatusResult."""
    facts = document_facts(doc)
    rows = []
    for d in recipients:
        business = StatusCode(d.business_state) if d.business_state else None
        rows.append(
            {
                "serviceType": SERVICE_TYPE,
                "messageType": "edoc",
                "senderDocId": doc.id,
                "receiverDocId": d.id,
                "fromCode": doc.sender_code,
                "toCode": d.recipient_code,
                "title": doc.subject,
                "notation": facts["code"],
                "sentTime": facts["received_at"],
                "receivedTime": d.delivered_at.isoformat() if d.delivered_at else None,
                "sendStatus": d.state,
                "sendStatusDesc": TRANSPORT_WORDS.get(d.state, d.state),
                "receiveStatus": business.value if business else None,
                "receiveStatusDesc": business.meaning if business else None,
            }
        )
    return rows


def agency_item(agency: Agency) -> dict[str, Any]:
    """A directory entry as the SDK's Agency (``id`` is the code: the hub has no other id)."""
    return {"id": agency.code, "code": agency.code, "name": agency.name, "pid": agency.parent}


def sdk_hash(data: bytes) -> str:
    """SHA-256 the way the SDK writes its ``hash-file`` header: each byte in hex without its
    leading zero (``0x0a`` is ``a``)."""
    return "".join(format(b, "x") for b in hashlib.sha256(data).digest())


def package_from_raw_body(body: bytes, hash_file: str) -> bytes:
    """The package in a raw sendEdoc body, checked against the SDK's ``hash-file`` if sent.

    The SDK appends CRLF to the file it uploads; the hash it sends is the file's, so when the
    hash says so the CRLF is dropped and the hub stores the very bytes the sender signed and
    hashed. A hash that matches neither (in the SDK's form or as plain hex) means the package
    was damaged on the way: refused, nothing stored.
    """
    if not hash_file:
        return body
    wanted = hash_file.strip().lower()
    candidates = [body[:-2], body] if body.endswith(b"\r\n") else [body]
    for data in candidates:
        if wanted in (sdk_hash(data), hashlib.sha256(data).hexdigest()):
            return data
    raise BadRequest(
        "hash-file does not match the package received (nor the package without the CRLF the "
        "SDK appends): the upload was damaged or changed on the way. Send it again."
    )


def file_from_multipart(content_type: str, body: bytes) -> bytes:
    """The ``file_doc`` part of a multipart/form-data body, byte for byte.

    The body was read within the size cap before this; the standard library's parser keeps a
    binary part exactly as sent (the package's hash must be the one its sender computed).
    """
    header = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
    if message.is_multipart():
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == FILE_FIELD:
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    return payload
    raise BadRequest(
        f"A multipart/form-data sendEdoc carries the package as the field {FILE_FIELD!r}; this "
        "form has none. (Or send the package itself as the body, as the SDK does.)"
    )


# --- reading the SDK's requests --------------------------------------------------------------


def _header(request: web.Request, key: str) -> str:
    """The SDK parameter *key* (sent as ``XroadVnpt-<key>``; header names ignore case)."""
    return request.headers.get(SDK_HEADER + key, "").strip()


def _caller(request: web.Request) -> Agency:
    if "Authorization" in request.headers:
        caller = api.authenticate(request)
    else:
        token = _header(request, "token")
        if not token:
            raise AuthError(
                'This hub needs your Lienthong credential: add "token": "<credential>" to the '
                "SDK's JSON header (sent as XroadVnpt-token), or send 'Authorization: Bearer "
                "<credential>'. The SDK's secret and HMAC are not used."
            )
        caller = api.authenticate_token(request, token)
    system_id = _header(request, "systemid")
    if system_id and system_id != caller.code:
        raise Forbidden(
            f"systemId {system_id!r} is not the account this credential belongs to "
            f"({caller.code}): set the SDK's systemId to your agency code.",
            code="sender.mismatch",
        )
    if caller.role != "agency":
        raise Forbidden(
            f"{caller.code} is an {caller.role} account; the national-axis facade serves "
            "agencies. Use the /v1 API."
        )
    return caller


def _page_size(request: web.Request) -> int:
    raw = _header(request, "pageSize")
    if not raw:
        return DEFAULT_PAGE_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= deliveries.MAX_INBOX_LIMIT:
        raise BadRequest(f"pageSize must be a whole number from 1 to {deliveries.MAX_INBOX_LIMIT}.")
    return int(raw)


def _message_type(request: web.Request) -> str:
    kind = (_header(request, "messagetype") or "edoc").lower()
    if kind not in MESSAGE_KINDS:
        raise BadRequest(f"messagetype must be edoc or status, not {kind!r}.")
    return kind


def _doc_id(request: web.Request) -> str:
    ident = _header(request, "docId")
    if not ident:
        raise BadRequest("docId is required: the id getReceivedEdocList or sendEdoc gave.")
    return ident


# --- the verbs ----------------------------------------------------------------------------------


def _ctx(request: web.Request) -> HubContext:
    return request.app[api.CONTEXT]


async def send_edoc(request: web.Request, caller: Agency) -> dict[str, Any]:
    """sendEdoc: a signed document package, or with ``messagetype: status`` a signed status
    package, through the same intake as POST /v1/documents and POST /v1/status."""
    kind = _message_type(request)
    claimed = _header(request, "from")
    if claimed and claimed != caller.code:
        raise Forbidden(
            f"from {claimed!r} is not the calling agency ({caller.code}); an agency sends only "
            "in its own name.",
            code="sender.mismatch",
        )
    body = await api.read_body(request)
    if request.content_type == "multipart/form-data" and body.startswith(b"--"):
        package = file_from_multipart(request.headers.get("Content-Type", ""), body)
    else:  # the SDK's way: the file itself (whatever the Content-Type says)
        package = package_from_raw_body(body, _header(request, "hash-file"))
    request[api.BODY] = package  # a refusal's trace event names the package
    if kind == "status":
        answer = await intake.accept_status(_ctx(request), caller, package)
        return ok(DocId=answer["status_id"], lienthong=answer)
    answer = await intake.accept_document(_ctx(request), caller, package)
    return ok(DocId=answer["document_id"], lienthong=answer)


async def get_received_edoc_list(request: web.Request, caller: Agency) -> dict[str, Any]:
    """getReceivedEdocList: the pending documents (or with ``messagetype: status`` the status
    packages) in the caller's inbox, most urgent first; nothing changes."""
    kind = MESSAGE_KINDS[_message_type(request)]
    items = await deliveries.inbox(_ctx(request), caller, limit=_page_size(request), kinds=(kind,))
    return ok(data=[received_item(caller, item) for item in items])


async def get_edoc(request: web.Request, caller: Agency) -> dict[str, Any]:
    """getEdoc: the package, base64, as received. ``docId`` is an inbox item's id, or a document
    id the caller may read (one it sent or was sent)."""
    ctx, ident = _ctx(request), _doc_id(request)
    delivery = await deliveries.own_delivery(ctx, caller, ident)
    if delivery is not None and delivery.kind == "status" and delivery.status_id:
        data = await deliveries.fetch_status(ctx, caller, delivery.status_id)
    elif delivery is not None and delivery.kind == "document":
        data = await deliveries.fetch_document(ctx, caller, delivery.document_id)
    elif delivery is not None:
        raise NotFound(f"{ident} is a {delivery.kind} for the /v1 inbox, not a package.")
    else:
        data = await deliveries.fetch_document(ctx, caller, ident)
    return ok(data=base64.b64encode(data).decode("ascii"))


async def update_status(request: web.Request, caller: Agency) -> dict[str, Any]:
    """updateStatus: ``done`` and ``fail`` acknowledge an inbox item (transport). Business
    statuses are refused: the hub takes them only signed, as status packages."""
    ident, word = _doc_id(request), _header(request, "status").lower()
    if word in BUSINESS_WORDS or word in {c.value for c in StatusCode}:
        code = BUSINESS_WORDS.get(word, word)
        raise PackageError(
            f"Status {word!r} is a business status ({code}); this hub accepts business statuses "
            "only as signed edXML status packages, which an updateStatus header cannot carry. "
            "Build and sign the status package and send it with sendEdoc and messagetype "
            "'status'. updateStatus takes 'done' or 'fail' (transport acknowledgements).",
            code="status.unsigned",
        )
    if word not in ACKS:
        raise BadRequest(f"status must be 'done' or 'fail' here, not {word!r}.")
    ctx = _ctx(request)
    delivery = await deliveries.own_delivery(ctx, caller, ident)
    if delivery is None:
        raise NotFound(f"No delivery {ident} is visible to you.")
    reason = _header(request, "reason") or (FAIL_WITHOUT_REASON if word == "fail" else "")
    answer = await deliveries.acknowledge(ctx, caller, delivery.id, ACKS[word], reason)
    return ok(lienthong=answer)


async def get_sent_edoc_list(request: web.Request, caller: Agency) -> dict[str, Any]:
    """getSentEdocList: the documents the caller sent, newest first, one row per recipient with
    its transport and business state; ``docId`` narrows it to one."""
    query = search.Query(
        sender=caller.code,
        document_id=_header(request, "docId") or None,
        limit=min(_page_size(request), search.MAX_LIMIT),
    )
    found = await search.find(_ctx(request), caller, query)
    rows = [row for doc in found.documents for row in sent_rows(doc, found.deliveries[doc.id])]
    return ok(data=rows)


async def get_agencies_list(request: web.Request, caller: Agency) -> dict[str, Any]:
    """getAgenciesList: the codes documents can be addressed to (as GET /v1/agencies)."""
    return ok(data=[agency_item(a) for a in _ctx(request).directory.exchanging()])


VERBS: dict[str, Verb] = {
    "sendEdoc": send_edoc,
    "getReceivedEdocList": get_received_edoc_list,
    "getEdoc": get_edoc,
    "updateStatus": update_status,
    "getSentEdocList": get_sent_edoc_list,
    "getAgenciesList": get_agencies_list,
}


def _ascii_json(value: Any) -> str:
    # The SDK reads some answers as US-ASCII (its multipart upload's): escaped, Vietnamese text
    # survives that, and every JSON reader decodes the escapes.
    return json.dumps(value, ensure_ascii=True)


def _handler(verb: Verb) -> api.Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            answer = await verb(request, _caller(request))
        except LienthongError as error:
            await api.record_refusal(request, error)
            headers = {"WWW-Authenticate": 'Bearer realm="lienthong"'}
            return web.json_response(
                failed(error, request[api.REQUEST_ID]),
                status=error.status,
                headers=headers if isinstance(error, AuthError) else None,
                dumps=_ascii_json,
            )
        return web.json_response(answer, dumps=_ascii_json)

    return handle


def add_routes(app: web.Application) -> None:
    # The SDK POSTs every verb (it sends its parameters as headers, not as a body or a query).
    for name, verb in VERBS.items():
        app.router.add_post(f"{PREFIX}/{name}", _handler(verb))
