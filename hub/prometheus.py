"""A small exporter for the Prometheus text exposition format (version 0.0.4). Pure: counters
and histograms kept in memory, gauges built at scrape time, and :func:`render` to text.

Only what the hub needs: counters and histograms with fixed label names, gauges from values
computed by the caller. Label values are escaped as the format requires (backslash, double
quote, newline), so a value that came from a request cannot break a line.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Kind = Literal["counter", "gauge", "histogram"]
Labels = tuple[str, ...]  # label values, in the order of the family's label names


@dataclass(frozen=True)
class Sample:
    suffix: str  # "", "_bucket", "_sum", "_count"
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Family:
    """One metric family, as written: ``# HELP``, ``# TYPE`` and its samples."""

    name: str
    kind: Kind
    help: str
    samples: Sequence[Sample] = ()


def _labels(names: Sequence[str], values: Mapping[str, str]) -> Labels:
    if set(values) != set(names):
        raise ValueError(f"labels {sorted(values)} given, {sorted(names)} expected")
    return tuple(str(values[n]) for n in names)


@dataclass
class Counter:
    name: str
    help: str
    labelnames: Sequence[str] = ()
    _values: dict[Labels, float] = field(default_factory=dict, init=False, repr=False)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = _labels(self.labelnames, labels)
        self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(_labels(self.labelnames, labels), 0.0)

    def family(self) -> Family:
        # A counter without labels is 0 from the start, so that rate() sees its first increase.
        values = self._values or ({(): 0.0} if not self.labelnames else {})
        return Family(
            self.name,
            "counter",
            self.help,
            [
                Sample("", dict(zip(self.labelnames, key, strict=True)), value)
                for key, value in sorted(values.items())
            ],
        )


@dataclass
class _Series:
    counts: list[int]  # per bucket, not cumulative (made cumulative when rendered)
    total: float = 0.0
    count: int = 0


@dataclass
class Histogram:
    name: str
    help: str
    buckets: Sequence[float]  # upper bounds, ascending; +Inf is added
    labelnames: Sequence[str] = ()
    _series: dict[Labels, _Series] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        bounds = list(self.buckets)
        if not bounds or bounds != sorted(set(bounds)) or math.isinf(bounds[-1]):
            raise ValueError("buckets must be finite, distinct and ascending")

    def observe(self, value: float, **labels: str) -> None:
        key = _labels(self.labelnames, labels)
        series = self._series.setdefault(key, _Series([0] * (len(self.buckets) + 1)))
        index = next((i for i, b in enumerate(self.buckets) if value <= b), len(self.buckets))
        series.counts[index] += 1
        series.total += value
        series.count += 1

    def family(self) -> Family:
        samples = []
        for key, series in sorted(self._series.items()):
            base = dict(zip(self.labelnames, key, strict=True))
            running = 0
            for bound, count in zip([*self.buckets, math.inf], series.counts, strict=True):
                running += count
                samples.append(Sample("_bucket", {**base, "le": _number(bound)}, running))
            samples.append(Sample("_sum", base, series.total))
            samples.append(Sample("_count", base, series.count))
        return Family(self.name, "histogram", self.help, samples)


def gauge(name: str, help: str, values: Iterable[tuple[Mapping[str, str], float]]) -> Family:
    """A gauge family from values computed now (label sets, value)."""
    return Family(name, "gauge", help, [Sample("", dict(labels), v) for labels, v in values])


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(families: Iterable[Family]) -> str:
    """The exposition text of *families*, one ``# HELP`` and ``# TYPE`` each, then samples."""
    lines = []
    for family in families:
        text = family.help.replace("\\", "\\\\").replace("\n", "\\n")
        lines.append(f"# HELP {family.name} {text}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for sample in family.samples:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sample.labels.items())
            where = f"{{{labels}}}" if labels else ""
            lines.append(f"{family.name}{sample.suffix}{where} {_number(sample.value)}")
    return "\n".join(lines) + "\n"
