"""How the core wires the ES Loyalty connector (see dig_contracts.manifest): the return path's last
leg. It subscribes to the inbound event types (dig_contracts.inbound) that other connectors emit from
what their providers said, and delivers each to ES Loyalty's webhook endpoint, signed per Standard
Webhooks; nothing in the core names it."""

from dig_contracts.inbound import InboundEventType
from dig_contracts.manifest import ConnectorManifest, SecretSetting, Setting

WEBHOOK_URL = "ESLOYALTY_WEBHOOK_URL"
WEBHOOK_SECRET_ID = "ESLOYALTY_WEBHOOK_SECRET_ID"  # noqa: S105 - the variable holding the secret's name

MANIFEST = ConnectorManifest(
    name="esloyalty",
    description="ES Loyalty: what providers said (consent, points, payouts), delivered as signed webhooks",
    event_types=tuple(InboundEventType),
    handler="connectors.esloyalty.handler.lambda_handler",
    packages=("connectors.esloyalty",),
    # One webhook per event, and a member waits for none of them to coalesce: small batches, short window.
    batch_size=10,
    max_batching_window_seconds=1,
    # Points for a prize, a consent, a payout's status: ES Loyalty takes each as it comes.
    immediate_event_types=tuple(InboundEventType),
    max_concurrency=2,
    # ES Loyalty down for a while: each receive retries within the invocation (the transport's backoff),
    # then after the queue's visibility timeout (6 minutes); 8 receives, then FAILED and replayable.
    max_receive_count=8,
    timeout_seconds=60,
    memory_mb=256,
    settings=(
        Setting(
            env=WEBHOOK_URL,
            context_key="esLoyaltyWebhookUrl",
            default="https://esloyalty.example/dig/webhooks",
            description="ES Loyalty's endpoint for DIG's webhooks",
        ),
    ),
    secrets=(
        SecretSetting(
            env=WEBHOOK_SECRET_ID,
            context_key="esLoyaltyWebhookSecretName",
            default_name="dig/esloyalty/webhook",
            description='Secrets Manager secret: {"secret": "whsec_<base64>"}, shared with ES Loyalty',
        ),
    ),
)
