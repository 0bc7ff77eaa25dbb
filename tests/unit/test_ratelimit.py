"""The shared limiter: the sliding window holds across concurrent invocations, measured."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from db.table import Table
from dig_connector_kit.concurrency import HOLDER_ID_LENGTH, DynamoGate, NoPlaceInTime
from dig_connector_kit.ratelimit import (
    DailyShare,
    DynamoLimiter,
    InMemoryLimiter,
    ProviderWindow,
    RateLimit,
    RateLimitTimeout,
    WindowState,
    decode_stamps,
    encode_stamps,
)
from dig_connector_kit.testing import SimulatedClock
from dig_cost.units import item_size
from tests.aws import AUDIT, AtomicCalls, create_tables

WINDOW_KEY = {"pk": {"S": "LIMIT#marketo"}, "sk": {"S": "WINDOW"}}


def max_in_any_window(stamps: list[float], seconds: float) -> int:
    stamps = sorted(stamps)
    best, start = 0, 0
    for end, stamp in enumerate(stamps):
        while stamp - stamps[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


@given(
    st.integers(min_value=1, max_value=20),
    st.floats(min_value=0.5, max_value=10),
    st.integers(min_value=1, max_value=80),
)
def test_the_in_memory_window_never_lets_more_than_the_limit_through(requests: int, seconds: float, calls: int) -> None:
    clock = SimulatedClock()
    limiter = InMemoryLimiter(clock=clock, sleep=clock.sleep)
    limit = RateLimit(requests=requests, perSeconds=seconds)
    stamps = []
    for _ in range(calls):
        limiter.acquire("k", limit, budget_seconds=10_000)
        stamps.append(clock())
        clock.now += 0.001
    assert max_in_any_window(stamps, seconds) <= requests


def test_a_call_that_cannot_get_a_slot_in_time_is_refused() -> None:
    clock = SimulatedClock()
    limiter = InMemoryLimiter(clock=clock, sleep=clock.sleep)
    limit = RateLimit(requests=2, perSeconds=10)
    limiter.acquire("k", limit, 1)
    limiter.acquire("k", limit, 1)
    with pytest.raises(RateLimitTimeout):
        limiter.acquire("k", limit, budget_seconds=5)


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        yield create_tables()


def test_the_dynamodb_window_holds_across_concurrent_invocations(dynamodb: Any) -> None:
    """Four 'invocations' (threads, each its own limiter, as separate containers would be) share
    a limit of 10 calls per second. Each granted slot's time, as the limiter wrote it to the shared
    window, is recorded; no one-second window may hold more than 10 of them."""
    limit = RateLimit(requests=10, perSeconds=1.0)
    granted: list[float] = []
    lock = threading.Lock()
    table = AtomicCalls(dynamodb)

    def invocation(_: int) -> None:
        last_read = threading.local()

        def clock() -> float:
            last_read.value = time.time()
            return float(last_read.value)

        limiter = DynamoLimiter(Table(table, AUDIT), clock=clock)  # type: ignore[arg-type]
        for _ in range(8):
            limiter.acquire("optimove:customer-api", limit, budget_seconds=30)
            with lock:
                granted.append(last_read.value)  # the time the slot was taken at

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(invocation, range(4)))
    assert len(granted) == 32
    assert max_in_any_window(granted, 1.0) <= 10
    assert max(granted) - min(granted) >= 3.0  # 32 calls at 10/s need three full windows


class RecordedCalls(AtomicCalls):
    """The DynamoDB operations made, in order."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.operations: list[str] = []

    def __getattr__(self, name: str) -> Any:
        call = super().__getattr__(name)

        def recorded(**kwargs: Any) -> Any:
            self.operations.append(name)
            return call(**kwargs)

        return recorded


def test_a_gated_call_takes_its_slot_place_and_count_with_one_read_and_one_write_and_gives_it_back_unread(
    dynamodb: Any,
) -> None:
    calls = RecordedCalls(dynamodb)
    gate = DynamoGate(Table(calls, AUDIT))  # type: ignore[arg-type]
    rate, share = RateLimit(requests=50, perSeconds=20), DailyShare("2026-12-08", 25_000)
    with gate.hold("marketo", 5, lease_seconds=100, budget_seconds=10, rate=rate, daily=share):
        assert calls.operations == ["get_item", "update_item"]
        item = dynamodb.get_item(TableName=AUDIT, Key=WINDOW_KEY)["Item"]
        assert len(item["holders"]["M"]) == 1
        assert len(decode_stamps(item["value"]["S"])) == 1
        assert (item["quotaDay"], item["quotaUsed"]) == ({"S": "2026-12-08"}, {"N": "1"})
    assert calls.operations == ["get_item", "update_item", "update_item"]
    assert dynamodb.get_item(TableName=AUDIT, Key=WINDOW_KEY)["Item"]["holders"]["M"] == {}


def test_the_limiters_write_keeps_the_places_held_on_its_key(dynamodb: Any) -> None:
    table = Table(AtomicCalls(dynamodb), AUDIT)  # type: ignore[arg-type]
    gate = DynamoGate(table, sleep=lambda s: None)
    with gate.hold("marketo", 1, lease_seconds=100, budget_seconds=10):
        DynamoLimiter(table).acquire("marketo", RateLimit(requests=50, perSeconds=20), budget_seconds=1)
        with pytest.raises(NoPlaceInTime), gate.hold("marketo", 1, lease_seconds=100, budget_seconds=0.5):
            pass


def test_a_taker_that_read_before_a_release_does_not_bring_the_released_place_back(dynamodb: Any) -> None:
    table = Table(AtomicCalls(dynamodb), AUDIT)  # type: ignore[arg-type]
    window = ProviderWindow(table, "marketo", time.time)
    assert window.take(window.read(), holder=("first", time.time() + 100))
    before_release = window.read()
    window.release("first")
    assert window.take(before_release, holder=("second", time.time() + 100))
    assert set(window.read().holders) == {"second"}


