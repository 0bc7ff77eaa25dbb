"""ES Loyalty's local double: the endpoint DIG's webhooks reach, verifying each signature with the
local secret (GET /_local/stack shows it as ``esLoyaltyWebhookSecret``). Never shipped in a Lambda."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dig_connector_kit.testing.double import LocalDouble

# A Standard Webhooks secret (whsec_ + base64), for a stack on loopback only.
SECRET = {"secret": "whsec_ZGlnLWxvY2FsLWVzbG95YWx0eS13ZWJob29rLXNlY3JldA=="}
WEBHOOK_PATH = "/webhooks"


def _settings(base_url: str) -> dict[str, str]:
    from connectors.esloyalty.manifest import WEBHOOK_URL

    return {WEBHOOK_URL: f"{base_url}{WEBHOOK_PATH}"}


def _make(config: Mapping[str, Any]) -> Any:
    from connectors.esloyalty.local.simulator import EsLoyaltySimulator

    return EsLoyaltySimulator(secret=SECRET["secret"])


LOCAL_DOUBLE = LocalDouble(
    connector="esloyalty",
    secret=SECRET,
    settings=_settings,
    make=_make,
    stack_details={"esLoyaltyWebhookSecret": SECRET["secret"]},
)
