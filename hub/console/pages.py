"""The web console's pages: server-rendered HTML over the same functions the API uses.

Who sees what is decided by those functions (``hub.search``, ``hub.traces``, …) exactly as for
the API; this module only adds what a browser needs: sign-in with a session cookie, a CSRF
token checked on every POST, and pages in Vietnamese or English.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy import func, select

from hub import intake, operations, search, traces
from hub.checkpoints import AuditReport, audit
from hub.config import ConsoleSettings
from hub.console.html import Markup, join, render, tag
from hub.console.i18n import DEFAULT, LANGUAGES, Messages, age, messages, vietnam_time
from hub.console.sessions import LoginThrottle, Session, close_session, find_session, open_session
from hub.console.svg import bars, timeline, timeline_rows
from hub.context import HubContext
from hub.directory import Agency
from hub.errors import BadRequest, Forbidden, LienthongError
from hub.reports import COLUMNS, VIETNAM, monthly_report
from hub.states import UNDELIVERED, Transport
from signing.checkpoints import CheckpointError, verify_checkpoint
from tracking.models import ChainCheckpoint, Delivery, TraceEvent, utcnow

SESSION_COOKIE = "lienthong_session"
LOGIN_COOKIE = "lienthong_login"  # the sign-in form's CSRF token (no session yet)
LANG_COOKIE = "lienthong_lang"
PREFIX = "/console"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AuditRun:
    """The one chain verification the console runs at a time, in the background, with the
    number of events read so far (``hub.checkpoints.audit`` reports every 5,000)."""

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.count = 0
        self.report: AuditReport | None = None
        self.finished_at: dt.datetime | None = None

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def start(self, ctx: HubContext) -> None:
        if self.running:
            return
        self.count = 0

        def progress(count: int) -> None:
            self.count = count

        async def run() -> None:
            self.report = await audit(
                ctx.store, ctx.receipt_signer.certificate, ctx.hub_id, progress
            )
            self.count = self.report.chain.events
            self.finished_at = utcnow()

        self.task = asyncio.create_task(run())

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


@dataclass
class Console:
    ctx: HubContext
    settings: ConsoleSettings
    windows: Mapping[int, dt.timedelta]
    throttle: LoginThrottle
    audit: AuditRun = field(default_factory=AuditRun)


CONSOLE = web.AppKey("console", Console)
LANG = web.RequestKey("lang", str)
SESSION = web.RequestKey("session", Session)
FORM = web.RequestKey("form", MultiDictProxy[Any])
REFRESH = web.RequestKey("refresh", Markup)  # a page that reloads itself (a running check)

STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#8b1a1a;color:#fff;padding:.5em 1em;display:flex;gap:1.2em;align-items:center;
flex-wrap:wrap}header a{color:#fff}header form{display:inline;margin-left:auto}
main{padding:1em 1.5em}table{border-collapse:collapse;margin:.5em 0;background:#fff}
td,th{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top;font-size:.92em}
th{background:#f0f0f0}.overdue{color:#c62828;font-weight:bold}.notice{background:#e8f5e9;
padding:.5em;border:1px solid #a5d6a7}.error{background:#ffebee;padding:.5em;border:1px solid
#ef9a9a}form.filters label{display:inline-block;margin:0 .8em .4em 0}footer{color:#666;
font-size:.85em;padding:1em 1.5em}code{font-size:.9em}ul.tree{list-style:none;padding-left:1.2em}
"""


# --- plumbing ---------------------------------------------------------------------------------


def console_of(request: web.Request) -> Console:
    return request.app[CONSOLE]


def t_of(request: web.Request) -> Messages:
    return messages(request.get(LANG, DEFAULT))


def caller_of(request: web.Request) -> Agency:
    return request[SESSION].account


def _language(request: web.Request) -> str:
    asked = request.query.get("lang")
    if asked in LANGUAGES:
        return str(asked)
    kept = request.cookies.get(LANG_COOKIE)
    return kept if kept in LANGUAGES else DEFAULT


