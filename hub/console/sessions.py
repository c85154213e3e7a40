"""Web console sign-in: database sessions and a throttle on failed sign-ins.

A session is opened with the same credential as the API (``Directory.authenticate``). The
browser holds only a random id in an HttpOnly, SameSite=Strict cookie; the database holds its
SHA-256, the account, the account's credential digest at sign-in and the session's CSRF token.
Sessions live in the database rather than in memory so that every hub process sharing it knows
them and a restart signs nobody out.

A session ends at its expiry, at sign-out, or as soon as the account's credential in the
directory is no longer the one it was opened with (a replaced credential ends its sessions).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass

from sqlalchemy import delete

from hub.directory import Agency, Directory
from tracking.models import ConsoleSession, utcnow
from tracking.store import Store


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Session:
    account: Agency
    csrf: str
    expires_at: dt.datetime

    def csrf_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(self.csrf, given)


async def open_session(store: Store, account: Agency, lifetime: dt.timedelta) -> str:
    """A new session for *account*; returns the id for the cookie (never stored as such)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    async with store.write() as session:
        # Sign-ins are rare: the moment to forget the sessions that have ended.
        await session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
        session.add(
            ConsoleSession(
                id_sha256=_digest(token),
                account=account.code,
                credential_sha256=account.credential_sha256,
                csrf=secrets.token_urlsafe(32),
                created_at=now,
                expires_at=now + lifetime,
            )
        )
    return token


async def find_session(store: Store, directory: Directory, token: str) -> Session | None:
    """The live session the cookie *token* names, or None."""
    if not token or len(token) > 100:
        return None
    async with store.read() as session:
        row = await session.get(ConsoleSession, _digest(token))
    if row is None or row.expires_at <= utcnow():
        return None
    account = directory.get(row.account)
    if account is None or not hmac.compare_digest(account.credential_sha256, row.credential_sha256):
        return None
    return Session(account, row.csrf, row.expires_at)


async def close_session(store: Store, token: str) -> None:
    async with store.write() as session:
        await session.execute(
            delete(ConsoleSession).where(ConsoleSession.id_sha256 == _digest(token))
        )


class LoginThrottle:
    """At most *attempts* failed sign-ins per client within *window*; then refused until the
    oldest failure leaves the window. Kept in memory, per hub process: it slows guessing down,
    and the credentials (256-bit random tokens) cannot be guessed anyway. At most *clients*
    addresses are remembered (the least recently failing are forgotten first)."""

    def __init__(self, attempts: int, window: dt.timedelta, clients: int = 10_000) -> None:
        self.attempts, self.window, self.clients = attempts, window, clients
        self._failures: OrderedDict[str, deque[dt.datetime]] = OrderedDict()

    def _recent(self, client: str, now: dt.datetime) -> deque[dt.datetime]:
        failures = self._failures.get(client, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def allowed(self, client: str, now: dt.datetime) -> bool:
        return len(self._recent(client, now)) < self.attempts

    def retry_after(self, client: str, now: dt.datetime) -> int:
        """Seconds until *client* may try again (0: now)."""
        failures = self._recent(client, now)
        if len(failures) < self.attempts:
            return 0
        return max(1, int((failures[0] + self.window - now).total_seconds()) + 1)

    def failed(self, client: str, now: dt.datetime) -> None:
        failures = self._recent(client, now)
        failures.append(now)
        self._failures[client] = failures
        self._failures.move_to_end(client)
        while len(self._failures) > self.clients:
            self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)
