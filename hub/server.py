"""Start and stop a hub: open the store, check the schema version, load the directory, serve."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from cryptography import x509
from sqlalchemy.engine import make_url

from hub import national
from hub.alerts import AlertHook
from hub.api import create_app
from hub.checkpoints import make_checkpoint
from hub.cluster import Signals, every, every_once_per_cluster, start_signals
from hub.config import Settings
from hub.console import add_console
from hub.context import HubContext
from hub.deadlines import add_deadlines_job
from hub.directory import Directory, sync_directory
from hub.dispatcher import Channels, Dispatcher, standard_channels
from hub.errors import ConfigError
from hub.expiry import add_expiry_job
from hub.federation import PeerRouter, peer_routes
from hub.health import SchedulerWatch
from signing.keyfiles import load_hub_identity
from signing.pki import fingerprint, load_certificates
from signing.receipts import ReceiptSigner
from signing.trust import TrustStore
from tracking.migrate import current_revision, head_revision
from tracking.store import Store

log = logging.getLogger(__name__)


@dataclass
class RunningHub:
    context: HubContext
    runner: web.AppRunner
    url: str
    scheduler: AsyncIOScheduler | None = None
    dispatcher: Dispatcher | None = None
    signals: Signals | None = None

    async def close(self) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        await self.runner.cleanup()
        if self.signals is not None:
            await self.signals.close()
        await self.context.alerts.close()
        try:
            # A clean stop leaves the whole chain covered by a signed checkpoint.
            await make_checkpoint(self.context)
        finally:
            await self.context.store.close()


def _hub_identity(settings: Settings) -> ReceiptSigner:
    """Fail at start-up, not at the first receipt, if the hub's own key pair is unusable."""
    for key, path in (
        ("hub.key", settings.hub_key_path),
        ("hub.certificate", settings.hub_cert_path),
    ):
        if path is not None and not path.exists():
            raise ConfigError(
                str(settings.config_path),
                key,
                f"file {path} does not exist (for the demo, run `lienthong demo init`)",
            )
    try:
        identity = load_hub_identity(
            settings.hub_key_path, settings.hub_cert_path, settings.hub_key_passphrase
        )
        return ReceiptSigner(identity.key, identity.certificate)
    except ValueError as exc:
        raise ConfigError(str(settings.config_path), "hub.key", str(exc)) from exc


def _certificates(settings: Settings, key: str, paths: tuple[Path, ...]) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    for path in paths:
        try:
            out.extend(load_certificates(path.read_bytes()))
        except FileNotFoundError:
            raise ConfigError(
                str(settings.config_path),
                key,
                f"file {path} does not exist (for the demo, run `lienthong demo init`)",
            ) from None
        except (OSError, ValueError) as exc:
            raise ConfigError(str(settings.config_path), key, f"{path}: {exc}") from exc
    return out


def trust_store(settings: Settings) -> TrustStore:
    """The trust store the configuration describes ([trust]); CRLs are not loaded yet."""
    anchors = _certificates(settings, "trust.anchors", settings.trust_anchor_paths)
    if not anchors:
        raise ConfigError(
            str(settings.config_path),
            "trust.anchors",
            "at least one trust anchor (a CA certificate, PEM) is required: without one no "
            "agency certificate can be trusted",
        )
    try:
        return TrustStore(
            anchors=anchors,
            intermediates=_certificates(
                settings, "trust.intermediates", settings.trust_intermediate_paths
            ),
            crl_sources=settings.crl_sources,
            require_revocation=settings.require_revocation,
            grace=dt.timedelta(seconds=settings.crl_grace_seconds),
        )
    except ValueError as exc:
        raise ConfigError(str(settings.config_path), "trust.anchors", str(exc)) from exc


async def load_crls(trust: TrustStore) -> None:
    """The first CRL refresh, before serving; what it could not load is said in the log."""
    for status in await trust.refresh():
        if not status.loaded:
            log.error(
                "CRL not loaded; certificates it covers are refused until it is",
                extra={"crl_source": status.source, "error": status.error},
            )
    if trust.require_revocation:
        for cert in trust.uncovered_issuers():
            log.warning(
                "no CRL covers this CA: the certificates it issued are refused "
                "(certificate.revocation_unknown)",
                extra={"issuer": cert.subject.rfc4514_string(), "fingerprint": fingerprint(cert)},
            )


def crl_scheduler(
    trust: TrustStore, every_seconds: int, scheduler: AsyncIOScheduler | None = None
) -> AsyncIOScheduler:
    """The clock that refreshes the CRLs (on *scheduler*, or a new one); the trust store keeps
    the state."""
    scheduler = scheduler or AsyncIOScheduler(event_loop=asyncio.get_running_loop())
    every(scheduler, trust.refresh, every_seconds, "crl-refresh")
    return scheduler


