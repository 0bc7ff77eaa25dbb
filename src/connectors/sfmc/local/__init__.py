"""The SFMC connector's local double, on the kit's shared base: the simulator, the package credentials
it accepts and the setting that points the connector at it. Never shipped in a Lambda."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dig_connector_kit.testing.double import LocalDouble

SECRET = {"clientId": "local-sfmc-client-id", "clientSecret": "local-sfmc-client-secret"}


def _settings(base_url: str) -> dict[str, str]:
    from connectors.sfmc.manifest import AUTH_BASE_URL

    return {AUTH_BASE_URL: f"{base_url}/auth"}


def _make(config: Mapping[str, Any]) -> Any:
    from connectors.sfmc.local.simulator import SfmcSimulator

    return SfmcSimulator(client_id=SECRET["clientId"], client_secret=SECRET["clientSecret"], **known_to(config))


def known_to(config: Mapping[str, Any]) -> dict[str, Any]:
    """What the tenant has made in SFMC for a configuration: its send definitions, journey entry events
    and data extensions (with their primary keys)."""
    events = config.get("events", {}).values()
    return {
        "definitions": {m["email"]["definitionKey"] for m in events if m.get("email")},
        "sms_definitions": {m["sms"]["definitionKey"] for m in events if m.get("sms")},
        "journeys": {m["journey"]["eventDefinitionKey"] for m in events if m.get("journey")},
        "data_extensions": {d["key"]: d["primaryKey"] for d in config.get("dataExtensions", {}).values()},
    }


LOCAL_DOUBLE = LocalDouble(connector="sfmc", secret=SECRET, settings=_settings, make=_make)
