"""The SFMC connector wired to its simulator through the kit's mock transport: real requests, the real
token source, no socket. Time is simulated, so retries, waits and token lifetimes cost nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from connectors.sfmc.client import TokenSource
from connectors.sfmc.config import SfmcConfig, parse_config
from connectors.sfmc.delivery import SfmcConnector
from connectors.sfmc.local import SECRET, known_to
from connectors.sfmc.local.simulator import SfmcSimulator
from connectors.sfmc.manifest import MANIFEST
from dig_connector_kit import testing
from dig_connector_kit.http import Transport
from dig_connector_kit.model import CallbackReport, Deadline, InboundMessage, Outcome
from dig_connector_kit.testing import (
    FakeCallLog,
    FakeContactStore,
    FakeOperationLedger,
    FakeWatermarks,
    InMemoryLimiter,
    SimulatedClock,
    mock_transport,
)

AUTH_BASE = "https://mc-test.auth.marketingcloudapis.com"
REST_BASE = "https://mc-test.rest.marketingcloudapis.com"


def sample_config_document() -> dict[str, Any]:
    return testing.sample_config_document(MANIFEST)


@dataclass
class Harness:
    simulator: SfmcSimulator
    connector: SfmcConnector
    tokens: TokenSource
    clock: SimulatedClock
    config: SfmcConfig
    call_log: FakeCallLog = field(default_factory=FakeCallLog)
    operations: FakeOperationLedger = field(default_factory=FakeOperationLedger)
    watermarks: FakeWatermarks = field(default_factory=FakeWatermarks)
    contacts: FakeContactStore = field(default_factory=FakeContactStore)

    def deliver(self, *messages: InboundMessage) -> dict[str, Outcome]:
        return dict(self.connector.deliver(list(messages), Deadline(600, clock=self.clock)))

    def poll(self) -> CallbackReport:
        self.clock.now += 3600  # every status due
        self.call_log.now = self.clock.now
        return self.connector.poll_results(Deadline(600, clock=self.clock))

    def calls(self, name: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.simulator.requests if name is None or r["call"] == name]


def harness(config: dict[str, Any] | None = None) -> Harness:
    clock = SimulatedClock()
    document = config or sample_config_document()
    simulator = SfmcSimulator(
        client_id=SECRET["clientId"],
        client_secret=SECRET["clientSecret"],
        rest_url=f"{REST_BASE}/rest/",  # as Salesforce answers it: with a trailing slash
        clock=clock,
        **known_to(document),
    )
    http = httpx.Client(transport=mock_transport(simulator))
    parsed = parse_config(document)
    tokens = TokenSource(http, f"{AUTH_BASE}/auth", lambda: SECRET, lambda: parsed.accountId, clock=clock)
    transport = Transport(
        http,
        tokens.authorize,
        InMemoryLimiter(clock=clock, sleep=clock.sleep),
        renew=tokens.renew,
        renew_on=frozenset({401}),
        sleep=clock.sleep,
        monotonic=clock,
        provider="SFMC",
    )
    call_log, operations, watermarks, contacts = (
        FakeCallLog(now=clock.now),
        FakeOperationLedger(),
        FakeWatermarks(),
        FakeContactStore(),
    )
    connector = SfmcConnector(
        lambda: parsed,
        transport,
        tokens.rest_base,
        operations=operations,
        call_log=call_log,
        watermarks=watermarks,
        contacts=contacts,
    )
    return Harness(simulator, connector, tokens, clock, parsed, call_log, operations, watermarks, contacts)
