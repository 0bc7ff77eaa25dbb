"""Every installed connector keeps the kit's contract (dig_connector_kit.contract)."""

from __future__ import annotations

from connectors.optimove.manifest import MANIFEST
from dig_connector_kit.contract import ConnectorContract
from dig_contracts.examples import all_examples
from tests.optimove_harness import harness


def test_the_optimove_connector_keeps_the_connector_contract() -> None:
    def make() -> object:
        h = harness()
        h.contacts.contacts.clear()
        return h.connector

    events = [example for event_type, example in all_examples().items() if event_type in MANIFEST.event_types]
    ConnectorContract(make, events).check()  # type: ignore[arg-type]
