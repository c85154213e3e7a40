"""Push delivery: one HTTP POST per attempt to the recipient's ``push_url``.

The request carries the exact bytes (a package as received, or for a receipt or notice the JSON
the inbox would give), the delivery id, and the hub's signature over all of it
(``signing.push``). The answer is judged by :func:`judge`: 2xx is delivered; a timeout, a
connection failure, 408, 429 and 5xx are worth trying again; any other answer (a 4xx, a
redirect) means the receiver refuses this request and repeating it cannot help.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import aiohttp

import hub
from hub.directory import Directory
from hub.outbound import Outcome, Outgoing
from signing.push import DELIVERY_ID_HEADER, KIND_HEADER, SIGNATURE_HEADER, sign_request
from signing.receipts import ReceiptSigner

RETRYABLE_STATUSES = frozenset({408, 429})


def judge(status: int) -> Outcome:
    """What an HTTP answer means for the delivery (pure)."""
    if 200 <= status < 300:
        return Outcome(delivered=True, detail=f"HTTP {status}")
    if status in RETRYABLE_STATUSES or status >= 500:
        return Outcome(delivered=False, detail=f"HTTP {status}")
    if 300 <= status < 400:
        return Outcome(
            delivered=False,
            detail=f"HTTP {status}: redirects are not followed; set push_url to the final address",
            permanent=True,
        )
    return Outcome(
        delivered=False, detail=f"HTTP {status}: the receiver refused it", permanent=True
    )


class PushChannel:
    """The ``hub.outbound.Channel`` of agencies with ``delivery = "push"``.

    One aiohttp client session for all pushes, opened at the first send (inside the running
    loop) and closed with the hub (:meth:`close`).
    """

    def __init__(
        self, directory: Directory, signer: ReceiptSigner, hub_id: str, *, timeout: float
    ) -> None:
        self._directory = directory
        self._signer = signer
        self._hub_id = hub_id
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                headers={"User-Agent": f"Lienthong/{hub.__version__}"},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, outgoing: Outgoing) -> Outcome:
        agency = self._directory.get(outgoing.recipient)
        if agency is None or not agency.push_url:
            return Outcome(
                delivered=False,
                detail=f"{outgoing.recipient} has no push_url in the directory",
                permanent=True,
            )
        headers = {
            "Content-Type": outgoing.content_type,
            DELIVERY_ID_HEADER: outgoing.delivery_id,
            KIND_HEADER: outgoing.kind,
            "Lienthong-Document-Id": outgoing.document_id,
            SIGNATURE_HEADER: sign_request(
                self._signer,
                hub=self._hub_id,
                delivery_id=outgoing.delivery_id,
                recipient=outgoing.recipient,
                body=outgoing.body,
                at=dt.datetime.now(dt.UTC),
            ),
        }
        try:
            async with self._client().post(
                agency.push_url, data=outgoing.body, headers=headers, allow_redirects=False
            ) as response:
                await response.read()  # the whole answer, within the timeout
                return judge(response.status)
        except TimeoutError:
            return Outcome(delivered=False, detail=f"no answer within {self._timeout:g} s")
        except aiohttp.ClientConnectorError as exc:
            return Outcome(
                delivered=False, detail=f"cannot connect: {exc.os_error.strerror or exc}"
            )
        except (aiohttp.ClientError, asyncio.IncompleteReadError, OSError) as exc:
            return Outcome(delivered=False, detail=f"{type(exc).__name__}: {exc}"[:500])
