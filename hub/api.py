"""The HTTP API under ``/v1`` (aiohttp). Handlers are thin: authenticate, read the body within the
limit, call a service, answer JSON. Every error is ``application/problem+json`` with a stable
``code``; a refused request leaves one ``rejected`` event in the trace and nothing else.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web

from hub import (
    deliveries,
    health,
    intake,
    logs,
    metrics,
    operations,
    prometheus,
    search,
    traces,
)
from hub.context import HubContext
from hub.directory import Agency
from hub.errors import AuthError, BadRequest, Forbidden, LienthongError, TooLarge, Unavailable
from hub.health import Loop, SchedulerWatch
from tracking.models import utcnow

log = logging.getLogger(__name__)

CONTEXT = web.AppKey("context", HubContext)
MAX_BODY = web.AppKey("max_body", int)
OPENAPI = web.AppKey("openapi", bytes)
SCHEDULER = web.AppKey("scheduler", SchedulerWatch)
DISPATCHER = web.AppKey("dispatcher", Loop)
METRICS_TOKEN = web.AppKey("metrics_token", str)
CALLER = web.RequestKey("caller", Agency)
BODY = web.RequestKey("body", bytes)
REQUEST_ID = web.RequestKey("request_id", str)

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem_response(error: LienthongError, request_id: str) -> web.Response:
    body = error.as_problem()
    body["request_id"] = request_id
    headers = {"X-Request-Id": request_id}
    if isinstance(error, AuthError):
        headers["WWW-Authenticate"] = 'Bearer realm="lienthong"'
    if isinstance(error, Unavailable):
        headers["Retry-After"] = str(error.retry_after)
    return web.json_response(
        body,
        status=error.status,
        content_type="application/problem+json",
        headers=headers,
        dumps=json_dumps,
    )


def json_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # A caller's own request id is kept so logs on both sides line up, if it is a plain token.
    given = request.headers.get("X-Request-Id", "")
    request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    # Every log line written while handling this request carries its id (hub.logs).
    token = logs.request_id.set(request_id)
    started = time.monotonic()
    try:
        response = await _answer(request, handler, request_id)
        response.headers["X-Request-Id"] = request_id
        # The path only: never the query, headers or body.
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status,
                "caller": caller.code if (caller := request.get(CALLER)) else None,
                "ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        return response
    finally:
        logs.request_id.reset(token)


async def _answer(request: web.Request, handler: Handler, request_id: str) -> web.StreamResponse:
    try:
        return await handler(request)
    except LienthongError as error:
        request.app[CONTEXT].metrics.rejections.inc(code=error.code)
        if not isinstance(error, Unavailable):  # in maintenance the hub writes nothing
            await record_refusal(request, error)
        return problem_response(error, request_id)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "request.invalid")
        generic = LienthongError(exc.reason, code=code)
        generic.status = exc.status  # type: ignore[misc]
        request.app[CONTEXT].metrics.rejections.inc(code=code)
        return problem_response(generic, request_id)
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        request.app[CONTEXT].metrics.rejections.inc(code=LienthongError.code)
        return problem_response(
            LienthongError(
                f"The hub failed to handle this request; quote request id {request_id}."
            ),
            request_id,
        )


async def record_refusal(request: web.Request, error: LienthongError) -> None:
    """The one ``rejected`` trace event a refused request leaves (whatever shape its answer)."""
    ctx = request.app[CONTEXT]
    caller: Agency | None = request.get(CALLER)
    try:
        await intake.record_rejection(
            ctx,
            caller.code if caller else f"anonymous@{request.remote or '?'}",
            f"{request.method} {request.path}",
            error,
            request.get(BODY),
        )
    except Exception:  # the refusal itself must still reach the client
        log.exception("could not record a rejection event")


def authenticate(request: web.Request) -> Agency:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise AuthError(
            "This endpoint needs a credential: send 'Authorization: Bearer <credential>'."
        )
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(
            "The Authorization header must be 'Bearer <credential>'.", code="auth.invalid"
        )
    return authenticate_token(request, token.strip())


def authenticate_token(request: web.Request, token: str) -> Agency:
    """The account *token* (a credential, however the request carried it) belongs to."""
    agency = request.app[CONTEXT].directory.authenticate(token)
    if agency is None:
        raise AuthError("The credential is not valid for this hub.", code="auth.invalid")
    request[CALLER] = agency
    return agency


async def read_body(request: web.Request) -> bytes:
    """Read the body, refusing more than the configured limit without reading it all."""
    limit = request.app[MAX_BODY]
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(
            f"The body is {request.content_length} bytes; this hub accepts at most {limit}."
        )
    chunks = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"The body is larger than {limit} bytes, the most this hub accepts.")
        chunks.append(chunk)
    body = b"".join(chunks)
    request[BODY] = body
    return body


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=json_dumps)


def _xml(data: bytes) -> web.Response:
    return web.Response(body=data, content_type="application/xml", charset="utf-8")


def _number(request: web.Request, name: str, default: float) -> float:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise BadRequest(f"Query parameter {name} must be a number, not {raw!r}.") from None


async def post_document(request: web.Request) -> web.Response:
    caller = authenticate(request)
    await request.app[CONTEXT].maintenance.refuse_if_on(request.app[CONTEXT].store)
    body = await read_body(request)
    return _json(await intake.accept_document(request.app[CONTEXT], caller, body), status=202)


async def post_status(request: web.Request) -> web.Response:
    caller = authenticate(request)
    await request.app[CONTEXT].maintenance.refuse_if_on(request.app[CONTEXT].store)
    body = await read_body(request)
    return _json(await intake.accept_status(request.app[CONTEXT], caller, body), status=202)


async def post_validate(request: web.Request) -> web.Response:
    """A dry run: the validation report of the body (``schema.report_for``), always a 200.

    Nothing is stored and no trace event is written, whatever the package (a malformed one
    included: it is reported, not refused). Only what is wrong with the request itself is a
    problem answer, as everywhere: no or a bad credential (401), an oversized body (413), an
    unknown ``kind`` (400). An agency's signature is verified against its own registered
    certificates; other accounts have none, so only what needs no certificate is judged.
    """
    import asyncio

    from hub.edxml.schema import PackageKind, report_for

    caller = authenticate(request)
    kinds: dict[str, PackageKind] = {"edoc": "edoc", "status": "status"}
    asked = request.query.get("kind")
    if asked is not None and asked not in kinds:
        raise BadRequest(f"Query parameter kind must be edoc or status, not {asked!r}.")
    body = await read_body(request)
    ctx = request.app[CONTEXT]
    # Off the event loop: explaining a large invalid package (xmlschema) takes a while.
    report = await asyncio.to_thread(
        report_for,
        body,
        kinds[asked] if asked is not None else None,
        ctx.validation,
        certificates=caller.certificates if caller.can_exchange else None,
        signature_policy=ctx.policy_for(caller),
    )
    if caller.can_exchange and report["signature"]["checked"]:
        # The certificate's trust (chain, validity, revocation) is judged too, exactly as
        # intake would: the verdict is the one a send would get.
        report["signature"] = await asyncio.to_thread(intake.signature_verdict, ctx, caller, body)
    return _json(report)


async def get_inbox(request: web.Request) -> web.Response:
    caller = authenticate(request)
    items = await deliveries.inbox(
        request.app[CONTEXT],
        caller,
        limit=int(_number(request, "limit", 100)),
        wait=_number(request, "wait", 0),
        lease=_number(request, "lease", 0),
    )
    return _json({"items": items})


async def get_document(request: web.Request) -> web.Response:
    caller, ctx, ident = authenticate(request), request.app[CONTEXT], request.match_info["id"]
    body = await deliveries.fetch_document(ctx, caller, ident)
    await traces.record_auditor_access(ctx, caller, "document", {"document_id": ident})
    return _xml(body)


async def get_status(request: web.Request) -> web.Response:
    caller, ctx, ident = authenticate(request), request.app[CONTEXT], request.match_info["id"]
    body = await deliveries.fetch_status(ctx, caller, ident)
    await traces.record_auditor_access(ctx, caller, "status", {"status_id": ident})
    return _xml(body)


async def get_receipt(request: web.Request) -> web.Response:
    caller, ctx, ident = authenticate(request), request.app[CONTEXT], request.match_info["id"]
    answer = await deliveries.fetch_receipt(ctx, caller, ident)
    await traces.record_auditor_access(ctx, caller, "receipt", {"receipt_id": ident})
    return _json(answer)


async def get_documents(request: web.Request) -> web.Response:
    caller, ctx = authenticate(request), request.app[CONTEXT]
    query = search.parse_query(request.query)
    answer = await search.search(ctx, caller, query)
    await traces.record_auditor_access(
        ctx, caller, "search", {"query": query.as_dict(), "results": len(answer["items"])}
    )
    return _json(answer)


async def post_ack(request: web.Request) -> web.Response:
    caller = authenticate(request)
    raw = await read_body(request)
    try:
        payload = json.loads(raw or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("result"), str):
        raise BadRequest(
            'The body must be a JSON object like {"result": "done"} '
            'or {"result": "fail", "reason": "…"}.'
        )
    reason = payload.get("reason", "")
    if not isinstance(reason, str):
        raise BadRequest("reason must be a string.")
    answer = await deliveries.acknowledge(
        request.app[CONTEXT], caller, request.match_info["id"], payload["result"], reason
    )
    return _json(answer)


async def post_resend(request: web.Request) -> web.Response:
    """An operator sends a delivery again (``hub.operations``): admin accounts only."""
    caller = authenticate(request)
    if caller.role != "admin":
        raise Forbidden(f"{caller.code} is an {caller.role} account; only admins resend.")
    answer = await operations.resend(
        request.app[CONTEXT], request.match_info["id"], caller.code, via="api"
    )
    return _json(answer)


async def get_trace(request: web.Request) -> web.Response:
    caller, ctx, ident = authenticate(request), request.app[CONTEXT], request.match_info["id"]
    trace = await traces.document_trace(ctx, caller, ident)
    await traces.record_auditor_access(ctx, caller, "trace", {"document_id": ident})
    return _json(trace)


async def get_agencies(request: web.Request) -> web.Response:
    authenticate(request)
    ctx = request.app[CONTEXT]
    items = [
        {"code": a.code, "name": a.name, "parent": a.parent or None, "delivery": a.delivery}
        for a in ctx.directory.exchanging()
    ]
    groups = [
        {"code": g.code, "name": g.name, "members": list(g.members)}
        for g in sorted(ctx.directory.groups, key=lambda g: g.code)
    ]
    return _json({"items": items, "groups": groups})


async def get_openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    """hub.health: 200 when every check passes, else 503; no authentication, no secrets."""
    app = request.app
    healthy, body = await health.check(app[CONTEXT], app.get(SCHEDULER), app.get(DISPATCHER))
    return _json(body, status=200 if healthy else 503)


def _loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


async def get_metrics(request: web.Request) -> web.Response:
    """Prometheus text (hub.metrics). With ``[metrics]`` token: callers must send it as a bearer
    token; without one: loopback callers only."""
    expected = request.app.get(METRICS_TOKEN)
    if expected is not None:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), expected.encode()
        ):
            raise AuthError(
                "/metrics needs the scrape token: 'Authorization: Bearer <token>'.",
                code="auth.invalid" if given else "auth.required",
            )
    elif not _loopback(request.remote):
        raise Forbidden(
            "/metrics answers only loopback callers unless a scrape token is configured "
            "([metrics] token_file or token_env)."
        )
    text = await metrics.exposition(request.app[CONTEXT], utcnow())
    return web.Response(text=text, headers={"Content-Type": prometheus.CONTENT_TYPE})


def create_app(
    ctx: HubContext,
    *,
    max_body_bytes: int,
    scheduler: SchedulerWatch | None = None,
    dispatcher: Loop | None = None,
    metrics_token: str | None = None,
    facade: bool = False,
) -> web.Application:
    """The hub's HTTP application. *scheduler*, *dispatcher*: the hub's clock and its outbound
    loop, judged by /healthz (none: not judged). *metrics_token*: the bearer token /metrics
    requires (none: loopback only). With *facade*, also the national-axis SDK's verbs
    (hub.facade)."""
    # We read bodies ourselves (read_body) with the configured limit; aiohttp's own cap is set a
    # little above it so that it never cuts in first with a plain-text error.
    app = web.Application(middlewares=[errors_middleware], client_max_size=max_body_bytes + 1024)
    app[CONTEXT] = ctx
    app[MAX_BODY] = max_body_bytes
    app[OPENAPI] = resources.files("hub").joinpath("openapi.json").read_bytes()
    if scheduler is not None:
        app[SCHEDULER] = scheduler
    if dispatcher is not None:
        app[DISPATCHER] = dispatcher
    if metrics_token is not None:
        app[METRICS_TOKEN] = metrics_token
    app.router.add_post("/v1/documents", post_document)
    app.router.add_get("/v1/documents", get_documents)
    app.router.add_get("/v1/documents/{id}", get_document)
    app.router.add_get("/v1/documents/{id}/trace", get_trace)
    app.router.add_post("/v1/status", post_status)
    app.router.add_get("/v1/status/{id}", get_status)
    app.router.add_post("/v1/validate", post_validate)
    app.router.add_get("/v1/inbox", get_inbox)
    app.router.add_post("/v1/deliveries/{id}/ack", post_ack)
    app.router.add_post("/v1/deliveries/{id}/resend", post_resend)
    app.router.add_get("/v1/receipts/{id}", get_receipt)
    app.router.add_get("/v1/agencies", get_agencies)
    app.router.add_get("/v1/openapi.json", get_openapi)
    app.router.add_get("/healthz", healthz)
    if facade:
        from hub.facade import add_routes  # it builds on this module's helpers

        add_routes(app)
    app.router.add_get("/metrics", get_metrics)
    return app
