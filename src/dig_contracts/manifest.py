"""A connector's manifest: everything the core needs to wire a connector, and nothing more.

The CDK app turns a manifest into an EventBridge rule, a queue with its dead-letter queue, an event
source mapping and a Lambda function; the local stack builds the same rule and queues from it.
Adding a connector means writing its package and its manifest and declaring the manifest as an
entry point (dig_contracts.registry); nothing in the core changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dig_contracts.bus import BUS_SOURCE, CALLBACK_SOURCE, callback_detail_type
from dig_contracts.events import EventType
from dig_contracts.extracts import EXTRACTS
from dig_contracts.files import FILE_READY, FILES_SOURCE
from dig_contracts.inbound import (
    INBOUND_RECEIVED_SOURCE,
    INBOUND_SOURCE,
    MAX_WEBHOOK_BODY_BYTES,
    InboundEventType,
    inbound_received_detail_type,
)

ConnectorName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{1,30}$")]
REQUIREMENTS_PATTERN = r"^[A-Za-z_][\w.]*:[\w.-]+$"
# A lock named by ``requirements`` is compiled by ``make lock`` from this file, in the same directory.
REQUIREMENTS_SOURCE = "requirements.in"


class Setting(BaseModel):
    """A deploy-time setting: read from CDK context ``context_key`` (else ``default``) into ``env``."""

    model_config = ConfigDict(frozen=True)

    env: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    context_key: str
    default: str
    description: str


class SecretSetting(BaseModel):
    """A Secrets Manager secret, referenced by name (CDK context ``context_key``, else
    ``default_name``); the function gets its name in ``env`` and read access to it, nothing else."""

    model_config = ConfigDict(frozen=True)

    env: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    context_key: str
    default_name: str
    description: str


class ScheduledJob(BaseModel):
    """A job of the connector's own, run every ``every_minutes`` by an EventBridge Scheduler schedule
    (and on an operator's request, with its own input): a function with the connector's environment
    and, besides, the files bucket (``FILES_BUCKET_NAME``), whose ``jobs/<connector>/`` prefix it owns.
    It may write to a bucket outside DIG, assume a role and encrypt with a KMS key that deploy-time
    settings name (the envs of three of the manifest's ``settings``; empty: none). It reports
    ``JobLate`` and ``JobInputMissing`` metrics (dimensions Connector, Job), which raise alarms."""

    model_config = ConfigDict(frozen=True)

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{1,20}$")]
    handler: str
    description: str
    every_minutes: int = Field(default=15, ge=1, le=1440)
    memory_mb: int = Field(default=1769, ge=128, le=10_240)
    timeout_seconds: int = Field(default=900, ge=1, le=900)
    ephemeral_storage_mb: int = Field(default=512, ge=512, le=10_240)  # Lambda's /tmp
    writes_bucket_setting: str | None = None
    assumes_role_setting: str | None = None
    kms_key_setting: str | None = None
    # ``package:file`` of a lock of dependencies only this job needs (a layer of its own, for the
    # Lambda runtime; ``make lock`` compiles it from requirements.in beside it), and globs, relative to
    # the layer's python/, of what that layer leaves out.
    requirements: str | None = Field(default=None, pattern=REQUIREMENTS_PATTERN)
    leave_out: tuple[str, ...] = ()
    # Whether it reads the connector's secrets (the manifest's ``secrets``): a job that calls the provider
    # as the connector does (a poll, a reconciliation) does; one that writes files does not.
    uses_connector_secrets: bool = True
    # Secrets only this job reads (the feed's Snowflake key pair): its function alone is granted them.
    secrets: tuple[SecretSetting, ...] = ()
    # Whether it emits the manifest's inbound events (a poll of the provider's feed: the return path):
    # it gets the bus and the audit trail's batch reads and writes.
    emits: bool = False
    # Whether it reports JobLate and JobInputMissing (a job with a daily deadline and inputs), which raise
    # alarms; a job without (a poll) is watched by its function's Errors alarm only.
    reports_lateness: bool = True

    def state_prefix(self, connector: str) -> str:
        return f"jobs/{connector}/{self.name}/"


class WebhookSource(BaseModel):
    """A provider's notifications to ``POST /v1/inbound/<connector>/<name>``. The DIG API verifies each
    request as ``verification`` says, with the secret ``secret`` names (Secrets Manager, JSON
    ``{"secret": "..."}``), and refuses it with 401 (nothing to verify) or 403 (wrong) before anything
    is stored. A verified body, at most ``max_body_bytes``, is kept and handed to the connector
    (``dig_connector_kit.model.ReceivesWebhooks``), which turns it into inbound events.

    - ``hmac``: HMAC-SHA256 of the raw body in ``header`` (``encoding``, after ``prefix``); with a
      ``timestamp_header``, of ``"<timestamp>.<body>"``, the timestamp (Unix seconds) within
      ``tolerance_seconds`` of now.
      With ``layout`` ``"t=,v="`` the timestamp travels in the signature header itself,
      ``t=<unix>,v=<signature>`` (Tipalti's ``tipalti-signature``), and ``separator`` joins it to the body.
    - ``token``: a static token in ``header``, or in the query parameter ``query_parameter`` (a URL the
      provider is given, when it cannot set headers: DIG's signed URL), compared in constant time.
    - ``standard_webhooks``: the Standard Webhooks headers (webhook-id, -timestamp, -signature), the
      secret a ``whsec_`` key.
    - ``postback``: the raw body posted back to the provider's ``postback_url``, which must answer
      ``postback_answer`` (Tipalti's IPN: ``VERIFIED``); no secret is needed, but one is still declared
      (``{"secret": ""}`` will do) so every source names one in the same way.
    - ``connector``: a provider whose answer says more than "accepted" (CataBoom's writeback codes), or
      whose secret is per campaign in the body: the API hands the request, unverified and unkept, to the
      connector's synchronous entry point (``sync_handler``; dig_connector_kit.model.AnswersWebhooks),
      which verifies it with its own secrets, acts on it (its inbound events emitted before it answers)
      and answers it; the API sends that answer and keeps only what the connector says to keep. It has
      no ``secret`` of its own: the API reads none.

    ``handshake_keys``: a provider that proves the URL is the subscriber's before it signs anything
    (SFMC's Event Notification Service posts ``{"callbackId", "verificationKey"}`` unsigned, once) gets
    exactly that through without a signature: a JSON object of exactly these keys, each a short string,
    no signature header, at most HANDSHAKE_MAX_BYTES. It is kept and handed to the connector marked
    ``handshake`` (dig_contracts.inbound.WebhookReceipt), which completes it with the provider (only
    the provider can tell a real key from a forged one) and emits nothing from it.
    """

    model_config = ConfigDict(frozen=True)

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")]
    description: str
    verification: Literal["hmac", "token", "standard_webhooks", "postback", "connector"]
    secret: SecretSetting | None = None
    header: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,64}$")
    query_parameter: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]{1,32}$")
    timestamp_header: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,64}$")
    tolerance_seconds: int = Field(default=300, ge=30, le=3600)
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = Field(default="", max_length=16)
    separator: str = Field(default=".", max_length=4)
    layout: Literal["value", "t=,v="] = "value"
    postback_url: str | None = Field(default=None, pattern=r"^https://[^\s]+$")
    postback_answer: str = "VERIFIED"
    max_body_bytes: int = Field(default=64 * 1024, ge=1, le=MAX_WEBHOOK_BODY_BYTES)
    handshake_keys: tuple[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}$")], ...] = ()

    @model_validator(mode="after")
    def _says_where_to_look(self) -> WebhookSource:
        if self.verification == "hmac" and not self.header:
            raise ValueError(f"webhook {self.name}: hmac verification needs the header its signature comes in")
        if self.verification == "token" and not (self.header or self.query_parameter):
            raise ValueError(f"webhook {self.name}: token verification needs a header or a query parameter")
        if self.verification == "postback" and not self.postback_url:
            raise ValueError(f"webhook {self.name}: postback verification needs the provider's postback_url")
        if (self.verification == "connector") != (self.secret is None):
            raise ValueError(
                f"webhook {self.name}: every verification but connector names the secret the API verifies with; "
                "a connector-verified source names none (the connector reads its own)"
            )
        return self

    @property
    def answered_by_connector(self) -> bool:
        return self.verification == "connector"

    def describe(self, secret_name: str | None, function: str | None = None) -> dict[str, Any]:
        """What the DIG API needs to verify it (its INBOUND_SOURCES environment): the secret by name, or
        for a connector-verified source the function that answers it."""
        described = self.model_dump(mode="json", exclude={"secret", "description", "name"}, exclude_none=True)
        if secret_name is not None:
            described["secretName"] = secret_name
        if function is not None:
            described["function"] = function
        return described


IMMEDIATE_BATCH_SIZE_LIMIT = 10  # Lambda's largest SQS batch without a batching window


class MemberErasure(BaseModel):
    """What a connector keeps of a member beyond the core's items (the core erases its own: db.erasure),
    and how `dig member forget` erases it, with the operator's credentials."""

    model_config = ConfigDict(frozen=True)

    # Dotted path of ``function(table, member_id) -> int``: erases the member from the connector's items in
    # the audit table (a db.table.Table) with conditioned UpdateItems only, and returns how many it changed.
    function: str = Field(pattern=r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$")
    # The partition keys it updates, as IAM's dynamodb:LeadingKeys patterns: the operators' policy may
    # update these (infra/operator.py), and nothing else of the connector's.
    keys: tuple[Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*#[A-Z0-9_#]*\*$")], ...] = Field(min_length=1)


class Lane(BaseModel):
    """One of a connector's queues and how it feeds the connector's function (its event source
    mapping). ``coalescing``: the manifest's event types that can wait, gathered for the batching
    window into calls of many members; ``immediate``: what a member waits for, taken as it comes."""

    model_config = ConfigDict(frozen=True)

    name: Literal["coalescing", "immediate"]
    event_types: tuple[EventType | InboundEventType, ...]
    batch_size: int
    max_batching_window_seconds: int
    max_concurrency: int


class ConnectorManifest(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: ConnectorName
    description: str
    # ES Loyalty's event types it delivers; or, for the connector that delivers the return path to
    # ES Loyalty, the inbound event types (dig_contracts.inbound).
    event_types: tuple[EventType | InboundEventType, ...] = Field(min_length=1)
    # Dotted path of the SQS-fed Lambda handler and of the synchronous (RequestResponse) entry point.
    handler: str
    sync_handler: str | None = None
    # Top-level packages the function's code needs besides the DIG core packages.
    packages: tuple[str, ...]
    # ``package:file`` of a lock of the libraries the connector's functions need beyond DIG's own
    # (a provider's SDK): a layer of the connector's own, as a scheduled job's; ``make lock`` compiles
    # it from requirements.in beside it. ``leave_out``: globs, relative to the layer's python/, not shipped.
    requirements: str | None = Field(default=None, pattern=REQUIREMENTS_PATTERN)
    leave_out: tuple[str, ...] = ()
    # The coalescing lane: its queue's event source mapping gathers up to ``batch_size`` messages for
    # up to ``max_batching_window_seconds`` (attribute and data-extension writes of many members a call).
    batch_size: int = Field(default=100, ge=1, le=10_000)
    max_batching_window_seconds: int = Field(default=5, ge=0, le=300)
    max_concurrency: int = Field(default=2, ge=2, le=1000)
    # The immediate lane: the event types a member waits for (a welcome trigger, a transactional mail,
    # points, a game link) go to a queue of their own, read without a batching window, in batches of at
    # most ``immediate_batch_size``; the same function delivers both lanes, one connector to the audit
    # trail, replay (to the coalescing queue), the dead-letter queue (shared) and ``dig status``.
    immediate_event_types: tuple[EventType | InboundEventType, ...] = ()
    immediate_batch_size: int = Field(default=IMMEDIATE_BATCH_SIZE_LIMIT, ge=1, le=IMMEDIATE_BATCH_SIZE_LIMIT)
    immediate_max_concurrency: int = Field(default=2, ge=2, le=1000)
    max_receive_count: int = Field(default=5, ge=1, le=1000)
    timeout_seconds: int = Field(default=60, ge=1, le=900)
    memory_mb: int = Field(default=512, ge=128, le=10_240)
    settings: tuple[Setting, ...] = ()
    secrets: tuple[SecretSetting, ...] = ()
    # The data extracts (dig_contracts.extracts) whose validated files the connector consumes: each
    # one's FILE_READY event is routed to its queue, and its function may read that extract's rows.
    extracts: tuple[str, ...] = ()
    # Its scheduled jobs (a daily export, ...), each a function of its own.
    scheduled: tuple[ScheduledJob, ...] = ()
    # Whether the provider reports results later, to a callback URL the connector signs
    # (dig_connector_kit.model.TakesCallbacks).
    callbacks: bool = False
    # Whether the connector asks the provider for late results on the scheduled check, every
    # RESULTS_CHECK_MINUTES (dig_connector_kit.model.PollsResults): a provider with status URLs.
    polled_results: bool = False
    # The provider's documented request limit per API key, per minute: drawn on the dashboard against
    # the calls the connector makes (None: the provider publishes none).
    provider_calls_per_minute: int | None = Field(default=None, ge=1)
    # The provider's daily call quota DIG may spend (a share, where the provider counts every integration of
    # an account together), by default: `dig cost` sets the calls a month's volume makes against it (None:
    # the provider publishes none).
    provider_calls_per_day: int | None = Field(default=None, ge=1)
    # The limiter key its requests count that quota on (a Request's ``limiter_key`` with ``daily=``): where
    # ``dig status`` reads the calls counted on the provider's day.
    daily_quota_key: str | None = Field(default=None, min_length=1)
    # The return path: the inbound event types the connector emits (from its webhooks or a scheduled
    # job's poll of the provider), and the webhooks it receives. Emitting needs the bus and the audit.
    emits: tuple[InboundEventType, ...] = ()
    webhooks: tuple[WebhookSource, ...] = ()
    # Dotted path of the function that validates a configuration document (``dig config``), raising a
    # ValueError whose ``problems`` (else its message) say what is wrong; None: no configuration.
    config_parser: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$")
    # ``package:file`` of the sample configuration the local stack starts with.
    sample_config: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[\w.-]+$")
    # What it keeps of a member that `dig member forget` must erase beyond the core's items (None: nothing).
    member_erasure: MemberErasure | None = None

    @model_validator(mode="after")
    def _erasure_keys_are_the_connectors_own(self) -> ConnectorManifest:
        # The operators' policy grants updates on these keys: never on the core's, nor another connector's.
        own = f"{self.name.upper()}#"
        if self.member_erasure and not all(k.startswith(own) for k in self.member_erasure.keys):
            raise ValueError(f"member_erasure.keys must each start with {own!r}: {self.member_erasure.keys}")
        return self

    @model_validator(mode="after")
    def _batching_window_for_large_batches(self) -> ConnectorManifest:
        # Lambda refuses a batch size above 10 for an SQS source without a batching window.
        if self.batch_size > 10 and self.max_batching_window_seconds < 1:
            raise ValueError("a batch size above 10 needs a batching window of at least 1 second")
        return self

    @model_validator(mode="after")
    def _immediate_among_event_types(self) -> ConnectorManifest:
        stray = [t.value for t in self.immediate_event_types if t not in self.event_types]
        if stray:
            raise ValueError(f"immediate_event_types {stray} are not among the connector's event_types")
        return self

    @property
    def queue_visibility_timeout_seconds(self) -> int:
        # AWS: at least six times the function timeout, plus the batching window.
        return 6 * self.timeout_seconds + self.max_batching_window_seconds

    @property
    def coalescing_event_types(self) -> tuple[EventType | InboundEventType, ...]:
        return tuple(t for t in self.event_types if t not in self.immediate_event_types)

    @property
    def lanes(self) -> tuple[Lane, ...]:
        """Its queues' lanes: the coalescing one always (webhooks, files, checks, replays and requeued
        messages go there too), the immediate one when it names event types (and then the provider's
        callbacks: ``callback_queue_lane``)."""
        coalescing = Lane(
            name="coalescing",
            event_types=self.coalescing_event_types,
            batch_size=self.batch_size,
            max_batching_window_seconds=self.max_batching_window_seconds,
            max_concurrency=self.max_concurrency,
        )
        if not self.immediate_event_types:
            return (coalescing,)
        immediate = Lane(
            name="immediate",
            event_types=self.immediate_event_types,
            batch_size=self.immediate_batch_size,
            max_batching_window_seconds=0,
            max_concurrency=self.immediate_max_concurrency,
        )
        return coalescing, immediate

    def event_pattern(self) -> dict[str, Any] | None:
        """The EventBridge rule pattern that routes this connector's coalescing event types to its queue
        (None when every one of them is immediate)."""
        return _pattern(self.coalescing_event_types)

    def immediate_pattern(self) -> dict[str, Any] | None:
        """The pattern of the rule to the immediate lane's queue (None: the connector has none)."""
        return _pattern(self.immediate_event_types)

    @property
    def received_webhooks(self) -> tuple[WebhookSource, ...]:
        """The sources the DIG API verifies and hands over on the bus (dig_connector_kit.model.ReceivesWebhooks)."""
        return tuple(w for w in self.webhooks if not w.answered_by_connector)

    @property
    def answered_webhooks(self) -> tuple[WebhookSource, ...]:
        """The sources the connector answers itself (dig_connector_kit.model.AnswersWebhooks)."""
        return tuple(w for w in self.webhooks if w.answered_by_connector)

    def webhook_pattern(self) -> dict[str, Any] | None:
        """The pattern of a rule, to the same queue, for the webhooks the DIG API verified for it."""
        if not self.received_webhooks:
            return None
        return {"source": [INBOUND_RECEIVED_SOURCE], "detail-type": [inbound_received_detail_type(self.name)]}

    def webhook(self, name: str) -> WebhookSource | None:
        return next((w for w in self.webhooks if w.name == name), None)

    @model_validator(mode="after")
    def _webhooks_emit(self) -> ConnectorManifest:
        if (self.webhooks or any(job.emits for job in self.scheduled)) and not self.emits:
            raise ValueError("a connector that receives webhooks declares the inbound event types it emits")
        names = [w.name for w in self.webhooks]
        if len(set(names)) != len(names):
            raise ValueError(f"webhook names repeat: {names}")
        if any(w.answered_by_connector for w in self.webhooks) and not self.sync_handler:
            raise ValueError("a connector that answers its webhooks (verification connector) needs a sync_handler")
        return self

    def file_pattern(self) -> dict[str, Any] | None:
        """The pattern of a rule, to the same queue, for the FILE_READY events of its extracts."""
        if not self.extracts:
            return None
        return {"source": [FILES_SOURCE], "detail-type": [FILE_READY], "detail": {"name": list(self.extracts)}}

    @model_validator(mode="after")
    def _known_extracts(self) -> ConnectorManifest:
        unknown = [name for name in self.extracts if name not in EXTRACTS]
        if unknown:
            raise ValueError(f"extracts {unknown} are not among {sorted(EXTRACTS)}")
        return self

    @model_validator(mode="after")
    def _jobs_name_their_settings(self) -> ConnectorManifest:
        envs = {s.env for s in self.settings}
        for job in self.scheduled:
            for named in (job.writes_bucket_setting, job.assumes_role_setting, job.kms_key_setting):
                if named is not None and named not in envs:
                    raise ValueError(f"scheduled job {job.name}: {named} is not one of the manifest's settings")
        return self

    @property
    def checks_results(self) -> bool:
        """Whether the connector's queue gets the scheduled results check (callbacks or polled results)."""
        return self.callbacks or self.polled_results

    @property
    def callback_queue_lane(self) -> Literal["coalescing", "immediate"]:
        """The lane whose queue the provider's callbacks reach: the immediate one when there is one. A
        callback makes no provider call, so a batching window gathers nothing for it; in the coalescing lane
        it waited out the window and took a place a full batch of attribute updates needed (issue #28)."""
        return "immediate" if self.immediate_event_types else "coalescing"

    def callback_pattern(self) -> dict[str, Any] | None:
        """The pattern of a rule, to the queue of ``callback_queue_lane``, for the provider's callbacks."""
        if not self.callbacks:
            return None
        return {"source": [CALLBACK_SOURCE], "detail-type": [callback_detail_type(self.name)]}


def _pattern(event_types: Iterable[EventType | InboundEventType]) -> dict[str, Any] | None:
    types = list(event_types)
    if not types:
        return None
    sources = sorted({INBOUND_SOURCE if isinstance(t, InboundEventType) else BUS_SOURCE for t in types})
    return {"source": sources, "detail-type": [t.value for t in types]}


def webhook_sources(
    manifests: Iterable[ConnectorManifest],
    secret_name: Callable[[SecretSetting], str],
    sync_function: Callable[[ConnectorManifest], str],
) -> dict[str, dict[str, dict[str, Any]]]:
    """The DIG API's INBOUND_SOURCES: every connector's webhook sources, each secret by its deployed name,
    each connector-verified source by the function that answers it (the connector's sync function)."""
    return {
        m.name: {
            w.name: (w.describe(None, sync_function(m)) if w.secret is None else w.describe(secret_name(w.secret)))
            for w in m.webhooks
        }
        for m in manifests
        if m.webhooks
    }
