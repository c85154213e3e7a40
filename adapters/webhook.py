"""The ``webhook`` adapter: a small HTTP server an agency runs to receive the hub's pushes.

An agency configured with ``delivery = "push"`` and a ``push_url`` gets every delivery POSTed
by the hub (``hub/push.py``). :class:`WebhookReceiver` answers those requests:

1. the hub's request signature (``Lienthong-Signature``) is checked with the hub's certificate
   (:func:`signing.push.verify_request`): the delivery id, the body's SHA-256, this agency as
   recipient, a recent time. Anything wrong: ``401``, and the hub marks the delivery dead
   (a 4xx is permanent for it), so a forged or replayed request changes nothing;
2. a document or status package's own signature is checked
   (:class:`~adapters.verify.PackageVerifier`, when trust anchors are configured): a package
   that does not verify gets ``422``;
3. the delivery is handed to the adapter's ``deliver``; only when that returned is the answer
   ``200``. If it raised, ``503``: the hub tries again later with the same delivery id.

Sending from a webhook-connected agency is the runner's outgoing side
(:class:`adapters.runner.Runner` with ``receive=False``): :class:`WebhookAdapter` is the
``sdk`` adapter (``send`` and callbacks) whose deliveries arrive by push. From the command line
(``lienthong adapter webhook --config FILE``), received packages are written to the ``inbox``
folder of the ``[webhook]`` table, each atomically, named by delivery id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509

from adapters.base import Adapter, Received
from adapters.config import AdapterConfig
from adapters.sdk import Credentials
from adapters.sdk_adapter import SdkAdapter
from adapters.verify import PackageVerifier
from hub.edxml.model import DocumentPackage, StatusPackage
from hub.edxml.reader import read_document, read_status
from hub.errors import LienthongError
from hub.xmlsafe import parse
from signing.pki import load_certificate
from signing.push import (
    DELIVERY_ID_HEADER,
    KIND_HEADER,
    SIGNATURE_HEADER,
    PushSignatureError,
    verify_request,
)
from tracking.files import write_atomically

__all__ = ["WebhookAdapter", "WebhookReceiver"]

log = logging.getLogger(__name__)

DOCUMENT_ID_HEADER = "Lienthong-Document-Id"
KINDS = frozenset({"document", "status", "receipt", "notice"})
MAX_BODY_BYTES = 64 * 1024 * 1024


def _answer(status: int, code: str, detail: str) -> web.Response:
    body = {"status": status, "code": code, "detail": detail}
    return web.json_response(body, status=status, content_type="application/problem+json")


def _sender(kind: str, body: bytes, agency: str, item: Mapping[str, Any]) -> str:
    """Who a pushed delivery comes from: the package's From or reporter; for a receipt or a
    notice, this agency itself (it is about a document the agency sent)."""
    if kind == "document":
        return read_document(parse(body)).sender.organ_id
    if kind == "status":
        return read_status(parse(body)).reporter.organ_id
    return str(item.get("sender") or agency)


class WebhookReceiver:
    """The aiohttp application that receives pushes for one agency and hands them to
    *adapter*. ``app()`` for embedding; ``start(host, port)`` to serve on its own."""

    def __init__(
        self,
        adapter: Adapter,
        *,
        agency: str,
        hub_certificate: x509.Certificate,
        verifier: PackageVerifier | None = None,
        path: str = "/lienthong/push",
    ) -> None:
        self.adapter = adapter
        self.agency = agency
        self.hub_certificate = hub_certificate
        self.verifier = verifier
        self.path = path
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post(self.path, self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        signature = request.headers.get(SIGNATURE_HEADER, "")
        delivery_id = request.headers.get(DELIVERY_ID_HEADER, "")
        kind = request.headers.get(KIND_HEADER, "")
        if not (signature and delivery_id and kind in KINDS):
            return _answer(
                400,
                "request.invalid",
                f"a push carries {SIGNATURE_HEADER}, {DELIVERY_ID_HEADER} and {KIND_HEADER}",
            )
        try:
            verify_request(
                signature,
                self.hub_certificate,
                body=body,
                delivery_id=delivery_id,
                recipient=self.agency,
            )
        except PushSignatureError as exc:
            log.warning("refused a push for delivery %s: %s", delivery_id, exc)
            return _answer(401, "push.signature", str(exc))
        item: dict[str, Any] = {"delivery_id": delivery_id, "kind": kind}
        item["document_id"] = request.headers.get(DOCUMENT_ID_HEADER, "")
        package: bytes | None = body
        if kind == "notice":
            package = None
            try:
                item.update(json.loads(body))
            except ValueError:
                return _answer(400, "request.invalid", "a notice is a JSON object")
        try:
            sender = _sender(kind, body, self.agency, item)
            if self.verifier is not None and kind in ("document", "status"):
                verified = self.verifier.verify(body)
                sender = verified.sender
        except LienthongError as exc:
            log.warning("refused the package of delivery %s: %s", delivery_id, exc)
            return _answer(422, exc.code, str(exc))
        received = Received(delivery_id, kind, item["document_id"], sender, package, item)
        try:
            await self.adapter.deliver(received)
        except Exception:
            log.exception("could not hand over delivery %s; the hub will try again", delivery_id)
            return _answer(503, "deliver.failed", "not handed over; try again later")
        return web.json_response({"delivery_id": delivery_id, "delivered": True})

    async def start(self, host: str = "127.0.0.1", port: int = 8790) -> int:
        """Serve on *host*:*port* (0: any free port); the port actually bound."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        sock = socket.create_server((host, port))
        await web.SockSite(self._runner, sock).start()
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class WebhookAdapter(SdkAdapter):
    """The ``sdk`` adapter whose deliveries come by push through a :class:`WebhookReceiver`.

    ``from_config`` makes one that writes every delivery to the ``inbox`` folder:
    ``<delivery_id>.<kind>.edxml`` for packages, ``<delivery_id>.<kind>.json`` for receipts
    and notices (what the hub sent), each written atomically; the name makes a repeated push
    overwrite the same file with the same bytes.
    """

    name = "webhook"

    def __init__(self, credentials: Credentials, *, settings: WebhookSettings, **kw: Any) -> None:
        super().__init__(credentials, **kw)
        self.settings = settings

    @classmethod
    def from_config(cls, config: AdapterConfig) -> WebhookAdapter:
        settings = WebhookSettings.from_config(config)
        inbox = settings.inbox

        async def write(received: Received) -> None:
            suffix = "json" if received.kind in ("receipt", "notice") else "edxml"
            data = received.package
            if data is None:
                data = json.dumps(dict(received.item), ensure_ascii=False).encode("utf-8")
            name = f"{received.delivery_id}.{received.kind}.{suffix}"
            await asyncio.to_thread(write_atomically, inbox, name, data)

        async def document(_: DocumentPackage, received: Received) -> None:
            await write(received)

        async def status(_: StatusPackage, received: Received) -> None:
            await write(received)

        return cls(
            config.credentials,
            settings=settings,
            on_document=document,
            on_status=status,
            on_receipt=write,
            on_notice=write,
            state_file=settings.state_file,
        )

    def receiver(self, verifier: PackageVerifier | None = None) -> WebhookReceiver:
        return WebhookReceiver(
            self,
            agency=self.credentials.code,
            hub_certificate=self.settings.hub_certificate,
            verifier=verifier,
            path=self.settings.path,
        )


