"""A connector's Lambda entry points, made from its manifest: the SQS batch handler and the
synchronous entry point, with the boto3 session, the audit store, retention, receive counts,
metrics, tracing and logging wired once. A connector's ``handler.py`` is two lines::

    from dig_connector_kit.lambda_entry import connector_handlers
    lambda_handler, sync_handler = connector_handlers(MANIFEST, build)

where ``build(kit) -> Connector`` makes the connector from what the ``Kit`` offers.
"""

from __future__ import annotations

import json
import time
import warnings
from collections import Counter
from collections.abc import Callable
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from dig_connector_kit.http import ReadBody, Request, Transport
from dig_connector_kit.inbound import InboundEmitter
from dig_connector_kit.metrics import batch_metrics
from dig_connector_kit.model import Connector, Deadline, check_capabilities
from dig_connector_kit.ports import (
    AuditStore,
    CallLog,
    ConcurrencyGate,
    ContactStore,
    Counters,
    FeedStore,
    Limiter,
    OperationLedger,
    PollCursors,
    WatermarkStore,
)
from dig_connector_kit.runtime import ConnectorRuntime
from dig_connector_kit.settings import ConnectorSettings
from dig_connector_kit.sync import SyncRequest, deliver_one
from dig_contracts import snapstart
from dig_contracts.inbound import WebhookCall
from dig_contracts.manifest import ConnectorManifest

if TYPE_CHECKING:
    import boto3
    import httpx
    from mypy_boto3_dynamodb import DynamoDBClient

    from db.table import Table
from dig_contracts.metrics import NAMESPACE, connector_service

# A batch that counts nothing (callbacks only) would have Powertools warn "No application metrics" each time.
warnings.filterwarnings("ignore", message="No application metrics to publish")
CONFIG_TTL_SECONDS = 60
SECRET_MAX_AGE_SECONDS = 300


