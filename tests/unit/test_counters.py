"""A connector's daily counts: added up across invocations, per UTC day, read back by day; the
in-memory fake behaves as the DynamoDB adapter does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from db.counters import DynamoCounters, InMemoryCounters
from dig_connector_kit.testing import moto_audit_table


@pytest.fixture
def dynamo() -> Iterator[DynamoCounters]:
    with moto_audit_table() as table:
        yield DynamoCounters(table)


@pytest.mark.parametrize("kind", ["dynamo", "fake"])
def test_counts_add_up_per_connector_and_utc_day(kind: str, request: pytest.FixtureRequest) -> None:
    counters: Any = request.getfixturevalue("dynamo") if kind == "dynamo" else InMemoryCounters()
    at = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    counters.add("cataboom", {"playsIssued": 3}, at)
    counters.add("cataboom", {"playsIssued": 2, "playsWon": 1, "writebacksRefused": 0}, at)
    counters.add("cataboom", {"playsWon": 1}, datetime(2026, 12, 1, 20, 0, tzinfo=timezone(timedelta(hours=-5))))
    counters.add("other", {"playsIssued": 9}, at)
    assert counters.read("cataboom", ["2026-11-30", "2026-12-01", "2026-12-02"]) == {
        "2026-12-01": {"playsIssued": 5, "playsWon": 1},
        "2026-12-02": {"playsWon": 1},  # 20:00 at -05:00 is the next UTC day
    }
    with pytest.raises(ValueError, match="camelCase"):
        counters.add("cataboom", {"plays issued": 1}, at)
