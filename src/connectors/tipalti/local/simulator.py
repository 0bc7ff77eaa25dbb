"""The Tipalti simulator.

A test double that enforces what client.py assumes of the provider (the bearer key, the request's
shape, 100 events a call, per-event results, deduplication on ``id``) and no more. It is only as true
as those assumptions: PLACEHOLDERS until checked against the provider's documentation, with the
documented samples in tests/fixtures/ (the connector's parser and this simulator are both tested
against them). Never imported by Lambda code.

Served under ``/_sim/tipalti``:
  POST /v1/events; the shared surface (GET/DELETE /requests, POST/DELETE /faults:
  dig_connector_kit.testing.double); GET /events (the events the provider holds, one per id).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from connectors.tipalti.client import EVENTS_CALL, EVENTS_PATH, MAX_EVENTS_PER_CALL
from dig_connector_kit.testing.double import Answer, ProviderSimulator

MAX_ATTRIBUTE_LENGTH = 100  # PLACEHOLDER: a value longer than this is rejected, per event


class TipaltiSimulator(ProviderSimulator):
    def __init__(self, *, api_key: str, clock: Callable[[], float] = time.monotonic, seed: int = 7) -> None:
        super().__init__(clock=clock, seed=seed)
        self.api_key = api_key
        self.events: dict[str, dict[str, Any]] = {}  # by id: what the provider holds

    def call_name(self, method: str, path: str) -> str | None:
        return EVENTS_CALL if (method, path) == ("POST", EVENTS_PATH) else None

    def control(self, method: str, path: str, body: bytes) -> Answer | None:
        if (method, path) == ("GET", "/events"):
            with self._lock:
                return Answer(200, list(self.events.values()))
        return None

    def serve(self, call: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Answer:
        authorization = {k.lower(): v for k, v in headers.items()}.get("authorization")
        if authorization != f"Bearer {self.api_key}":
            return Answer(401, {"error": "invalid or missing API key"})
        try:
            events = _events(json.loads(body or b"null"))
        except ValueError as error:
            return Answer(400, {"error": str(error)})
        return self.faulted(call, lambda: self._accept(events))

    def _accept(self, events: list[dict[str, Any]]) -> Answer:
        results = []
        with self._lock:
            for event in events:
                too_long = [k for k, v in event["attributes"].items() if len(v) > MAX_ATTRIBUTE_LENGTH]
                if too_long:
                    error = f"attributes longer than {MAX_ATTRIBUTE_LENGTH} characters: {', '.join(too_long)}"
                    results.append({"id": event["id"], "status": "rejected", "error": error})
                elif event["id"] in self.events:
                    results.append({"id": event["id"], "status": "duplicate"})
                else:
                    self.events[event["id"]] = event
                    results.append({"id": event["id"], "status": "accepted"})
        return Answer(200, {"results": results})


def _events(body: Any) -> list[dict[str, Any]]:
    """The request's events, or ValueError saying what is wrong with its shape."""
    if not isinstance(body, dict) or set(body) != {"events"} or not isinstance(body["events"], list):
        raise ValueError('the body must be {"events": [...]}')
    events = body["events"]
    if not 1 <= len(events) <= MAX_EVENTS_PER_CALL:
        raise ValueError(f"events: 1 to {MAX_EVENTS_PER_CALL} a call")
    for index, event in enumerate(events):
        if not isinstance(event, dict) or set(event) != {"id", "name", "memberId", "occurredAt", "attributes"}:
            raise ValueError(f"events[{index}]: expected id, name, memberId, occurredAt, attributes")
        if not all(isinstance(event[k], str) and event[k] for k in ("id", "name", "memberId", "occurredAt")):
            raise ValueError(f"events[{index}]: id, name, memberId and occurredAt must be non-empty strings")
        attributes = event["attributes"]
        if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
            raise ValueError(f"events[{index}].attributes: an object of strings")
    return events
