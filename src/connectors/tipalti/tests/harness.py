"""The Tipalti connector wired to its simulator through the kit's mock transport: real requests, the real
token source, no socket. Time is simulated, so retries and waits cost nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from connectors.tipalti.client import TokenSource
from connectors.tipalti.config import TipaltiConfig, parse_config
from connectors.tipalti.delivery import TipaltiConnector
from connectors.tipalti.local import SECRET
from connectors.tipalti.local.simulator import TipaltiSimulator
from connectors.tipalti.manifest import MANIFEST
from connectors.tipalti.payouts import FakePayoutBook
from dig_connector_kit import testing
from dig_connector_kit.http import Transport
from dig_connector_kit.model import Deadline, InboundMessage, Outcome
from dig_connector_kit.testing import (
    EmittedEvents,
    FakeOperationLedger,
    InMemoryLimiter,
    SimulatedClock,
    mock_transport,
)

BASE_URL = "https://tipalti.test/api/v1"
TOKEN_URL = "https://tipalti.test/connect/token"
NOW = 1_795_298_400.0  # 2026-11-21T22:00Z: an hour after the example payout was requested


def sample_config_document() -> dict[str, Any]:
    return testing.sample_config_document(MANIFEST)


@dataclass
class Harness:
    simulator: TipaltiSimulator
    connector: TipaltiConnector
    clock: SimulatedClock
    config: TipaltiConfig
    payouts: FakePayoutBook
    operations: FakeOperationLedger
    emitted: EmittedEvents
    wall: list[float]

    def deliver(self, *messages: InboundMessage) -> dict[str, Outcome]:
        return dict(self.connector.deliver(list(messages), Deadline(600, clock=self.clock)))

    def calls(self, name: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.simulator.requests if name is None or r["call"] == name]

    def statuses(self, payout_id: str) -> list[str]:
        return [e.data.status.value for e in self.emitted.events if e.data.payoutId == payout_id]  # type: ignore[attr-defined]


def harness(config: dict[str, Any] | None = None, *, payable: bool = True) -> Harness:
    clock = SimulatedClock()
    wall = [NOW]
    simulator = TipaltiSimulator(
        client_id=SECRET["clientId"],
        client_secret=SECRET["clientSecret"],
        new_payees_payable=payable,
        clock=clock,
        wall_clock=lambda: wall[0],
    )
    http = httpx.Client(transport=mock_transport(simulator))
    tokens = TokenSource(http, TOKEN_URL, lambda: SECRET, clock=clock)
    transport = Transport(
        http,
        tokens.authorize,
        InMemoryLimiter(clock=clock, sleep=clock.sleep),
        renew=tokens.renew,
        renew_on=frozenset({401}),
        sleep=clock.sleep,
        monotonic=clock,
        provider="Tipalti",
    )
    parsed = parse_config(config or sample_config_document())
    payouts, operations, emitted = FakePayoutBook(), FakeOperationLedger(), EmittedEvents()
    connector = TipaltiConnector(
        lambda: parsed,
        transport,
        BASE_URL,
        payouts=payouts,
        operations=operations,
        emitter=lambda: emitted,
        clock=lambda: wall[0],
    )
    return Harness(simulator, connector, clock, parsed, payouts, operations, emitted, wall)
