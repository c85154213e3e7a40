"""The push retry policy: exponential back-off with full jitter, and the two limits."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from hub.retry import GiveUp, Retry, RetryPolicy

T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
S = dt.timedelta(seconds=1)


class Fixed:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def test_the_ceiling_doubles_per_attempt_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=2 * S, max_delay=60 * S)
    assert [policy.ceiling(n).total_seconds() for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]
    assert policy.ceiling(10_000) == 60 * S  # no overflow on absurd counts


def test_full_jitter_spreads_delays_between_a_floor_and_the_ceiling() -> None:
    policy = RetryPolicy(base_delay=2 * S, max_delay=3600 * S)
    rng = random.Random(7)
    delays = []
    for _ in range(200):
        decision = policy.decide(5, T0, T0, rng)
        assert isinstance(decision, Retry)
        delays.append(decision.delay)
        assert decision.at == T0 + decision.delay
    assert min(delays) >= policy.base_delay / 10
    assert max(delays) <= policy.ceiling(5)
    assert len(set(delays)) > 150  # spread out, not one instant for every delivery


def test_a_zero_draw_still_waits_a_tenth_of_the_base_delay() -> None:
    decision = RetryPolicy(base_delay=2 * S).decide(1, T0, T0, Fixed(0.0))
    assert isinstance(decision, Retry)
    assert decision.delay == dt.timedelta(milliseconds=200)


def test_gives_up_after_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert isinstance(policy.decide(2, T0, T0, Fixed(0.5)), Retry)
    decision = policy.decide(3, T0, T0, Fixed(0.5))
    assert isinstance(decision, GiveUp)
    assert "max_attempts 3" in decision.reason


def test_gives_up_rather_than_retry_past_max_age() -> None:
    policy = RetryPolicy(max_age=dt.timedelta(minutes=10), base_delay=60 * S, max_delay=600 * S)
    now = T0 + dt.timedelta(minutes=9)
    assert isinstance(policy.decide(1, T0, now, Fixed(0.5)), Retry)  # 30 s later: in time
    decision = policy.decide(4, T0, now, Fixed(0.5))  # 240 s later: past 10 min
    assert isinstance(decision, GiveUp)
    assert "max_age (10 min)" in decision.reason


def test_a_permanent_refusal_stops_at_once() -> None:
    decision = RetryPolicy().decide(1, T0, T0, Fixed(0.5), permanent=True)
    assert isinstance(decision, GiveUp)
    assert "refused" in decision.reason


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"base_delay": dt.timedelta(0)},
        {"base_delay": 10 * S, "max_delay": 5 * S},
        {"max_age": dt.timedelta(0)},
    ],
)
def test_nonsense_limits_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each message is specific
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