def _secure_headers(response: web.StreamResponse) -> None:
    # No script runs on these pages; styles are inline; nothing may frame them.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"


def _home(account: Agency) -> str:
    return f"{PREFIX}/deliveries" if account.role == "admin" else f"{PREFIX}/documents"


@web.middleware
async def console_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Language, session, CSRF, and errors as pages (not the API's problem+json)."""
    request[LANG] = _language(request)
    console = console_of(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    found = await find_session(console.ctx.store, console.ctx.directory, token) if token else None
    if found is not None:
        request[SESSION] = found
    is_login = request.path == f"{PREFIX}/login"
    try:
        if found is None and not is_login:
            raise web.HTTPSeeOther(f"{PREFIX}/login")
        if request.method == "POST":
            form = await request.post()
            request[FORM] = form
            given = form.get("csrf")
            expected = (
                request.cookies.get(LOGIN_COOKIE)
                if is_login
                else (found.csrf if found is not None else None)
            )
            if not (
                isinstance(given, str)
                and expected
                and secrets.compare_digest(given.encode(), expected.encode())
            ):
                raise Forbidden(t_of(request)("error.csrf"))
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = t_of(request)("error.not_found") if exc.status == 404 else exc.reason
        response = page(request, t_of(request)("error.title"), _error(message), status=exc.status)
    except LienthongError as error:
        if isinstance(error, Forbidden):
            # A forbidden action is kept in the trace, as the API keeps its refusals.
            actor = found.account.code if found else f"anonymous@{request.remote or '?'}"
            await intake.record_rejection(
                console_of(request).ctx, actor, f"{request.method} {request.path}", error
            )
        body = _error(error.detail)
        response = page(request, t_of(request)("error.title"), body, status=error.status)
    if "lang" in request.query and request.query["lang"] in LANGUAGES:
        response.set_cookie(
            LANG_COOKIE, request[LANG], path=PREFIX, max_age=365 * 86400, samesite="Strict"
        )
    _secure_headers(response)
    return response


def _error(message: str) -> Markup:
    return tag("p", message, class_="error")


def csrf_field(request: web.Request) -> Markup:
    return tag("input", type="hidden", name="csrf", value=request[SESSION].csrf)


def _nav(request: web.Request) -> Markup:
    t = t_of(request)
    found: Session | None = request.get(SESSION)
    lang = request[LANG]
    other = "en" if lang == "vi" else "vi"
    query = {k: v for k, v in request.query.items() if k != "lang"}
    query["lang"] = other
    switch = tag("a", t("lang.switch"), href=f"{request.path}?{urlencode(query)}", id="lang-switch")
    if found is None:
        return join([tag("strong", t("title")), switch], " ")
    role = found.account.role
    links = [
        ("documents", ("agency", "auditor")),
        ("deliveries", ("admin", "auditor")),
        ("agencies", ("agency", "auditor", "admin")),
        ("audit", ("admin", "auditor")),
        ("stats", ("agency", "auditor", "admin")),
    ]
    items = [tag("strong", t("title"))]
    items += [
        tag("a", t(f"nav.{name}"), href=f"{PREFIX}/{name}")
        for name, roles in links
        if role in roles
    ]
    items.append(switch)
    items.append(tag("span", t("signed_in_as", account=found.account.code, role=t(f"role.{role}"))))
    items.append(
        tag(
            "form",
            join([csrf_field(request), tag("button", t("sign_out"), type="submit")]),
            method="post",
            action=f"{PREFIX}/logout",
        )
    )
    return join(items, " ")


def page(request: web.Request, title: str, body: Markup, *, status: int = 200) -> web.Response:
    t = t_of(request)
    html = render(
        '<!doctype html><html lang="$lang"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width">$refresh<title>$title</title>'
        "<style>$style</style></head><body><header>$nav</header><main><h1>$title</h1>$body"
        "</main><footer>$zone</footer></body></html>",
        lang=request[LANG],
        title=title,
        style=Markup(STYLE),
        nav=_nav(request),
        body=body,
        zone=t("time.zone"),
        refresh=request.get(REFRESH, ""),
    )
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def table(headers: list[str], rows: list[list[object]], **attrs: object) -> Markup:
    head = tag("tr", join(tag("th", h) for h in headers))
    body = join(tag("tr", join(tag("td", cell) for cell in row)) for row in rows)
    return tag("table", join([head, body]), **attrs)


def _when(text: str | None) -> str:
    return vietnam_time(dt.datetime.fromisoformat(text)) if text else ""


def _require(request: web.Request, roles: tuple[str, ...], message_key: str) -> Agency:
    caller = caller_of(request)
    if caller.role not in roles:
        raise Forbidden(t_of(request)(message_key))
    return caller


# --- sign-in ----------------------------------------------------------------------------------


def _login_form(request: web.Request, message: str | None, csrf: str) -> Markup:
    t = t_of(request)
    return join(
        [
            _error(message) if message else "",
            tag(
                "form",
                join(
                    [
                        tag("input", type="hidden", name="csrf", value=csrf),
                        tag(
                            "label",
                            join(
                                [
                                    t("login.credential"),
                                    tag("br"),
                                    tag(
                                        "input",
                                        type="password",
                                        name="credential",
                                        id="credential",
                                        size=60,
                                        autocomplete="current-password",
                                        required=True,
                                    ),
                                ]
                            ),
                        ),
                        tag("p", tag("button", t("login.submit"), type="submit", id="sign-in")),
                    ]
                ),
                method="post",
                action=f"{PREFIX}/login",
            ),
        ]
    )


def _login_page(
    request: web.Request, message: str | None = None, status: int = 200
) -> web.Response:
    csrf = secrets.token_urlsafe(32)
    response = page(
        request, t_of(request)("login.title"), _login_form(request, message, csrf), status=status
    )
    response.set_cookie(
        LOGIN_COOKIE, csrf, path=PREFIX, httponly=True, samesite="Strict", secure=request.secure
    )
    return response


async def get_login(request: web.Request) -> web.StreamResponse:
    found: Session | None = request.get(SESSION)
    if found is not None:
        raise web.HTTPSeeOther(_home(found.account))
    return _login_page(request)


async def post_login(request: web.Request) -> web.StreamResponse:
    console, t = console_of(request), t_of(request)
    client, now = request.remote or "?", utcnow()
    if not console.throttle.allowed(client, now):
        seconds = console.throttle.retry_after(client, now)
        response = _login_page(request, t("login.throttled", seconds=seconds), status=429)
        response.headers["Retry-After"] = str(seconds)
        return response
    credential = str(request[FORM].get("credential", "")).strip()
    account = console.ctx.directory.authenticate(credential) if credential else None
    if account is None:
        console.throttle.failed(client, now)
        return _login_page(request, t("login.failed"), status=401)
    if account.is_hub:
        return _login_page(request, t("login.hub_account"), status=403)
    console.throttle.succeeded(client)
    lifetime = dt.timedelta(seconds=console.settings.session_seconds)
    token = await open_session(console.ctx.store, account, lifetime)
    response = web.HTTPSeeOther(_home(account))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        path=PREFIX,
        max_age=console.settings.session_seconds,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    response.del_cookie(LOGIN_COOKIE, path=PREFIX)
    raise response


async def post_logout(request: web.Request) -> web.StreamResponse:
    await close_session(console_of(request).ctx.store, request.cookies.get(SESSION_COOKIE, ""))
    response = web.HTTPSeeOther(f"{PREFIX}/login")
    response.del_cookie(SESSION_COOKIE, path=PREFIX)
    raise response


async def get_home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther(_home(caller_of(request)))


# --- documents --------------------------------------------------------------------------------


def _search_form(request: web.Request) -> Markup:
    t, q = t_of(request), request.query

    def text(name: str, kind: str = "text") -> Markup:
        field_ = tag("input", type=kind, name=name, value=q.get(name, ""), id=f"f-{name}")
        return tag("label", join([t(f"search.{name}"), " ", field_]))

    def choice(name: str, values: tuple[str, ...]) -> Markup:
        options = [tag("option", t("search.any"), value="")] + [
            tag("option", v, value=v, selected=q.get(name) == v) for v in values
        ]
        return tag(
            "label",
            join(
                [t(f"search.{name}"), " ", tag("select", join(options), name=name, id=f"f-{name}")]
            ),
        )

    return tag(
        "form",
        join(
            [
                text("q"),
                text("sender"),
                text("recipient"),
                choice("state", tuple(s.value for s in Transport)),
                choice("status", search.STATUS_CODES),
                text("since", "date"),
                text("until", "date"),
                tag("button", t("search.submit"), type="submit", id="search"),
            ]
        ),
        method="get",
        action=f"{PREFIX}/documents",
        class_="filters",
    )


async def get_documents(request: web.Request) -> web.StreamResponse:
    t, caller, ctx = t_of(request), caller_of(request), console_of(request).ctx
    if caller.role == "admin":
        return page(request, t("search.title"), _error(t("search.admin")))
    params = {k: v for k, v in request.query.items() if k != "lang" and v}
    try:
        query = search.parse_query(params)
    except BadRequest as exc:
        body = join([_search_form(request), _error(exc.detail)])
        return page(request, t("search.title"), body, status=400)
    answer = await search.search(ctx, caller, query)
    await traces.record_auditor_access(
        ctx, caller, "search", {"query": query.as_dict(), "results": len(answer["items"])}
    )
    rows: list[list[object]] = [
        [
            _when(item["received_at"]),
            item["sender"],
            tag("a", item["code"], href=f"{PREFIX}/documents/{item['document_id']}"),
            item["subject"],
            join(
                (
                    tag(
                        "div",
                        f"{r['recipient']}: {r['transport']}"
                        + (f" / {r['business']}" if r["business"] else ""),
                    )
                    for r in item["recipients"]
                ),
            ),
        ]
        for item in answer["items"]
    ]
    results = (
        table(
            [
                t("col.received_at"),
                t("col.sender"),
                t("col.code"),
                t("col.subject"),
                t("col.recipients"),
            ],
            rows,
            id="results",
        )
        if rows
        else tag("p", t("search.none"), id="results-none")
    )
    more: Markup | str = ""
    if answer["next_cursor"]:
        following = {**params, "cursor": answer["next_cursor"]}
        more = tag("a", t("search.more"), href=f"{PREFIX}/documents?{urlencode(following)}")
    return page(request, t("search.title"), join([_search_form(request), results, more]))


async def get_document(request: web.Request) -> web.StreamResponse:
    t, caller, console = t_of(request), caller_of(request), console_of(request)
    ident = request.match_info["id"]
    trace = await traces.document_trace(console.ctx, caller, ident)
    await traces.record_auditor_access(console.ctx, caller, "trace", {"document_id": ident})
    doc = trace["document"]
    now = utcnow()
    rows = timeline_rows(trace, console.windows[doc["priority"]], now)
    picture = timeline(rows, now, label=lambda key: t(f"mark.{key}"), when=vietnam_time)
    summary = trace["summary"]
    none = t("doc.none")
    facts = table(
        [t("col.sender"), t("col.code"), t("col.subject"), t("doc.priority"), t("col.received_at")],
        [[doc["sender"], doc["code"], doc["subject"], doc["priority"], _when(doc["received_at"])]],
    )
    recipients = table(
        [
            t("col.recipient"),
            t("col.transport"),
            t("col.business"),
            t("col.delivered_at"),
            t("col.acknowledged_at"),
            t("col.deadline"),
        ],
        [
            [
                row.recipient,
                row.transport,
                row.business or "",
                _when(r["delivered_at"]),
                _when(r["acknowledged_at"]),
                tag(
                    "span",
                    vietnam_time(row.deadline)
                    + (f" ({t('mark.overdue')})" if row.verdict == "overdue" else ""),
                    class_="overdue" if row.verdict == "overdue" else None,
                ),
            ]
            for row, r in zip(
                rows, sorted(trace["recipients"], key=lambda r: r["recipient"]), strict=True
            )
        ],
        id="recipients",
    )
    events = table(
        ["#", t("col.at"), t("col.event"), t("col.actor"), ""],
        [
            [
                e["seq"],
                _when(e["at"]),
                e["kind"],
                e["actor"],
                tag("code", json.dumps(e["detail"], ensure_ascii=False)[:300]),
            ]
            for e in trace["events"]
        ],
        id="events",
    )
    body = join(
        [
            facts,
            tag(
                "p",
                t(
                    "doc.summary",
                    recipients=summary["recipients"],
                    not_acknowledged=", ".join(summary["not_acknowledged"]) or none,
                    not_finished=", ".join(summary["not_finished"]) or none,
                ),
                id="summary",
            ),
            tag("h2", t("doc.timeline")),
            picture,
            recipients,
            tag("h2", t("doc.events")),
            events,
        ]
    )
    return page(request, t("doc.title", code=doc["code"]), body)


# --- deliveries -------------------------------------------------------------------------------


async def get_deliveries(request: web.Request) -> web.StreamResponse:
    t, ctx = t_of(request), console_of(request).ctx
    caller = _require(request, ("admin", "auditor"), "error.deliveries")
    agency = request.query.get("agency") or None
    found: list[dict[str, Any]] = []
    for state in UNDELIVERED:
        found += await operations.list_deliveries(ctx, agency=agency, state=state.value)
    found.sort(key=lambda d: d["created_at"] or "", reverse=True)
    await traces.record_auditor_access(
        ctx, caller, "deliveries", {"agency": agency, "results": len(found)}
    )
    notice: Markup | str = ""
    resent = request.query.get("resent")
    if resent and caller.role == "admin":
        async with ctx.store.read() as session:
            delivery = await session.get(Delivery, resent)
        if delivery is not None:
            notice = tag(
                "p",
                t("deliveries.resent", delivery_id=delivery.id, state=delivery.state),
                class_="notice",
                id="notice",
            )

    def action(d: dict[str, Any]) -> Markup | str:
        if caller.role != "admin":
            return ""
        return tag(
            "form",
            join(
                [
                    csrf_field(request),
                    tag("button", t("deliveries.resend"), type="submit", class_="resend"),
                ]
            ),
            method="post",
            action=f"{PREFIX}/deliveries/{d['delivery_id']}/resend",
        )

    rows: list[list[object]] = [
        [
            tag("code", d["delivery_id"]),
            d["recipient"],
            tag("span", d["state"], class_="state"),
            d["kind"],
            tag("code", d["document_id"]),
            d["attempts"],
            d["last_error"] or "",
            _when(d["created_at"]),
            action(d),
        ]
        for d in found
    ]
    headers = [
        t("col.delivery_id"),
        t("col.recipient"),
        t("col.state"),
        "",
        t("col.document"),
        t("col.attempts"),
        t("col.last_error"),
        t("col.created_at"),
        t("col.action"),
    ]
    listing = (
        table(headers, rows, id="deliveries")
        if rows
        else tag("p", t("deliveries.none"), id="deliveries-none")
    )
    filters = tag(
        "form",
        join(
            [
                tag(
                    "label",
                    join(
                        [
                            t("deliveries.agency"),
                            " ",
                            tag("input", name="agency", value=agency or ""),
                        ]
                    ),
                ),
                tag("button", t("deliveries.filter"), type="submit"),
            ]
        ),
        method="get",
        action=f"{PREFIX}/deliveries",
        class_="filters",
    )
    return page(request, t("deliveries.title"), join([notice, filters, listing]))


async def post_resend(request: web.Request) -> web.StreamResponse:
    caller = _require(request, ("admin",), "error.resend_admin")
    ident = request.match_info["id"]
    await operations.resend(console_of(request).ctx, ident, caller.code, via="console")
    raise web.HTTPSeeOther(f"{PREFIX}/deliveries?{urlencode({'resent': ident})}")


# --- directory --------------------------------------------------------------------------------


async def get_agencies(request: web.Request) -> web.StreamResponse:
    t, directory = t_of(request), console_of(request).ctx.directory
    agencies = sorted((a for a in directory if a.can_exchange), key=lambda a: a.code)
    codes = {a.code for a in agencies}

    def entry(agency: Agency, seen: frozenset[str]) -> Markup:
        how = t("agencies.via", hub=agency.via) if agency.via else agency.delivery
        children = [
            entry(c, seen | {agency.code})
            for c in sorted(directory.children(agency.code), key=lambda a: a.code)
            if c.can_exchange and c.code not in seen
        ]
        return tag(
            "li",
            join(
                [
                    tag("code", agency.code),
                    " ",
                    tag("strong", agency.name),
                    f" · {how}",
                    tag("ul", join(children), class_="tree") if children else "",
                ]
            ),
        )

    roots = [a for a in agencies if not a.parent or a.parent not in codes]
    tree = tag("ul", join(entry(a, frozenset()) for a in roots), class_="tree", id="tree")
    groups = table(
        [t("col.code_or_id"), t("col.name"), t("col.recipients")],
        [[g.code, g.name, ", ".join(g.members)] for g in directory.groups],
    )
    body = join([tree, tag("h2", t("agencies.groups")), groups if directory.groups else ""])
    return page(request, t("agencies.title"), body)


# --- audit chain ------------------------------------------------------------------------------


async def get_audit(request: web.Request) -> web.StreamResponse:
    t, console = t_of(request), console_of(request)
    caller = _require(request, ("admin", "auditor"), "error.audit_verify")
    ctx = console.ctx
    async with ctx.store.read() as session:
        events, head = (await session.execute(select(func.count(), func.max(TraceEvent.seq)))).one()
        last = (
            await session.execute(
                select(ChainCheckpoint).order_by(ChainCheckpoint.seq.desc()).limit(1)
            )
        ).scalar_one_or_none()
    parts: list[object] = [tag("p", t("audit.events", events=events, head=head or 0))]
    if last is None:
        parts.append(tag("p", t("audit.no_checkpoint"), id="checkpoint"))
    else:
        try:
            signed = verify_checkpoint(last.jws, ctx.receipt_signer.certificate)
            valid = (signed.seq, signed.head_hash, signed.hub) == (
                last.seq,
                last.head_hash,
                ctx.hub_id,
            )
        except CheckpointError:
            valid = False
        text = t(
            "audit.checkpoint",
            seq=last.seq,
            at=vietnam_time(last.signed_at),
            age=age(t, (utcnow() - last.signed_at).total_seconds()),
            valid=t("audit.valid" if valid else "audit.invalid"),
        )
        parts.append(tag("p", text, id="checkpoint", class_=None if valid else "error"))
    run = console.audit
    if run.running:
        parts.append(tag("p", t("audit.running", count=run.count), id="verify-status"))
        request[REFRESH] = Markup('<meta http-equiv="refresh" content="1">')
    elif run.report is not None and run.finished_at is not None:
        report, at = run.report, vietnam_time(run.finished_at)
        if report.chain.problem is None:
            text = t(
                "audit.intact", events=report.chain.events, checkpoints=report.checkpoints, at=at
            )
            parts.append(tag("p", text, class_="notice", id="verify-status"))
        else:
            text = t("audit.broken", problem=report.chain.problem.message, at=at)
            parts.append(tag("p", text, class_="error", id="verify-status"))
    if caller.role in ("admin", "auditor") and not run.running:
        parts.append(
            tag(
                "form",
                join(
                    [
                        csrf_field(request),
                        tag("button", t("audit.verify"), type="submit", id="verify"),
                    ]
                ),
                method="post",
                action=f"{PREFIX}/audit/verify",
            )
        )
    return page(request, t("audit.title"), join(parts))


async def post_audit_verify(request: web.Request) -> web.StreamResponse:
    _require(request, ("admin", "auditor"), "error.audit_verify")
    console = console_of(request)
    console.audit.start(console.ctx)
    raise web.HTTPSeeOther(f"{PREFIX}/audit")


# --- statistics -------------------------------------------------------------------------------


async def get_stats(request: web.Request) -> web.StreamResponse:
    t, caller, console = t_of(request), caller_of(request), console_of(request)
    now = utcnow()
    month = request.query.get("month") or now.astimezone(VIETNAM).strftime("%Y-%m")
    form = tag(
        "form",
        join(
            [
                tag(
                    "label",
                    join(
                        [
                            t("stats.month"),
                            " ",
                            tag("input", type="month", name="month", value=month),
                        ]
                    ),
                ),
                tag("button", t("stats.show"), type="submit"),
            ]
        ),
        method="get",
        action=f"{PREFIX}/stats",
        class_="filters",
    )
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        return page(
            request,
            t("stats.title", month=month),
            join([form, _error(t("stats.bad_month"))]),
            status=400,
        )
    figures = await monthly_report(console.ctx.store, month, console.windows, now)
    if caller.role == "agency":  # an agency sees its own figures only
        figures = [f for f in figures if f.agency == caller.code]
    columns = COLUMNS[1:]  # the report's columns after the agency's code
    rows = [
        [f.agency, *("" if (v := f.as_dict()[c]) is None else v for c in columns)] for f in figures
    ]
    if not figures:
        return page(request, t("stats.title", month=month), join([form, tag("p", t("stats.none"))]))
    chart = bars(
        [(f.agency, f.as_dict()) for f in figures],
        [
            ("sent", t("col.sent"), "#1565c0"),
            ("received", t("col.received"), "#2e7d32"),
            ("overdue", t("col.overdue"), "#c62828"),
            ("finished", t("col.finished"), "#ef6c00"),
        ],
    )
    listing = table([t("col.code_or_id"), *(t(f"col.{c}") for c in columns)], rows, id="stats")
    return page(request, t("stats.title", month=month), join([form, chart, listing]))


def create_console(
    ctx: HubContext, settings: ConsoleSettings, windows: Mapping[int, dt.timedelta]
) -> web.Application:
    """The console as an aiohttp sub-application, to be mounted at ``/console``."""
    app = web.Application(middlewares=[console_middleware])
    console = Console(
        ctx,
        settings,
        windows,
        LoginThrottle(settings.login_attempts, dt.timedelta(seconds=settings.login_window_seconds)),
    )
    app[CONSOLE] = console

    async def stop_audit(_: web.Application) -> None:
        await console.audit.stop()

    app.on_cleanup.append(stop_audit)
    app.router.add_get("/", get_home)
    app.router.add_get("/login", get_login)
    app.router.add_post("/login", post_login)
    app.router.add_post("/logout", post_logout)
    app.router.add_get("/documents", get_documents)
    app.router.add_get("/documents/{id}", get_document)
    app.router.add_get("/deliveries", get_deliveries)
    app.router.add_post("/deliveries/{id}/resend", post_resend)
    app.router.add_get("/agencies", get_agencies)
    app.router.add_get("/audit", get_audit)
    app.router.add_post("/audit/verify", post_audit_verify)
    app.router.add_get("/stats", get_stats)
    return app


def add_console(
    app: web.Application,
    ctx: HubContext,
    settings: ConsoleSettings,
    windows: Mapping[int, dt.timedelta],
) -> None:
    app.add_subapp(PREFIX, create_console(ctx, settings, windows))
