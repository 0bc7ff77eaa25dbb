"""The Optimove connector's Lambda entry points, made by the kit from its manifest.

``lambda_handler``: fed by the event source mapping on the connector's queue (batches of up to
1,000 messages); answers ``batchItemFailures``. ``sync_handler``: the synchronous flow.
"""

from __future__ import annotations

from connectors.optimove.client import Credentials, authorize, read_body
from connectors.optimove.delivery import Endpoints, OptimoveConnector
from connectors.optimove.manifest import API_BASE_URL, MANIFEST, REALTIME_BASE_URL, SECRET_ID
from dig_connector_kit.lambda_entry import Kit, connector_handlers
from dig_contracts.files import FileReadyDetail


def build(kit: Kit) -> OptimoveConnector:
    def credentials() -> Credentials:
        secret = kit.secret(SECRET_ID)
        return Credentials(api_key=secret["apiKey"], realtime_token=secret.get("realtimeToken"))

    def record_extract(detail: FileReadyDetail) -> object:
        from connectors.optimove.feed.service import record_arrival

        return record_arrival(kit.config().batchFeed, kit.feeds, detail)

    return OptimoveConnector(
        kit.config,
        kit.transport(authorize(credentials), read_body=read_body),
        kit.watermarks,
        Endpoints(
            kit.setting(API_BASE_URL),
            kit.setting(REALTIME_BASE_URL),
            kit.callback_base,
            kit.settings.callback_validity_seconds,
        ),
        credentials,
        operations=kit.operations,
        call_log=kit.call_log,
        callback_key=kit.callback_key,
        contacts=kit.contacts,
        record_extract=record_extract,
        coalescing_window_seconds=kit.settings.coalescing_window_seconds,
    )


lambda_handler, sync_handler = connector_handlers(MANIFEST, build)
