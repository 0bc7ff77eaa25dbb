"""How the core wires the Tipalti connector (see dig_contracts.manifest): its rule, queue, function,
settings, secrets and webhook come from here; nothing in the core names it."""

from dig_contracts.events import EventType
from dig_contracts.inbound import InboundEventType
from dig_contracts.manifest import ConnectorManifest, ScheduledJob, SecretSetting, Setting, WebhookSource

API_BASE_URL = "TIPALTI_API_BASE_URL"
TOKEN_URL = "TIPALTI_TOKEN_URL"  # noqa: S105 - the variable holding the token endpoint
SECRET_ID = "TIPALTI_SECRET_ID"  # noqa: S105 - the variable holding the secret's name
SIGNATURE_HEADER = "tipalti-signature"
PAYMENTS_WEBHOOK = WebhookSource(
    name="payments",
    description="Tipalti's webhooks: a payment submitted, completed, deferred, cancelled or in error",
    # tipalti-signature: t=<unix>,v=<hex HMAC-SHA256 of "<t>-<raw body>"> (a production client's check).
    verification="hmac",
    header=SIGNATURE_HEADER,
    layout="t=,v=",
    separator="-",
    tolerance_seconds=300,
    max_body_bytes=64 * 1024,
    secret=SecretSetting(
        env="TIPALTI_WEBHOOK_SECRET_ID",
        context_key="tipaltiWebhookSecretName",
        default_name="dig/tipalti/webhook",
        description='Secrets Manager secret: {"secret": "..."}, the webhook key set in Tipalti Hub',
    ),
)

RECONCILE_JOB = ScheduledJob(
    name="reconcile",
    handler="connectors.tipalti.reconcile.lambda_handler",
    description="Each payout submitted and not final looked up at Tipalti; a status no webhook brought to ES Loyalty",
    every_minutes=60,
    memory_mb=512,
    timeout_seconds=300,
    emits=True,
    # A failed lookup is noted and read again the next hour; the function's Errors alarm watches the rest.
    reports_lateness=False,
)

MANIFEST = ConnectorManifest(
    name="tipalti",
    description="Tipalti: reward payouts (cash, prepaid card, direct deposit), paid exactly once",
    event_types=(EventType.PAYOUT_REQUESTED,),
    handler="connectors.tipalti.handler.lambda_handler",
    packages=("connectors.tipalti",),
    # Payouts are few and each is money: small batches, and one invocation at a time.
    batch_size=50,
    # No immediate lane: a payout is a Tipalti payment batch (one call for many), and no member waits
    # seconds for money that arrives in days; the 2 s window keeps batches few.
    max_batching_window_seconds=2,
    max_concurrency=2,
    # A payout survives a long Tipalti outage: each receive looks its payment up before paying.
    max_receive_count=10,
    timeout_seconds=120,
    memory_mb=512,
    provider_calls_per_minute=1200,  # a connector README says 1,500 (UNVERIFIED with Tipalti)
    emits=(InboundEventType.PAYOUT_STATUS_CHANGED,),
    webhooks=(PAYMENTS_WEBHOOK,),
    scheduled=(RECONCILE_JOB,),
    config_parser="connectors.tipalti.config.parse_config",
    sample_config="connectors.tipalti:sample_config.json",
    settings=(
        Setting(
            env=API_BASE_URL,
            context_key="tipaltiApiBaseUrl",
            default="https://api-p.tipalti.com/api/v1",
            description="Tipalti's REST base: https://api-p.tipalti.com/api/v1 (sandbox: https://api-sb.tipalti.com/api/v1)",
        ),
        Setting(
            env=TOKEN_URL,
            context_key="tipaltiTokenUrl",
            default="https://sso.tipalti.com/connect/token",
            description="Tipalti's token endpoint (sandbox: https://sso.sandbox.tipalti.com/connect/token)",
        ),
    ),
    secrets=(
        SecretSetting(
            env=SECRET_ID,
            context_key="tipaltiSecretName",
            default_name="dig/tipalti",
            description='Secrets Manager secret: {"clientId": "...", "clientSecret": "..."} of the API client',
        ),
    ),
)
