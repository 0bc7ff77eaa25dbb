"""The AWS resources of the local stack, created in moto from the same definitions the CDK app
deploys: tables from db.schema, rules and queues from each connector's manifest."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from db.schema import AUDIT_TABLE, CONFIG_TABLE
from dig_connector_kit.settings import CONNECTOR_QUEUE_URL, MAX_RECEIVE_COUNT, connector_variable
from dig_contracts.files import UPLOADS_PREFIX
from dig_contracts.manifest import ConnectorManifest

LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT = "123456789012"
# `dig local token` mints with this key, so that a local stack with default settings accepts it.
# It only ever signs tokens for a stack on loopback.
LOCAL_SIGNING_KEY = {"kid": "local", "key": "dig-local-signing-key-for-loopback-only-0000000000000000"}


def local_webhook_secret(connector: str, source: str, verification: str) -> str:
    """The secret a webhook source's verification uses in a local stack (loopback only)."""
    import base64

    raw = f"dig-local-{connector}-{source}-webhook-secret"
    if verification == "standard_webhooks":
        return "whsec_" + base64.b64encode(raw.encode()).decode()
    return raw


def local_token(client_id: str = "es-loyalty", *, scopes: tuple[str, ...] | None = None, hours: float = 12) -> str:
    """A bearer token a local stack with default settings accepts (every scope unless ``scopes``)."""
    from dig_api.auth import ALL_SCOPES, KeySet, mint

    keys = KeySet.from_secret(json.dumps(LOCAL_SIGNING_KEY))
    return mint(
        keys, client_id=client_id, issuer=LOCAL_ISSUER, audience="dig-api", scopes=scopes or ALL_SCOPES, hours=hours
    )


LOCAL_ISSUER = "dig-local"
LOCAL_CALLBACK_KEY = {"key": "dig-local-callback-key-for-loopback-only"}


@dataclass
class ConnectorResources:
    manifest: ConnectorManifest
    queue_url: str
    queue_arn: str
    dead_letter_queue_url: str
    target_dead_letter_queue_url: str
    environment: dict[str, str] = field(default_factory=dict)
    # The immediate lane's queue (dig_contracts.manifest.Lane), when the manifest names immediate types.
    immediate_queue_url: str | None = None
    immediate_queue_arn: str | None = None

    def lane_queue(self, lane: str) -> tuple[str, str]:
        """The URL and ARN of a lane's queue."""
        if lane == "immediate":
            assert self.immediate_queue_url is not None
            assert self.immediate_queue_arn is not None
            return self.immediate_queue_url, self.immediate_queue_arn
        return self.queue_url, self.queue_arn


@dataclass
class LocalResources:
    audit_table: str
    config_table: str
    bus_name: str
    signing_secret_arn: str
    callback_key_secret_arn: str
    connectors: dict[str, ConnectorResources]
    files_bucket: str = ""
    file_arrivals_queue_url: str = ""
    # "<connector>/<source>" -> the secret its webhooks are verified with (GET /_local/stack shows them).
    webhook_secrets: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """What `dig --local` commands need to find the resources (served at /_local/stack)."""
        return {
            "auditTable": self.audit_table,
            "configTable": self.config_table,
            "eventBus": self.bus_name,
            "region": LOCAL_REGION,
            "filesBucket": self.files_bucket,
            "fileArrivalsQueueUrl": self.file_arrivals_queue_url,
            "webhookSecrets": dict(self.webhook_secrets),
            "connectors": {
                name: {
                    "queueUrl": c.queue_url,
                    "deadLetterQueueUrl": c.dead_letter_queue_url,
                    "ruleTargetDeadLetterQueueUrl": c.target_dead_letter_queue_url,
                    "immediateQueueUrl": c.immediate_queue_url,
                }
                for name, c in self.connectors.items()
            },
        }


