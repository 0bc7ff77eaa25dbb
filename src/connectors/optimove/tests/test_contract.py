"""The Optimove connector keeps the kit's contract (dig_connector_kit.testing.ConnectorContract)."""

from __future__ import annotations

from connectors.optimove.manifest import MANIFEST
from connectors.optimove.tests.harness import harness
from dig_connector_kit.testing import ConnectorContract
from dig_contracts.examples import all_examples


def test_the_optimove_connector_keeps_the_connector_contract() -> None:
    def make() -> object:
        h = harness()
        h.contacts.contacts.clear()
        return h.connector

    events = [example for event_type, example in all_examples().items() if event_type in MANIFEST.event_types]
    ConnectorContract(make, events, MANIFEST).check()  # type: ignore[arg-type]
