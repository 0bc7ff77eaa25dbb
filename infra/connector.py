"""A connector module, generated from its manifest: an EventBridge rule for the event types it
subscribes to, a queue (with a dead-letter queue) between the rule and the connector Lambda, a
dead-letter queue on the rule target, the event source mapping, the function's access, alarms.

Adding a connector is its package, its manifest and one ``ConnectorModule`` line in the stack.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from db.call_log import STATUS_INDEX
from dig_connector_kit import settings as kit_settings
from dig_connector_kit.settings import ConnectorSettings
from dig_contracts import environment as env
from dig_contracts.bus import SCHEDULED_CHECK
from dig_contracts.files import EXTRACTS_PREFIX
from dig_contracts.manifest import ConnectorManifest, ScheduledJob
from infra.api import Api
from infra.bundling import check_unzipped_size, dependencies_directory, function_directory, requirements_layer
from infra.database import Database
from infra.function import DigFunction
from infra.observability import Observability
from infra.settings import Settings

SYNC_TIMEOUT_SECONDS = 25
RESULTS_CHECK_MINUTES = 5

TRACING = {"Active": lambda_.Tracing.ACTIVE, "PassThrough": lambda_.Tracing.PASS_THROUGH}


def _queue(scope: Construct, construct_id: str, **options: object) -> sqs.Queue:
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        **options,  # type: ignore[arg-type]
    )


class ConnectorModule(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        manifest: ConnectorManifest,
        settings: Settings,
        bus: events.IEventBus,
        database: Database,
        api: Api,
        layer: lambda_.ILayerVersion,
        observability: Observability,
    ) -> None:
        super().__init__(scope, construct_id)
        self.manifest = manifest
        self.dead_letter_queue = _queue(self, "DeadLetterQueue", retention_period=Duration.days(14))
        self.queue = self._work_queue("Queue", manifest.queue_visibility_timeout_seconds)
        self.target_dead_letter_queue = _queue(self, "RuleTargetDeadLetterQueue", retention_period=Duration.days(14))
        cdk.Validations.of(self.target_dead_letter_queue).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions::AwsSolutions-SQS3",
                reason="This queue is the dead-letter queue of the EventBridge rule target; cdk-nag only "
                "recognizes SQS redrive dead-letter queues",
            )
        )
        self.rule: events.Rule | None = None
        coalescing = manifest.event_pattern()
        if coalescing is not None:
            self.rule = self._extra_rule(
                "Rule",
                f"Routes {', '.join(coalescing['detail-type'])} to the {manifest.name} connector",
                coalescing,
                bus,
            )
        # The immediate lane: what a member waits for, read without the batching window; it shares the
        # dead-letter queues, so that an operator finds one connector's failures in one place.
        self.immediate_queue: sqs.Queue | None = None
        self.immediate_rule: events.Rule | None = None
        immediate = manifest.immediate_pattern()
        if immediate is not None:
            self.immediate_queue = self._work_queue("ImmediateQueue", 6 * manifest.timeout_seconds)
            self.immediate_rule = self._extra_rule(
                "ImmediateRule",
                f"Routes {', '.join(immediate['detail-type'])} to the {manifest.name} connector's immediate lane",
                immediate,
                bus,
                self.immediate_queue,
            )

        callbacks = manifest.callback_pattern()
        self.callback_rule: events.Rule | None = None
        if callbacks is not None:
            self.callback_rule = self._extra_rule(
                "CallbackRule",
                f"Routes the provider's callbacks to {manifest.name}'s {manifest.callback_queue_lane} lane",
                callbacks,
                bus,
                self.immediate_queue if manifest.callback_queue_lane == "immediate" else None,
            )
        webhooks = manifest.webhook_pattern()
        self.webhook_rule: events.Rule | None = None
        if webhooks is not None:
            self.webhook_rule = self._extra_rule(
                "WebhookRule",
                f"Routes the provider's verified webhooks to the {manifest.name} connector",
                webhooks,
                bus,
            )
        files = manifest.file_pattern()
        self.file_rule: events.Rule | None = None
        if files is not None:
            self.file_rule = self._extra_rule(
                "FileReadyRule", f"Routes FILE_READY of {', '.join(manifest.extracts)} to {manifest.name}", files, bus
            )

        environment = ConnectorSettings(
            audit_table=database.audit_table.table_name,
            config_table=database.config_table.table_name,
            max_receive_count=manifest.max_receive_count,
            audit_retention_days=settings.audit_retention_days,
            audit_failed_retention_days=settings.audit_failed_retention_days,
            contact_retention_days=settings.member_contact_retention_days,
            queue_url=self.queue.queue_url,
            coalescing_window_seconds=manifest.max_batching_window_seconds,
        ).environment()
        for setting in manifest.settings:
            value = self.node.try_get_context(setting.context_key)
            environment[setting.env] = str(value) if value else setting.default
        secrets: list[secretsmanager.ISecret] = []
        if callbacks is not None:
            environment[kit_settings.DIG_CALLBACK_URL] = api.callback_url
            environment[kit_settings.DIG_CALLBACK_VALIDITY_SECONDS] = str(settings.callback_validity_hours * 3600)
            environment[kit_settings.CALLBACK_KEY_SECRET_ARN] = api.callback_key.secret_arn
            secrets.append(api.callback_key)
        self._connector_secrets: list[secretsmanager.ISecret] = []
        for index, secret_setting in enumerate(manifest.secrets):
            name = self.node.try_get_context(secret_setting.context_key) or secret_setting.default_name
            secret = secretsmanager.Secret.from_secret_name_v2(self, f"Secret{index}", str(name))
            environment[secret_setting.env] = secret.secret_name
            secrets.append(secret)
            self._connector_secrets.append(secret)
        if manifest.emits:  # the return path: its inbound events go on the bus
            environment[env.EVENT_BUS_NAME] = bus.event_bus_name
        self._bus = bus

        self._code_directory = function_directory(manifest.name, manifest.packages)
        code = lambda_.Code.from_asset(str(self._code_directory))
        self._code, self._layer, self._environment, self._settings = code, layer, environment, settings
        self._database, self._observability = database, observability
        self.jobs: dict[str, DigFunction] = {}
        self._extra_layers = self._own_layer(
            "ConnectorLayer", manifest.requirements, manifest.leave_out, f"{manifest.name} connector"
        )
        self.function = self._function(
            "Handler",
            manifest.handler,
            code,
            layer,
            environment,
            settings,
            manifest.timeout_seconds,
            # Fed by queues: Lambda's own sampling traces nearly every invocation at a low rate.
            tracing=TRACING[settings.queue_tracing],
        )
        for lane in manifest.lanes:
            self.function.add_event_source(
                sources.SqsEventSource(
                    self.lane_queue(lane.name),
                    batch_size=lane.batch_size,
                    max_batching_window=Duration.seconds(lane.max_batching_window_seconds),
                    max_concurrency=lane.max_concurrency,
                    report_batch_item_failures=True,
                )
            )
        functions = [self.function]
        self.sync_function: DigFunction | None = None
        if manifest.sync_handler:
            self.sync_function = self._function(
                "SyncHandler",
                manifest.sync_handler,
                code,
                layer,
                environment,
                settings,
                SYNC_TIMEOUT_SECONDS,
                snap_start=settings.connector_snap_start,
                # The synchronous flow can take no more than its share: queue deliveries keep theirs.
                reserved_concurrency=settings.sync_concurrency,
            )
            functions.append(self.sync_function)
            api.register_sync_connector(
                manifest.name, self.sync_function.entry, [t.value for t in manifest.event_types]
            )

        if manifest.webhooks:
            # The DIG API verifies the provider's webhooks with these; the connector never reads them. A
            # source the connector answers itself has none: the API invokes the sync function for it.
            api.register_webhooks(
                manifest,
                {
                    webhook.name: secretsmanager.Secret.from_secret_name_v2(
                        self,
                        f"WebhookSecret{webhook.name.title().replace('-', '')}",
                        str(self.node.try_get_context(webhook.secret.context_key) or webhook.secret.default_name),
                    )
                    for webhook in manifest.webhooks
                    if webhook.secret is not None
                },
                self.sync_function.entry if self.sync_function else None,
            )

        for function in functions:
            Database.grant(
                database.audit_table,
                function,
                "GetItem",
                "BatchGetItem",
                "PutItem",
                "BatchWriteItem",
                "UpdateItem",
            )
            if callbacks is not None:  # the scheduled check finds overdue calls through this index
                Database.grant_query(database.audit_table, function, STATUS_INDEX)
            # A verdict that changes with time (a customer that does not exist yet) sends the message again.
            self.queue.grant_send_messages(function)
            # What it reads from its webhooks, or tells while delivering (a payout's status), goes on the bus.
            if manifest.webhooks or manifest.emits:
                self._bus.grant_put_events_to(function)
            Database.grant(database.config_table, function, "GetItem")
            for secret in secrets:
                secret.grant_read(function)
            observability.watch_function(f"{manifest.name.title()}{function.node.id}", function)

        observability.watch_dead_letter_queue(
            f"{manifest.name.title()}Queue", self.dead_letter_queue, f"{manifest.name} dead-letter queue", manifest.name
        )
        observability.watch_dead_letter_queue(
            f"{manifest.name.title()}RuleTarget",
            self.target_dead_letter_queue,
            f"{manifest.name} rule-target dead-letter queue",
            manifest.name,
        )
        observability.watch_queue_age(f"{manifest.name.title()}Queue", self.queue, f"{manifest.name} queue")
        if self.immediate_queue is not None:
            observability.watch_queue_age(
                f"{manifest.name.title()}ImmediateQueue", self.immediate_queue, f"{manifest.name} immediate queue"
            )
        observability.watch_connector(
            manifest.name, callbacks=callbacks is not None, daily_quota=manifest.provider_calls_per_day is not None
        )
        if manifest.checks_results:
            self._schedule_results_check(manifest)

    def _work_queue(self, construct_id: str, visibility_timeout_seconds: int) -> sqs.Queue:
        """A lane's queue: what it cannot deliver goes to the connector's one dead-letter queue."""
        return _queue(
            self,
            construct_id,
            visibility_timeout=Duration.seconds(visibility_timeout_seconds),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=self.manifest.max_receive_count, queue=self.dead_letter_queue
            ),
        )

    def lane_queue(self, lane: str) -> sqs.Queue:
        if lane == "immediate":
            assert self.immediate_queue is not None
            return self.immediate_queue
        return self.queue

    @property
    def queues(self) -> tuple[sqs.Queue, ...]:
        """Its lanes' queues, the coalescing one first."""
        return (self.queue,) if self.immediate_queue is None else (self.queue, self.immediate_queue)

    def _schedule_results_check(self, manifest: ConnectorManifest) -> None:
        """The provider's later results: a schedule looks for those overdue (alarms: Observability)."""
        events.Rule(
            self,
            "ResultsCheckSchedule",
            description=f"Every {RESULTS_CHECK_MINUTES} minutes: {manifest.name} results to poll or overdue",
            schedule=events.Schedule.rate(Duration.minutes(RESULTS_CHECK_MINUTES)),
            targets=[targets.SqsQueue(self.queue, message=events.RuleTargetInput.from_object(SCHEDULED_CHECK))],
        )

    def _function(
        self,
        construct_id: str,
        handler: str,
        code: lambda_.Code,
        layer: lambda_.ILayerVersion,
        environment: dict[str, str],
        settings: Settings,
        timeout_seconds: int,
        *,
        snap_start: bool = False,
        reserved_concurrency: int | None = None,
        tracing: lambda_.Tracing = lambda_.Tracing.ACTIVE,
    ) -> DigFunction:
        return DigFunction(
            self,
            construct_id,
            service=f"dig-connector-{self.manifest.name}",
            handler=handler,
            code=code,
            layer=layer,
            extra_layers=self._extra_layers,
            environment=environment,
            log_retention_days=settings.log_retention_days,
            timeout_seconds=timeout_seconds,
            memory_mb=self.manifest.memory_mb,
            description=f"DIG connector: {self.manifest.description}"[:256],
            snap_start=snap_start,
            reserved_concurrency=reserved_concurrency,
            tracing=tracing,
        )

    def _extra_rule(
        self,
        construct_id: str,
        description: str,
        pattern: dict[str, Any],
        bus: events.IEventBus,
        queue: sqs.IQueue | None = None,
    ) -> events.Rule:
        return events.Rule(
            self,
            construct_id,
            event_bus=bus,
            description=description,
            event_pattern=events.EventPattern(
                source=pattern["source"], detail_type=pattern["detail-type"], detail=pattern.get("detail")
            ),
            targets=[
                targets.SqsQueue(
                    queue or self.queue,
                    dead_letter_queue=self.target_dead_letter_queue,
                    retry_attempts=185,
                    max_event_age=Duration.hours(24),
                )
            ],
        )

    def use_files(self, bucket: s3.IBucket) -> None:
        """The files bucket: the connector's function reads its extracts; its scheduled jobs are made."""
        self._grant_extracts(self.function, bucket)
        for job in self.manifest.scheduled:
            self.jobs[job.name] = self._scheduled_job(job, bucket)

    def _own_layer(
        self, construct_id: str, requirements: str | None, leave_out: tuple[str, ...], what: str
    ) -> tuple[lambda_.ILayerVersion, ...]:
        """A layer of the libraries a manifest names for a function beyond DIG's (none when it names
        none), checked with the function's code against Lambda's unzipped limit."""
        if requirements is None:
            return ()
        package, _, file = requirements.partition(":")
        lock = Path(str(importlib.resources.files(package).joinpath(file)))
        layer, directory = requirements_layer(
            self, construct_id, lock, f"DIG connector {what}: {package}:{file}", leave_out
        )
        check_unzipped_size(what, dependencies_directory(), directory, self._code_directory)
        return (layer,)

    def _scheduled_job(self, job: ScheduledJob, bucket: s3.IBucket) -> DigFunction:
        """The job's function, its schedule, its access (its extracts; its prefix of the files bucket;
        the bucket, role and key outside DIG that its settings name) and its alarms."""
        construct_id = f"{job.name.title()}Job"
        extra_layers = self._own_layer(
            f"{construct_id}Layer", job.requirements, job.leave_out, f"{self.manifest.name} {job.name} job"
        )
        function = DigFunction(
            self,
            construct_id,
            service=f"dig-connector-{self.manifest.name}",
            handler=job.handler,
            code=self._code,
            layer=self._layer,
            extra_layers=(*self._extra_layers, *extra_layers),
            environment={**self._environment, env.FILES_BUCKET_NAME: bucket.bucket_name},
            log_retention_days=self._settings.log_retention_days,
            timeout_seconds=job.timeout_seconds,
            memory_mb=job.memory_mb,
            ephemeral_storage_mb=job.ephemeral_storage_mb,
            description=f"DIG connector {self.manifest.name}: {job.description}"[:256],
        )
        if job.uses_connector_secrets:  # it calls the provider as the connector does (a poll, a reconciliation)
            for secret in self._connector_secrets:
                secret.grant_read(function)
        for index, secret_setting in enumerate(job.secrets):
            name = str(self.node.try_get_context(secret_setting.context_key) or secret_setting.default_name)
            secret = secretsmanager.Secret.from_secret_name_v2(self, f"{construct_id}Secret{index}", name)
            function.add_environment(secret_setting.env, secret.secret_name)
            secret.grant_read(function)  # this job's alone
        audit = self._database.audit_table
        Database.grant(audit, function, "GetItem", "PutItem", "Query")
        if job.emits:  # a poll of the provider's feed: inbound events recorded in batches, on the bus,
            # and the state of what it polls for moved on (a payout's status)
            Database.grant(audit, function, "BatchGetItem", "BatchWriteItem", "UpdateItem")
            self._bus.grant_put_events_to(function)
        Database.grant(self._database.config_table, function, "GetItem")
        self._grant_extracts(function, bucket)
        prefix = job.state_prefix(self.manifest.name)
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject"], resources=[bucket.arn_for_objects(f"{prefix}*")]
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
            )
        )
        acknowledged = [f"Resource::<{self._bucket_logical_id(bucket)}.Arn>/{prefix}*"]
        named = {s.env: str(self.node.try_get_context(s.context_key) or s.default) for s in self.manifest.settings}
        destination = named.get(job.writes_bucket_setting or "", "")
        if destination:
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["s3:PutObject", "s3:AbortMultipartUpload"], resources=[f"arn:aws:s3:::{destination}/*"]
                )
            )
            acknowledged.append(f"Resource::arn:aws:s3:::{destination}/*")
        role = named.get(job.assumes_role_setting or "", "")
        if role:
            function.add_to_role_policy(iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[role]))
        key = named.get(job.kms_key_setting or "", "")
        if key:
            function.add_to_role_policy(
                # Decrypt too: S3 reads a multipart upload's encrypted parts back to complete it.
                iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt"], resources=[key])
            )
        cdk.Validations.of(function.role or function).acknowledge(  # type: ignore[arg-type]
            *[
                cdk.Acknowledgment(
                    id=f"AwsSolutions::AwsSolutions-IAM5[{resource}]",
                    reason=f"The {job.name} job's objects: its state under its own prefix, its day's files",
                )
                for resource in acknowledged
            ]
        )
        # A role of its own, allowed to invoke the function only (the default target role also allows
        # every version of it, "<arn>:*").
        invoker = iam.Role(
            self,
            f"{construct_id}ScheduleRole",
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"),
            description=f"EventBridge Scheduler: invokes the {self.manifest.name} {job.name} job",
        )
        invoker.add_to_policy(iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[function.function_arn]))
        # The L1 schedule: the L2 target grants its role every version of the function too.
        scheduler.CfnSchedule(
            self,
            f"{construct_id}Schedule",
            description=f"Every {job.every_minutes} minutes: {job.description}"[:512],
            schedule_expression=f"rate({job.every_minutes} minutes)",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=function.function_arn,
                role_arn=invoker.role_arn,
                input="{}",
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(maximum_retry_attempts=0),
            ),
        )
        self._observability.watch_function(f"{self.manifest.name.title()}{construct_id}", function)
        if job.reports_lateness:
            self._observability.watch_job(self.manifest.name, job.name)
        return function

    def _bucket_logical_id(self, bucket: s3.IBucket) -> str:
        return Stack.of(self).get_logical_id(bucket.node.default_child)  # type: ignore[arg-type]

    def _grant_extracts(self, function: lambda_.Function, bucket: s3.IBucket) -> None:
        """Read access to the validated rows of the extracts the manifest names, and nothing else."""
        for name in self.manifest.extracts:
            prefix = f"{EXTRACTS_PREFIX}{name}/"
            function.add_to_role_policy(
                iam.PolicyStatement(actions=["s3:GetObject"], resources=[bucket.arn_for_objects(f"{prefix}*")])
            )
            logical_id = self._bucket_logical_id(bucket)
            cdk.Validations.of(function.role or function).acknowledge(  # type: ignore[arg-type]
                cdk.Acknowledgment(
                    id=f"AwsSolutions::AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/{prefix}*]",
                    reason=f"The {name} extract's validated rows, one prefix per file",
                )
            )
