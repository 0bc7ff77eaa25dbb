"""How the core wires the CataBoom connector (see dig_contracts.manifest): its rule, queue, functions,
settings, secret and its two answered webhooks come from here; nothing in the core names it."""

from dig_contracts.events import EventType
from dig_contracts.inbound import InboundEventType
from dig_contracts.manifest import ConnectorManifest, MemberErasure, SecretSetting, Setting, WebhookSource

PLAY_BASE_URL = "CATABOOM_PLAY_BASE_URL"
SECRET_ID = "CATABOOM_SECRET_ID"  # noqa: S105 - the variable holding the secret's name
WRITEBACK = "writeback"
LAUNCH = "launch"

WRITEBACK_WEBHOOK = WebhookSource(
    name=WRITEBACK,
    description="CataBoom's prize fulfillment (writeback): a play won, answered in CataBoom's codes",
    # The token is per campaign and in the body, and CataBoom reads the answer's code: the connector answers.
    verification="connector",
    max_body_bytes=16 * 1024,
)
LAUNCH_WEBHOOK = WebhookSource(
    name=LAUNCH,
    description="The authentication webhook: a signed launch token checked once, answered with the member reference",
    verification="connector",
    max_body_bytes=4 * 1024,
)

MANIFEST = ConnectorManifest(
    name="cataboom",
    description="CataBoom: game plays (scratch cards, spin the wheel, slots) for members, prizes back as points",
    event_types=(EventType.GAME_PLAY_AWARDED,),
    handler="connectors.cataboom.handler.lambda_handler",
    sync_handler="connectors.cataboom.handler.sync_handler",
    packages=("connectors.cataboom",),
    batch_size=20,
    max_batching_window_seconds=1,
    # The game link mails the member at once: nothing here coalesces.
    immediate_event_types=(EventType.GAME_PLAY_AWARDED,),
    max_concurrency=2,
    timeout_seconds=60,
    memory_mb=512,
    emits=(InboundEventType.GAME_PLAY_LINK_ISSUED, InboundEventType.POINTS_AWARD_REQUESTED),
    webhooks=(WRITEBACK_WEBHOOK, LAUNCH_WEBHOOK),
    config_parser="connectors.cataboom.config.parse_config",
    sample_config="connectors.cataboom:sample_config.json",
    # Whose each account reference is (plays.py): erased by `dig member forget`.
    member_erasure=MemberErasure(
        function="connectors.cataboom.plays.erase_member", keys=("CATABOOM#ACCOUNT#*", "CATABOOM#MEMBER#*")
    ),
    settings=(
        Setting(
            env=PLAY_BASE_URL,
            context_key="cataboomPlayBaseUrl",
            default="https://secure.cataboom.com",
            description="CataBoom's play host: the Request Unique URL API is <base>/dplayurl/<campaign>",
        ),
    ),
    secrets=(
        SecretSetting(
            env=SECRET_ID,
            context_key="cataboomSecretName",
            default_name="dig/cataboom",
            description='Secrets Manager secret: {"memberRefKey": "...", "launchKey": "...", "campaigns": '
            '{"<slug>": {"username": "...", "password": "...", "writebackToken": "..."}}}',
        ),
    ),
)
