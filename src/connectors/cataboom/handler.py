"""The CataBoom connector's Lambda entry points, made by the kit from its manifest: the SQS batch handler
(play links) and the synchronous entry point, which answers CataBoom's writeback and the launch check."""

from __future__ import annotations

from connectors.cataboom.delivery import CataBoomConnector
from connectors.cataboom.manifest import MANIFEST, PLAY_BASE_URL, SECRET_ID
from connectors.cataboom.plays import DynamoPlayBook
from dig_connector_kit.lambda_entry import Kit, connector_handlers


def build(kit: Kit) -> CataBoomConnector:
    return CataBoomConnector(
        kit.config,
        lambda: kit.secret(SECRET_ID),
        kit.transport(lambda request: {}),  # the credentials are the request's own (per campaign, in its query)
        kit.setting(PLAY_BASE_URL),
        plays=DynamoPlayBook(kit.table),
        counters=kit.counters,
        emitter=lambda: kit.inbound,
    )


lambda_handler, sync_handler = connector_handlers(MANIFEST, build)
