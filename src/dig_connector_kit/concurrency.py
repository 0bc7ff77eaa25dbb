"""A provider's limit on calls in flight at once, held across every invocation (Marketo: 10 concurrent
calls per instance, shared by every integration; DIG takes the share its configuration gives it).

One item per key in the audit table: pk ``INFLIGHT#<key>``, sk ``HOLDERS``, a map of holder -> the
epoch second its lease ends, written under a version condition. A holder that never releases (an
invocation that timed out) frees its place when its lease ends: the call's longest possible time.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from db.table import Table, VersionedJson

WAIT_SECONDS = 0.25  # between looks at a full gate
RETENTION_SECONDS = 86_400


class NoPlaceInTime(Exception):
    """No place freed up before the invocation's deadline."""


class ConcurrencyGate(Protocol):
    def hold(self, key: str, limit: int, lease_seconds: float, budget_seconds: float) -> Any:
        """A context manager holding one of ``limit`` places for ``key`` while the call runs; raises
        NoPlaceInTime when none frees up within ``budget_seconds``."""
        ...


class InMemoryGate:
    """One process only (tests); ``most`` records the highest number of holders seen per key."""

    def __init__(self) -> None:
        self._held: dict[str, int] = {}
        self.most: dict[str, int] = {}
        self.holds: list[tuple[str, int]] = []  # (key, limit) of every place taken
        self._lock = threading.Condition()

    @contextmanager
    def hold(self, key: str, limit: int, lease_seconds: float, budget_seconds: float) -> Iterator[None]:
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


class DynamoGate:
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

    @contextmanager
    def hold(self, key: str, limit: int, lease_seconds: float, budget_seconds: float) -> Iterator[None]:
        holder = uuid.uuid4().hex
        holders = self._holders(key)
        waited = 0.0
        while True:
            leases, version = holders.read()
            now = self._clock()
            live = {h: until for h, until in (leases or {}).items() if until > now}
            if len(live) < limit:
                if holders.write({**live, holder: round(now + lease_seconds, 3)}, version):
                    break
                continue  # another invocation changed the holders first: look again
            if waited + WAIT_SECONDS > budget_seconds:
                raise NoPlaceInTime(f"{key}: {limit} calls in flight for {budget_seconds:.1f} s")
            self._sleep(WAIT_SECONDS)
            waited += WAIT_SECONDS
        try:
            yield
        finally:
            self._release(holders, holder)

    def _holders(self, key: str) -> VersionedJson:
        return VersionedJson(
            self._table, f"INFLIGHT#{key}", "HOLDERS", retention_seconds=RETENTION_SECONDS, clock=self._clock
        )

    def _release(self, holders: VersionedJson, holder: str) -> None:
        for _ in range(10):  # a lost race is retried; an unreleased place frees itself when its lease ends
            leases, version = holders.read()
            if holder not in (leases or {}):
                return
            now = self._clock()
            if holders.write({h: until for h, until in leases.items() if h != holder and until > now}, version):
                return
