"""The Tipalti connector's Lambda entry point, made by the kit from its manifest: fed by the event
source mapping on the connector's queue; answers ``batchItemFailures``; reads Tipalti's webhooks."""

from __future__ import annotations

from connectors.tipalti.client import transport_for
from connectors.tipalti.delivery import TipaltiConnector
from connectors.tipalti.manifest import API_BASE_URL, MANIFEST
from connectors.tipalti.payouts import DynamoPayoutBook
from dig_connector_kit.lambda_entry import Kit, connector_handlers


def build(kit: Kit) -> TipaltiConnector:
    return TipaltiConnector(
        kit.config,
        transport_for(kit),
        kit.setting(API_BASE_URL),
        payouts=DynamoPayoutBook(kit.table),
        operations=kit.operations,
        emitter=lambda: kit.inbound,
    )


lambda_handler, sync_handler = connector_handlers(MANIFEST, build)
