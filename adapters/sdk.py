"""An async client for the hub's API, and an agency identity that signs what it sends.

``HubClient`` is one call per endpoint. ``AgencyClient`` adds what an agency system needs on top:
sign packages with the agency's key, and build a status package about a received document.
Received packages are checked with :class:`adapters.verify.PackageVerifier`; the loop that sends
and receives for an agency system is :mod:`adapters.runner`.

**Retries.** Every call but an operator's resend is safe to repeat, so the client repeats it by
itself when the hub could not answer (a refused connection, a timeout, ``408``, ``429``,
``5xx``), a few times with a growing, jittered delay: reads change nothing; an acknowledgement
repeated with the same answer changes nothing; and a package sent again *with the same bytes*
gets the original receipt with ``duplicate: true``. That last rule is why a client must never
re-sign (a new signature is new bytes) before it resends: keep the signed bytes and resend
those. Anything else the hub answers is a :class:`HubError` at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from types import TracebackType
from typing import Any, Self

import aiohttp

from hub.edxml.model import (
    DocumentPackage,
    Organization,
    ResponseFor,
    StaffInfo,
    StatusCode,
    StatusPackage,
)
from hub.edxml.reader import read_document
from hub.edxml.writer import write_document, write_status
from hub.xmlsafe import parse
from signing.xmldsig import sign_package

VIETNAM = timezone(timedelta(hours=7))
RETRYABLE_STATUSES = frozenset({408, 429})

log = logging.getLogger(__name__)


class HubError(Exception):
    """The hub refused a request; ``code`` is the hub's stable problem code."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        problems: list[dict[str, Any]] | None = None,
        retry_after: float | None = None,
    ):
        self.status, self.code, self.detail, self.problems = status, code, detail, problems or []
        # Seconds the hub asked the caller to wait (Retry-After: maintenance, overload).
        self.retry_after = retry_after
        super().__init__(f"{status} {code}: {detail}")


def is_transient(exc: BaseException) -> bool:
    """The hub could not answer (unreachable, slow, overloaded): the same call may succeed
    later. Any other :class:`HubError` is the hub's considered answer."""
    if isinstance(exc, HubError):
        return exc.status in RETRYABLE_STATUSES or exc.status >= 500
    return isinstance(exc, aiohttp.ClientError | TimeoutError | OSError)


@dataclass(frozen=True)
class Credentials:
    code: str
    token: str
    key_pem: bytes | None = None
    cert_pem: bytes | None = None

    def sign(self, package: bytes) -> bytes:
        """*package* signed with this agency's key (the hub verifies it against the
        certificate registered for the agency)."""
        if self.key_pem is None or self.cert_pem is None:
            raise ValueError(f"no signing key and certificate configured for {self.code}")
        return sign_package(package, self.key_pem, self.cert_pem)


