"""Start and stop a hub: open the store, check the schema version, load the directory, serve."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from sqlalchemy.engine import make_url

from hub.api import create_app
from hub.config import Settings
from hub.context import HubContext
from hub.directory import Directory, sync_directory
from hub.errors import ConfigError
from signing.pki import load_certificate, load_private_key
from tracking.migrate import current_revision, head_revision
from tracking.store import Store

log = logging.getLogger(__name__)


@dataclass
class RunningHub:
    context: HubContext
    runner: web.AppRunner
    url: str

    async def close(self) -> None:
        await self.runner.cleanup()
        await self.context.store.close()


def _check_hub_identity(settings: Settings) -> None:
    """Fail at start-up, not at the first receipt, if the hub's own key pair is unusable."""
    for key, path in (
        ("hub.key", settings.hub_key_path),
        ("hub.certificate", settings.hub_cert_path),
    ):
        if not path.exists():
            raise ConfigError(
                str(settings.config_path),
                key,
                f"file {path} does not exist (for the demo, run `lienthong demo init`)",
            )
    try:
        load_private_key(settings.hub_key_path.read_bytes())
        load_certificate(settings.hub_cert_path.read_bytes())
    except ValueError as exc:
        raise ConfigError(str(settings.config_path), "hub.key", str(exc)) from exc


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


async def open_context(settings: Settings) -> HubContext:
    _check_hub_identity(settings)
    directory = Directory.from_config(settings.agencies, str(settings.agencies_path))
    _require_existing_sqlite(settings)
    store = Store.open(settings.database_url)
    try:
        current = await current_revision(store.engine)
        if current != head_revision():
            raise _upgrade_first(settings, current or "none")
        async with store.write() as session:
            await sync_directory(session, directory)
    except BaseException:
        await store.close()
        raise
    return HubContext(
        hub_id=settings.hub_id,
        store=store,
        directory=directory,
        validation=settings.validation,
    )


async def start(settings: Settings, *, port: int | None = None) -> RunningHub:
    """Serve on the configured address (or *port*; 0 picks a free one)."""
    context = await open_context(settings)
    app = create_app(context, max_body_bytes=settings.max_body_bytes)
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
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound_port = sockets[0].getsockname()[1] if sockets else settings.listen_port
    url = f"http://{settings.listen_host}:{bound_port}"
    log.info(
        "hub serving",
        extra={"url": url, "hub": settings.hub_id, "agencies": len(context.directory)},
    )
    return RunningHub(context, runner, url)
