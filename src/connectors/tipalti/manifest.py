"""How the core wires the Tipalti connector (see dig_contracts.manifest): its rule, queue,
function, settings and secret come from here; nothing in the core names it."""

from dig_contracts.events import EventType
from dig_contracts.manifest import ConnectorManifest, SecretSetting, Setting

API_BASE_URL = "TIPALTI_API_BASE_URL"
SECRET_ID = "TIPALTI_SECRET_ID"  # noqa: S105 - the variable holding the secret's name

MANIFEST = ConnectorManifest(
    name="tipalti",
    description="Tipalti: member registrations and tier changes as provider events",
    # The event types its configuration can map (config.EVENT_SOURCES).
    event_types=(EventType.MEMBER_REGISTRATION, EventType.MEMBER_TIER),
    handler="connectors.tipalti.handler.lambda_handler",
    packages=("connectors.tipalti",),
    # One SQS batch becomes a few calls of up to client.MAX_EVENTS_PER_CALL events.
    batch_size=100,
    max_batching_window_seconds=5,
    max_concurrency=2,
    max_receive_count=5,
    timeout_seconds=60,
    memory_mb=512,
    provider_calls_per_minute=600,  # PLACEHOLDER: the provider's documented limit (config.limits holds the pace)
    config_parser="connectors.tipalti.config.parse_config",
    sample_config="connectors.tipalti:sample_config.json",
    settings=(
        Setting(
            env=API_BASE_URL,
            context_key="tipaltiApiBaseUrl",
            default="https://api.tipalti.example",
            description="Tipalti's API base URL for the tenant",
        ),
    ),
    secrets=(
        SecretSetting(
            env=SECRET_ID,
            context_key="tipaltiSecretName",
            default_name="dig/tipalti",
            description='Secrets Manager secret: {"apiKey": "..."}',
        ),
    ),
)
