"""The shared limiter: the sliding window holds across concurrent invocations, measured."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from db.table import Table
from dig_connector_kit.ratelimit import DynamoLimiter, InMemoryLimiter, RateLimit, RateLimitTimeout
from dig_connector_kit.testing import SimulatedClock
from tests.aws import AUDIT, AtomicCalls, create_tables


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
