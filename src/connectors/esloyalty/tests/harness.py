"""The ES Loyalty connector wired to ES Loyalty's double through the kit's mock transport: real
requests, signed with the real library, no socket. Retries' waits are simulated."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from connectors.esloyalty.client import sign
from connectors.esloyalty.delivery import EsLoyaltyConnector
from connectors.esloyalty.local import SECRET, WEBHOOK_PATH
from connectors.esloyalty.local.simulator import EsLoyaltySimulator
from dig_connector_kit.http import Transport
from dig_connector_kit.model import Deadline, InboundMessage, Outcome
from dig_connector_kit.testing import InMemoryLimiter, SimulatedClock, mock_transport

URL = f"https://esloyalty.test{WEBHOOK_PATH}"


@dataclass
class Harness:
    simulator: EsLoyaltySimulator
    connector: EsLoyaltyConnector
    clock: SimulatedClock

    def deliver(self, *messages: InboundMessage) -> dict[str, Outcome]:
        return dict(self.connector.deliver(list(messages), Deadline(600, clock=self.clock)))


def harness(secret: str = SECRET["secret"]) -> Harness:
    clock = SimulatedClock()
    simulator = EsLoyaltySimulator(secret=SECRET["secret"], clock=clock)
    transport = Transport(
        httpx.Client(transport=mock_transport(simulator)),
        sign(lambda: {"secret": secret}),  # signed at the wall clock's time: ES Loyalty checks it
        InMemoryLimiter(clock=clock, sleep=clock.sleep),
        sleep=clock.sleep,
        monotonic=clock,
        provider="ES Loyalty",
    )
    return Harness(simulator, EsLoyaltyConnector(transport, URL), clock)
