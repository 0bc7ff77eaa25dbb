"""The Tipalti connector wired to its simulator through the kit's mock transport: real requests, no
socket. Time is simulated, so retries and rate-limit waits cost nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from connectors.tipalti.client import authorize
from connectors.tipalti.config import parse_config
from connectors.tipalti.delivery import TipaltiConnector
from connectors.tipalti.local import SECRET
from connectors.tipalti.local.simulator import TipaltiSimulator
from connectors.tipalti.manifest import MANIFEST
from dig_connector_kit import testing
from dig_connector_kit.http import Transport
from dig_connector_kit.model import Deadline, InboundMessage, Outcome
from dig_connector_kit.testing import InMemoryLimiter, SimulatedClock, mock_transport

SAMPLE_CONFIG = testing.sample_config_path(MANIFEST)
BASE_URL = "https://tipalti.test"


def sample_config_document() -> dict[str, Any]:
    return testing.sample_config_document(MANIFEST)


@dataclass
class Harness:
    simulator: TipaltiSimulator
    connector: TipaltiConnector
    clock: SimulatedClock

    def deliver(self, *messages: InboundMessage) -> dict[str, Outcome]:
        return dict(self.connector.deliver(list(messages), Deadline(600, clock=self.clock)))


def harness(config: dict[str, Any] | None = None) -> Harness:
    clock = SimulatedClock()
    simulator = TipaltiSimulator(api_key=SECRET["apiKey"], clock=clock)
    transport = Transport(
        httpx.Client(transport=mock_transport(simulator)),
        authorize(lambda: SECRET),
        InMemoryLimiter(clock=clock, sleep=clock.sleep),
        sleep=clock.sleep,
        monotonic=clock,
        provider="Tipalti",
    )
    parsed = parse_config(config or sample_config_document())
    return Harness(simulator, TipaltiConnector(lambda: parsed, transport, BASE_URL), clock)
