"""The kit's fakes (dig_connector_kit.testing), which every connector's tests use, behave as the DynamoDB
adapters the Kit gives a deployed connector: the same checks run against each pair."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from moto import mock_aws

from db.call_log import CallLog, CallNotRecorded, DynamoCallLog
from db.operations import DynamoOperationLedger
from db.table import Table
from db.watermarks import DynamoWatermarkStore
from dig_connector_kit.concurrency import DynamoGate, InMemoryGate, NoPlaceInTime
from dig_connector_kit.ports import ConcurrencyGate, OperationClaim, OperationLedger, WatermarkStore
from dig_connector_kit.ratelimit import DailyShare, DynamoLimiter, InMemoryLimiter, QuotaSpent, RateLimit
from dig_connector_kit.testing import FakeCallLog, FakeOperationLedger, FakeWatermarks
from tests.aws import AUDIT, AtomicCalls, create_tables
from tests.unit.test_ratelimit import max_in_any_window


@pytest.fixture
def table() -> Iterator[Table]:
    with mock_aws():
        yield Table(AtomicCalls(create_tables()), AUDIT)  # type: ignore[arg-type]  # moto's calls, atomic as DynamoDB's


def watermarks(kind: str, table: Table) -> WatermarkStore:
    return DynamoWatermarkStore(table) if kind == "dynamo" else FakeWatermarks()


def ledger(kind: str, table: Table) -> OperationLedger:
    return DynamoOperationLedger(table) if kind == "dynamo" else FakeOperationLedger()


def call_log(kind: str, table: Table) -> CallLog:
    return DynamoCallLog(table) if kind == "dynamo" else FakeCallLog()


def limiter(kind: str, table: Table) -> DynamoLimiter | InMemoryLimiter:
    return DynamoLimiter(table) if kind == "dynamo" else InMemoryLimiter()


@pytest.mark.parametrize("kind", ["dynamo", "fake"])
def test_watermarks_keep_the_newest_mark_per_field_and_forget_what_a_message_set(kind: str, table: Table) -> None:
    store = watermarks(kind, table)
    store.advance("c", {"M-1": {"CITY": ("2026-01-02T00:00:00Z", "msg-2")}}, {})
    known = store.get("c", ["M-1", "M-2"])
    assert known == {"M-1": {"CITY": ("2026-01-02T00:00:00Z", "msg-2")}}
    older: dict[str, Any] = {
        "M-1": {"CITY": ("2026-01-01T00:00:00Z", "msg-1"), "TIER": ("2026-01-01T00:00:00Z", "msg-1")}
    }
    store.advance("c", older, known)
    assert store.get("c", ["M-1"]) == {
        "M-1": {"CITY": ("2026-01-02T00:00:00Z", "msg-2"), "TIER": ("2026-01-01T00:00:00Z", "msg-1")}
    }
    store.forget("c", {"M-1": {"CITY": "msg-2", "TIER": "msg-other"}})
    assert store.get("c", ["M-1"]) == {"M-1": {"TIER": ("2026-01-01T00:00:00Z", "msg-1")}}
    assert store.get("other-connector", ["M-1"]) == {}


@pytest.mark.parametrize("kind", ["dynamo", "fake"])
def test_the_ledger_gives_an_operation_to_one_owner_and_none_after_it_is_done(kind: str, table: Table) -> None:
    claims = ledger(kind, table)
    key = ("c", "message-1", "activity:1")
    assert claims.claim(*key, "a") is OperationClaim.MINE
    assert claims.claim(*key, "a") is OperationClaim.BUSY  # held: a second claim, even its owner's, waits
    assert claims.claim(*key, "b") is OperationClaim.BUSY
    claims.release(*key, "b")  # not the owner: nothing released
    assert claims.claim(*key, "b") is OperationClaim.BUSY
    claims.release(*key, "a")
    assert claims.claim(*key, "b") is OperationClaim.MINE
    claims.done(*key)
    assert claims.claim(*key, "a") is OperationClaim.DONE
    assert claims.claim("c", "message-2", "activity:1", "a") is OperationClaim.MINE


@pytest.mark.parametrize("kind", ["dynamo", "fake"])
def test_a_daily_share_counts_per_key_and_day_and_is_never_overdrawn(kind: str, table: Table) -> None:
    counter = limiter(kind, table)
    rate = RateLimit(requests=100, perSeconds=20)
    first = DailyShare("2026-07-01", 2)
    counter.acquire("k", rate, 1, daily=first)
    counter.acquire("k", None, 1, daily=first)  # a share without a rate limit counts too
    with pytest.raises(QuotaSpent, match="k: the share of 2026-07-01's quota \\(2 calls\\) is spent"):
        counter.acquire("k", rate, 1, daily=first)
    counter.acquire("k", rate, 1)  # a call outside the share takes its slot only
    counter.acquire("k", rate, 1, daily=DailyShare("2026-07-02", 2))  # the provider's next day
    counter.acquire("other", rate, 1, daily=first)  # each key its own


@pytest.mark.parametrize("kind", ["dynamo", "fake"])
def test_a_gated_call_counts_against_the_days_share_and_a_spent_share_holds_no_place(kind: str, table: Table) -> None:
    gate: ConcurrencyGate = DynamoGate(table) if kind == "dynamo" else InMemoryGate()
    share = DailyShare("2026-07-01", 1)
    with gate.hold("k", 1, 30, 1, rate=RateLimit(requests=10, perSeconds=1), daily=share):
        pass
    with pytest.raises(QuotaSpent), gate.hold("k", 1, 30, 1, daily=share):
        pass
    with gate.hold("k", 1, 30, 1):  # the refused call took no place: the one place is free
        pass


@pytest.mark.parametrize("kind", ["dynamo", "fake"])
def test_the_gate_never_lets_more_than_its_limit_in_flight_and_refuses_when_none_frees_in_time(
    kind: str, table: Table
) -> None:
    gate: ConcurrencyGate = DynamoGate(table, sleep=lambda s: time.sleep(0.01)) if kind == "dynamo" else InMemoryGate()
    inside, most, lock = [0], [0], threading.Lock()

    def call(_: int) -> None:
        with gate.hold("provider", 2, lease_seconds=30, budget_seconds=30):
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.05)
            with lock:
                inside[0] -= 1

    with ThreadPoolExecutor(max_workers=5) as pool:
        list(pool.map(call, range(10)))
    assert most[0] == 2
    with gate.hold("provider", 1, 30, 30), pytest.raises(NoPlaceInTime), gate.hold("provider", 1, 30, 0):
        pass


@pytest.mark.parametrize("kind", ["dynamo", "fake"])
def test_a_gated_call_with_a_rate_takes_a_slot_under_it_as_the_limiter_would(kind: str, table: Table) -> None:
    """Ten calls, at most 5 in flight and 4 per second: no second holds more than 4 of their starts."""
    rate = RateLimit(requests=4, perSeconds=1.0)
    gate: ConcurrencyGate = DynamoGate(table) if kind == "dynamo" else InMemoryGate()
    starts, lock = [], threading.Lock()

    def call(_: int) -> None:
        with gate.hold("provider", 5, lease_seconds=30, budget_seconds=30, rate=rate), lock:
            starts.append(time.time())

    with ThreadPoolExecutor(max_workers=5) as pool:
        list(pool.map(call, range(10)))
    assert len(starts) == 10
    assert max_in_any_window(starts, 1.0) <= 4
    assert max(starts) - min(starts) >= 1.0  # ten calls at four a second span two windows at the least


def test_a_place_its_holder_never_released_frees_itself_when_its_lease_ends(table: Table) -> None:
    now = [1_000.0]
    gate = DynamoGate(table, clock=lambda: now[0], sleep=lambda s: None)
    window = gate.window("provider")
    assert window.take(window.read(), holder=("crashed", now[0] + 90))  # a holder that never released
    with pytest.raises(NoPlaceInTime), gate.hold("provider", 1, lease_seconds=90, budget_seconds=1):
        pass
    now[0] += 91
    with gate.hold("provider", 1, lease_seconds=90, budget_seconds=1):
        pass


@pytest.mark.parametrize("kind", ["dynamo", "fake"])
def test_a_calls_results_are_kept_once_and_only_for_a_call_the_log_holds(kind: str, table: Table) -> None:
    log = call_log(kind, table)
    with pytest.raises(CallNotRecorded):  # results that overtook the call's record: back to the queue
        log.keep_results("optimove", "c1", {"errors": []}, readable=True, receipt="r1")
    log.record("optimove", "c1", {"M-1": {"msg-1": ["CITY"]}}, due_in_seconds=60)
    assert log.keep_results("optimove", "c1", {"errors": []}, readable=True, receipt="r1")
    assert log.keep_results("optimove", "c1", {"errors": []}, readable=True, receipt="r1")  # SQS again: harmless
    assert not log.keep_results("optimove", "c1", {"errors": []}, readable=True, receipt="r2")  # another post
    assert log.lookup("optimove", "c1") == {"M-1": {"msg-1": ["CITY"]}}
    assert log.flag_overdue("optimove") == []


@pytest.mark.parametrize("kind", ["dynamo", "fake"])
def test_a_calls_status_says_whether_its_results_came(kind: str, table: Table) -> None:
    log = call_log(kind, table)
    assert log.status("optimove", "c1") is None
    log.record("optimove", "c1", {"M-1": {"msg-1": ["CITY"]}}, due_in_seconds=60)
    awaited = log.status("optimove", "c1")
    assert awaited is not None
    assert (awaited.call_id, awaited.results_at, awaited.readable, awaited.overdue_at) == ("c1", None, None, None)
    assert awaited.called_at is not None
    assert awaited.due_at is not None
    assert awaited.called_at < awaited.due_at
    assert awaited.describe().startswith("results awaited until ")
    log.keep_results("optimove", "c1", "<html>", readable=False, receipt="r1")
    kept = log.status("optimove", "c1")
    assert kept is not None
    assert kept.results_at is not None
    assert kept.readable is False
    assert "(unreadable: kept with the call's log)" in kept.describe()
    assert log.status("optimove", "c2") is None
    assert log.status("marketo", "c1") is None
