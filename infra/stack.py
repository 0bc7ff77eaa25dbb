"""The DIG stack: thin. Each concern is a construct; each installed connector gets its module."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from dig_contracts import environment as env
from dig_contracts.registry import installed_connectors
from infra.api import Api
from infra.bundling import dependencies_layer
from infra.bus import Bus
from infra.connector import ConnectorModule
from infra.dashboard import OperatorDashboard
from infra.database import Database
from infra.files import FileFlow
from infra.observability import Observability
from infra.operator import OperatorAccess
from infra.settings import Settings


class DigStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, description="DIG: Data Integration Gateway for ES Loyalty", **kwargs)
        layer = dependencies_layer(self, "Dependencies")
        observability = Observability(
            self, "Observability", alarm_email=settings.alarm_email, stack_name=settings.stack_name
        )
        database = Database(self, "Database", point_in_time_recovery=settings.point_in_time_recovery)
        bus = Bus(self, "Bus", stage=settings.stage, archive_retention_days=settings.archive_retention_days)
        api = Api(
            self,
            "Api",
            settings=settings,
            audit_table=database.audit_table,
            config_table=database.config_table,
            bus=bus.bus,
            layer=layer,
        )
        observability.watch_function("Api", api.function)
        files = FileFlow(
            self,
            "Files",
            settings=settings,
            audit_table=database.audit_table,
            bus=bus.bus,
            layer=layer,
            api_function=api.function,
        )
        api.function.add_environment(env.FILES_BUCKET_NAME, files.bucket.bucket_name)
        observability.watch_files(files)

        common = {
            "settings": settings,
            "bus": bus.bus,
            "database": database,
            "api": api,
            "layer": layer,
            "observability": observability,
        }
        # Construct ids from the names ("optimove" -> "Optimove") keep each connector's logical ids.
        connectors = [ConnectorModule(self, m.name.title(), manifest=m, **common) for m in installed_connectors()]
        for connector in connectors:
            connector.use_files(files.bucket)

        operator = OperatorAccess(self, "Operator", database=database, connectors=connectors, files=files)
        dashboard = OperatorDashboard(
            self,
            "Operations",
            stack_name=settings.stack_name,
            api=api,
            bus=bus.bus,
            connectors=connectors,
            alarms=observability.alarms,
        )
        outputs = {
            "ApiUrl": api.rest_api.url,
            "AuditTableName": database.audit_table.table_name,
            "ConfigTableName": database.config_table.table_name,
            "EventBusName": bus.bus.event_bus_name,
            "ArchiveName": bus.archive.archive_name,
            "AlarmTopicArn": observability.topic.topic_arn,
            "OperatorPolicyArn": operator.policy.managed_policy_arn,
            "DashboardName": dashboard.dashboard.dashboard_name,
            "FilesBucketName": files.bucket.bucket_name,
            "FilesStateMachineArn": files.state_machine.state_machine_arn,
        }
        if api.signing_secret is not None:
            outputs["SigningKeySecretArn"] = api.signing_secret.secret_arn
            outputs["JwtIssuer"] = api.issuer
            outputs["JwtMaxLifetimeHours"] = str(settings.token_max_hours)
        for connector in connectors:
            prefix = connector.manifest.name.title()
            outputs[f"{prefix}QueueUrl"] = connector.queue.queue_url
            if connector.immediate_queue is not None:
                outputs[f"{prefix}ImmediateQueueUrl"] = connector.immediate_queue.queue_url
            outputs[f"{prefix}DeadLetterQueueUrl"] = connector.dead_letter_queue.queue_url
            outputs[f"{prefix}RuleTargetDeadLetterQueueUrl"] = connector.target_dead_letter_queue.queue_url
            for job, function in connector.jobs.items():
                outputs[f"{prefix}{job.title()}JobFunctionName"] = function.function_name
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)
