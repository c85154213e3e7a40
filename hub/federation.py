"""Federation: where a code goes, and the channel that carries packages to a peer hub (DESIGN §6).

A hub serves the agencies of its directory. A code it does not serve may go to a *peer hub*
(``[[peer]]`` in hub.toml): an agency listed with ``via = <peer>``, or a code the peer's
``routes`` patterns match (hub.routing), or any code at all for the default peer. The hub
forwards the package there exactly as it received it, through the peer's ordinary API
(``POST /v1/documents``, ``POST /v1/status``) with its own credential at the peer, like an
agency would; the hub never re-signs, so the original sender's signature is what the peer (and
its recipients) verify.

:class:`PeerChannel` is a :class:`hub.outbound.Channel` for one peer; :class:`PeerRouter` is the
channel for delivery mode ``"peer"``: it finds the peer of each delivery's recipient and hands the
package to that peer's channel. The push dispatcher (``hub.dispatcher``) drives it like any
channel and turns the :class:`~hub.outbound.Outcome` into state and trace.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp

from hub.config import PeerConfig
from hub.directory import Agency, Directory
from hub.outbound import Outcome, Outgoing
from hub.routing import PeerRoutes, route

log = logging.getLogger(__name__)

DELIVERY_MODE = "peer"
"""The delivery mode (``agencies.delivery_mode``) of every code reached through a peer hub."""

# The API path a peer takes each kind of package on. Receipts and notices are the hub's own
# documents about a delivery, not packages a sender signed: they stay with the hub that made them.
_PATHS = {"document": "/v1/documents", "status": "/v1/status"}


@dataclass(frozen=True)
class Destination:
    """Where a code is delivered: to a local agency (``peer`` is None) or through a peer hub."""

    code: str
    peer: str | None
    agency: Agency | None  # the directory entry, if the code has one

    @property
    def is_remote(self) -> bool:
        return self.peer is not None

    @property
    def mode(self) -> str:
        """How it is delivered: ``peer`` through a peer hub, else the agency's pull or push."""
        if self.peer is not None or self.agency is None:
            return DELIVERY_MODE
        return self.agency.delivery


def peer_routes(peers: Iterable[PeerConfig]) -> tuple[PeerRoutes, ...]:
    return tuple(PeerRoutes(p.name, p.routes, p.default) for p in peers)


def destination(
    directory: Directory,
    peers: Iterable[PeerRoutes],
    code: str,
    national: Collection[str] = (),
) -> Destination | None:
    """Where *code* goes, or None if nowhere (``recipient.unknown``).

    The directory decides first: a local agency is delivered here, whatever the patterns say;
    an agency listed ``via`` a hub goes through that hub; any other listed account (an auditor,
    a hub account) is no recipient. Only a code the directory does not list is routed by the
    peers' patterns, and, once a national directory is imported (hub.national), only if it is
    in it: a peer would refuse a code that does not exist, later and less clearly.
    """
    listed = directory.get(code)
    if listed is not None:
        if not listed.can_exchange:
            return None
        return Destination(code, listed.via or None, listed)
    if national and code not in national:
        return None
    peer = route(code, peers)
    return Destination(code, peer, None) if peer is not None else None


def _answer_of(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _refusal(status: int, body: bytes) -> str:
    """'HTTP 403 sender.mismatch: …' from a peer's problem answer, for the trace."""
    problem = _answer_of(body)
    code = problem.get("code")
    detail = str(problem.get("detail", ""))[:300]
    return f"HTTP {status}" + (f" {code}" if code else "") + (f": {detail}" if detail else "")


class PeerChannel:
    """Forwards packages to one peer hub through its ordinary API, with this hub's credential.

    The peer's answer decides the outcome. ``202`` is delivered, a retry the peer recognises
    (``"duplicate": true``) included, and the peer's receipt (its signed receipt too) becomes the
    outcome's ``answer``. ``408``, ``429`` and ``5xx``, a timeout or a refused connection are
    worth another attempt; any other ``4xx`` is the peer refusing the package itself
    (``permanent``): retrying cannot help.
    """

    def __init__(
        self,
        peer: PeerConfig,
        *,
        timeout_seconds: float = 30,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.peer = peer
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session = session
        self._owns_session = session is None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, outgoing: Outgoing) -> Outcome:
        path = _PATHS.get(outgoing.kind)
        if path is None:
            return Outcome(
                delivered=False,
                detail=f"a peer hub takes documents and statuses, not a {outgoing.kind}",
                permanent=True,
            )
        headers = {
            "Authorization": f"Bearer {self.peer.credential}",
            "Content-Type": outgoing.content_type,
            # Lines up the logs of both hubs; stable across attempts of one delivery.
            "X-Request-Id": outgoing.delivery_id,
        }
        try:
            async with self._client().post(
                self.peer.url + path, data=outgoing.body, headers=headers, timeout=self._timeout
            ) as response:
                body = await response.read()
                status = response.status
        except TimeoutError:
            return Outcome(False, f"{self.peer.name}: no answer within {self._timeout.total:g} s")
        except aiohttp.ClientError as exc:
            return Outcome(False, f"{self.peer.name}: {type(exc).__name__}: {exc}")
        if status in (200, 202):
            answer = _answer_of(body)
            duplicate = " (the peer already had it)" if answer.get("duplicate") else ""
            return Outcome(True, f"HTTP {status} from {self.peer.name}{duplicate}", answer=answer)
        permanent = 400 <= status < 500 and status not in (408, 429)
        log.warning(
            "peer refused a package" if permanent else "peer did not take a package",
            extra={
                "peer": self.peer.name,
                "http_status": status,
                "delivery_id": outgoing.delivery_id,
            },
        )
        return Outcome(False, f"{self.peer.name}: {_refusal(status, body)}", permanent=permanent)


class PeerRouter:
    """The channel for delivery mode ``"peer"``: each recipient's peer, then that peer's channel.

    The route is looked up again at each attempt, so a changed configuration (a peer renamed,
    a pattern moved) applies to deliveries still waiting; a recipient no peer routes any more
    is a permanent failure the operator sees in the trace.
    """

    def __init__(
        self, directory: Directory, peers: Iterable[PeerConfig], *, timeout_seconds: float = 30
    ) -> None:
        self._directory = directory
        self._channels = {p.name: PeerChannel(p, timeout_seconds=timeout_seconds) for p in peers}
        self._routes = peer_routes(c.peer for c in self._channels.values())

    def peer_of(self, code: str) -> str | None:
        found = destination(self._directory, self._routes, code)
        return found.peer if found is not None else None

    async def send(self, outgoing: Outgoing) -> Outcome:
        peer = self.peer_of(outgoing.recipient)
        channel = self._channels.get(peer) if peer else None
        if channel is None:
            return Outcome(
                False, f"no peer hub routes {outgoing.recipient} any more", permanent=True
            )
        return await channel.send(outgoing)

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._channels.values()))
