"""A provider's request limits, held across every concurrent invocation of a connector.

Providers count requests per key in a window (Optimove: 50 per 10 s on the customer APIs; Marketo:
100 per 20 s). A token bucket would let 50 + 5 x 10 calls through in a 10 s window; a
sliding-window log cannot: it keeps the times of the last ``requests`` calls and lets a call go
only when the oldest of them left the window. The log lives in one DynamoDB item, updated with a
conditional write on its version, so that two invocations cannot both take the last slot.

The same item holds the key's places in flight (``holders``: the concurrency gate,
dig_connector_kit.concurrency) and its calls of the provider's day (``quotaDay``, ``quotaUsed``: a daily
quota's share, ``DailyShare``), so that a call under all three (Marketo's) takes its slot, its place and
its count with one read and one write, and gives its place back with one write and no read
(``ProviderWindow``).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from db.table import Table, is_conditional_failure

if TYPE_CHECKING:
    from collections.abc import Collection

# Clocks of two Lambda containers differ by a few milliseconds; the margin absorbs it.
CLOCK_MARGIN_SECONDS = 0.15


class RateLimit(BaseModel):
    """At most ``requests`` calls in any ``perSeconds`` window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: int = Field(gt=0)
    perSeconds: float = Field(gt=0)


class RateLimitTimeout(Exception):
    """No slot frees up before the invocation's deadline."""


@dataclass(frozen=True)
class DailyShare:
    """At most ``calls`` calls on the provider's ``day`` (its own calendar: Marketo's is US Central's), of a
    quota the provider counts per day; every attempt counts, as the provider counts them."""

    day: str
    calls: int


class QuotaSpent(Exception):
    """The day's share is spent: nothing was counted, nothing may be sent until the provider's next day."""

    def __init__(self, key: str, share: DailyShare) -> None:
        super().__init__(f"{key}: the share of {share.day}'s quota ({share.calls} calls) is spent")
        self.share = share


class Limiter(Protocol):
    def acquire(
        self, key: str, limit: RateLimit | None, budget_seconds: float, *, daily: DailyShare | None = None
    ) -> float:
        """Take a slot under ``limit`` for ``key``, and with ``daily`` count the call against that day's
        share (raising QuotaSpent, nothing taken, when it is spent); returns the seconds waited."""
        ...


def wait_for_slot(stamps: list[float], limit: RateLimit, now: float) -> tuple[list[float], float]:
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
        self.used: dict[tuple[str, str], int] = {}  # (key, day) -> calls counted against its share
        self._lock = threading.Lock()

    def acquire(
        self, key: str, limit: RateLimit | None, budget_seconds: float, *, daily: DailyShare | None = None
    ) -> float:
        waited = 0.0
        while True:
            with self._lock:
                if daily is not None and self.used.get((key, daily.day), 0) >= daily.calls:
                    raise QuotaSpent(key, daily)
                now = self._clock()
                recent, wait = wait_for_slot(list(self._stamps.get(key, ())), limit, now) if limit else ([], 0.0)
                if wait <= 0:
                    if limit is not None:
                        self._stamps[key] = deque([*recent, now][-limit.requests :])
                    if daily is not None:
                        self.used[(key, daily.day)] = self.used.get((key, daily.day), 0) + 1
                    return waited
            if waited + wait > budget_seconds:
                raise RateLimitTimeout(f"{key}: no slot within {budget_seconds:.1f} s")
            self._sleep(wait)
            waited += wait


WINDOW_RETENTION_SECONDS = 86_400


@dataclass(frozen=True)
class WindowState:
    stamps: list[float]  # the times of the last calls (epoch seconds)
    holders: dict[str, float]  # holder -> the epoch second its lease ends
    version: int  # 0: no such item yet
    has_holders: bool  # whether the item has a holders map to add to
    quota_day: str | None = None
    quota_used: int = 0

    def used_on(self, day: str) -> int:
        return self.quota_used if self.quota_day == day else 0


def encode_stamps(stamps: list[float]) -> str:
    """The window's stamps as milliseconds after the first, whole seconds: 50 stamps in about 300 bytes
    instead of 800, so that the window and ten holders stay within one write unit (1 KB)."""
    if not stamps:
        return "[]"
    base = int(min(stamps))
    return json.dumps({"b": base, "ms": [round((s - base) * 1000) for s in stamps]}, separators=(",", ":"))


def decode_stamps(text: str) -> list[float]:
    value = json.loads(text)
    if isinstance(value, list):  # written before stop 23: the stamps themselves
        return [float(s) for s in value]
    return [value["b"] + ms / 1000 for ms in value["ms"]]


