"""A DIG Lambda function: arm64, the newest Python runtime, Powertools settings, X-Ray tracing, and
a log group of its own with a retention period; on the request path, SnapStart on its published
versions and a ``live`` alias on the current one, which callers invoke (``entry``)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.bundling import ARCHITECTURE, RUNTIME

LIVE_ALIAS = "live"


class DigFunction(lambda_.Function):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        service: str,
        handler: str,
        code: lambda_.Code,
        layer: lambda_.ILayerVersion,
        extra_layers: tuple[lambda_.ILayerVersion, ...] = (),
        environment: dict[str, str],
        log_retention_days: int,
        timeout_seconds: int = 29,
        memory_mb: int = 512,
        description: str,
        snap_start: bool = False,
        ephemeral_storage_mb: int = 512,
        reserved_concurrency: int | None = None,
        tracing: lambda_.Tracing = lambda_.Tracing.ACTIVE,
    ) -> None:
        log_group = logs.LogGroup(
            scope,
            f"{construct_id}Logs",
            retention=_retention(log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        # A role of its own, allowed to write its own log group only: no AWSLambdaBasicExecutionRole,
        # whose logs:* on every log group is wider than a function needs.
        role = iam.Role(
            scope,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{description[:900]}",
        )
        log_group.grant_write(role)
        super().__init__(
            scope,
            construct_id,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler,
            code=code,
            layers=[layer, *extra_layers],
            timeout=Duration.seconds(timeout_seconds),
            memory_size=memory_mb,
            ephemeral_storage_size=cdk.Size.mebibytes(ephemeral_storage_mb),
            tracing=tracing,
            reserved_concurrent_executions=reserved_concurrency,
            log_group=log_group,
            role=role,
            description=description,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if snap_start else None,
            # A replaced version is deleted, not kept: SnapStart bills each version's cached snapshot.
            current_version_options=lambda_.VersionOptions(removal_policy=RemovalPolicy.DESTROY)
            if snap_start
            else None,
            environment={
                "POWERTOOLS_SERVICE_NAME": service,
                "POWERTOOLS_METRICS_NAMESPACE": "DIG",
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **environment,
            },
        )
        # What callers invoke: with SnapStart, the alias on the version CDK publishes when the code or
        # configuration changes (SnapStart applies to published versions only); else the function.
        self.entry: lambda_.IFunction = self
        if snap_start:
            self.entry = lambda_.Alias(
                scope, f"{construct_id}Live", alias_name=LIVE_ALIAS, version=self.current_version
            )
        cdk.Validations.of(role).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                reason="Tracing: xray:PutTraceSegments and xray:PutTelemetryRecords take no resource-level "
                "permissions, so AWS requires Resource '*' for them",
            )
        )


_RETENTIONS = (
    (1, logs.RetentionDays.ONE_DAY),
    (3, logs.RetentionDays.THREE_DAYS),
    (5, logs.RetentionDays.FIVE_DAYS),
    (7, logs.RetentionDays.ONE_WEEK),
    (14, logs.RetentionDays.TWO_WEEKS),
    (30, logs.RetentionDays.ONE_MONTH),
    (60, logs.RetentionDays.TWO_MONTHS),
    (90, logs.RetentionDays.THREE_MONTHS),
    (180, logs.RetentionDays.SIX_MONTHS),
    (365, logs.RetentionDays.ONE_YEAR),
    (731, logs.RetentionDays.TWO_YEARS),
    (1827, logs.RetentionDays.FIVE_YEARS),
    (3653, logs.RetentionDays.TEN_YEARS),
)


def _retention(days: int) -> logs.RetentionDays:
    """The nearest CloudWatch retention period at or above ``days``."""
    for limit, retention in _RETENTIONS:
        if limit >= days:
            return retention
    return _RETENTIONS[-1][1]
