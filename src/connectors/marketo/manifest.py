"""How the core wires the Marketo connector (see dig_contracts.manifest)."""

from dig_contracts.events import EventType
from dig_contracts.inbound import InboundEventType
from dig_contracts.manifest import ConnectorManifest, SecretSetting, Setting, WebhookSource

# DIG's share of the instance's 50,000 calls a day (shared by every integration), by default: the
# configuration's limits.dailyCalls.
DAILY_CALLS = 25_000
# Every REST call's rate slot, place in flight and count of the day (dig_connector_kit.ratelimit).
LIMITER_KEY = "marketo-rest"
REST_BASE_URL = "MARKETO_REST_BASE_URL"
IDENTITY_BASE_URL = "MARKETO_IDENTITY_BASE_URL"
SECRET_ID = "MARKETO_SECRET_ID"  # noqa: S105 - the variable holding the secret's name
WEBHOOK_TOKEN_HEADER = "X-DIG-Webhook-Token"  # noqa: S105 - a header's name
UNSUBSCRIBES_WEBHOOK = WebhookSource(
    name="unsubscribes",
    description="A trigger campaign's webhook (Unsubscribes from Email): the lead's email consent changed",
    # Marketo signs nothing: a secret custom header, compared in constant time (../shared/reference/return-path.md).
    verification="token",
    header=WEBHOOK_TOKEN_HEADER,
    max_body_bytes=16 * 1024,
    secret=SecretSetting(
        env="MARKETO_WEBHOOK_SECRET_ID",
        context_key="marketoWebhookSecretName",
        default_name="dig/marketo/webhook",
        description='Secrets Manager secret: {"secret": "..."}, the value of the webhook\'s custom header',
    ),
)

MANIFEST = ConnectorManifest(
    name="marketo",
    description="Adobe Marketo Engage: leads, custom activities, triggered campaigns",
    event_types=(EventType.MEMBER_REGISTRATION, EventType.BADGE_AWARD, EventType.REDEMPTION),
    handler="connectors.marketo.handler.lambda_handler",
    sync_handler="connectors.marketo.handler.sync_handler",
    packages=("connectors.marketo",),
    # Leads and activities go 300 to a call: one batch is a few calls.
    batch_size=300,
    max_batching_window_seconds=5,
    # A registration's welcome campaign and a redemption's campaign go without the window; badges are
    # custom activities, 300 to a call: they coalesce.
    immediate_event_types=(EventType.MEMBER_REGISTRATION, EventType.REDEMPTION),
    # Marketo allows 10 concurrent calls per instance, shared by every integration: two invocations,
    # each making one call at a time, stay far below it.
    max_concurrency=2,
    max_receive_count=5,
    # Sync Leads and Add Custom Activity may take Marketo 90 s each (client.py): a batch's calls fit.
    timeout_seconds=300,
    memory_mb=512,
    provider_calls_per_minute=150,  # 50 per 20 s: half of the instance's 100, as Adobe advises
    provider_calls_per_day=DAILY_CALLS,
    daily_quota_key=LIMITER_KEY,
    emits=(InboundEventType.MEMBER_CONSENT_CHANGED,),
    webhooks=(UNSUBSCRIBES_WEBHOOK,),
    config_parser="connectors.marketo.config.parse_config",
    sample_config="connectors.marketo:sample_config.json",
    settings=(
        Setting(
            env=REST_BASE_URL,
            context_key="marketoRestBaseUrl",
            default="https://000-AAA-000.mktorest.com/rest",
            description="The instance's REST base (Admin > Web Services): https://<munchkin-id>.mktorest.com/rest",
        ),
        Setting(
            env=IDENTITY_BASE_URL,
            context_key="marketoIdentityBaseUrl",
            default="https://000-AAA-000.mktorest.com/identity",
            description="The instance's identity base: https://<munchkin-id>.mktorest.com/identity",
        ),
    ),
    secrets=(
        SecretSetting(
            env=SECRET_ID,
            context_key="marketoSecretName",
            default_name="dig/marketo",
            description='Secrets Manager secret: {"clientId": "...", "clientSecret": "..."}',
        ),
    ),
)