def hub_scheduler(context: HubContext, settings: Settings) -> AsyncIOScheduler:
    """The hub's clock: CRL refreshes, expiry, deadlines and audit checkpoints. The jobs keep no
    state of their own (the trust store and the database do), so a missed run is simply the
    next one. Every node refreshes its own CRLs (they are in its memory); the jobs on the
    database run once per interval across the nodes sharing it (hub.cluster)."""
    scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
    if context.trust.crl_sources:
        crl_scheduler(context.trust, settings.crl_refresh_seconds, scheduler)
    add_expiry_job(scheduler, context)
    add_deadlines_job(scheduler, context)
    every_once_per_cluster(
        scheduler,
        context,
        partial(make_checkpoint, context),
        settings.checkpoint_seconds,
        "audit-checkpoint",
    )
    return scheduler


def _upgrade_first(settings: Settings, found: str) -> ConfigError:
    return ConfigError(
        str(settings.config_path),
        "database.url",
        f"the database is at schema revision {found}, this hub needs {head_revision()}: "
        "run `lienthong db upgrade` first",
    )


def _require_existing_sqlite(settings: Settings) -> None:
    """Refuse before opening: opening a missing SQLite file would leave an empty one behind."""
    url = make_url(settings.database_url)
    on_disk = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    if on_disk and not Path(str(url.database)).exists():
        raise _upgrade_first(settings, "none (no database file yet)")


async def open_store(settings: Settings) -> Store:
    """The hub's database, refused unless it exists and is at this version's schema."""
    _require_existing_sqlite(settings)
    store = Store.open(settings.database_url)
    try:
        current = await current_revision(store.engine)
        if current != head_revision():
            raise _upgrade_first(settings, current or "none")
    except BaseException:
        await store.close()
        raise
    return store


async def open_context(settings: Settings) -> HubContext:
    receipts = _hub_identity(settings)
    trust = trust_store(settings)
    directory = Directory.from_config(
        settings.agencies, str(settings.agencies_path), settings.groups
    )
    store = await open_store(settings)
    try:
        async with store.write() as session:
            await sync_directory(session, directory)
        national_directory = await national.load(store.engine)
    except BaseException:
        await store.close()
        raise
    await load_crls(trust)
    return HubContext(
        hub_id=settings.hub_id,
        store=store,
        directory=directory,
        validation=settings.validation,
        delivery=settings.delivery,
        deadlines=settings.deadlines,
        alerts=AlertHook(settings.alerts, settings.hub_id),
        trust=trust,
        receipts=receipts,
        peers=peer_routes(settings.peers),
        national=national_directory,
    )


def _channels(context: HubContext, settings: Settings) -> Channels:
    """How deliveries leave this hub: push, and forwarding to peer hubs if any are configured."""
    channels = standard_channels(context)
    if settings.peers:
        channels.register(
            "peer",
            PeerRouter(
                context.directory,
                settings.peers,
                timeout_seconds=settings.delivery.push_timeout_seconds,
            ),
            how="forwarded",
        )
    return channels


async def start(settings: Settings, *, port: int | None = None) -> RunningHub:
    """Serve on the configured address (or *port*; 0 picks a free one)."""
    context = await open_context(settings)
    # Built before the app so that /healthz can judge them; started once the hub listens.
    scheduler = hub_scheduler(context, settings)
    dispatcher = Dispatcher(context, _channels(context, settings))
    app = create_app(
        context,
        max_body_bytes=settings.max_body_bytes,
        scheduler=SchedulerWatch(scheduler),
        dispatcher=dispatcher,
        metrics_token=settings.metrics_token,
        facade=settings.facade_enabled,
    )
    # The console is HTML for people, not part of the API that openapi.json describes, so it is
    # mounted here beside it rather than in create_app.
    add_console(app, context, settings.console, settings.deadlines.windows)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(
            runner, settings.listen_host, settings.listen_port if port is None else port
        )
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        await context.store.close()
        raise ConfigError(
            str(settings.config_path),
            "hub.listen",
            f"cannot listen on {settings.listen_host}:{settings.listen_port}: {exc.strerror} "
            "(set LIENTHONG_HUB_LISTEN=HOST:PORT to use another address)",
        ) from exc
    signals = await start_signals(context.store.engine, context.notifier, context.node)
    scheduler.start()
    dispatcher.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound_port = sockets[0].getsockname()[1] if sockets else settings.listen_port
    url = f"http://{settings.listen_host}:{bound_port}"
    log.info(
        "hub serving",
        extra={
            "url": url,
            "hub": settings.hub_id,
            "agencies": len(context.directory),
            "peers": [p.name for p in settings.peers],
            "node": context.node,
            "facade": settings.facade_enabled,
        },
    )
    return RunningHub(context, runner, url, scheduler, dispatcher, signals)
