"""The audit chain verifier names the first event altered, removed or inserted."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from tracking import chain
from tracking.audit import EventRow, recompute, verify

T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


def build(n: int) -> list[EventRow]:
    rows: list[EventRow] = []
    prev = chain.GENESIS
    for seq in range(1, n + 1):
        row = EventRow(
            seq, T0 + dt.timedelta(seconds=seq), "queued", "hub", "d", None, "{}", prev, ""
        )
        row = dataclasses.replace(row, hash=recompute(row))
        rows.append(row)
        prev = row.hash
    return rows


def renumber(rows: list[EventRow]) -> list[EventRow]:
    return [dataclasses.replace(r, seq=i) for i, r in enumerate(rows, 1)]


def test_an_intact_chain_verifies_to_its_head() -> None:
    rows = build(10)
    report = verify(rows)
    assert report.intact and report.events == 10
    assert (report.head_seq, report.head_hash) == (10, rows[-1].hash)
    assert verify([]).intact


def test_an_edited_event_is_named_as_altered() -> None:
    rows = build(10)
    rows[4] = dataclasses.replace(rows[4], detail='{"recipient":"someone else"}')
    report = verify(rows)
    assert report.problem is not None
    assert (report.problem.what, report.problem.seq) == ("altered", 5)
    assert report.events == 4


@pytest.mark.parametrize("index", [0, 4, 9])
def test_a_deleted_event_is_named_as_removed(index: int) -> None:
    rows = build(12)
    del rows[index]
    report = verify(rows)
    assert report.problem is not None
    assert (report.problem.what, report.problem.seq) == ("removed", index + 1)


def test_a_deleted_event_with_later_events_renumbered_is_still_caught() -> None:
    rows = build(12)
    del rows[6]
    report = verify(renumber(rows))
    assert report.problem is not None
    assert report.problem.what == "removed" and report.problem.seq == 7


def test_a_forged_event_with_a_correct_hash_is_named_as_inserted() -> None:
    rows = build(10)
    forged = EventRow(5, T0, "acknowledged", "000.00.31.H26", "d", None, "{}", rows[3].hash, "")
    forged = dataclasses.replace(forged, hash=recompute(forged))
    report = verify(renumber([*rows[:4], forged, *rows[4:]]))
    assert report.problem is not None
    assert (report.problem.what, report.problem.seq) == ("inserted", 5)
    assert "acknowledged" in report.problem.message


def rehash(rows: list[EventRow]) -> list[EventRow]:
    """What a careful forger does after editing: recompute every link and hash."""
    out: list[EventRow] = []
    prev = chain.GENESIS
    for row in rows:
        row = dataclasses.replace(row, prev_hash=prev)
        row = dataclasses.replace(row, hash=recompute(row))
        out.append(row)
        prev = row.hash
    return out


def test_a_rewritten_and_rehashed_chain_is_caught_by_the_signed_checkpoints() -> None:
    rows = build(30)
    signed = {10: rows[9].hash, 20: rows[19].hash, 30: rows[29].hash}
    assert verify(rows, signed).intact
    forged = list(rows)
    forged[14] = dataclasses.replace(forged[14], actor="someone else")
    forged = rehash(forged)
    assert verify(forged).intact  # consistent on its own...
    report = verify(forged, signed)  # ...but not what the hub signed
    assert report.problem is not None
    assert (report.problem.what, report.problem.seq) == ("rewritten", 11)
    assert "from 11 to 20" in report.problem.message


def test_events_cut_off_the_end_are_caught_by_a_later_checkpoint() -> None:
    rows = build(30)
    report = verify(rows[:25], {20: rows[19].hash, 30: rows[29].hash})
    assert report.problem is not None
    assert (report.problem.what, report.problem.seq) == ("removed", 26)