class WebhookSettings:
    """The ``[webhook]`` table: ``listen`` (host:port), ``path``, ``hub_certificate`` (PEM
    file), ``inbox`` (folder) and ``state_file``."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        path: str,
        hub_certificate: x509.Certificate,
        inbox: Path,
        state_file: Path | None,
    ) -> None:
        self.host, self.port, self.path = host, port, path
        self.hub_certificate, self.inbox, self.state_file = hub_certificate, inbox, state_file

    @classmethod
    def from_config(cls, config: AdapterConfig) -> WebhookSettings:
        table = config.section
        listen = table.get("listen", "127.0.0.1:8790")
        host, _, port = str(listen).rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise config.error("listen", "expected host:port, e.g. 127.0.0.1:8790")
        path = table.get("path", "/lienthong/push")
        if not isinstance(path, str) or not path.startswith("/"):
            raise config.error("path", "expected a path starting with /")
        cert_file = table.get("hub_certificate")
        if not isinstance(cert_file, str):
            raise config.error("hub_certificate", "required: the hub's certificate (PEM file)")
        try:
            certificate = load_certificate(config.resolve(cert_file).read_bytes())
        except (OSError, ValueError) as exc:
            raise config.error("hub_certificate", f"cannot read a certificate: {exc}") from exc
        inbox_value = table.get("inbox")
        if not isinstance(inbox_value, str):
            raise config.error("inbox", "required: the folder received packages are written to")
        inbox = config.resolve(inbox_value)
        try:
            inbox.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise config.error("inbox", f"cannot create {inbox}: {exc.strerror}") from exc
        state = table.get("state_file")
        return cls(
            host=host,
            port=int(port),
            path=path,
            hub_certificate=certificate,
            inbox=inbox,
            state_file=config.resolve(state) if isinstance(state, str) else None,
        )