class ConfigCache:
    """A connector's configuration from the configuration table, validated by the manifest's parser,
    read again at most once a minute."""

    def __init__(
        self,
        name: str,
        load: Callable[[str], Any],
        parse: Callable[[Any], Any],
        ttl_seconds: float = CONFIG_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._name, self._load, self._parse = name, load, parse
        self._ttl = ttl_seconds
        self._clock = clock
        self._value: Any = None
        self._loaded_at = 0.0
        self.version: int | None = None

    def __call__(self) -> Any:
        if self._value is None or self._clock() - self._loaded_at > self._ttl:
            stored = self._load(self._name)
            if stored is None:
                raise LookupError(
                    f"no {self._name} configuration in the configuration table (dig config push {self._name} FILE)"
                )
            self._value = self._parse(stored.document)
            self.version = stored.version
            self._loaded_at = self._clock()
        return self._value


class Kit:
    """What a connector is built from: made once per execution environment, from the environment
    the CDK construct (or the local stack) gives the function. Everything is made when first used."""

    def __init__(self, manifest: ConnectorManifest, settings: ConnectorSettings | None = None) -> None:
        self.manifest = manifest
        self.settings = settings or ConnectorSettings.from_environment(connector=manifest.name)
        self.transports: list[Transport] = []

    @cached_property
    def session(self) -> boto3.Session:
        from dig_contracts import snapstart

        return snapstart.session()

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        from botocore.config import Config

        return self.session.client(
            "dynamodb",
            config=Config(
                retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=16, parameter_validation=False
            ),
        )

    @cached_property
    def table(self) -> Table:
        """The audit table, which every store of a connector's state shares (one item family each)."""
        from db.table import Table

        return Table(self.dynamodb, self.settings.audit_table)

    @cached_property
    def audit(self) -> AuditStore:
        from db.audit import DynamoAuditStore, Retention

        retention = Retention(self.settings.audit_retention_days, self.settings.audit_failed_retention_days)
        return DynamoAuditStore(self.dynamodb, self.settings.audit_table, retention)

    def setting(self, env: str) -> str:
        """One of the manifest's settings, as deployed (its default when unset)."""
        import os

        [declared] = [s for s in self.manifest.settings if s.env == env]
        return (os.environ.get(env) or declared.default).rstrip("/")

    def secret(self, env: str) -> dict[str, Any]:
        """One of the manifest's secrets, as JSON; cached five minutes, so a rotation lands within them."""
        import os

        from aws_lambda_powertools.utilities.parameters import get_secret

        declared = {s.env for s in self.manifest.secrets} | {s.env for j in self.manifest.scheduled for s in j.secrets}
        if env not in declared:
            raise KeyError(f"{env} is not a secret of the {self.manifest.name} manifest")
        return dict(json.loads(str(get_secret(os.environ[env], max_age=SECRET_MAX_AGE_SECONDS))))

    @cached_property
    def config(self) -> ConfigCache:
        from db.config_store import DynamoConfigStore
        from dig_contracts.registry import config_parser

        parse = config_parser(self.manifest) or (lambda document: document)
        return ConfigCache(
            self.manifest.name, DynamoConfigStore(self.dynamodb, self.settings.config_table).current, parse
        )

    @cached_property
    def http(self) -> httpx.Client:
        import httpx

        return httpx.Client(limits=httpx.Limits(max_connections=10, max_keepalive_connections=10))

    @cached_property
    def limiter(self) -> Limiter:
        from dig_connector_kit.ratelimit import DynamoLimiter

        return DynamoLimiter(self.table)

    def transport(
        self,
        authorize: Callable[[Request], dict[str, str]],
        *,
        read_body: ReadBody | None = None,
        renew: Callable[[], None] | None = None,
        renew_on: frozenset[int] = frozenset(),
    ) -> Transport:
        transport = Transport(
            self.http,
            authorize,
            self.limiter,
            read_body=read_body,
            renew=renew,
            renew_on=renew_on,
            provider=self.manifest.name.title(),
            gate=self.gate,
        )
        self.transports.append(transport)
        return transport

    @cached_property
    def gate(self) -> ConcurrencyGate:
        """Calls in flight at once, per provider key, across invocations (a request's ``max_in_flight``)."""
        from dig_connector_kit.concurrency import DynamoGate

        return DynamoGate(self.table)

    @cached_property
    def watermarks(self) -> WatermarkStore:
        from db.watermarks import DynamoWatermarkStore

        return DynamoWatermarkStore(self.table)

    @cached_property
    def operations(self) -> OperationLedger:
        from db.operations import DynamoOperationLedger

        return DynamoOperationLedger(self.table)

    @cached_property
    def call_log(self) -> CallLog:
        from db.call_log import DynamoCallLog

        return DynamoCallLog(self.table)

    @cached_property
    def contacts(self) -> ContactStore:
        from db.contacts import DynamoContactStore

        return DynamoContactStore(self.table, retention_days=self.settings.contact_retention_days)

    @cached_property
    def counters(self) -> Counters:
        """The connector's own daily counts, which ``dig status`` and ``dig audit counts`` show."""
        from db.counters import DynamoCounters

        return DynamoCounters(self.table)

    @cached_property
    def feeds(self) -> FeedStore:
        """The records of this connector's daily batch feed (extract arrivals, runs, completed days)."""
        from db.feeds import DynamoFeedStore

        return DynamoFeedStore(self.table, self.manifest.name)

    @cached_property
    def poll_cursors(self) -> PollCursors:
        """Where this connector's polls of its provider's feeds have read to."""
        from db.cursors import DynamoPollCursors

        return DynamoPollCursors(self.table)

    @cached_property
    def inbound(self) -> InboundEmitter:
        """Puts the inbound events this connector reads (its webhooks, its polls) on the bus, recorded."""
        from dig_contracts.publisher import EventBridgePublisher

        if not self.manifest.emits or not self.settings.event_bus:
            raise RuntimeError(
                f"the {self.manifest.name} manifest declares no inbound events (emits), or no bus is set"
            )
        publisher = EventBridgePublisher(self.session.client("events"), self.settings.event_bus)
        return InboundEmitter(self.manifest.name, self.audit, publisher)

    @property
    def callback_base(self) -> str | None:
        return self.settings.callback_url

    def callback_key(self) -> str | None:
        """The key that signs callback URLs, shared with the DIG API (cached five minutes)."""
        if not self.settings.callback_key_secret_arn:
            return None
        from aws_lambda_powertools.utilities.parameters import get_secret

        secret = get_secret(self.settings.callback_key_secret_arn, max_age=SECRET_MAX_AGE_SECONDS)
        return str(json.loads(str(secret))["key"])

    def runtime(self, connector: Connector) -> ConnectorRuntime:
        """The runtime of the connector ``build`` made, once it does what its manifest declares."""
        from dig_connector_kit.requeue import SqsRequeue

        check_capabilities(self.manifest, connector)

        requeue = None
        if self.settings.queue_url:
            requeue = SqsRequeue(self.session.client("sqs"), self.settings.queue_url, self.session.region_name or "")
        return ConnectorRuntime(
            connector,
            self.audit,
            max_receive_count=self.settings.max_receive_count,
            requeue=requeue,
            emitter=self.inbound if self.manifest.webhooks else None,
            counters=self.counters,
        )

    def provider_answers(self) -> Counter[str]:
        answers: Counter[str] = Counter()
        for transport in self.transports:
            answers.update(transport.take_outcomes())
        return answers


_BUILT: dict[str, Callable[[], tuple[Kit, ConnectorRuntime]]] = {}


def built(connector: str, *, fresh: bool = False) -> tuple[Kit, ConnectorRuntime]:
    """The kit and runtime a connector's handlers use in this process (benchmarks and tests reach
    in through it); ``fresh``: made again from the environment as it is now."""
    made = _BUILT[connector]
    if fresh:
        made.cache_clear()  # type: ignore[attr-defined]
    return made()


def connector_handlers(
    manifest: ConnectorManifest, build: Callable[[Kit], Connector]
) -> tuple[Callable[[dict[str, Any], LambdaContext], dict[str, Any]], Callable[[dict[str, Any], LambdaContext], Any]]:
    """The SQS batch handler and the synchronous entry point of the connector ``build`` makes."""
    service = connector_service(manifest.name)
    logger = Logger(service=service)
    metrics = Metrics(namespace=NAMESPACE, service=service)
    tracer = Tracer(service=service, patch_modules=("botocore", "httpx"))

    @cache
    def made() -> tuple[Kit, ConnectorRuntime]:
        kit = Kit(manifest)
        return kit, kit.runtime(build(kit))

    _BUILT[manifest.name] = made
    # SnapStart (the synchronous entry point; dig_contracts.snapstart): the kit and connector built while
    # Lambda snapshots (clients, no data), built again after a restore.
    snapstart.prepare(warm=made, refresh=made.cache_clear)

    @logger.inject_lambda_context(log_event=False)
    @metrics.log_metrics
    @tracer.capture_lambda_handler(capture_response=False)
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        kit, runtime = made()
        report = runtime.handle_sqs_batch(event, Deadline.from_context(context))
        records = len(event.get("Records", []))
        for name, value in batch_metrics(report, records, kit.provider_answers()).items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        logger.info(
            "batch done", extra={"records": records, "retry": len(report.failures), "duplicates": report.duplicates}
        )
        return report.response()

    @logger.inject_lambda_context(log_event=False)
    @metrics.log_metrics
    @tracer.capture_lambda_handler(capture_response=False)
    def sync_handler(event: dict[str, Any], context: LambdaContext) -> Any:
        _, runtime = made()
        if "webhook" in event:  # a webhook the connector answers (dig_api.inbound.InboundService.answer)
            return runtime.answer_webhook(WebhookCall.model_validate(event["webhook"])).model_dump(mode="json")
        return deliver_one(
            runtime, SyncRequest.model_validate(event), Deadline.from_context(context, reserve_seconds=2)
        )

    return lambda_handler, sync_handler
