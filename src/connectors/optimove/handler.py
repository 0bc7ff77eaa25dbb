"""The Optimove connector's Lambda entry points.

``lambda_handler``: fed by the event source mapping on the connector's queue (batches of up to
1,000 messages); answers ``batchItemFailures``. ``sync_handler``: the synchronous flow, invoked by
the DIG API with RequestResponse for one message, answering that message's delivery.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from connectors.optimove.client import Credentials, Transport
from connectors.optimove.config import OptimoveConfig, parse_config
from connectors.optimove.delivery import NAME, Endpoints, OptimoveConnector
from dig_connector_kit.metrics import batch_metrics
from dig_connector_kit.model import Deadline
from dig_connector_kit.requeue import SqsRequeue
from dig_connector_kit.runtime import ConnectorRuntime
from dig_connector_kit.sync import SyncRequest, deliver_one
from dig_contracts.metrics import NAMESPACE, connector_service

# A batch that counts nothing (callbacks only) would have Powertools warn "No application metrics" each time.
warnings.filterwarnings("ignore", message="No application metrics to publish")
logger = Logger(service="dig-connector-optimove")
metrics = Metrics(namespace=NAMESPACE, service=connector_service(NAME))
tracer = Tracer(service="dig-connector-optimove", patch_modules=("botocore", "httpx"))  # what it calls

CONFIG_TTL_SECONDS = 60
SECRET_MAX_AGE_SECONDS = 300


class ConfigCache:
    """The configuration from the configuration table, re-read at most once a minute."""

    def __init__(self, load: Any, ttl_seconds: float = CONFIG_TTL_SECONDS, clock: Any = time.monotonic) -> None:
        self._load = load
        self._ttl = ttl_seconds
        self._clock = clock
        self._value: OptimoveConfig | None = None
        self._loaded_at = 0.0
        self.version: int | None = None

    def __call__(self) -> OptimoveConfig:
        if self._value is None or self._clock() - self._loaded_at > self._ttl:
            stored = self._load(NAME)
            if stored is None:
                raise LookupError(
                    "no optimove configuration in the configuration table (dig config push optimove FILE)"
                )
            self._value = parse_config(stored.document)
            self.version = stored.version
            self._loaded_at = self._clock()
        return self._value


def credentials() -> Credentials:
    from aws_lambda_powertools.utilities.parameters import get_secret

    # get_secret caches for max_age, so a rotated key is picked up within five minutes.
    raw = str(get_secret(os.environ["OPTIMOVE_SECRET_ID"], max_age=SECRET_MAX_AGE_SECONDS))
    document = json.loads(raw)
    return Credentials(api_key=document["apiKey"], realtime_token=document.get("realtimeToken"))


def callback_key() -> str | None:
    """The key that signs callback URLs, shared with the DIG API (cached five minutes)."""
    arn = os.environ.get("CALLBACK_KEY_SECRET_ARN")
    if not arn:
        return None
    from aws_lambda_powertools.utilities.parameters import get_secret

    return str(json.loads(str(get_secret(arn, max_age=SECRET_MAX_AGE_SECONDS)))["key"])


@cache
def runtime() -> ConnectorRuntime:
    """Built once per container: one boto3 session, one pooled httpx client."""
    import boto3
    import httpx
    from botocore.config import Config

    from connectors.optimove.ratelimit import DynamoLimiter
    from db.audit import DynamoAuditStore, Retention
    from db.call_log import DynamoCallLog
    from db.config_store import DynamoConfigStore
    from db.contacts import DEFAULT_RETENTION_DAYS, DynamoContactStore
    from db.operations import DynamoOperationLedger
    from db.watermarks import DynamoWatermarkStore

    session = boto3.session.Session()
    dynamodb = session.client(
        "dynamodb",
        config=Config(
            retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=16, parameter_validation=False
        ),
    )
    retention = Retention(
        delivered_days=int(os.environ.get("AUDIT_RETENTION_DAYS", "30")),
        failed_days=int(os.environ.get("AUDIT_FAILED_RETENTION_DAYS", "90")),
    )
    audit = DynamoAuditStore(dynamodb, os.environ["AUDIT_TABLE_NAME"], retention)
    configs = DynamoConfigStore(dynamodb, os.environ["CONFIG_TABLE_NAME"])
    http = httpx.Client(limits=httpx.Limits(max_connections=10, max_keepalive_connections=10))
    transport = Transport(http, credentials, DynamoLimiter(dynamodb, os.environ["AUDIT_TABLE_NAME"]))
    connector = OptimoveConnector(
        ConfigCache(configs.current),
        transport,
        DynamoWatermarkStore(audit),
        Endpoints(
            api_base=os.environ["OPTIMOVE_API_BASE_URL"].rstrip("/"),
            realtime_base=os.environ["OPTIMOVE_REALTIME_BASE_URL"].rstrip("/"),
            callback_base=os.environ.get("DIG_CALLBACK_URL") or None,
        ),
        credentials,
        operations=DynamoOperationLedger(audit),
        call_log=DynamoCallLog(audit),
        callback_key=callback_key,
        contacts=DynamoContactStore(
            audit, retention_days=int(os.environ.get("CONTACT_RETENTION_DAYS", str(DEFAULT_RETENTION_DAYS)))
        ),
    )
    return ConnectorRuntime(
        connector,
        audit,
        max_receive_count=int(os.environ.get("MAX_RECEIVE_COUNT", "5")),
        requeue=SqsRequeue.from_environment(session),
    )


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    connector = runtime()
    report = connector.handle_sqs_batch(event, Deadline.from_context(context))
    answers = connector.connector.transport.take_outcomes()  # type: ignore[attr-defined]
    for name, value in batch_metrics(report, len(event.get("Records", [])), answers).items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    logger.info(
        "batch done",
        extra={
            "records": len(event.get("Records", [])),
            "retry": len(report.failures),
            "duplicates": report.duplicates,
        },
    )
    return report.response()


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def sync_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return deliver_one(runtime(), SyncRequest.model_validate(event), Deadline.from_context(context, reserve_seconds=2))
