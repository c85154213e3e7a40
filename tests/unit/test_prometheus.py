"""The Prometheus exporter (hub.prometheus): text as the format requires it."""

from __future__ import annotations

import pytest

from hub.prometheus import Counter, Histogram, gauge, render


def test_histogram_buckets_are_cumulative_with_sum_and_count() -> None:
    latency = Histogram("x_seconds", "Latency.", (1, 5, 60), ("kind",))
    for seconds in (0.2, 1.0, 3, 61, 7200):
        latency.observe(seconds, kind="document")
    assert render([latency.family()]).splitlines() == [
        "# HELP x_seconds Latency.",
        "# TYPE x_seconds histogram",
        'x_seconds_bucket{kind="document",le="1"} 2',
        'x_seconds_bucket{kind="document",le="5"} 3',
        'x_seconds_bucket{kind="document",le="60"} 3',
        'x_seconds_bucket{kind="document",le="+Inf"} 5',
        'x_seconds_sum{kind="document"} 7265.2',
        'x_seconds_count{kind="document"} 5',
    ]


def test_label_values_are_escaped_so_a_line_cannot_be_broken() -> None:
    refusals = Counter("r_total", "Refusals.\nby code", ("code",))
    refusals.inc(code='a"b\\c\nd')
    assert render([refusals.family()]).splitlines() == [
        "# HELP r_total Refusals.\\nby code",
        "# TYPE r_total counter",
        'r_total{code="a\\"b\\\\c\\nd"} 1',
    ]


def test_gauges_and_empty_families() -> None:
    text = render(
        [gauge("g", "A gauge.", [({"recipient": "000.00.31.H26"}, 3.0)]), gauge("e", "Empty.", [])]
    )
    assert text == (
        "# HELP g A gauge.\n# TYPE g gauge\n"
        'g{recipient="000.00.31.H26"} 3\n'
        "# HELP e Empty.\n# TYPE e gauge\n"
    )


def test_misuse_is_refused() -> None:
    counter = Counter("c_total", "C.", ("code",))
    with pytest.raises(ValueError, match="only goes up"):
        counter.inc(-1, code="x")
    with pytest.raises(ValueError, match="expected"):
        counter.inc(other="x")
    with pytest.raises(ValueError, match="ascending"):
        Histogram("h", "H.", (5, 1))


def test_a_counter_without_labels_starts_at_zero() -> None:
    assert render([Counter("d_total", "Documents.").family()]).splitlines()[-1] == "d_total 0"
    assert render([Counter("r_total", "R.", ("code",)).family()]).splitlines()[-1].startswith("#")
