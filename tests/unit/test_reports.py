"""The definitions behind `lienthong report`: month boundaries in Vietnam time, the
acknowledgement windows read from `[deadlines]`, and the pure aggregation."""

from __future__ import annotations

import datetime as dt

import pytest

from hub.config import deadline_settings
from hub.errors import ConfigError
from hub.reports import DocumentDelivery, SentDocument, aggregate, month_bounds

UTC = dt.UTC


def test_a_month_is_counted_in_vietnam_time() -> None:
    assert month_bounds("2026-11") == (
        dt.datetime(2026, 10, 31, 17, 0, tzinfo=UTC),
        dt.datetime(2026, 11, 30, 17, 0, tzinfo=UTC),
    )
    assert month_bounds("2026-12")[1] == dt.datetime(2026, 12, 31, 17, 0, tzinfo=UTC)
    for bad in ("2026-13", "2026-1", "November", "2026-00"):
        with pytest.raises(ValueError, match="not a month"):
            month_bounds(bad)


def test_ack_windows_default_per_priority_and_can_be_set() -> None:
    defaults = deadline_settings({}, {}).windows
    assert {p: w.total_seconds() / 3600 for p, w in defaults.items()} == {
        4: 2.0,
        3: 2.0,
        2: 8.0,
        1: 24.0,
        0: 72.0,
    }
    custom = deadline_settings(
        {"deadlines": {"ack_hours_khan": 12}}, {"LIENTHONG_DEADLINES_ACK_HOURS_THUONG": "48"}
    ).windows
    assert custom[1] == dt.timedelta(hours=12) and custom[0] == dt.timedelta(hours=48)


@pytest.mark.parametrize(
    "section", [{"ack_hours_khan": 0}, {"ack_hours_khan": "soon"}, {"ack_hours_fast": 1}]
)
def test_a_bad_deadline_is_a_configuration_error_naming_the_key(section: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=r"deadlines\.ack_hours_"):
        deadline_settings({"deadlines": section}, {})


def test_a_recipient_with_two_deliveries_of_a_document_counts_once() -> None:
    at = dt.datetime(2026, 11, 2, tzinfo=UTC)
    docs = [SentDocument("d", "A", 0, at)]
    deliveries = [
        DocumentDelivery("d", "B", "done", at + dt.timedelta(hours=1)),
        DocumentDelivery("d", "B", "queued", None),
    ]
    figures = aggregate(
        docs, deliveries, {}, deadline_settings({}, {}).windows, at + dt.timedelta(days=9)
    )
    assert [(f.agency, f.sent, f.received, f.acknowledged_in_time) for f in figures] == [
        ("A", 1, 0, 0),
        ("B", 0, 1, 1),
    ]