class HubClient:
    """One method per API call. Use as ``async with HubClient(url, token) as hub: …``."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 90.0,
        attempts: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self.attempts, self.backoff, self.max_backoff = max(1, attempts), backoff, max_backoff

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(
            timeout=self._timeout, headers={"Authorization": f"Bearer {self._token}"}
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        data: bytes | None = None,
        json_body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/xml",
        idempotent: bool = True,
    ) -> tuple[bytes, str]:
        attempt = 1
        while True:
            try:
                return await self._once(method, path, data, json_body, params, content_type)
            except Exception as exc:
                if not (idempotent and is_transient(exc)) or attempt >= self.attempts:
                    raise
                delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                wait = exc.retry_after if isinstance(exc, HubError) else None
                if wait is not None:
                    if wait > self.max_backoff:
                        # The hub said when to come back (maintenance): longer than this call
                        # should block, so the caller decides (the runner waits and resends).
                        raise
                    delay = max(delay, wait)
                log.warning("%s %s failed (%s); trying again", method, path, exc)
                # Jitter, so that many clients do not all come back at the same instant.
                await asyncio.sleep(delay * (0.5 + random.random() / 2))  # noqa: S311
                attempt += 1

    async def _once(
        self,
        method: str,
        path: str,
        data: bytes | None,
        json_body: Any,
        params: dict[str, str] | None,
        content_type: str,
    ) -> tuple[bytes, str]:
        if self._session is None:
            raise RuntimeError("use HubClient inside 'async with'")
        headers = {"Content-Type": content_type} if data is not None else {}
        async with self._session.request(
            method, self.base_url + path, data=data, json=json_body, params=params, headers=headers
        ) as response:
            body = await response.read()
            if response.status >= 400:
                raise _hub_error(response.status, body, response.headers.get("Retry-After"))
            return body, response.content_type

    async def _json(self, method: str, path: str, **kw: Any) -> Any:
        body, _ = await self._request(method, path, **kw)
        return json.loads(body)

    async def send_document(self, package: bytes) -> dict[str, Any]:
        return dict(await self._json("POST", "/v1/documents", data=package))

    async def send_status(self, package: bytes) -> dict[str, Any]:
        return dict(await self._json("POST", "/v1/status", data=package))

    async def inbox(
        self, *, wait: float = 0, limit: int = 100, lease: float = 0
    ) -> list[dict[str, Any]]:
        """Pending deliveries; with *lease* (seconds) they are leased to this caller until
        acknowledged or the lease runs out (then they come back)."""
        params = {"wait": str(wait), "limit": str(limit)}
        if lease:
            params["lease"] = str(lease)
        answer = await self._json("GET", "/v1/inbox", params=params)
        return list(answer["items"])

    async def fetch(self, href: str) -> bytes:
        """Download a package by the ``href`` an inbox item gives."""
        body, _ = await self._request("GET", href)
        return body

    async def fetch_document(self, document_id: str) -> bytes:
        return await self.fetch(f"/v1/documents/{document_id}")

    async def ack(self, delivery_id: str, result: str = "done", reason: str = "") -> dict[str, Any]:
        payload = {"result": result, "reason": reason}
        return dict(
            await self._json("POST", f"/v1/deliveries/{delivery_id}/ack", json_body=payload)
        )

    async def fetch_status(self, status_id: str) -> bytes:
        """A status package, byte for byte (``GET /v1/status/{id}``)."""
        return await self.fetch(f"/v1/status/{status_id}")

    async def receipt(self, receipt_id: str) -> dict[str, Any]:
        """A receipt signed by the hub (``GET /v1/receipts/{id}``): ``receipt_id``, ``kind``,
        ``jws``; check it with :func:`signing.receipts.verify_receipt` and the hub's
        certificate."""
        return dict(await self._json("GET", f"/v1/receipts/{receipt_id}"))

    async def validate(self, package: bytes, *, kind: str = "") -> dict[str, Any]:
        """A dry run (``POST /v1/validate``): the hub's report on *package*, nothing stored.
        *kind* (``edoc`` or ``status``) checks it as that kind instead of detecting it."""
        params = {"kind": kind} if kind else None
        return dict(await self._json("POST", "/v1/validate", data=package, params=params))

    async def resend(self, delivery_id: str) -> dict[str, Any]:
        """An operator's resend of a delivery (admin accounts only). Not repeated by itself:
        each resend is an action of its own in the trace."""
        body, _ = await self._request(
            "POST", f"/v1/deliveries/{delivery_id}/resend", idempotent=False
        )
        return dict(json.loads(body))

    async def openapi(self) -> dict[str, Any]:
        """The hub's OpenAPI description."""
        return dict(await self._json("GET", "/v1/openapi.json"))

    async def health(self) -> bool:
        """Whether the hub and its database answer (``GET /healthz``), asked once."""
        try:
            await self._once("GET", "/healthz", None, None, None, "")
        except (HubError, aiohttp.ClientError, TimeoutError, OSError):
            return False
        return True

    async def search(self, **filters: str) -> dict[str, Any]:
        """One page of ``GET /v1/documents``: ``sender``, ``recipient``, ``state``, ``status``,
        ``since``, ``until``, ``q``, ``limit``, ``cursor`` (the ``next_cursor`` of the page
        before)."""
        params = {k: v for k, v in filters.items() if v}
        return dict(await self._json("GET", "/v1/documents", params=params))

    async def trace(self, document_id: str) -> dict[str, Any]:
        return dict(await self._json("GET", f"/v1/documents/{document_id}/trace"))

    async def agencies(self) -> list[dict[str, Any]]:
        return list((await self._json("GET", "/v1/agencies"))["items"])


