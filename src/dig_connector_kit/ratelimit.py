"""A provider's request limits, held across every concurrent invocation of a connector.

Providers count requests per key in a window (Optimove: 50 per 10 s on the customer APIs; Marketo:
100 per 20 s). A token bucket would let 50 + 5 x 10 calls through in a 10 s window; a
sliding-window log cannot: it keeps the times of the last ``requests`` calls and lets a call go
only when the oldest of them left the window. The log lives in one DynamoDB item, updated with a
conditional write on its version, so that two invocations cannot both take the last slot.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict, Field

from db.table import Table, VersionedJson

if TYPE_CHECKING:
    pass

# Clocks of two Lambda containers differ by a few milliseconds; the margin absorbs it.
CLOCK_MARGIN_SECONDS = 0.15


class RateLimit(BaseModel):
    """At most ``requests`` calls in any ``perSeconds`` window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: int = Field(gt=0)
    perSeconds: float = Field(gt=0)


class RateLimitTimeout(Exception):
    """No slot frees up before the invocation's deadline."""


class Limiter(Protocol):
    def acquire(self, key: str, limit: RateLimit, budget_seconds: float) -> float:
        """Take a slot under ``limit`` for ``key``; returns the seconds waited."""
        ...


def _wait_for(stamps: list[float], limit: RateLimit, now: float) -> tuple[list[float], float]:
    window = limit.perSeconds + CLOCK_MARGIN_SECONDS
    recent = sorted(t for t in stamps if t > now - window)
    if len(recent) < limit.requests:
        return recent, 0.0
    return recent, recent[-limit.requests] + window - now


class InMemoryLimiter:
    """One process only (tests, benchmarks of a single invocation)."""

    def __init__(self, clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._stamps: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, limit: RateLimit, budget_seconds: float) -> float:
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                recent, wait = _wait_for(list(self._stamps.get(key, ())), limit, now)
                if wait <= 0:
                    self._stamps[key] = deque([*recent, now][-limit.requests :])
                    return waited
            if waited + wait > budget_seconds:
                raise RateLimitTimeout(f"{key}: no slot within {budget_seconds:.1f} s")
            self._sleep(wait)
            waited += wait


class DynamoLimiter:
    """The sliding-window log in the audit table: pk ``LIMIT#<key>``, sk ``WINDOW``."""

    def __init__(
        self,
        table: Table,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._table = table
        self._clock = clock
        self._sleep = sleep

    def _window(self, key: str) -> VersionedJson:
        return VersionedJson(self._table, f"LIMIT#{key}", "WINDOW", retention_seconds=86_400, clock=self._clock)

    def acquire(self, key: str, limit: RateLimit, budget_seconds: float) -> float:
        waited = 0.0
        log = self._window(key)
        while True:
            stamps, version = log.read()
            now = self._clock()
            recent, wait = _wait_for(stamps or [], limit, now)
            if wait <= 0:
                if log.write([round(s, 3) for s in [*recent, now][-limit.requests :]], version):
                    return waited
                continue  # another invocation took a slot first: read again
            if waited + wait > budget_seconds:
                raise RateLimitTimeout(f"{key}: no slot within {budget_seconds:.1f} s")
            self._sleep(wait)
            waited += wait
