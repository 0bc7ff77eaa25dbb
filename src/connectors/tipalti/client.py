"""Tipalti's API, as this connector calls it.

The one request builder and how the provider's answer is read.
The kit's transport sends it (timeouts, retries with backoff, the rate limit, the audit's attempts).

UNVERIFIED: every fact in this file is a PLACEHOLDER written by ``dig connector new`` (the endpoint,
the bearer API key, 100 events a call, per-event results, deduplication on ``id``). Check each against
the provider's documentation, replace the samples in tests/fixtures/ with its documented ones, and say in
the README which facts no public source confirmed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dig_connector_kit.http import Request
from dig_connector_kit.ratelimit import RateLimit

MAX_EVENTS_PER_CALL = 100
LIMITER_KEY = "tipalti-api"
EVENTS_CALL = "events"
EVENTS_PATH = "/v1/events"


def authorize(credentials: Callable[[], Mapping[str, str]]) -> Callable[[Request], dict[str, str]]:
    """The API key travels in the Authorization header, never in a URL, a log or an audit record."""

    def headers(request: Request) -> dict[str, str]:
        return {"Authorization": f"Bearer {credentials()['apiKey']}"}

    return headers


def events_request(base_url: str, events: Sequence[dict[str, Any]], limit: RateLimit) -> Request:
    return Request(
        call=EVENTS_CALL,
        method="POST",
        url=f"{base_url}{EVENTS_PATH}",
        body={"events": list(events)},
        limiter_key=LIMITER_KEY,
        limit=limit,
    )


def rejected(body: Any) -> dict[str, str]:
    """The events the provider's answer rejected, by id, with its reason: ``{"results": [{"id", "status",
    "error"}]}``, status "accepted", "duplicate" (accepted before) or "rejected"."""
    results = body.get("results", []) if isinstance(body, dict) else []
    return {
        str(item.get("id")): str(item.get("error") or "rejected by the provider")
        for item in results
        if isinstance(item, dict) and item.get("status") == "rejected"
    }
