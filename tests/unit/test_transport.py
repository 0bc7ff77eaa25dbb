"""The kit's transport, on what no one provider's tests cover alone."""

from __future__ import annotations

import httpx

from dig_connector_kit.http import Request, Transport
from dig_connector_kit.model import Deadline
from dig_connector_kit.testing import InMemoryLimiter, SimulatedClock


def test_a_status_that_means_expired_credentials_renews_them_and_resends_at_once_then_gives_up() -> None:
    clock = SimulatedClock()
    tokens = iter(["old", "new", "newer", "newest"])
    current = {"token": next(tokens)}
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200 if request.headers["Authorization"] == "Bearer new" else 401, json={"message": "x"})

    def renew() -> None:
        current["token"] = next(tokens)

    transport = Transport(
        httpx.Client(transport=httpx.MockTransport(answer)),
        lambda _request: {"Authorization": f"Bearer {current['token']}"},
        InMemoryLimiter(clock=clock, sleep=clock.sleep),
        renew=renew,
        renew_on=frozenset({401}),
        sleep=clock.sleep,
        monotonic=clock,
    )
    request = Request("call", "POST", "https://provider.test/x", {}, None, None)
    result = transport.send(request, Deadline(60, clock=clock))
    assert result.ok
    assert seen == ["Bearer old", "Bearer new"]  # renewed once, the renewal not counted as a try
    # A provider that keeps refusing fresh credentials: two renewals, then the 401 is final.
    current["token"] = "stale"
    seen.clear()
    failed = transport.send(request, Deadline(60, clock=clock))
    assert (failed.ok, failed.retryable, failed.status) == (False, False, "401")
    assert seen == ["Bearer stale", "Bearer newer", "Bearer newest"]
