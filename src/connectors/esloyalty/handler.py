"""The ES Loyalty connector's Lambda entry point, made by the kit from its manifest."""

from __future__ import annotations

from connectors.esloyalty.client import sign
from connectors.esloyalty.delivery import EsLoyaltyConnector
from connectors.esloyalty.manifest import MANIFEST, WEBHOOK_SECRET_ID, WEBHOOK_URL
from dig_connector_kit.lambda_entry import Kit, connector_handlers


def build(kit: Kit) -> EsLoyaltyConnector:
    return EsLoyaltyConnector(kit.transport(sign(lambda: kit.secret(WEBHOOK_SECRET_ID))), kit.setting(WEBHOOK_URL))


lambda_handler, sync_handler = connector_handlers(MANIFEST, build)
