"""The CataBoom connector wired to its simulator through the kit's mock transport: real requests, no
socket. Time is simulated, so retries, waits and a launch token's expiry cost nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors.cataboom.config import CataBoomConfig, parse_config
from connectors.cataboom.delivery import CataBoomConnector
from connectors.cataboom.local import SECRET
from connectors.cataboom.local.simulator import CataBoomSimulator
from connectors.cataboom.manifest import MANIFEST
from connectors.cataboom.plays import FakePlayBook
from dig_connector_kit import testing
from dig_connector_kit.http import Transport
from dig_connector_kit.model import Deadline, InboundMessage, Outcome, WebhookReply
from dig_connector_kit.testing import EmittedEvents, InMemoryCounters, InMemoryLimiter, SimulatedClock, mock_transport
from dig_contracts.inbound import WebhookCall

BASE_URL = "https://cataboom.test"
NOW = 1_796_119_200.0  # 2026-12-01T10:00Z: the example award's moment


def sample_config_document() -> dict[str, Any]:
    return testing.sample_config_document(MANIFEST)


@dataclass
class Harness:
    simulator: CataBoomSimulator
    connector: CataBoomConnector
    clock: SimulatedClock
    config: CataBoomConfig
    plays: FakePlayBook
    counters: InMemoryCounters
    emitted: EmittedEvents
    wall: list[float]
    # Run after each call CataBoom answers, with the number of calls so far (a fault that starts midway).
    after_call: list[Any] = field(default_factory=list)

    def deliver(self, *messages: InboundMessage) -> dict[str, Outcome]:
        return dict(self.connector.deliver(list(messages), Deadline(600, clock=self.clock)))

    def calls(self, name: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.simulator.requests if name is None or r["call"] == name]

    def post(self, source: str, body: bytes | str, receipt: str = "req-1", **query: str) -> WebhookReply:
        call = WebhookCall(
            connector="cataboom",
            source=source,
            receiptId=receipt,
            receivedAt=datetime.fromtimestamp(self.wall[0], UTC),
            body=body.decode() if isinstance(body, bytes) else body,
            contentType="application/json",
            query=query,
        )
        return self.connector.answer_webhook(call)

    def counts(self) -> dict[str, int]:
        return self.counters.read("cataboom", ["2026-12-01"]).get("2026-12-01", {})


def harness(config: dict[str, Any] | None = None, secret: dict[str, Any] | None = None) -> Harness:
    clock = SimulatedClock()
    wall = [NOW]
    simulator = CataBoomSimulator(SECRET["campaigns"])
    hooks: list[Any] = []

    def on_call() -> None:
        for hook in hooks:
            hook(len(simulator.requests))

    http = httpx.Client(transport=mock_transport(simulator, on_call=on_call))
    transport = Transport(
        http,
        lambda request: {},
        InMemoryLimiter(clock=clock, sleep=clock.sleep),
        sleep=clock.sleep,
        monotonic=clock,
        provider="CataBoom",
    )
    parsed = parse_config(config or sample_config_document())
    plays, counters, emitted = FakePlayBook(clock=lambda: wall[0]), InMemoryCounters(), EmittedEvents()
    connector = CataBoomConnector(
        lambda: parsed,
        lambda: secret or SECRET,
        transport,
        BASE_URL,
        plays=plays,
        counters=counters,
        emitter=lambda: emitted,
        clock=lambda: wall[0],
    )
    return Harness(simulator, connector, clock, parsed, plays, counters, emitted, wall, hooks)
