"""The Tipalti connector's local double, on the kit's shared base: the simulator, the API client it
accepts and the settings that point the connector at it. Never shipped in a Lambda."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dig_connector_kit.testing.double import LocalDouble

SECRET = {"clientId": "local-tipalti-client-id", "clientSecret": "local-tipalti-client-secret"}


def _settings(base_url: str) -> dict[str, str]:
    from connectors.tipalti.manifest import API_BASE_URL, TOKEN_URL

    return {API_BASE_URL: f"{base_url}/api/v1", TOKEN_URL: f"{base_url}/connect/token"}


def _make(config: Mapping[str, Any]) -> Any:
    from connectors.tipalti.local.simulator import TipaltiSimulator

    return TipaltiSimulator(client_id=SECRET["clientId"], client_secret=SECRET["clientSecret"])


LOCAL_DOUBLE = LocalDouble(connector="tipalti", secret=SECRET, settings=_settings, make=_make)
