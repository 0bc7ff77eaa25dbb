"""How the core wires the Optimove connector (see dig_contracts.manifest)."""

from connectors.optimove.config import EventMappings
from dig_contracts.events import EventType
from dig_contracts.extracts import EXTRACTS
from dig_contracts.inbound import InboundEventType
from dig_contracts.manifest import ConnectorManifest, ScheduledJob, SecretSetting, Setting

API_BASE_URL = "OPTIMOVE_API_BASE_URL"
REALTIME_BASE_URL = "OPTIMOVE_REALTIME_BASE_URL"
SECRET_ID = "OPTIMOVE_SECRET_ID"  # noqa: S105 - the variable holding the secret's name
SNOWFLAKE_SECRET_ID = "OPTIMOVE_SNOWFLAKE_SECRET_ID"  # noqa: S105 - the variable holding the secret's name
FEED_BUCKET = "OPTIMOVE_FEED_BUCKET"
FEED_ROLE_ARN = "OPTIMOVE_FEED_ROLE_ARN"
FEED_KMS_KEY_ARN = "OPTIMOVE_FEED_KMS_KEY_ARN"
# Writing and reading Parquet needs none of pyarrow's Flight, Substrait module, ORC, cloud filesystems,
# C++ headers or tests, nor a shared library's build-time copies (the unversioned and full-version names
# of a soname): 151 MB unzipped for arm64 becomes about 100 (its tests/test_feed.py checks the
# Parquet round trip on the trimmed x86_64 wheel of the same version).
PYARROW_UNUSED = (
    "pyarrow/include",
    "pyarrow/tests",
    "pyarrow/src",
    "pyarrow/_flight*",
    "pyarrow/libarrow_flight*",
    "pyarrow/libarrow_python_flight*",
    "pyarrow/flight.py",
    "pyarrow/_substrait*",
    "pyarrow/substrait.py",
    "pyarrow/_pyarrow_cpp_tests*",
    "pyarrow/_azurefs*",
    "pyarrow/_gcsfs*",
    "pyarrow/_hdfs*",
    "pyarrow/_s3fs*",
    "pyarrow/libarrow_s3*",
    "pyarrow/_orc*",
    "pyarrow/_dataset_orc*",
    "pyarrow/orc.py",
    "pyarrow/*.pxd",
    "pyarrow/*.pyx",
    "pyarrow/*.pxi",
    "pyarrow/libarrow_python.so",
    "pyarrow/libarrow_python_parquet_encryption.so",
    "pyarrow/*.so.*.*.*",
)
FEED_JOB = ScheduledJob(
    name="feed",
    handler="connectors.optimove.feed.handler.lambda_handler",
    description="Optimove's daily batch files: builds the day's files before the readiness time",
    every_minutes=15,
    # Streaming a 10,000,000-row extract (benchmarks.feed) takes minutes on one full vCPU.
    memory_mb=1769,
    timeout_seconds=900,
    # The rows spread over partitions on /tmp: about 150 bytes a row, 1.5 GB for 10,000,000.
    ephemeral_storage_mb=4096,
    writes_bucket_setting=FEED_BUCKET,
    assumes_role_setting=FEED_ROLE_ARN,
    kms_key_setting=FEED_KMS_KEY_ARN,
    # pyarrow, for Parquet files, and snowflake-connector-python, for the Snowflake destination: too large
    # for the layer every function shares.
    requirements="connectors.optimove.feed:lambda-requirements.txt",
    leave_out=PYARROW_UNUSED,
    # It writes files and tables; it never calls Optimove's API.
    uses_connector_secrets=False,
    secrets=(
        SecretSetting(
            env=SNOWFLAKE_SECRET_ID,
            context_key="optimoveSnowflakeSecretName",
            default_name="dig/optimove/snowflake",
            description='Secrets Manager secret: {"account": "...", "user": "...", "privateKey": "<PKCS#8 PEM>", '
            '"privateKeyPassphrase": "..." (when encrypted)} for batchFeed.snowflake (key-pair authentication)',
        ),
    ),
)

# The return path: OptiMail's unsubscribes, polled (Optimove has no webhook for them).
UNSUBSCRIBES_JOB = ScheduledJob(
    name="unsubscribes",
    handler="connectors.optimove.unsubscribes.lambda_handler",
    description="OptiMail's unsubscribes (GetUnsubscribers), each a MEMBER_CONSENT_CHANGED to ES Loyalty",
    every_minutes=60,
    memory_mb=512,
    timeout_seconds=300,
    emits=True,
    # A failed poll raises (the function's Errors alarm) and the next hour reads the same days again.
    reports_lateness=False,
)

