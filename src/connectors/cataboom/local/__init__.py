"""The CataBoom connector's local double, on the kit's shared base: the simulator, the credentials it
accepts (the connector's secret, locally) and the setting that points the connector at it. Never
shipped in a Lambda."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dig_connector_kit.testing.double import LocalDouble

SECRET: dict[str, Any] = {
    "memberRefKey": "local-cataboom-member-reference-key",
    "launchKey": "local-cataboom-launch-token-signing-key-0123456789",
    "campaigns": {
        slug: {
            "username": f"local-{slug}-api-user",
            "password": f"local-{slug}-api-password",
            "writebackToken": f"local-{slug}-writeback-token",
        }
        for slug in ("holiday-spin", "scratch-and-win")
    },
}


def _settings(base_url: str) -> dict[str, str]:
    from connectors.cataboom.manifest import PLAY_BASE_URL

    return {PLAY_BASE_URL: base_url}


def _make(config: Mapping[str, Any]) -> Any:
    from connectors.cataboom.local.simulator import CataBoomSimulator

    return CataBoomSimulator(SECRET["campaigns"])


LOCAL_DOUBLE = LocalDouble(connector="cataboom", secret=SECRET, settings=_settings, make=_make)
