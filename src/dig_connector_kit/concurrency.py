"""A provider's limit on calls in flight at once, held across every invocation (Marketo: 10 concurrent
calls per instance, shared by every integration; DIG takes the share its configuration gives it).

One item per key in the audit table: pk ``INFLIGHT#<key>``, sk ``HOLDERS``, a map of holder -> the
epoch second its lease ends, written under a version condition. A holder that never releases (an
invocation that timed out) frees its place when its lease ends: the call's longest possible time.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from db.table import Table, is_conditional_failure

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


@dataclass
class _Holders:
    leases: dict[str, float]
    version: int


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
        waited = 0.0
        while True:
            current = self._read(key)
            now = self._clock()
            live = {h: until for h, until in current.leases.items() if until > now}
            if len(live) < limit:
                if self._write(key, current, {**live, holder: now + lease_seconds}):
                    break
                continue  # another invocation changed the holders first: look again
            if waited + WAIT_SECONDS > budget_seconds:
                raise NoPlaceInTime(f"{key}: {limit} calls in flight for {budget_seconds:.1f} s")
            self._sleep(WAIT_SECONDS)
            waited += WAIT_SECONDS
        try:
            yield
        finally:
            self._release(key, holder)

    def _release(self, key: str, holder: str) -> None:
        for _ in range(10):  # a lost race is retried; an unreleased place frees itself when its lease ends
            current = self._read(key)
            if holder not in current.leases:
                return
            now = self._clock()
            rest = {h: until for h, until in current.leases.items() if h != holder and until > now}
            if self._write(key, current, rest):
                return

    def _read(self, key: str) -> _Holders:
        item = self._table.call("get_item", Key=_key(key), ConsistentRead=True).get("Item")
        if not item:
            return _Holders({}, 0)
        return _Holders(json.loads(item["holders"]["S"]), int(item["version"]["N"]))

    def _write(self, key: str, current: _Holders, leases: dict[str, float]) -> bool:
        from botocore.exceptions import ClientError

        condition: dict[str, Any] = (
            {
                "ConditionExpression": "version = :version",
                "ExpressionAttributeValues": {":version": {"N": str(current.version)}},
            }
            if current.version
            else {"ConditionExpression": "attribute_not_exists(pk)"}
        )
        try:
            self._table.call(
                "put_item",
                Item={
                    **_key(key),
                    "holders": {"S": json.dumps({h: round(u, 3) for h, u in leases.items()})},
                    "version": {"N": str(current.version + 1)},
                    "expiresAt": {"N": str(int(self._clock()) + RETENTION_SECONDS)},
                },
                **condition,
            )
            return True
        except ClientError as error:
            if is_conditional_failure(error):
                return False
            raise


def _key(key: str) -> dict[str, Any]:
    return {"pk": {"S": f"INFLIGHT#{key}"}, "sk": {"S": "HOLDERS"}}