def create(
    session: Any,
    manifests: list[ConnectorManifest],
    *,
    stage: str = "local",
    secrets: dict[str, dict[str, Any]] | None = None,
) -> LocalResources:
    """``secrets``: each connector's secret as its local double accepts it."""
    dynamodb = session.client("dynamodb")
    sqs = session.client("sqs")
    events = session.client("events")
    secrets_manager = session.client("secretsmanager")

    audit_table, config_table = f"dig-{stage}-audit", f"dig-{stage}-config"
    for spec, name in ((AUDIT_TABLE, audit_table), (CONFIG_TABLE, config_table)):
        dynamodb.create_table(**spec.create_table_request(name))
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute}
        )
    bus_name = f"dig-{stage}"
    events.create_event_bus(Name=bus_name)
    signing = secrets_manager.create_secret(
        Name=f"dig/{stage}/api-signing-keys", SecretString=json.dumps(LOCAL_SIGNING_KEY)
    )
    callback_key = secrets_manager.create_secret(
        Name=f"dig/{stage}/callback-key", SecretString=json.dumps(LOCAL_CALLBACK_KEY)
    )

    files_bucket, arrivals_url = _files(session, stage)
    connectors: dict[str, ConnectorResources] = {}
    webhook_secrets: dict[str, str] = {}
    for manifest in manifests:
        prefix = f"dig-{stage}-{manifest.name}"

        def queue(name: str, attributes: dict[str, str] | None = None) -> tuple[str, str]:
            url = sqs.create_queue(QueueName=name, Attributes=attributes or {})["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            return url, arn

        dlq_url, dlq_arn = queue(f"{prefix}-dlq")
        target_dlq_url, target_dlq_arn = queue(f"{prefix}-rule-target-dlq")
        # Each lane's queue gives up into the connector's one dead-letter queue.
        work_queue = {
            "VisibilityTimeout": "60",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(manifest.max_receive_count)}
            ),
        }
        queue_url, queue_arn = queue(prefix, work_queue)
        immediate_url = immediate_arn = None
        if manifest.immediate_pattern() is not None:  # the immediate lane, sharing the dead-letter queue
            immediate_url, immediate_arn = queue(f"{prefix}-immediate", work_queue)
        for suffix, extra, target_arn in (
            ("rule", manifest.event_pattern(), queue_arn),
            ("immediate", manifest.immediate_pattern(), immediate_arn),
            (
                "callbacks",
                manifest.callback_pattern(),
                immediate_arn if manifest.callback_queue_lane == "immediate" else queue_arn,
            ),
            ("files", manifest.file_pattern(), queue_arn),
            ("webhooks", manifest.webhook_pattern(), queue_arn),
        ):
            if extra is None:
                continue
            events.put_rule(
                Name=f"{prefix}-{suffix}", EventBusName=bus_name, EventPattern=json.dumps(extra), State="ENABLED"
            )
            events.put_targets(
                Rule=f"{prefix}-{suffix}",
                EventBusName=bus_name,
                Targets=[{"Id": "queue", "Arn": target_arn, "DeadLetterConfig": {"Arn": target_dlq_arn}}],
            )
        for secret in manifest.secrets:
            value = _local_secret(manifest.name, (secrets or {}).get(manifest.name))
            secrets_manager.create_secret(Name=secret.default_name, SecretString=json.dumps(value))
        for job_secret in (s for job in manifest.scheduled for s in job.secrets):  # a job's own (the feed's Snowflake)
            value = _local_secret(job_secret.env.removesuffix("_SECRET_ID"), (secrets or {}).get(job_secret.env))
            secrets_manager.create_secret(Name=job_secret.default_name, SecretString=json.dumps(value))
        for webhook in manifest.webhooks:
            if webhook.secret is None:  # answered by its connector, with the connector's own secrets
                continue
            local = local_webhook_secret(manifest.name, webhook.name, webhook.verification)
            webhook_secrets[f"{manifest.name}/{webhook.name}"] = local
            secrets_manager.create_secret(Name=webhook.secret.default_name, SecretString=json.dumps({"secret": local}))
        connectors[manifest.name] = ConnectorResources(
            manifest=manifest,
            queue_url=queue_url,
            queue_arn=queue_arn,
            dead_letter_queue_url=dlq_url,
            target_dead_letter_queue_url=target_dlq_url,
            immediate_queue_url=immediate_url,
            immediate_queue_arn=immediate_arn,
            environment={
                # One process runs every connector locally: each reads its own (dig_connector_kit.settings).
                connector_variable(CONNECTOR_QUEUE_URL, manifest.name): queue_url,
                connector_variable(MAX_RECEIVE_COUNT, manifest.name): str(manifest.max_receive_count),
                **{s.env: s.default for s in manifest.settings},
                **{s.env: s.default_name for s in manifest.secrets},
                **{s.env: s.default_name for job in manifest.scheduled for s in job.secrets},
            },
        )
    return LocalResources(
        audit_table,
        config_table,
        bus_name,
        signing["ARN"],
        callback_key["ARN"],
        connectors,
        files_bucket,
        arrivals_url,
        webhook_secrets,
    )


def _files(session: Any, stage: str) -> tuple[str, str]:
    """The files bucket, reporting uploads to EventBridge as in AWS; the rule that starts the state
    machine there puts the event on a queue here, for the local file driver."""
    s3, sqs, events = session.client("s3"), session.client("sqs"), session.client("events")
    bucket = f"dig-{stage}-files"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    queue_url = sqs.create_queue(QueueName=f"dig-{stage}-file-arrivals", Attributes={"VisibilityTimeout": "900"})[
        "QueueUrl"
    ]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"prefix": UPLOADS_PREFIX}]}},
    }
    events.put_rule(Name=f"dig-{stage}-start-on-upload", EventPattern=json.dumps(pattern), State="ENABLED")
    events.put_targets(Rule=f"dig-{stage}-start-on-upload", Targets=[{"Id": "driver", "Arn": queue_arn}])
    return bucket, queue_url


def _local_secret(connector: str, double: dict[str, Any] | None) -> dict[str, Any]:
    """The connector's secret in the local stack: DIG_LOCAL_SECRET_<NAME> (JSON) when set, to reach a
    real provider's sandbox, else the one its local double accepts."""
    given = os.environ.get(f"DIG_LOCAL_SECRET_{connector.upper()}")
    if given:
        return dict(json.loads(given))
    return double or {}
