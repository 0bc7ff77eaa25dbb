"""The SFMC connector's Lambda entry point, made by the kit from its manifest: fed by the event source
mapping on the connector's queue; answers ``batchItemFailures``; asks for late results on the schedule."""

from __future__ import annotations

from connectors.sfmc.client import TokenSource
from connectors.sfmc.delivery import SfmcConnector
from connectors.sfmc.manifest import AUTH_BASE_URL, MANIFEST, SECRET_ID
from dig_connector_kit.lambda_entry import Kit, connector_handlers


def build(kit: Kit) -> SfmcConnector:
    tokens = TokenSource(
        kit.http, kit.setting(AUTH_BASE_URL), lambda: kit.secret(SECRET_ID), lambda: kit.config().accountId
    )
    return SfmcConnector(
        kit.config,
        # SFMC answers 401 to an expired token: renewed, and the call sent again once.
        kit.transport(tokens.authorize, renew=tokens.renew, renew_on=frozenset({401})),
        tokens.rest_base,
        operations=kit.operations,
        call_log=kit.call_log,
        watermarks=kit.watermarks,
        contacts=kit.contacts,
    )


lambda_handler, sync_handler = connector_handlers(MANIFEST, build)
