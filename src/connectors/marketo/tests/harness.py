"""The Marketo connector wired to its simulator through httpx.MockTransport: real requests, no socket.
Time is simulated, so retries, rate-limit waits and token expiry cost nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectors.marketo.client import TokenSource, read_body
from connectors.marketo.config import MarketoConfig, parse_config
from connectors.marketo.delivery import MarketoConnector
from connectors.marketo.local import SECRET
from connectors.marketo.local import _make as make_simulator
from connectors.marketo.local.simulator import MarketoSimulator
from connectors.marketo.manifest import MANIFEST
from dig_connector_kit import testing
from dig_connector_kit.http import Transport
from dig_connector_kit.model import Deadline, InboundMessage
from dig_connector_kit.testing import (
    FakeContactStore,
    FakeOperationLedger,
    InMemoryGate,
    InMemoryLimiter,
    SimulatedClock,
    mock_transport,
)

SAMPLE_CONFIG = testing.sample_config_path(MANIFEST)
BASE = "https://marketo.test"


def sample_config_document() -> dict[str, Any]:
    return testing.sample_config_document(MANIFEST)


@dataclass
class Harness:
    simulator: MarketoSimulator
    connector: MarketoConnector
    tokens: TokenSource
    clock: SimulatedClock
    config: MarketoConfig
    operations: FakeOperationLedger
    contacts: FakeContactStore
    now: list[datetime]
    gate: InMemoryGate

    def deliver(self, *messages: InboundMessage) -> dict[str, Any]:
        return dict(self.connector.deliver(list(messages), Deadline(600, clock=self.clock)))

    def calls(self, name: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.simulator.requests if name is None or r["call"] == name]


def harness(config: dict[str, Any] | None = None) -> Harness:
    clock = SimulatedClock()
    document = config or sample_config_document()
    simulator: MarketoSimulator = make_simulator(document)
    simulator._clock = clock  # the simulator's token expiry and rate window follow the simulated time

    def tick() -> None:
        clock.now += 0.01

    http = httpx.Client(transport=mock_transport(simulator, on_call=tick, sleep=clock.sleep))
    limiter = InMemoryLimiter(clock=clock, sleep=clock.sleep)
    gate = InMemoryGate(limiter)  # a gated call takes its rate slot through the gate: the one window
    tokens = TokenSource(http, f"{BASE}/identity", lambda: SECRET, clock=clock)
    transport = Transport(
        http,
        tokens.authorize,
        limiter,
        read_body=read_body,
        renew=tokens.renew,
        sleep=clock.sleep,
        monotonic=clock,
        provider="Marketo",
        gate=gate,
    )
    operations, contacts = FakeOperationLedger(), FakeContactStore()
    now = [datetime(2026, 11, 21, 18, 0, tzinfo=UTC)]
    parsed = parse_config(document)
    connector = MarketoConnector(lambda: parsed, transport, f"{BASE}/rest", operations, contacts, clock=lambda: now[0])
    return Harness(simulator, connector, tokens, clock, parsed, operations, contacts, now, gate)


def later(h: Harness, **delta: float) -> None:
    h.now[0] += timedelta(**delta)