class ProviderWindow:
    """One limiter key's item in the audit table: pk ``LIMIT#<key>``, sk ``WINDOW``; ``value`` the sliding
    window's stamps, ``holders`` a map of the calls in flight (holder -> lease end), ``version``.

    A taker reads the item and writes its change under the version it read (optimistic concurrency): its
    new stamps, its own holder added and expired ones removed, each by its own path, never the map whole.
    So a release needs no version and no read: it removes its holder only, and a taker that read before
    it cannot bring the holder back."""

    def __init__(self, table: Table, key: str, clock: Callable[[], float]) -> None:
        self._table = table
        self._key = {"pk": {"S": f"LIMIT#{key}"}, "sk": {"S": "WINDOW"}}
        self._clock = clock

    def read(self) -> WindowState:
        item = self._table.call("get_item", Key=self._key, ConsistentRead=True).get("Item")
        if not item:
            return WindowState([], {}, 0, False)
        holders = item.get("holders", {}).get("M")
        return WindowState(
            decode_stamps(item["value"]["S"]) if "value" in item else [],
            {h: float(v["N"]) for h, v in (holders or {}).items()},
            int(item["version"]["N"]),
            holders is not None,
            item["quotaDay"]["S"] if "quotaDay" in item else None,
            int(item["quotaUsed"]["N"]) if "quotaUsed" in item else 0,
        )

    def take(
        self,
        read: WindowState,
        *,
        stamps: list[float] | None = None,
        holder: tuple[str, float] | None = None,
        expired: Collection[str] = (),
        daily: DailyShare | None = None,
    ) -> bool:
        """Write ``stamps``, add ``holder`` (removing ``expired`` holders) and count a call of ``daily``'s
        day, each when given, if the item is still at the version ``read`` saw; False when another taker
        came first. (The caller checked that the day's share is not spent.)"""
        from botocore.exceptions import ClientError

        names: dict[str, str] = {}
        values: dict[str, Any] = {
            ":next": {"N": str(read.version + 1)},
            ":expires": {"N": str(int(self._clock()) + WINDOW_RETENTION_SECONDS)},
        }
        sets = ["version = :next", "expiresAt = :expires"]
        removes: list[str] = []
        if stamps is not None:
            sets.append("#value = :stamps")
            names["#value"] = "value"
            values[":stamps"] = {"S": encode_stamps(stamps)}
        if holder is not None:
            until = {"N": str(round(holder[1], 3))}
            if read.has_holders:
                names["#me"] = holder[0]
                sets.append("holders.#me = :until")
                values[":until"] = until
            else:  # the first holder of this item: the map itself (the version condition keeps it the only one)
                sets.append("holders = :holders")
                values[":holders"] = {"M": {holder[0]: until}}
                expired = ()
        if daily is not None:
            sets += ["quotaDay = :day", "quotaUsed = :used"]
            values[":day"] = {"S": daily.day}
            values[":used"] = {"N": str(read.used_on(daily.day) + 1)}
        for n, name in enumerate(expired):
            names[f"#x{n}"] = name
            removes.append(f"holders.#x{n}")
        condition = "version = :read" if read.version else "attribute_not_exists(pk)"
        if read.version:
            values[":read"] = {"N": str(read.version)}
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        try:
            self._table.call(
                "update_item",
                Key=self._key,
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                **({"ExpressionAttributeNames": names} if names else {}),
            )
        except ClientError as error:
            if is_conditional_failure(error):
                return False
            raise
        return True

    def release(self, holder: str) -> None:
        """Give a place back: one write, no read, no version (takers never rewrite another's holder)."""
        from botocore.exceptions import ClientError

        try:
            self._table.call(
                "update_item",
                Key=self._key,
                UpdateExpression="REMOVE holders.#me",
                ConditionExpression="attribute_exists(holders)",
                ExpressionAttributeNames={"#me": holder},
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise


class DynamoLimiter:
    """The sliding-window log in the audit table (``ProviderWindow``)."""

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

    def window(self, key: str) -> ProviderWindow:
        return ProviderWindow(self._table, key, self._clock)

    def acquire(
        self, key: str, limit: RateLimit | None, budget_seconds: float, *, daily: DailyShare | None = None
    ) -> float:
        waited = 0.0
        window = self.window(key)
        while True:
            read = window.read()
            if daily is not None and read.used_on(daily.day) >= daily.calls:
                raise QuotaSpent(key, daily)
            now = self._clock()
            recent, wait = wait_for_slot(read.stamps, limit, now) if limit else (read.stamps, 0.0)
            if wait <= 0:
                stamps = [*recent, now][-limit.requests :] if limit else None
                if window.take(read, stamps=stamps, daily=daily):
                    return waited
                continue  # another invocation took a slot first: read again
            if waited + wait > budget_seconds:
                raise RateLimitTimeout(f"{key}: no slot within {budget_seconds:.1f} s")
            self._sleep(wait)
            waited += wait
