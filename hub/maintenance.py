"""Maintenance mode: while it is on, the hub takes no new packages (``POST /v1/documents`` and
``POST /v1/status`` answer ``503 hub.maintenance`` with ``Retry-After``) and ``/healthz`` answers
503, so a load balancer stops sending traffic; everything else (inboxes, downloads,
acknowledgements, traces) keeps working, so the queues drain.

The switch is a row in the database (``hub_flags``), not a file or a process setting: every hub
node sharing the database obeys it, and ``lienthong maintenance on`` works whether the hub runs
or not. Turning it on or off is an event in the audit chain, naming the operator.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub.errors import Unavailable
from tracking.models import HubFlag, utcnow
from tracking.store import Store, append_event

FLAG = "maintenance"
DEFAULT_RETRY_AFTER = 300  # seconds a refused client is told to wait
# Intake reads the flag at most this often per process: a change reaches every node within a
# second, and a busy hub does not pay one more query per package.
RECHECK_SECONDS = 1.0


@dataclass(frozen=True)
class Maintenance:
    """Maintenance mode as an operator turned it on."""

    reason: str
    retry_after: int
    set_by: str
    set_at: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "retry_after": self.retry_after,
            "set_by": self.set_by,
            "since": self.set_at.isoformat(),
        }


def _from_row(row: HubFlag) -> Maintenance:
    value = json.loads(row.value)
    return Maintenance(
        reason=str(value.get("reason", "")),
        retry_after=int(value.get("retry_after", DEFAULT_RETRY_AFTER)),
        set_by=row.set_by,
        set_at=row.set_at,
    )


async def current(store: Store) -> Maintenance | None:
    """Maintenance mode as the database says now (None: off)."""
    async with store.read() as session:
        row = await session.get(HubFlag, FLAG)
        return _from_row(row) if row is not None else None


async def turn_on(store: Store, by: str, reason: str, retry_after: int) -> Maintenance:
    """Turn maintenance mode on (or change its reason and Retry-After if it already is)."""
    if retry_after < 1:
        raise ValueError("retry_after must be at least 1 second")
    async with store.write() as session:
        row = await session.get(HubFlag, FLAG)
        value = json.dumps({"reason": reason, "retry_after": retry_after}, ensure_ascii=False)
        if row is None:
            row = HubFlag(name=FLAG, value=value, set_by=by, set_at=utcnow())
            session.add(row)
        else:
            row.value, row.set_by, row.set_at = value, by, utcnow()
        await append_event(
            session, "maintenance_on", by, detail={"reason": reason, "retry_after": retry_after}
        )
        return _from_row(row)


async def turn_off(store: Store, by: str) -> Maintenance | None:
    """Turn maintenance mode off; what was on (None: it was already off, nothing written)."""
    async with store.write() as session:
        row = await session.get(HubFlag, FLAG)
        if row is None:
            return None
        was = _from_row(row)
        await session.delete(row)
        await append_event(session, "maintenance_off", by, detail={"since": was.set_at.isoformat()})
        return was


class MaintenanceGate:
    """What intake asks before it takes a package: the flag, re-read at most every *recheck*
    seconds (a per-process cache)."""

    def __init__(
        self, recheck: float = RECHECK_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._recheck, self._clock = recheck, clock
        self._known: Maintenance | None = None
        self._read_at: float | None = None

    async def refuse_if_on(self, store: Store) -> None:
        """Raise :class:`Unavailable` (503 hub.maintenance) while maintenance mode is on."""
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self._recheck:
            self._known = await current(store)
            self._read_at = now
        if self._known is not None:
            reason = f" ({self._known.reason})" if self._known.reason else ""
            raise Unavailable(
                f"The hub is in maintenance{reason} and takes no new packages; send again "
                f"after {self._known.retry_after} s. Inboxes, downloads and acknowledgements "
                "still work.",
                retry_after=self._known.retry_after,
            )
