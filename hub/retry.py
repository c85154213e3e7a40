"""When to try a failed push again, and when to give up (DESIGN §4, ``retrying`` and ``dead``).

Pure: an attempt count, the delivery's age and a random number in, a decision out. The database
owns the state (``attempts``, ``next_attempt_at`` on each delivery); this module only decides, so
it can be tested without a clock or a network, and one policy object serves every agency with
its own limits.

Back-off is exponential with "full jitter" (a random delay between zero and the exponential
ceiling): after a receiver's outage, the hub's retries spread out instead of arriving together.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Protocol


class Rng(Protocol):
    def random(self) -> float: ...


@dataclass(frozen=True)
class Retry:
    """Try again at ``at``."""

    at: dt.datetime
    delay: dt.timedelta


@dataclass(frozen=True)
class GiveUp:
    """Stop: the delivery is ``dead``; ``reason`` says which limit was reached."""

    reason: str


Decision = Retry | GiveUp


@dataclass(frozen=True)
class RetryPolicy:
    """Limits for one agency's push deliveries. The defaults suit an office system that may be
    down for a night: about 12 attempts spread over a day."""

    max_attempts: int = 12
    max_age: dt.timedelta = dt.timedelta(days=1)
    base_delay: dt.timedelta = dt.timedelta(seconds=2)
    max_delay: dt.timedelta = dt.timedelta(hours=1)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay <= dt.timedelta(0) or self.max_delay < self.base_delay:
            raise ValueError("need 0 < base_delay <= max_delay")
        if self.max_age <= dt.timedelta(0):
            raise ValueError("max_age must be positive")

    def ceiling(self, attempts: int) -> dt.timedelta:
        """The longest wait after *attempts* failed attempts: base × 2^(attempts-1), capped."""
        exponent = min(max(attempts - 1, 0), 40)  # 2**40 × any base is past any cap
        grown: dt.timedelta = self.base_delay * (2**exponent)
        return min(grown, self.max_delay)

    def decide(
        self,
        attempts: int,
        created_at: dt.datetime,
        now: dt.datetime,
        rng: Rng | None = None,
        *,
        permanent: bool = False,
    ) -> Decision:
        """After *attempts* failed attempts (the one that just failed included): retry or stop.

        *permanent* is a failure that repeating cannot fix (the receiver refused the package
        itself); it stops at once. A retry that would fall after ``max_age`` is not scheduled:
        the delivery is given up now rather than tried once more too late.
        """
        if permanent:
            return GiveUp("the receiver refused the package; retrying cannot help")
        if attempts >= self.max_attempts:
            return GiveUp(f"{attempts} attempts made (max_attempts {self.max_attempts})")
        delay = self.ceiling(attempts) * (rng or random).random()
        # Never hammer: at least a tenth of the base delay between two attempts.
        delay = max(delay, self.base_delay / 10)
        at = now + delay
        if at - created_at > self.max_age:
            return GiveUp(f"older than max_age ({_human(self.max_age)}) before the next attempt")
        return Retry(at, delay)


def _human(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
