"""Group addresses: one To code that stands for many agencies, expanded at intake."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hub.config import GroupConfig
from hub.directory import Directory, Group, expand
from tests.support import (
    BA_DINH,
    CITY,
    DEPT,
    HOAN_KIEM,
    PHUC_XA,
    TRUC_BACH,
    Hub,
    assert_matches_openapi,
    document,
)

PARENTS = {DEPT: CITY, BA_DINH: CITY, HOAN_KIEM: CITY, PHUC_XA: BA_DINH, TRUC_BACH: BA_DINH}
DISTRICTS_AND_DEPTS = "000.00.90.H26"  # every unit directly under the city
BA_DINH_WARDS = "000.01.90.H26"
DEPARTMENTS = "000.00.91.H26"


def use_groups(hub: Hub, *configs: GroupConfig) -> None:
    agencies = [replace(a, parent=PARENTS.get(a.code, "")) for a in hub.ctx.directory]
    groups = [Group(g.code, g.name, expand(g, agencies)) for g in configs]
    hub.ctx.directory = Directory(agencies, groups)


@pytest.fixture
def grouped(hub: Hub) -> Hub:
    use_groups(
        hub,
        GroupConfig(DISTRICTS_AND_DEPTS, "Các đơn vị trực thuộc UBND", children_of=(CITY,)),
        GroupConfig(BA_DINH_WARDS, "Các phường của quận Ba Đình", children_of=(BA_DINH,)),
        GroupConfig(DEPARTMENTS, "Các sở", members=("000.00.0[1-9].H26",)),
    )
    return hub


async def test_a_package_to_a_group_reaches_every_member_and_the_trace_says_so(
    grouped: Hub,
) -> None:
    hub = grouped
    receipt = await hub.send(document(CITY, (DISTRICTS_AND_DEPTS,)))
    assert {d["recipient"] for d in receipt["deliveries"]} == {DEPT, BA_DINH, HOAN_KIEM}
    for code in (DEPT, BA_DINH, HOAN_KIEM):
        inbox = await (await hub.http.get("/v1/inbox", headers=hub.as_(code))).json()
        (item,) = inbox["items"]
        assert item["document_id"] == receipt["document_id"]
        assert item["note"] == f"group {DISTRICTS_AND_DEPTS}"
    trace = await (
        await hub.http.get(f"/v1/documents/{receipt['document_id']}/trace", headers=hub.as_(CITY))
    ).json()
    (expanded,) = [e for e in trace["events"] if e["kind"] == "expanded"]
    assert expanded["detail"] == {
        "group": DISTRICTS_AND_DEPTS,
        "name": "Các đơn vị trực thuộc UBND",
        "members": [DEPT, BA_DINH, HOAN_KIEM],
    }
    kinds = [e["kind"] for e in trace["events"]]
    assert kinds.index("expanded") < kinds.index("queued")


async def test_the_sender_is_left_out_of_its_own_group(grouped: Hub) -> None:
    receipt = await grouped.send(document(PHUC_XA, (BA_DINH_WARDS,)))
    assert [d["recipient"] for d in receipt["deliveries"]] == [TRUC_BACH]


async def test_a_member_also_named_on_its_own_gets_one_plain_delivery(grouped: Hub) -> None:
    receipt = await grouped.send(document(CITY, (BA_DINH, DISTRICTS_AND_DEPTS, PHUC_XA)))
    assert sorted(d["recipient"] for d in receipt["deliveries"]) == sorted(
        [BA_DINH, DEPT, HOAN_KIEM, PHUC_XA]
    )
    inbox = await (await grouped.http.get("/v1/inbox", headers=grouped.as_(BA_DINH))).json()
    (item,) = inbox["items"]
    assert "note" not in item  # named on its own: a plain To


async def test_overlapping_groups_give_each_agency_one_delivery(grouped: Hub) -> None:
    receipt = await grouped.send(document(CITY, (DISTRICTS_AND_DEPTS, DEPARTMENTS)))
    recipients = [d["recipient"] for d in receipt["deliveries"]]
    assert sorted(recipients) == sorted([DEPT, BA_DINH, HOAN_KIEM])


async def test_a_group_of_only_the_sender_is_refused_and_nothing_is_stored(grouped: Hub) -> None:
    use_groups(grouped, GroupConfig(DEPARTMENTS, "Các sở", members=(DEPT,)))
    before = await grouped.counts()
    response = await grouped.post_document(document(DEPT, (DEPARTMENTS,)))
    assert response.status == 422
    problem = await response.json()
    assert problem["code"] == "recipient.unknown"
    assert "no member but the sender" in problem["detail"]
    assert await grouped.counts() == before


async def test_the_directory_lists_groups_with_their_members(grouped: Hub) -> None:
    body = await (await grouped.http.get("/v1/agencies", headers=grouped.as_(PHUC_XA))).json()
    assert_matches_openapi("Agencies", body)
    assert {g["code"]: g["members"] for g in body["groups"]} == {
        DISTRICTS_AND_DEPTS: [DEPT, BA_DINH, HOAN_KIEM],
        DEPARTMENTS: [DEPT],
        BA_DINH_WARDS: [PHUC_XA, TRUC_BACH],
    }