def _hub_error(status: int, body: bytes, retry_after: str | None = None) -> HubError:
    wait = float(retry_after) if retry_after and retry_after.isdigit() else None
    try:
        problem = json.loads(body)
        return HubError(
            status,
            problem.get("code", "unknown"),
            problem.get("detail", ""),
            problem.get("problems"),
            wait,
        )
    except (ValueError, AttributeError):
        return HubError(status, "unknown", body[:500].decode("utf-8", "replace"), None, wait)


def vietnam_timestamp(now: datetime | None = None) -> str:
    """edXML timestamps are Vietnam local time, ``yyyy/MM/dd HH:mm:ss``."""
    return (now or datetime.now(UTC)).astimezone(VIETNAM).strftime("%Y/%m/%d %H:%M:%S")


def status_about(
    reporter: str,
    document: DocumentPackage,
    code: StatusCode,
    description: str = "",
    *,
    about_recipient: str | None = None,
    staff: StaffInfo | None = None,
) -> StatusPackage:
    """The status *reporter* reports about *document*: to its sender, or for a recall request
    (13, reported by the sender) to the recipient named by *about_recipient*."""
    if code is StatusCode.RECALL_REQUEST:
        if not about_recipient:
            raise ValueError("a recall request (13) names the recipient it is addressed to")
        counterpart = about_recipient
    else:
        counterpart = document.sender.organ_id
    return StatusPackage(
        reporter=Organization(reporter),
        response_for=ResponseFor(
            organ_id=counterpart,
            code=f"{document.code.number}/{document.code.notation}",
            promulgation_date=document.promulgation.date,
            document_id=document.document_id,
        ),
        status_code=code,
        description=description,
        timestamp=vietnam_timestamp(),
        staff=staff or StaffInfo(),
    )


class AgencyClient(HubClient):
    """A hub client acting as one agency: signs what it sends with the agency's key."""

    def __init__(self, base_url: str, credentials: Credentials, **kw: Any) -> None:
        super().__init__(base_url, credentials.token, **kw)
        self.credentials = credentials

    def sign(self, package: bytes) -> bytes:
        return self.credentials.sign(package)

    async def send(self, pkg: DocumentPackage) -> dict[str, Any]:
        return await self.send_document(self.sign(write_document(pkg)))

    def status_package(
        self,
        document: DocumentPackage,
        code: StatusCode,
        description: str = "",
        *,
        about_recipient: str | None = None,
        staff: StaffInfo | None = None,
    ) -> StatusPackage:
        """A status about *document*. For a recall request (13) the sender names the recipient."""
        return status_about(
            self.credentials.code,
            document,
            code,
            description,
            about_recipient=about_recipient,
            staff=staff,
        )

    async def report(
        self,
        document_id: str,
        code: StatusCode,
        description: str = "",
        *,
        about_recipient: str | None = None,
    ) -> dict[str, Any]:
        """Send a status about a hub document (fetched to learn its edXML identity)."""
        document = read_document(parse(await self.fetch_document(document_id)))
        pkg = self.status_package(document, code, description, about_recipient=about_recipient)
        return await self.send_status(self.sign(write_status(pkg)))
