"""Starting an adapter from its configuration file: what ``lienthong adapter NAME --config
FILE`` does (the command line only parses arguments and handles signals).

The adapter class comes from :mod:`adapters.registry`; the file is read by
:func:`adapters.config.load_config` and the adapter's own ``from_config``. A pull adapter is run
by :func:`adapters.runner.run`; the webhook adapter also serves its receiver, and its runner only
sends (deliveries come by push).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from adapters import registry
from adapters.config import AdapterConfig, load_config
from adapters.runner import run
from adapters.sdk import AgencyClient
from adapters.verify import PackageVerifier
from adapters.webhook import WebhookAdapter

__all__ = ["launch", "verifier_for"]

log = logging.getLogger(__name__)


def verifier_for(config: AdapterConfig) -> PackageVerifier | None:
    """The verifier of received packages, when the file names trust anchors."""
    if not config.trust_anchors:
        return None
    return PackageVerifier.from_files(config.trust_anchors)


async def launch(name: str, path: Path, stop: asyncio.Event) -> None:
    """Run adapter *name* configured by *path* until *stop* is set. Unknown names raise
    :class:`adapters.registry.UnknownAdapter`; configuration problems ConfigError."""
    cls = registry.load(name)
    config = load_config(path, name)
    adapter = cls.from_config(config)
    verifier = verifier_for(config)
    async with AgencyClient(config.hub_url, config.credentials) as client:
        if not isinstance(adapter, WebhookAdapter):
            log.info("adapter %s for %s: connected to %s", name, config.agency, config.hub_url)
            # An adapter that also watches something local (the folder adapter's outbox) looks
            # at it between long polls, so it caps how long one poll may wait.
            wait = min(config.wait, getattr(adapter, "poll_interval", config.wait))
            await run(adapter, client, stop=stop, wait=wait, lease=config.lease, verifier=verifier)
            return
        receiver = adapter.receiver(verifier)
        port = await receiver.start(adapter.settings.host, adapter.settings.port)
        log.info(
            "webhook for %s listening on %s:%d%s",
            config.agency,
            adapter.settings.host,
            port,
            adapter.settings.path,
        )
        print(
            f"webhook receiver for {config.agency} at "
            f"http://{adapter.settings.host}:{port}{adapter.settings.path}",
            flush=True,
        )
        try:
            await run(adapter, client, stop=stop, wait=config.wait, receive=False)
        finally:
            await receiver.stop()
