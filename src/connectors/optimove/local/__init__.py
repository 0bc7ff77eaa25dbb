"""The Optimove connector's local test double, on the kit's shared base: the simulator, with the secret it
accepts and the settings that point the connector at it. Never shipped in a Lambda."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.optimove.local.snowflake import local_secret as snowflake_secret
from connectors.optimove.manifest import SNOWFLAKE_SECRET_ID
from dig_connector_kit.testing.double import LocalDouble

SECRET = {"apiKey": "local-optimove-api-key", "realtimeToken": "local-realtime-token"}


def _settings(base_url: str) -> dict[str, str]:
    from connectors.optimove.manifest import API_BASE_URL, REALTIME_BASE_URL

    return {API_BASE_URL: f"{base_url}/api", REALTIME_BASE_URL: f"{base_url}/realtime"}


def _make(config: Mapping[str, Any]) -> Any:
    from connectors.optimove.config import configured_mails, parse_config
    from connectors.optimove.local.simulator import OptimoveSimulator
    from dig_contracts.events import EventType
    from dig_contracts.examples import example_event

    parsed = parse_config(config)
    templates = {mail.templateId: list(mail.tags) for _, _, mail in configured_mails(parsed)}
    if parsed.batchFeed is not None and parsed.batchFeed.snowflake is not None:
        from connectors.optimove.local import snowflake

        snowflake.start()  # fakesnow stands in for the shared Snowflake account in this process
    return OptimoveSimulator(
        api_key=SECRET["apiKey"],
        realtime_token=SECRET["realtimeToken"],
        templates=templates,
        # The attributes the configuration maps exist in this simulated Optimove.
        known_fields=parsed.realtime_fields(),
        # ES Loyalty's members exist in Optimove (its daily load); the example member among them.
        customers=sorted({example_event(t)["memberId"] for t in EventType}),
        tenant_id=parsed.realtime.tenantId,
        # The daily load reads the files the way the configuration's batch channel agreed them.
        batch_feed=parsed.batchFeed,
    )


# Optimove's bucket for the daily batch files, as the sample configuration's batchFeed names it.
FEED_BUCKET = "optimove-local-feed"
LOCAL_DOUBLE = LocalDouble(
    connector="optimove",
    secret=SECRET,
    settings=_settings,
    make=_make,
    buckets=(FEED_BUCKET,),
    # The feed job's Snowflake connection: a key pair made at start (fakesnow checks none of it).
    job_secrets={SNOWFLAKE_SECRET_ID: snowflake_secret()},
)
