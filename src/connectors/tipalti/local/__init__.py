"""The Tipalti connector's local test double, on the kit's shared base: the simulator, the secret it
accepts and the settings that point the connector at it. Never shipped in a Lambda."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dig_connector_kit.testing.double import LocalDouble

SECRET = {"apiKey": "local-tipalti-api-key"}


def _settings(base_url: str) -> dict[str, str]:
    from connectors.tipalti.manifest import API_BASE_URL

    return {API_BASE_URL: base_url}


def _make(config: Mapping[str, Any]) -> Any:
    from connectors.tipalti.local.simulator import TipaltiSimulator

    return TipaltiSimulator(api_key=SECRET["apiKey"])


LOCAL_DOUBLE = LocalDouble(connector="tipalti", secret=SECRET, settings=_settings, make=_make)
