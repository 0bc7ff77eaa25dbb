"""How the core wires the Salesforce Marketing Cloud connector (see dig_contracts.manifest): its rule,
queue, function, settings and secret come from here; nothing in the core names it."""

from dig_contracts.events import EventType
from dig_contracts.inbound import InboundEventType
from dig_contracts.manifest import MAX_WEBHOOK_BODY_BYTES, ConnectorManifest, SecretSetting, Setting, WebhookSource

AUTH_BASE_URL = "SFMC_AUTH_BASE_URL"
SECRET_ID = "SFMC_SECRET_ID"  # noqa: S105 - the variable holding the secret's name
ENS_SIGNATURE_HEADER = "x-sfmc-ens-signature"
ENS_WEBHOOK = WebhookSource(
    name="ens",
    description="Event Notification Service: EngagementEvents.EmailUnsubscribe, a member's email consent withdrawn",
    # Base64 HMAC-SHA256 of the whole body with the callback's signature key (Salesforce: Notification
    # Signing); the one unsigned post is the callback's verification, completed by the connector.
    verification="hmac",
    header=ENS_SIGNATURE_HEADER,
    encoding="base64",
    handshake_keys=("callbackId", "verificationKey"),
    max_body_bytes=MAX_WEBHOOK_BODY_BYTES,  # ENS batches notifications
    secret=SecretSetting(
        env="SFMC_ENS_SECRET_ID",
        context_key="sfmcEnsSecretName",
        default_name="dig/sfmc/ens",
        description='Secrets Manager secret: {"secret": "..."}, the signature key ENS gave when the callback was made',
    ),
)

MANIFEST = ConnectorManifest(
    name="sfmc",
    description="Salesforce Marketing Cloud: transactional email and SMS, data extensions, journey entry",
    # The event types its configuration can map (config.EVENT_SOURCES).
    event_types=(
        EventType.MEMBER_REGISTRATION,
        EventType.REDEMPTION,
        EventType.MEMBER_TIER,
        EventType.PARTNER_CARD_LINK,
        EventType.BADGE_AWARD,
        EventType.MEMBER_PROFILE_UPDATE,
        EventType.VOUCHER_ISSUED,
        # Always taken, mapped or not: the member contact store learns SMS consent from it.
        EventType.OPT_IN_SMS,
    ),
    emits=(InboundEventType.MEMBER_CONSENT_CHANGED,),
    webhooks=(ENS_WEBHOOK,),
    handler="connectors.sfmc.handler.lambda_handler",
    packages=("connectors.sfmc",),
    # Salesforce recommends 500 recipients or fewer a call when they carry attributes.
    batch_size=500,
    max_batching_window_seconds=5,
    # Triggered sends and journey entries go without the window; profile updates and SMS consent are
    # data-extension rows (and the contact store): they coalesce, 500 to a call.
    immediate_event_types=(
        EventType.MEMBER_REGISTRATION,
        EventType.REDEMPTION,
        EventType.MEMBER_TIER,
        EventType.PARTNER_CARD_LINK,
        EventType.BADGE_AWARD,
        EventType.VOUCHER_ISSUED,
    ),
    max_concurrency=2,
    max_receive_count=5,
    timeout_seconds=120,
    memory_mb=512,
    # 202 only means "queued": each send's status and each asynchronous upsert's rows are asked for later.
    polled_results=True,
    config_parser="connectors.sfmc.config.parse_config",
    sample_config="connectors.sfmc:sample_config.json",
    settings=(
        Setting(
            env=AUTH_BASE_URL,
            context_key="sfmcAuthBaseUrl",
            default="https://mcxxxxxxxxxxxxxxxxxxxxxxxxxx.auth.marketingcloudapis.com",
            description="The tenant's auth base (Installed Packages): https://<subdomain>.auth.marketingcloudapis.com",
        ),
    ),
    secrets=(
        SecretSetting(
            env=SECRET_ID,
            context_key="sfmcSecretName",
            default_name="dig/sfmc",
            description='Secrets Manager secret: {"clientId": "...", "clientSecret": "..."} of an installed package',
        ),
    ),
)
