"""Alerts: forwarding what the hub raises an alert about to the operators' own tools.

The hub raises an alert when a delivery is ``dead`` (push given up), ``expired`` (not
acknowledged in time) or a document is ``overdue`` at a recipient (``hub.deadlines``). Each is
first an event of the trace with ``alert: true``, a log warning and a notice to the sender;
with ``[alerts]`` configured it is also forwarded, after its transaction committed, to a webhook
(a JSON POST) and/or a command (the same JSON on its standard input, run without a shell).

Forwarding never holds up the hub: :meth:`AlertHook.forward` only starts a background task per
alert and target, which tries a few times with back-off, logs each failure and gives up with an
error in the log. What is sent is the alert's facts and a link to the trace: never a package
body, a credential or the hub's configuration (the command gets the hub's environment without
its ``LIENTHONG_*`` variables, which can hold the key passphrase).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from hub.config import AlertSettings
from tracking.models import Delivery

log = logging.getLogger(__name__)

# Pauses between attempts: four attempts over about two and a half minutes, then the log is
# all that is left (the trace and the sender's notice are there whatever happens here).
RETRY_DELAYS = (5.0, 30.0, 120.0)
CLOSE_GRACE_SECONDS = 5.0  # how long a stopping hub lets alerts in flight finish


@dataclass(frozen=True)
class Alert:
    kind: str  # "overdue" | "dead" | "expired"
    document_id: str
    delivery_id: str
    recipient: str
    reason: str  # the sentence the sender's notice says
    at: datetime
    extra: Mapping[str, Any] = field(default_factory=dict)  # e.g. which deadline, how late

    def payload(self, hub_id: str) -> dict[str, Any]:
        """The JSON the webhook and the command get: facts only, never a package body."""
        return {
            **self.extra,
            "kind": self.kind,
            "hub": hub_id,
            "document_id": self.document_id,
            "delivery_id": self.delivery_id,
            "recipient": self.recipient,
            "reason": self.reason,
            "at": self.at.isoformat(),
            "trace": f"/v1/documents/{self.document_id}/trace",
        }


def about(delivery: Delivery, kind: str, reason: str, at: datetime, **extra: Any) -> Alert:
    """The alert of *kind* about *delivery*."""
    return Alert(
        kind, delivery.document_id, delivery.id, delivery.recipient_code, reason, at, extra
    )


class HookError(Exception):
    """One attempt to forward an alert failed (the message says how)."""


class AlertHook:
    """The one way alerts leave the hub. Without a webhook or command it does nothing."""

    def __init__(
        self,
        settings: AlertSettings | None = None,
        hub_id: str = "lienthong",
        *,
        delays: Sequence[float] = RETRY_DELAYS,
    ) -> None:
        self.settings = settings or AlertSettings()
        self.hub_id = hub_id
        self.delays = tuple(delays)
        self._tasks: set[asyncio.Task[None]] = set()

    def forward(self, alerts: Sequence[Alert]) -> None:
        """Forward *alerts* in the background. Call after the transaction that raised them
        committed: an alert about something rolled back would be a false alarm."""
        settings = self.settings
        for alert in alerts:
            body = json.dumps(alert.payload(self.hub_id), ensure_ascii=False).encode("utf-8")
            if settings.webhook:
                self._start(alert, "webhook", partial(self._post, body))
            if settings.command:
                self._start(alert, "command", partial(self._run, body))

    def _start(self, alert: Alert, target: str, attempt: Callable[[], Awaitable[None]]) -> None:
        task = asyncio.get_running_loop().create_task(self._with_retries(alert, target, attempt))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _with_retries(
        self, alert: Alert, target: str, attempt: Callable[[], Awaitable[None]]
    ) -> None:
        where = {
            "alert": alert.kind,
            "document_id": alert.document_id,
            "delivery_id": alert.delivery_id,
            "target": self._target_name(target),
        }
        for number in range(1, len(self.delays) + 2):
            try:
                await attempt()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # whatever the hook does, the hub goes on
                error = str(exc) or type(exc).__name__
            if number > len(self.delays):
                log.error(
                    "alert not forwarded: giving up",
                    extra={**where, "attempts": number, "error": error},
                )
                return
            log.warning(
                "alert hook failed; trying again",
                extra={**where, "attempt": number, "error": error},
            )
            await asyncio.sleep(self.delays[number - 1])

    def _target_name(self, target: str) -> str:
        # Never the webhook's full URL: its path or query often carries a token.
        if target == "webhook":
            return f"webhook {urlsplit(self.settings.webhook).hostname}"
        return f"command {os.path.basename(self.settings.command[0])}"

    async def _post(self, body: bytes) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_seconds)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(
                self.settings.webhook,
                data=body,
                headers={"Content-Type": "application/json"},
                allow_redirects=False,
            ) as answer,
        ):
            if not 200 <= answer.status < 300:
                raise HookError(f"HTTP {answer.status}")

    async def _run(self, body: bytes) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIENTHONG_")}
        process = await asyncio.create_subprocess_exec(
            *self.settings.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        try:
            _, err = await asyncio.wait_for(
                process.communicate(body), self.settings.timeout_seconds
            )
        except TimeoutError:
            raise HookError(f"no answer within {self.settings.timeout_seconds} s") from None
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        if process.returncode != 0:
            said = err.decode("utf-8", "replace").strip()[-200:]
            raise HookError(f"exit status {process.returncode}" + (f": {said}" if said else ""))

    async def drain(self) -> None:
        """Wait until every alert in flight is forwarded or given up."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self, grace: float = CLOSE_GRACE_SECONDS) -> None:
        """When the hub stops: let alerts in flight finish for *grace* seconds, then drop them
        (they stay in the trace and the log)."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(list(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
