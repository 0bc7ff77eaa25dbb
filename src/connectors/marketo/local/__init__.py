"""The Marketo connector's local test double, on the kit's shared base. Never shipped in a Lambda."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dig_connector_kit.testing.double import LocalDouble

SECRET = {"clientId": "local-marketo-client", "clientSecret": "local-marketo-secret"}


def _settings(base_url: str) -> dict[str, str]:
    from connectors.marketo.manifest import IDENTITY_BASE_URL, REST_BASE_URL

    return {REST_BASE_URL: f"{base_url}/rest", IDENTITY_BASE_URL: f"{base_url}/identity"}


def _make(config: Mapping[str, Any]) -> Any:
    from connectors.marketo.config import parse_config
    from connectors.marketo.local.simulator import MarketoSimulator

    parsed = parse_config(config)
    mappings = list(parsed.events.values())
    return MarketoSimulator(
        client_id=SECRET["clientId"],
        client_secret=SECRET["clientSecret"],
        # The instance has the fields, activity types and campaigns the configuration names.
        known_fields=set(parsed.leadFields) | {parsed.lookupField},
        activity_types={m.activity.activityTypeId for m in mappings if m.activity is not None},
        campaigns={m.campaign.campaignId for m in mappings if m.campaign is not None},
    )


LOCAL_DOUBLE = LocalDouble(connector="marketo", secret=SECRET, settings=_settings, make=_make)
