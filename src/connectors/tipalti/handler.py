"""The Tipalti connector's Lambda entry point, made by the kit from its manifest: fed by the event
source mapping on the connector's queue; answers ``batchItemFailures``."""

from __future__ import annotations

from connectors.tipalti.client import authorize
from connectors.tipalti.delivery import TipaltiConnector
from connectors.tipalti.manifest import API_BASE_URL, MANIFEST, SECRET_ID
from dig_connector_kit.lambda_entry import Kit, connector_handlers


def build(kit: Kit) -> TipaltiConnector:
    return TipaltiConnector(
        kit.config, kit.transport(authorize(lambda: kit.secret(SECRET_ID))), kit.setting(API_BASE_URL)
    )


lambda_handler, sync_handler = connector_handlers(MANIFEST, build)
