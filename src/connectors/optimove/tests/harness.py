"""The Optimove connector wired to the simulator through httpx.MockTransport: real requests, no
socket. Time is simulated, so retries and rate-limit waits cost nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from connectors.optimove.client import Credentials, authorize, read_body
from connectors.optimove.config import OptimoveConfig, parse_config
from connectors.optimove.delivery import Endpoints, OptimoveConnector
from connectors.optimove.local.simulator import OptimoveSimulator
from connectors.optimove.manifest import MANIFEST
from dig_connector_kit import testing
from dig_connector_kit.http import Transport
from dig_connector_kit.model import Deadline, InboundMessage
from dig_connector_kit.testing import (
    FakeCallLog,
    FakeContactStore,
    FakeOperationLedger,
    FakeWatermarks,
    InMemoryLimiter,
    SimulatedClock,
    inbound,
    mock_transport,
)

SAMPLE_CONFIG = testing.sample_config_path(MANIFEST)
API_BASE = "https://optimove.test/api"
REALTIME_BASE = "https://optimove.test/realtime"
API_KEY = "test-api-key"
TOKEN = "fake-rt-token"  # a fake, as API_KEY


def sample_config_document() -> dict[str, Any]:
    return testing.sample_config_document(MANIFEST)


def simulator_transport(simulator: OptimoveSimulator, clock: SimulatedClock | None = None) -> httpx.MockTransport:
    def tick() -> None:
        if clock is not None:
            clock.now += 0.01  # each call takes a little time

    return mock_transport(simulator, on_call=tick)


@dataclass
class Harness:
    simulator: OptimoveSimulator
    connector: OptimoveConnector
    transport: Transport
    watermarks: FakeWatermarks
    clock: SimulatedClock
    config: OptimoveConfig
    requests: list[dict[str, Any]] = field(default_factory=list)
    callbacks: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    call_log: FakeCallLog = field(default_factory=FakeCallLog)
    operations: FakeOperationLedger = field(default_factory=FakeOperationLedger)
    contacts: FakeContactStore = field(default_factory=FakeContactStore)

    def deliver(self, *messages: InboundMessage) -> dict[str, Any]:
        return dict(self.connector.deliver(list(messages), Deadline(600, clock=self.clock)))

    def calls(self, name: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.simulator.requests if name is None or r["call"] == name]


CALLBACK_BASE = "https://dig.test/v1/callbacks"
CALLBACK_KEY = "test-callback-key"
# The customers the simulated Optimove already has (its daily load): the ids the tests use, except
# those that stand for members Optimove does not know yet ("M-new...").
EXISTING_CUSTOMERS = frozenset({f"M-{i}" for i in range(5000)} | {"M-100001", "M-good", "M-bad"})


def harness(
    config: dict[str, Any] | None = None,
    *,
    templates: dict[int, list[str]] | None = None,
    callbacks: bool = False,
    known_fields: set[str] | None = None,
    customers: frozenset[str] = EXISTING_CUSTOMERS,
    coalescing_window_seconds: float | None = None,
) -> Harness:
    """``callbacks``: UpdateCustomerAttributes carries a signed CallbackURL, and the results the
    simulator posts to it are kept in ``Harness.callbacks`` instead of being sent anywhere."""
    clock = SimulatedClock()
    posted: list[tuple[str, dict[str, Any]]] = []
    simulator = OptimoveSimulator(
        api_key=API_KEY,
        realtime_token=TOKEN,
        clock=clock,
        templates=templates,
        known_fields=known_fields,
        customers=customers,
        callback_sender=lambda url, results: posted.append((url, results)),
    )
    parsed = parse_config(config or sample_config_document())
    credentials = Credentials(api_key=API_KEY, realtime_token=TOKEN)
    transport = Transport(
        httpx.Client(transport=simulator_transport(simulator, clock)),
        authorize(lambda: credentials),
        InMemoryLimiter(clock=clock, sleep=clock.sleep),
        read_body=read_body,
        sleep=clock.sleep,
        monotonic=clock,
        provider="Optimove",
    )
    watermarks = FakeWatermarks()
    call_log = FakeCallLog()
    operations = FakeOperationLedger()
    contacts = FakeContactStore()
    connector = OptimoveConnector(
        lambda: parsed,
        transport,
        watermarks,
        Endpoints(API_BASE, REALTIME_BASE, CALLBACK_BASE if callbacks else None),
        lambda: credentials,
        operations=operations,
        call_log=call_log,
        callback_key=lambda: CALLBACK_KEY,
        contacts=contacts,
        coalescing_window_seconds=coalescing_window_seconds,
    )
    return Harness(
        simulator,
        connector,
        transport,
        watermarks,
        clock,
        parsed,
        callbacks=posted,
        call_log=call_log,
        operations=operations,
        contacts=contacts,
    )


__all__ = ["SimulatedClock", "inbound"]  # imported from here by the tests beside it
