"""A connector's own daily counts (CataBoom: plays issued, won, awarded, writebacks refused): what
``dig status`` shows for today and ``dig audit counts`` for a span of days, for figures the audit
records of messages do not hold (a writeback refused is no message).

One item per connector and UTC day: pk ``COUNTS#<connector>#<yyyy-mm-dd>``, sk ``COUNTS``, one number
per name (ADD: concurrent invocations add up), kept RETENTION_DAYS.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from db.table import Table

RETENTION_DAYS = 400
# The connector runtime's own counts of each day (dig_connector_kit.runtime): deliveries recorded
# DELIVERED and SKIPPED, which the status index does not hold (db.audit).
DELIVERED_COUNT = "delivered"
SKIPPED_COUNT = "skipped"
SK = "COUNTS"
NAME = re.compile(r"^[a-z][A-Za-z0-9]{0,40}$")


def counts_pk(connector: str, day: str) -> str:
    return f"COUNTS#{connector}#{day}"


class Counters(Protocol):
    def add(self, connector: str, counts: Mapping[str, int], at: datetime) -> None:
        """Add each count (a camelCase name) to the connector's day of ``at`` (UTC); zeros are left out."""
        ...

    def read(self, connector: str, days: Iterable[str]) -> dict[str, dict[str, int]]:
        """The counts of each day (yyyy-mm-dd) that has any."""
        ...


def _day(at: datetime) -> str:
    return at.astimezone(UTC).date().isoformat()


def _check(counts: Mapping[str, int]) -> dict[str, int]:
    wrong = [name for name in counts if not NAME.match(name)]
    if wrong:
        raise ValueError(f"count names are camelCase words: {wrong}")
    return {name: int(value) for name, value in counts.items() if value}


class DynamoCounters:
    def __init__(self, table: Table, clock: Any = time.time) -> None:
        self._table = table
        self._clock = clock

    def add(self, connector: str, counts: Mapping[str, int], at: datetime) -> None:
        counts = _check(counts)
        if not counts:
            return
        names = {f"#c{i}": name for i, name in enumerate(counts)}
        values: dict[str, Any] = {f":c{i}": {"N": str(value)} for i, value in enumerate(counts.values())}
        values[":expires"] = {"N": str(int(self._clock()) + RETENTION_DAYS * 86_400)}
        self._table.call(
            "update_item",
            Key={"pk": {"S": counts_pk(connector, _day(at))}, "sk": {"S": SK}},
            UpdateExpression="ADD " + ", ".join(f"{n} :{n[1:]}" for n in names) + " SET expiresAt = :expires",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def read(self, connector: str, days: Iterable[str]) -> dict[str, dict[str, int]]:
        keys = [{"pk": {"S": counts_pk(connector, day)}, "sk": {"S": SK}} for day in dict.fromkeys(days)]
        found: dict[str, dict[str, int]] = {}
        for item in self._table.batch_get(keys, consistent=False):
            day = item["pk"]["S"].rsplit("#", 1)[1]
            found[day] = {
                name: int(value["N"])
                for name, value in item.items()
                if name not in ("pk", "sk", "expiresAt") and "N" in value
            }
        return dict(sorted(found.items()))


class InMemoryCounters:
    def __init__(self) -> None:
        self.days: dict[tuple[str, str], dict[str, int]] = {}

    def add(self, connector: str, counts: Mapping[str, int], at: datetime) -> None:
        day = self.days.setdefault((connector, _day(at)), {})
        for name, value in _check(counts).items():
            day[name] = day.get(name, 0) + value

    def read(self, connector: str, days: Iterable[str]) -> dict[str, dict[str, int]]:
        return {day: dict(self.days[(connector, day)]) for day in sorted(set(days)) if (connector, day) in self.days}
