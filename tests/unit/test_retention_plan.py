"""Which old documents retention may purge (hub.retention.plan, pure) and the cut-off."""

from __future__ import annotations

import datetime as dt

import pytest

from hub.retention import Facts, batches, cutoff, plan


def facts(*items: Facts) -> dict[str, Facts]:
    return {f.document_id: f for f in items}


def test_unfinished_or_uncovered_documents_are_kept_with_the_reason() -> None:
    result = plan(
        facts(
            Facts("a", last_seq=10, settled=True),
            Facts("b", last_seq=11, settled=False),
            Facts("c", last_seq=21, settled=True),
        ),
        checkpoint_seq=20,
    )
    assert result.groups == (("a",),)
    assert result.kept["b"].startswith("not finished")
    assert "last event is 21, the last checkpoint 20" in result.kept["c"]


def test_linked_documents_go_together_or_not_at_all_transitively() -> None:
    # d updates c, which revokes b; b is still open, so c and d stay too; e links to a document
    # that is not old enough to be considered (not among the facts).
    result = plan(
        facts(
            Facts("a", 1, True),
            Facts("b", 2, False, frozenset({"c"})),
            Facts("c", 3, True, frozenset({"b", "d"})),
            Facts("d", 4, True, frozenset({"c"})),
            Facts("e", 5, True, frozenset({"young"})),
            Facts("f", 6, True, frozenset({"g"})),
            Facts("g", 7, True, frozenset({"f"})),
        ),
        checkpoint_seq=100,
    )
    assert result.groups == (("a",), ("f", "g"))
    assert set(result.kept) == {"b", "c", "d", "e"}
    assert result.kept["e"] == "linked to document young, which is kept"
    assert result.documents == 3


def test_batches_never_split_a_group() -> None:
    groups = [("a",), ("b", "c", "d"), ("e",), ("f",)]
    assert list(batches(groups, 2)) == [[("a",)], [("b", "c", "d")], [("e",), ("f",)]]


def test_cutoff() -> None:
    now = dt.datetime(2036, 12, 2, tzinfo=dt.UTC)
    assert cutoff(None, 3650, now) == now - dt.timedelta(days=3650)
    # A bare date is midnight in Vietnam (UTC+7).
    assert cutoff("2026-01-01", 0, now) == dt.datetime(2025, 12, 31, 17, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="retention is off"):
        cutoff(None, 0, now)
    with pytest.raises(ValueError, match="ISO 8601"):
        cutoff("hôm qua", 30, now)
