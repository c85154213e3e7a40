"""Leased pull: an item handed out with a lease is hidden from other pollers until it is
acknowledged or the lease runs out, when it comes back; long polls wake for both."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from hub.edxml.model import Priority
from tests.support import BA_DINH, CITY, Hub, assert_matches_openapi, document


async def poll(hub: Hub, code: str = BA_DINH, **params: str) -> list[dict[str, Any]]:
    response = await hub.http.get("/v1/inbox", params=params, headers=hub.as_(code))
    assert response.status == 200, await response.text()
    body = await response.json()
    assert_matches_openapi("Inbox", body)
    return list(body["items"])


async def test_a_leased_item_is_hidden_from_other_pollers_but_still_shown_to_a_look(
    hub: Hub,
) -> None:
    receipt = await hub.send(document(CITY, (BA_DINH,)))
    (first,) = await poll(hub, lease="60")
    assert first["delivery_id"] == receipt["deliveries"][0]["delivery_id"]
    assert first["lease_until"] is not None
    assert await poll(hub, lease="60") == []  # a second worker gets nothing
    (looked,) = await poll(hub)  # a plain look changes nothing and shows the lease
    assert looked["delivery_id"] == first["delivery_id"]
    assert looked["lease_until"] == first["lease_until"]


async def test_an_unacknowledged_item_comes_back_when_its_lease_runs_out(hub: Hub) -> None:
    await hub.send(document(CITY, (BA_DINH,)))
    (first,) = await poll(hub, lease="0.3")
    fetched = await hub.http.get(first["href"], headers=hub.as_(BA_DINH))
    assert fetched.status == 200  # downloaded, then the worker "crashed" before acknowledging
    await asyncio.sleep(0.4)
    (again,) = await poll(hub, lease="60")
    assert again["delivery_id"] == first["delivery_id"]  # same id: the receiver de-duplicates
    assert again["state"] == "delivered"


async def test_an_acknowledged_item_never_comes_back_and_ack_stays_idempotent(hub: Hub) -> None:
    await hub.send(document(CITY, (BA_DINH,)))
    (item,) = await poll(hub, lease="0.2")
    url = f"/v1/deliveries/{item['delivery_id']}/ack"
    first = await (
        await hub.http.post(url, json={"result": "done"}, headers=hub.as_(BA_DINH))
    ).json()
    assert first["changed"] is True
    await asyncio.sleep(0.3)
    assert await poll(hub, lease="60") == []
    assert await poll(hub) == []
    again = await (
        await hub.http.post(url, json={"result": "done"}, headers=hub.as_(BA_DINH))
    ).json()
    assert (again["changed"], again["state"]) == (False, "done")


async def test_a_leasing_long_poll_wakes_when_another_pollers_lease_runs_out(hub: Hub) -> None:
    await hub.send(document(CITY, (BA_DINH,)))
    (held,) = await poll(hub, lease="0.5")
    started = time.monotonic()
    (back,) = await poll(hub, lease="60", wait="20")
    waited = time.monotonic() - started
    assert back["delivery_id"] == held["delivery_id"]
    assert 0.2 < waited < 5  # woken by the lease running out, not by the 20 s wait


async def test_a_leasing_long_poll_wakes_at_once_when_work_arrives(hub: Hub) -> None:
    waiting = asyncio.create_task(poll(hub, lease="60", wait="20"))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    started = time.monotonic()
    await hub.send(document(CITY, (BA_DINH,)))
    (item,) = await asyncio.wait_for(waiting, 10)
    assert item["lease_until"] is not None
    assert time.monotonic() - started < 5


async def test_leases_hand_out_the_most_urgent_first(hub: Hub) -> None:
    for number, priority in (("1", Priority.NORMAL), ("2", Priority.FLASH), ("3", Priority.URGENT)):
        await hub.send(document(CITY, (BA_DINH,), number=number, priority=priority))
    order = []
    for _ in range(3):
        (item,) = await poll(hub, lease="60", limit="1")
        order.append(item["priority"])
    assert order == [int(Priority.FLASH), int(Priority.URGENT), int(Priority.NORMAL)]
    assert await poll(hub, lease="60") == []


async def test_concurrent_pollers_never_get_the_same_delivery(hub: Hub) -> None:
    sent = set()
    for number in range(8):
        receipt = await hub.send(document(CITY, (BA_DINH,), number=str(number + 1)))
        sent.add(receipt["deliveries"][0]["delivery_id"])
    batches = await asyncio.gather(*(poll(hub, lease="60", limit="2") for _ in range(8)))
    handed = [item["delivery_id"] for batch in batches for item in batch]
    assert sorted(handed) == sorted(sent)  # each exactly once across the eight workers


async def test_a_bad_lease_is_refused(hub: Hub) -> None:
    for value in ("-1", "3601", "soon", "nan"):
        response = await hub.http.get(
            "/v1/inbox", params={"lease": value}, headers=hub.as_(BA_DINH)
        )
        assert response.status == 400, value
        assert (await response.json())["code"] == "request.invalid"
