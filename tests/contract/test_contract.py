"""The adapter contract (adapters/base.py), checked for every adapter in ``FACTORIES`` against a
real hub on loopback, driven by the real runner. An adapter that passes this suite can be left
to run unattended: nothing is sent twice, nothing received is lost."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters.base import Outgoing, Received, Settled
from adapters.runner import Runner, Step
from adapters.sdk import AgencyClient
from hub.edxml.model import StatusCode
from tests.contract.harness import Harness, Outcome
from tests.support import (
    BA_DINH,
    CITY,
    DEPT,
    Hub,
    document,
    signed_document,
    signed_status,
    status,
)

LEASE = 0.4  # seconds: short, so that an unacknowledged delivery comes back within a test


class Crash(Exception):
    """The process died here."""


async def run_once(harness: Harness, client: AgencyClient) -> Step:
    """One runner step, as ``adapters.runner.run`` makes it (``start`` first)."""
    await harness.adapter.start()
    return await Runner(harness.adapter, client, lease=LEASE, backoff=0.01).run_once()


async def documents_from(hub: Hub, sender: str) -> list[dict[str, Any]]:
    response = await hub.http.get(
        "/v1/documents", params={"sender": sender}, headers=hub.as_(sender)
    )
    assert response.status == 200, await response.text()
    return list((await response.json())["items"])


async def pending_for(hub: Hub, code: str) -> list[dict[str, Any]]:
    response = await hub.http.get("/v1/inbox", headers=hub.as_(code))
    return list((await response.json())["items"])


async def test_a_handed_over_document_is_sent_once_and_settled_accepted(
    hub: Hub, harness: Harness, client: AgencyClient
) -> None:
    package = signed_document(hub.world, document(BA_DINH, (CITY,)))
    key = await harness.hand_over(package, "document")
    step = await run_once(harness, client)
    assert (step.sent, step.refused) == (1, 0)
    assert harness.outcome(key) == Outcome(accepted=True)
    assert len(await documents_from(hub, BA_DINH)) == 1
    again = await run_once(harness, client)
    assert again.sent == 0  # settled: never offered again
    assert len(await documents_from(hub, BA_DINH)) == 1
    (item,) = await pending_for(hub, CITY)
    assert item["sender"] == BA_DINH


async def test_a_refused_item_is_settled_with_the_problem_and_not_retried(
    hub: Hub, harness: Harness, client: AgencyClient
) -> None:
    # Signed by another agency: Ba Đình may only send in its own name.
    foreign = signed_document(hub.world, document(DEPT, (CITY,)))
    before = await hub.counts()
    key = await harness.hand_over(foreign, "document")
    step = await run_once(harness, client)
    assert (step.sent, step.refused) == (0, 1)
    outcome = harness.outcome(key)
    assert outcome is not None and not outcome.accepted
    assert outcome.code == "signature.untrusted"  # not signed with a key registered for it
    assert (await run_once(harness, client)).refused == 0
    assert await hub.counts() == before


async def test_after_a_crash_between_send_and_settle_the_resend_is_a_duplicate(
    hub: Hub, harness: Harness, client: AgencyClient
) -> None:
    package = signed_document(hub.world, document(BA_DINH, (CITY,)))
    key = await harness.hand_over(package, "document")
    adapter = harness.adapter
    settle = adapter.settled

    async def crash(item: Outgoing, result: Settled) -> None:
        raise Crash

    adapter.settled = crash  # type: ignore[method-assign]
    with pytest.raises(Crash):
        await run_once(harness, client)
    adapter.settled = settle  # type: ignore[method-assign]
    assert harness.outcome(key) is None  # the hub has it; the agency system does not know yet

    harness.restart()
    step = await run_once(harness, client)
    assert step.sent == 1
    outcome = harness.outcome(key)
    assert outcome is not None and outcome.accepted and outcome.duplicate
    assert len(await documents_from(hub, BA_DINH)) == 1  # sent once, for all that
    assert len(await pending_for(hub, CITY)) == 1


async def test_documents_and_statuses_are_delivered_then_acknowledged(
    hub: Hub, harness: Harness, client: AgencyClient
) -> None:
    incoming = document(CITY, (BA_DINH,))
    await hub.send(incoming)
    ours = document(BA_DINH, (CITY,), number="77")
    await harness.hand_over(signed_document(hub.world, ours), "document")
    await run_once(harness, client)
    assert [kind for _, kind in harness.handed()] == ["document"]
    assert await pending_for(hub, BA_DINH) == []  # acknowledged
    # Ba Đình reports 03 through the adapter; the city reports 03 about Ba Đình's document.
    our_status = signed_status(hub.world, status(BA_DINH, incoming, StatusCode.ACCEPTED))
    key = await harness.hand_over(our_status, "status")
    response = await hub.report(status(CITY, ours, StatusCode.ACCEPTED))
    assert response.status == 202, await response.text()
    (city_item,) = [i for i in await pending_for(hub, CITY) if i["kind"] == "document"]
    acked = await hub.http.post(
        f"/v1/deliveries/{city_item['delivery_id']}/ack",
        json={"result": "done"},
        headers=hub.as_(CITY),
    )
    assert acked.status == 200  # the city took it: Ba Đình gets a signed delivery receipt
    await run_once(harness, client)
    outcome = harness.outcome(key)
    assert outcome is not None and outcome.accepted
    kinds = [kind for _, kind in harness.handed()]
    assert "status" in kinds and "receipt" in kinds  # the city's 03, and its delivery receipt
    assert await pending_for(hub, BA_DINH) == []  # everything handed over was acknowledged


async def test_a_delivery_is_acknowledged_only_after_deliver_returned(
    hub: Hub, harness: Harness, client: AgencyClient
) -> None:
    await hub.send(document(CITY, (BA_DINH,)))
    adapter = harness.adapter
    deliver = adapter.deliver

    async def failing(received: Received) -> None:
        raise Crash

    adapter.deliver = failing  # type: ignore[method-assign]
    with pytest.raises(Crash):
        await run_once(harness, client)
    adapter.deliver = deliver  # type: ignore[method-assign]
    assert harness.handed() == []
    (waiting,) = await pending_for(hub, BA_DINH)  # not acknowledged: still pending
    await asyncio.sleep(LEASE + 0.1)
    await run_once(harness, client)
    assert harness.handed() == [(waiting["delivery_id"], "document")]
    assert await pending_for(hub, BA_DINH) == []


async def test_a_delivery_that_comes_again_is_handed_over_once(
    hub: Hub, harness: Harness, client: AgencyClient
) -> None:
    await hub.send(document(CITY, (BA_DINH,)))
    ack = client.ack
    calls = 0

    async def lost_ack(delivery_id: str, result: str = "done", reason: str = "") -> Any:
        nonlocal calls
        calls += 1
        raise Crash  # handed over, then died before the hub heard of it

    client.ack = lost_ack  # type: ignore[method-assign]
    with pytest.raises(Crash):
        await run_once(harness, client)
    client.ack = ack  # type: ignore[method-assign]
    first = harness.handed()
    assert len(first) == 1 and calls == 1
    harness.restart()
    await asyncio.sleep(LEASE + 0.1)  # the lease runs out: the hub offers it again
    step = await run_once(harness, client)
    assert step.delivered == 1  # offered and acknowledged again ...
    assert harness.handed() == first  # ... but handed over only once
    assert await pending_for(hub, BA_DINH) == []
