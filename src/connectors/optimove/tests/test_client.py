"""The retry policy, status by status: 429, 5xx and timeouts retried with backoff (honouring
Retry-After) within the time left; any other 4xx final; the API key in a header, never logged."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

from connectors.optimove import client as api
from connectors.optimove.client import Credentials, authorize, read_body
from dig_connector_kit.http import Transport
from dig_connector_kit.model import Deadline
from dig_connector_kit.ratelimit import InMemoryLimiter, RateLimit
from dig_connector_kit.testing import SimulatedClock

LIMIT = RateLimit(requests=50, perSeconds=10)


def transport(
    script: list[Callable[[httpx.Request], httpx.Response]], clock: SimulatedClock
) -> tuple[Transport, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return script[min(len(seen), len(script)) - 1](request)

    return (
        Transport(
            httpx.Client(transport=httpx.MockTransport(handle)),
            authorize(lambda: Credentials(api_key="secret-key")),
            InMemoryLimiter(clock=clock, sleep=clock.sleep),
            read_body=read_body,
            sleep=clock.sleep,
            monotonic=clock,
        ),
        seen,
    )


def answer(
    status: int, body: object = None, headers: dict[str, str] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json=body, headers=headers)


def timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("slow", request=request)


def request() -> api.Request:
    return api.update_customer_attributes("https://optimove.test/api", [("M-1", [("CITY", "Ottawa")])], LIMIT)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_throttling_and_server_errors_are_retried_until_success(status: int) -> None:
    clock = SimulatedClock()
    sender, seen = transport(
        [answer(status, {"message": "busy"}), answer(status), answer(200, {"IsSuccess": True})], clock
    )
    result = sender.send(request(), Deadline(120, clock=clock))
    assert result.ok
    assert [a.status for a in result.attempts] == [str(status), str(status), "200"]
    assert len(seen) == 3
    assert len(clock.slept) == 2


def test_a_timeout_is_retried() -> None:
    clock = SimulatedClock()
    sender, _ = transport([timeout, answer(200)], clock)
    result = sender.send(request(), Deadline(120, clock=clock))
    assert result.ok
    assert [a.status for a in result.attempts] == ["timeout", "200"]
    assert result.attempts[0].error == "no answer within the timeout"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_4xx_are_final_after_one_attempt_with_optimoves_error(status: int) -> None:
    clock = SimulatedClock()
    sender, seen = transport([answer(status, {"Error": "INVALID_FIELD: NOPE"})], clock)
    result = sender.send(request(), Deadline(120, clock=clock))
    assert not result.ok
    assert not result.retryable
    assert result.error == "INVALID_FIELD: NOPE"
    assert len(seen) == 1
    assert clock.slept == []


def test_retry_after_is_honoured() -> None:
    clock = SimulatedClock()
    sender, _ = transport([answer(429, headers={"Retry-After": "7"}), answer(200)], clock)
    assert sender.send(request(), Deadline(120, clock=clock)).ok
    assert clock.slept == [7.0]


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    clock = SimulatedClock()
    sender, _ = transport([answer(500)], clock)
    result = sender.send(request(), Deadline(600, clock=clock))
    assert not result.ok
    assert result.retryable
    assert len(result.attempts) == 4
    assert [round(s, 3) <= cap for s, cap in zip(clock.slept, (0.5, 1.0, 2.0), strict=True)] == [True] * 3


def test_no_retry_is_started_that_the_invocation_has_no_time_for() -> None:
    clock = SimulatedClock()
    sender, seen = transport([answer(429, headers={"Retry-After": "30"}), answer(200)], clock)
    result = sender.send(request(), Deadline(35, clock=clock))  # 30 s to wait, then too little left
    assert not result.ok
    assert result.retryable
    assert len(seen) == 1


def test_a_conflict_on_a_mail_means_already_sent() -> None:
    clock = SimulatedClock()
    sender, _ = transport([answer(409, {"Error": "duplicate UniqueMessageID"})], clock)
    result = sender.send(request(), Deadline(60, clock=clock), conflict_means_done=True)
    assert result.ok
    assert result.note is not None
    assert "409" in result.note


def test_the_api_key_travels_in_the_header_and_never_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    clock = SimulatedClock()
    sender, seen = transport([answer(500), answer(200)], clock)
    with caplog.at_level(logging.DEBUG):
        result = sender.send(request(), Deadline(60, clock=clock))
    assert seen[0].headers["X-API-KEY"] == "secret-key"
    assert "secret-key" not in caplog.text
    assert all("secret-key" not in repr(attempt) for attempt in result.attempts)


def test_a_call_near_the_deadline_waits_only_for_what_is_left_and_none_starts_after() -> None:
    clock = SimulatedClock()
    sender, seen = transport([answer(200)], clock)
    assert sender.send(request(), Deadline(10, clock=clock)).ok
    assert seen[0].extensions["timeout"]["read"] == 9.0  # the synchronous flow's few seconds, not 20
    late = sender.send(request(), Deadline(5, clock=clock))
    assert (late.ok, late.retryable, late.error) == (
        False,
        True,
        "not sent: the invocation has no time left for another call",
    )
    assert len(seen) == 1
