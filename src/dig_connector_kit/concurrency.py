"""A provider's limit on calls in flight at once, held across every invocation (Marketo: 10 concurrent
calls per instance, shared by every integration; DIG takes the share its configuration gives it).

The places are the ``holders`` map of the key's rate-limit item (``ratelimit.ProviderWindow``: pk
``LIMIT#<key>``, sk ``WINDOW``), holder -> the epoch second its lease ends. A call under a rate limit
and a daily quota too takes its slot in the window and its count of the day with the same write
(``hold(..., rate=, daily=)``): one read and two writes a call (take, give back) where a limiter, a gate
and a quota counter of their own took three reads and four writes. A holder that never
releases (an invocation that timed out) frees its place when its lease ends: the call's longest
possible time. (Until stop 23 the places were an item of their own, ``INFLIGHT#<key>``: a deploy
forgets the places held at that moment, at most one lease long.)
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from db.table import TableUnavailable
from dig_connector_kit.ratelimit import (
    DailyShare,
    DynamoLimiter,
    InMemoryLimiter,
    QuotaSpent,
    RateLimit,
    RateLimitTimeout,
    wait_for_slot,
)

logger = logging.getLogger(__name__)
WAIT_SECONDS = 0.25  # between looks at a full gate
HOLDER_ID_LENGTH = 12  # hex digits: a few holders live at once, never alike; short, to keep the item in 1 KB


class NoPlaceInTime(Exception):
    """No place freed up before the invocation's deadline."""


class ConcurrencyGate(Protocol):
    def hold(
        self,
        key: str,
        limit: int,
        lease_seconds: float,
        budget_seconds: float,
        *,
        rate: RateLimit | None = None,
        daily: DailyShare | None = None,
    ) -> Any:
        """A context manager holding one of ``limit`` places for ``key`` while the call runs, and with
        ``rate`` and ``daily`` a slot and a count of the day for ``key`` too (what ``Limiter.acquire``
        takes); raises NoPlaceInTime when no place, RateLimitTimeout when no slot, frees up within
        ``budget_seconds``, QuotaSpent at once when the day's share is spent."""
        ...


class InMemoryGate:
    """One process only (tests); ``most`` records the highest number of holders seen per key. A ``rate``
    slot and a ``daily`` count are taken from ``limiter`` (the transport's, in tests: one window and one
    count for the key), then the place."""

    def __init__(self, limiter: InMemoryLimiter | None = None) -> None:
        self._limiter = limiter or InMemoryLimiter()
        self._held: dict[str, int] = {}
        self.most: dict[str, int] = {}
        self.holds: list[tuple[str, int]] = []  # (key, limit) of every place taken
        self._lock = threading.Condition()

    @contextmanager
    def hold(
        self,
        key: str,
        limit: int,
        lease_seconds: float,
        budget_seconds: float,
        *,
        rate: RateLimit | None = None,
        daily: DailyShare | None = None,
    ) -> Iterator[None]:
        if rate is not None or daily is not None:
            budget_seconds -= self._limiter.acquire(key, rate, budget_seconds, daily=daily)
        with self._lock:
            if not self._lock.wait_for(lambda: self._held.get(key, 0) < limit, timeout=budget_seconds):
                raise NoPlaceInTime(f"{key}: {limit} calls in flight for {budget_seconds:.1f} s")
            self._held[key] = self._held.get(key, 0) + 1
            self.holds.append((key, limit))
            self.most[key] = max(self.most.get(key, 0), self._held[key])
        try:
            yield
        finally:
            with self._lock:
                self._held[key] -= 1
                self._lock.notify_all()


class DynamoGate(DynamoLimiter):
    """The places live in the limiter's item: a gate is a limiter that also holds places."""

    @contextmanager
    def hold(
        self,
        key: str,
        limit: int,
        lease_seconds: float,
        budget_seconds: float,
        *,
        rate: RateLimit | None = None,
        daily: DailyShare | None = None,
    ) -> Iterator[None]:
        holder = uuid.uuid4().hex[:HOLDER_ID_LENGTH]
        window = self.window(key)
        waited = 0.0
        while True:
            read = window.read()
            if daily is not None and read.used_on(daily.day) >= daily.calls:
                raise QuotaSpent(key, daily)
            now = self._clock()
            live = sum(1 for until in read.holders.values() if until > now)
            recent, rate_wait = wait_for_slot(read.stamps, rate, now) if rate else (read.stamps, 0.0)
            if live < limit and rate_wait <= 0:
                taken = window.take(
                    read,
                    stamps=[*recent, now][-rate.requests :] if rate else None,
                    holder=(holder, now + lease_seconds),
                    expired=[h for h, until in read.holders.items() if until <= now],
                    daily=daily,
                )
                if taken:
                    break
                continue  # another invocation changed the item first: look again
            wait = max(rate_wait, WAIT_SECONDS if live >= limit else 0.0)
            if waited + wait > budget_seconds:
                if live >= limit:
                    raise NoPlaceInTime(f"{key}: {limit} calls in flight for {budget_seconds:.1f} s")
                raise RateLimitTimeout(f"{key}: no slot within {budget_seconds:.1f} s")
            self._sleep(wait)
            waited += wait
        try:
            yield
        finally:
            try:
                window.release(holder)
            except TableUnavailable:  # the call's own outcome stands: an unreleased place frees itself
                logger.warning("a place was not given back; it frees itself when its lease ends", extra={"key": key})
