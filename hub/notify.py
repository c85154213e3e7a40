"""Wake long-polling inbox readers the moment work arrives for them (no busy polling)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class InboxNotifier:
    """One event per agency. ``ticket()`` before looking at the inbox, ``wait(ticket)`` after
    finding it empty: a package committed in between is never missed.

    ``notify`` wakes this node's waiters and hands the code to ``relay`` (set by hub.cluster
    when several nodes share the database), which tells the other nodes; they ``wake`` theirs.
    """

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self.relay: Callable[[str], None] | None = None

    def ticket(self, code: str) -> asyncio.Event:
        event = self._events.get(code)
        if event is None:
            event = self._events[code] = asyncio.Event()
        return event

    def notify(self, code: str) -> None:
        """*code*'s inbox has news (call after the commit): wake its waiters, on every node."""
        self.wake(code)
        if self.relay is not None:
            self.relay(code)

    def wake(self, code: str) -> None:
        """Wake this node's waiters for *code*."""
        event = self._events.pop(code, None)
        if event is not None:
            event.set()

    def wake_all(self) -> None:
        """Wake every waiter of this node: each looks at its inbox again."""
        events, self._events = self._events, {}
        for event in events.values():
            event.set()

    @staticmethod
    async def wait(ticket: asyncio.Event, seconds: float) -> bool:
        """True when woken, False when *seconds* passed first."""
        try:
            async with asyncio.timeout(seconds):
                await ticket.wait()
        except TimeoutError:
            return False
        return True


class Doorbell:
    """Wakes the one task that sends deliveries out (the dispatcher) as soon as there may be
    work for it. A ring while nobody waits is kept until the next wait, so none is lost."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def ring(self) -> None:
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        """True when rung (now or since the last wait), False when *seconds* passed first."""
        try:
            async with asyncio.timeout(max(seconds, 0)):
                await self._event.wait()
        except TimeoutError:
            return False
        finally:
            self._event.clear()
        return True