# The event types its configuration can map (a new ES Loyalty event type is not routed here until this
# connector learns it), and those of them that only write attributes or channel preferences.
EVENT_TYPES = tuple(EventType(name) for name in EventMappings.model_fields)
COALESCING = (EventType.MEMBER_PROFILE_UPDATE, EventType.OPT_IN_EMAIL)

MANIFEST = ConnectorManifest(
    name="optimove",
    description="Optimove: customer attributes, email channel preference, transactional mail, real-time events",
    event_types=EVENT_TYPES,
    handler="connectors.optimove.handler.lambda_handler",
    sync_handler="connectors.optimove.handler.sync_handler",
    packages=("connectors.optimove",),
    # One SQS batch becomes a few UpdateCustomerAttributes calls of up to 1,000 customers each. The window
    # is what attribute updates wait at most, and only at a low rate: at a high one the batch fills first.
    # At 1,000,000 events a month 5 s gathered one or two updates a call, each call with its invocation,
    # its call log item and Optimove's result callback through API Gateway; 20 s gathers four times as
    # many (`dig cost --monthly 1M`, README). What a member waits for is in the immediate lane below.
    batch_size=1000,
    max_batching_window_seconds=20,
    # What a member waits for goes without the window: a welcome trigger, a transactional mail, offers
    # and their real-time event; the event's attributes go in the same (small) call. Profile updates and
    # email opt-ins are attribute and channel-preference writes only: they coalesce.
    immediate_event_types=tuple(t for t in EVENT_TYPES if t not in COALESCING),
    # Two concurrent invocations at most: Optimove allows 50 calls per 10 s per API key, and the
    # shared limiter (dig_connector_kit.ratelimit) holds the pace across them.
    max_concurrency=2,
    max_receive_count=5,
    timeout_seconds=120,
    # UpdateCustomerAttributes reports per-customer errors later, to a callback URL.
    callbacks=True,
    # The daily batch channel: every extract may feed a data set (the configuration's batchFeed says
    # which); their arrivals are recorded, and the feed job builds each day's files from them.
    extracts=tuple(EXTRACTS),
    scheduled=(FEED_JOB, UNSUBSCRIBES_JOB),
    emits=(InboundEventType.MEMBER_CONSENT_CHANGED,),
    provider_calls_per_minute=300,  # 50 requests per 10 s on the customer APIs
    # Mostly waiting on DynamoDB and Optimove: at 1,024 MB it paid twice a second for a CPU share it did not use
    # (`dig cost`, issue #28). A 1,000-message batch's own time is about 0.15 s on a full vCPU, 0.5 s here.
    memory_mb=512,
    config_parser="connectors.optimove.config.parse_config",
    sample_config="connectors.optimove:sample_config.json",
    settings=(
        Setting(
            env=API_BASE_URL,
            context_key="optimoveApiBaseUrl",
            default="https://api5.optimove.net",
            description="Optimove's customer and mail API host for the tenant (api4, api5, ...)",
        ),
        Setting(
            env=REALTIME_BASE_URL,
            context_key="optimoveRealtimeBaseUrl",
            default="https://gateway.optimove.events",
            description="Optimove's real-time (Track & Trigger) gateway",
        ),
        Setting(
            env=FEED_BUCKET,
            context_key="optimoveFeedBucket",
            default="",
            description="Optimove's bucket for the daily batch files (the feed job may write only there)",
        ),
        Setting(
            env=FEED_ROLE_ARN,
            context_key="optimoveFeedRoleArn",
            default="",
            description="A role of Optimove's the feed job assumes to write, when Optimove gives one",
        ),
        Setting(
            env=FEED_KMS_KEY_ARN,
            context_key="optimoveFeedKmsKeyArn",
            default="",
            description="The KMS key Optimove's bucket requires (SSE-KMS), if any",
        ),
    ),
    secrets=(
        SecretSetting(
            env=SECRET_ID,
            context_key="optimoveSecretName",
            default_name="dig/optimove",
            description='Secrets Manager secret: {"apiKey": "...", "realtimeToken": "..."}',
        ),
    ),
)