def test_a_window_written_before_stop_23_as_a_list_of_stamps_is_read(dynamodb: Any) -> None:
    now = time.time()
    dynamodb.put_item(
        TableName=AUDIT,
        Item={**WINDOW_KEY, "value": {"S": json.dumps([now - 1.5, now - 0.25])}, "version": {"N": "7"}},
    )
    limiter = DynamoLimiter(Table(AtomicCalls(dynamodb), AUDIT))  # type: ignore[arg-type]
    with pytest.raises(RateLimitTimeout):
        limiter.acquire("marketo", RateLimit(requests=2, perSeconds=20), budget_seconds=1)
    limiter.acquire("marketo", RateLimit(requests=3, perSeconds=20), budget_seconds=1)
    window = ProviderWindow(Table(dynamodb, AUDIT), "marketo", time.time)  # type: ignore[arg-type]
    assert window.read().version == 8
    assert len(window.read().stamps) == 3


def test_a_full_window_and_ten_holders_fit_one_write_unit(dynamodb: Any) -> None:
    """Marketo's window (DIG's 50 calls per 20 s) and its ten places: a write of more than 1 KB costs two units."""
    table = Table(AtomicCalls(dynamodb), AUDIT)  # type: ignore[arg-type]
    window = ProviderWindow(table, "marketo", time.time)
    now = time.time()
    stamps = [now - 19.999 + 0.4 * n for n in range(50)]
    assert window.take(window.read(), stamps=stamps, holder=(uuid.uuid4().hex[:HOLDER_ID_LENGTH], now + 100.5))
    for _ in range(9):
        assert window.take(window.read(), holder=(uuid.uuid4().hex[:HOLDER_ID_LENGTH], now + 100.5))
    item = dynamodb.get_item(TableName=AUDIT, Key=WINDOW_KEY)["Item"]
    assert len(item["holders"]["M"]) == 10
    assert item_size(item) <= 1024
    assert window.read().stamps == pytest.approx(stamps, abs=0.001)


@given(st.lists(st.floats(min_value=1.7e9, max_value=1.8e9), max_size=60))
def test_stamps_come_back_to_the_millisecond(stamps: list[float]) -> None:
    assert decode_stamps(encode_stamps(stamps)) == pytest.approx(stamps, abs=0.0006)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.sampled_from(["read", "take", "release", "tick"]), st.integers(min_value=0, max_value=2)),
        max_size=30,
    )
)
@example([("read", 0), ("read", 1), ("take", 0), ("take", 1)])  # two takers on one read: one must lose
@example([("read", 0), ("take", 0), ("read", 1), ("release", 0), ("take", 1), ("read", 2), ("take", 2)])
def test_under_any_interleaving_the_places_never_pass_the_limit_and_a_release_is_never_undone(
    dynamodb: Any, steps: list[tuple[str, int]]
) -> None:
    """Three would-be holders read, take on what they last read (however stale), release, while time passes:
    the item never holds more live places than the limit, a place taken stays until it is given back or its
    lease ends, and a place given back never comes back."""
    limit, lease = 1, 10.0
    now = [1_000.0]
    window = ProviderWindow(Table(dynamodb, AUDIT), f"k{uuid.uuid4().hex}", lambda: now[0])  # type: ignore[arg-type]
    assert window.take(window.read(), holder=("first", now[0] + lease))  # the places' map exists, as it soon does
    window.release("first")
    reads: dict[int, WindowState] = {}
    held: dict[str, float] = {}  # holder -> lease end, of the takes that succeeded and were not given back
    for action, who in steps:
        holder = f"h{who}"
        if action == "read":
            reads[who] = window.read()
        elif action == "take" and who in reads and holder not in held:
            read = reads.pop(who)
            live = [h for h, until in read.holders.items() if until > now[0]]
            expired = [h for h, until in read.holders.items() if until <= now[0]]
            if len(live) < limit and window.take(read, holder=(holder, now[0] + lease), expired=expired):
                held[holder] = now[0] + lease
        elif action == "release" and holder in held:
            window.release(holder)
            del held[holder]
        elif action == "tick":
            now[0] += 4.0
        places = window.read().holders
        assert sum(1 for until in places.values() if until > now[0]) <= limit
        assert {h for h, until in held.items() if until > now[0]} <= set(places)
        assert set(places) <= set(held)  # given back, or never taken: not held


class FailingReleases(AtomicCalls):
    """DynamoDB throttling every write that gives a place back."""

    def __getattr__(self, name: str) -> Any:
        call = super().__getattr__(name)

        def maybe_failing(**kwargs: Any) -> Any:
            if name == "update_item" and kwargs["UpdateExpression"].startswith("REMOVE holders"):
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, name)
            return call(**kwargs)

        return maybe_failing


def test_a_place_that_cannot_be_given_back_leaves_the_calls_outcome_alone_and_frees_itself_later(
    dynamodb: Any,
) -> None:
    now = [1_000.0]
    gate = DynamoGate(Table(FailingReleases(dynamodb), AUDIT), clock=lambda: now[0], sleep=lambda s: None)  # type: ignore[arg-type]
    with gate.hold("marketo", 1, lease_seconds=90, budget_seconds=1):
        answered = "the provider's answer"
    assert answered == "the provider's answer"  # no error raised from the release
    with pytest.raises(NoPlaceInTime), gate.hold("marketo", 1, lease_seconds=90, budget_seconds=1):
        pass
    now[0] += 91
    with gate.hold("marketo", 1, lease_seconds=90, budget_seconds=1):
        pass
