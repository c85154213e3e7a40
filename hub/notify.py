"""Wake long-polling inbox readers the moment work arrives for them (no busy polling)."""

from __future__ import annotations

import asyncio


class InboxNotifier:
    """One event per agency. ``ticket()`` before looking at the inbox, ``wait(ticket)`` after
    finding it empty: a package committed in between is never missed."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def ticket(self, code: str) -> asyncio.Event:
        event = self._events.get(code)
        if event is None:
            event = self._events[code] = asyncio.Event()
        return event

    def notify(self, code: str) -> None:
        event = self._events.pop(code, None)
        if event is not None:
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
