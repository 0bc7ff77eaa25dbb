"""The Optimove feed job's Lambda entry point (manifest: ``FEED_JOB``).

Every quarter hour, from its EventBridge Scheduler schedule (input ``{}``): builds the day whose
build time passed, unless it is complete, and reports ``JobLate`` once that day's readiness time
passed without its files, ``JobInputMissing`` for an expected extract that did not arrive. An
operator's ``dig feed run`` invokes it with ``{"day": "yyyy-MM-dd", "full": bool}``: that day, again.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from connectors.optimove.feed.config import Destination, Snowflake
from connectors.optimove.feed.service import FeedService, check_destination
from connectors.optimove.manifest import (
    FEED_BUCKET,
    FEED_JOB,
    FEED_KMS_KEY_ARN,
    FEED_ROLE_ARN,
    MANIFEST,
    SNOWFLAKE_SECRET_ID,
)
from dig_contracts import environment as env
from dig_contracts.metrics import NAMESPACE, JobMetric, connector_service

SERVICE = connector_service(MANIFEST.name)
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE, patch_modules=("botocore",))


@cache
def service() -> FeedService:
    from connectors.optimove.feed.storage import S3FingerprintStore, S3Sink, extract_rows
    from connectors.optimove.feed.tables import SnowflakeTables, connect_snowflake
    from dig_connector_kit.lambda_entry import Kit

    kit = Kit(MANIFEST)
    s3 = kit.session.client("s3")
    files_bucket = os.environ[env.FILES_BUCKET_NAME]
    deployed = {
        "bucket": kit.setting(FEED_BUCKET),
        "roleArn": kit.setting(FEED_ROLE_ARN),
        "kmsKeyArn": kit.setting(FEED_KMS_KEY_ARN),
    }

    def sink_for(destination: Destination) -> S3Sink:
        check_destination(destination, deployed.get)
        client = s3
        if destination.roleArn:
            credentials = kit.session.client("sts").assume_role(
                RoleArn=destination.roleArn, RoleSessionName="dig-optimove-feed"
            )["Credentials"]
            client = kit.session.client(
                "s3",
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
            )
        return S3Sink(client, destination.bucket, destination.kmsKeyArn)

    def feed() -> Any:
        return kit.config().batchFeed

    def tables_for(destination: Snowflake) -> SnowflakeTables:
        return SnowflakeTables(lambda: connect_snowflake(kit.secret(SNOWFLAKE_SECRET_ID), destination), destination)

    return FeedService(
        feed,
        kit.feeds,
        lambda found: extract_rows(s3, found.bucket, found.parts),
        sink_for,
        lambda: S3FingerprintStore(s3, files_bucket, FEED_JOB.state_prefix(MANIFEST.name)),
        tables_for=tables_for,
    )


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("day"):  # an operator's rebuild
        run = service().run(str(event["day"]), full=bool(event.get("full")))
        logger.info("day built", extra={"day": run.day, "sent": run.sent, "files": run.files})
        return {"run": run.__dict__}
    tick = service().tick()
    if tick is None:  # the configuration has no batchFeed: the tenant does not use the batch channel
        return {"configured": False}
    for name, value in (
        (JobMetric.JOB_LATE, int(tick.late)),
        (JobMetric.JOB_INPUT_MISSING, len(tick.missing_extracts)),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    if tick.late:
        logger.error("the day's files are not complete past the readiness time", extra={"day": tick.day})
    if tick.missing_extracts:
        logger.warning("expected extracts did not arrive", extra={"day": tick.day, "missing": tick.missing_extracts})
    if tick.error is not None:
        raise RuntimeError(f"the feed of {tick.day} failed: {tick.error}")
    return {"day": tick.day, "built": tick.built.__dict__ if tick.built else None, "late": tick.late}
