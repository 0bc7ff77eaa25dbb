"""The Marketo connector's Lambda entry points, made by the kit from its manifest."""

from __future__ import annotations

from connectors.marketo.client import TokenSource, read_body
from connectors.marketo.delivery import MarketoConnector
from connectors.marketo.manifest import IDENTITY_BASE_URL, MANIFEST, REST_BASE_URL, SECRET_ID
from dig_connector_kit.lambda_entry import Kit, connector_handlers


def build(kit: Kit) -> MarketoConnector:
    tokens = TokenSource(kit.http, kit.setting(IDENTITY_BASE_URL), lambda: kit.secret(SECRET_ID))
    return MarketoConnector(
        kit.config,
        kit.transport(tokens.authorize, read_body=read_body, renew=tokens.renew),
        kit.setting(REST_BASE_URL),
        kit.operations,
        kit.contacts,
    )


lambda_handler, sync_handler = connector_handlers(MANIFEST, build)
