"""The DIG API's batch-file flow: the files bucket, the state machine that processes an upload
(validate, a Distributed Map over chunks of lines, finish), its three functions, and the rule that
starts it when S3 reports an upload. The API presigns uploads into the bucket (dig_api.files)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from dig_contracts import environment as env
from dig_contracts import functions
from dig_contracts.files import (
    BATCH_RETRY_ATTEMPTS,
    CHUNKS_PER_BATCH,
    EXTRACTS_PREFIX,
    FILE_SLOT_WAIT_SECONDS,
    REPORTS_PREFIX,
    TOLERATED_FAILURE_PERCENT,
    UPLOADS_PREFIX,
    WORK_PREFIX,
)
from infra.bundling import function_code
from infra.database import INGEST_ACTIONS, Database
from infra.function import DigFunction, _retention
from infra.settings import Settings

# Where the map's ResultWriter keeps its record of each child execution (under the map run's id).
MAP_RESULTS_PREFIX = f"{WORK_PREFIX}map-results"
RESULT_WRITER_V2_FLAG = "@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2"


class FileFlow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        audit_table: dynamodb.ITable,
        bus: events.IEventBus,
        layer: lambda_.ILayerVersion,
        api_function: lambda_.Function,
    ) -> None:
        super().__init__(scope, construct_id)
        # The map's ResultWriterV2 renders only with this flag; set here, it holds for this construct alone.
        self.node.set_context(RESULT_WRITER_V2_FLAG, True)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireFiles",
                    expiration=Duration.days(settings.file_retention_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )
        cdk.Validations.of(self.bucket).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions::AwsSolutions-S1",
                reason="Every object is written through a presigned request the DIG API signed for one declared file, "
                "or by DIG's own functions; the file records and the state machine's logs say who and when. A server "
                "access log bucket would hold member-identifying request lines for no reader",
            )
        )

        # S3 reports uploads to EventBridge. Set on the bucket itself: event_bridge_enabled=True would
        # add CDK's notifications custom resource (a Lambda function with a managed-policy role).
        bucket = self.bucket.node.default_child
        assert isinstance(bucket, s3.CfnBucket)
        bucket.add_property_override("NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True)

        common_environment = {
            env.AUDIT_TABLE_NAME: audit_table.table_name,
            env.EVENT_BUS_NAME: bus.event_bus_name,
            env.FILES_BUCKET_NAME: self.bucket.bucket_name,
            env.AUDIT_RETENTION_DAYS: str(settings.audit_retention_days),
            env.AUDIT_FAILED_RETENTION_DAYS: str(settings.audit_failed_retention_days),
            env.FILES_AT_ONCE: str(settings.files_at_once),
            # memberAccounts rows fill the member contact store, kept as long as events keep it.
            env.CONTACT_RETENTION_DAYS: str(settings.member_contact_retention_days),
        }
        code = function_code("files", ("dig_api",))

        def function(name: str, spec: functions.FunctionSpec, description: str, *, timeout: int) -> DigFunction:
            return DigFunction(
                self,
                name,
                service="dig-files",
                handler=spec.handler,
                code=code,
                layer=layer,
                log_retention_days=settings.log_retention_days,
                timeout_seconds=timeout,
                memory_mb=spec.memory_mb,
                description=description,
                environment=common_environment,
            )

        self.validate_function = function(
            "Validate",
            functions.FILE_VALIDATE,
            "DIG files: checks an upload's size, checksum and gzip, and plans its chunks",
            timeout=900,
        )
        self.batch_function = function(
            "Batch",
            functions.FILE_BATCH,
            "DIG files: ingests one batch of a file's lines (events) or validates its rows (extracts)",
            timeout=300,
        )
        self.finish_function = function(
            "Finish",
            functions.FILE_FINISH,
            "DIG files: sums a file's results, writes its report, announces an extract",
            timeout=300,
        )
        self._grant(audit_table, bus, api_function)
        # Nobody else writes an upload, an administrator included: only a request the API presigned.
        assert api_function.role is not None
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="UploadsOnlyThroughTheApisPresignedRequests",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[self._objects(UPLOADS_PREFIX)],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": api_function.role.role_arn}},
            )
        )
        self.state_machine = self._state_machine(settings)
        self.rule, self.dead_letter_queue = self._start_on_upload()

    # --- permissions: each function its prefixes and actions, nothing more -------------------------

    def _objects(self, prefix: str) -> str:
        return self.bucket.arn_for_objects(f"{prefix}*")

    def _allow(self, function: iam.IGrantable, actions: list[str], resources: list[str]) -> None:
        assert function.grant_principal is not None
        iam.Grant.add_to_principal(grantee=function, actions=actions, resource_arns=resources)

    def _list(self, function: iam.IGrantable, prefix: str) -> None:
        function.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
            )
        )

    def _grant(self, audit_table: dynamodb.ITable, bus: events.IEventBus, api: lambda_.Function) -> None:
        # The API presigns uploads (PutObject covers the multipart calls) and report links, and counts
        # finished chunks for a file's progress.
        self._allow(api, ["s3:PutObject", "s3:AbortMultipartUpload"], [self._objects(UPLOADS_PREFIX)])
        self._allow(api, ["s3:GetObject"], [self._objects(REPORTS_PREFIX)])
        self._list(api, WORK_PREFIX)
        Database.grant_query(audit_table, api, "byConnectorStatus")

        validate = self.validate_function
        self._allow(validate, ["s3:GetObject"], [self._objects(UPLOADS_PREFIX)])
        self._allow(validate, ["s3:PutObject", "s3:AbortMultipartUpload"], [self._objects(WORK_PREFIX)])
        Database.grant(audit_table, validate, "GetItem", "UpdateItem")

        batch = self.batch_function
        self._allow(batch, ["s3:GetObject"], [self._objects(UPLOADS_PREFIX), self._objects(WORK_PREFIX)])
        self._allow(batch, ["s3:PutObject"], [self._objects(WORK_PREFIX), self._objects(EXTRACTS_PREFIX)])
        Database.grant(audit_table, batch, *INGEST_ACTIONS)
        bus.grant_put_events_to(batch)

        finish = self.finish_function
        self._allow(finish, ["s3:GetObject"], [self._objects(WORK_PREFIX)])
        self._list(finish, WORK_PREFIX)
        self._allow(finish, ["s3:PutObject", "s3:AbortMultipartUpload"], [self._objects(REPORTS_PREFIX)])
        Database.grant(audit_table, finish, "GetItem", "UpdateItem")
        bus.grant_put_events_to(finish)

        for grantee in (api, validate, batch, finish):
            cdk.Validations.of(grantee.role or grantee).acknowledge(  # type: ignore[arg-type]
                *[
                    cdk.Acknowledgment(
                        id=f"AwsSolutions::AwsSolutions-IAM5[Resource::<{self._bucket_logical_id()}.Arn>/{prefix}*]",
                        reason=f"Objects under {prefix}: one key per declared file, named by its fileId",
                    )
                    for prefix in (UPLOADS_PREFIX, WORK_PREFIX, REPORTS_PREFIX, EXTRACTS_PREFIX)
                ]
            )

    def _bucket_logical_id(self) -> str:
        return Stack.of(self).get_logical_id(self.bucket.node.default_child)  # type: ignore[arg-type]

    # --- the state machine ------------------------------------------------------------------------

    def _state_machine(self, settings: Settings) -> sfn.StateMachine:
        # No payload: a step's function gets the state's input as it stands.
        validate = tasks.LambdaInvoke(
            self,
            "ValidateUpload",
            lambda_function=self.validate_function,
            payload_response_only=True,
            result_path="$.validation",
            retry_on_service_exceptions=True,
        )
        process = tasks.LambdaInvoke(
            self,
            "ProcessBatch",
            lambda_function=self.batch_function,
            payload_response_only=True,
            retry_on_service_exceptions=True,
        )
        process.add_retry(
            errors=["ChunkNotDone", "States.TaskFailed", "States.Timeout"],
            interval=Duration.seconds(10),
            backoff_rate=2,
            max_attempts=BATCH_RETRY_ATTEMPTS,
        )
        chunks = sfn.DistributedMap(
            self,
            "ProcessChunks",
            item_reader=sfn.S3JsonItemReader(bucket=self.bucket, key=sfn.JsonPath.string_at("$.validation.chunksKey")),
            item_batcher=sfn.ItemBatcher(
                max_items_per_batch=CHUNKS_PER_BATCH,
                # Paths into the state's input (CDK renders BatchInput as given, so the ".$" is written here).
                batch_input={
                    "fileId.$": "$.validation.batchInput.fileId",
                    "sourceKey.$": "$.validation.batchInput.sourceKey",
                    "header.$": "$.validation.batchInput.header",
                },
            ),
            max_concurrency=settings.file_map_concurrency,  # per file; files at once: filesAtOnce
            tolerated_failure_percentage=TOLERATED_FAILURE_PERCENT,
            result_writer_v2=sfn.ResultWriterV2(bucket=self.bucket, prefix=MAP_RESULTS_PREFIX),
            result_path=sfn.JsonPath.DISCARD,
            map_execution_type=sfn.StateMachineType.STANDARD,
        )
        chunks.item_processor(process)

        def finish(name: str, map_error: bool) -> tasks.LambdaInvoke:
            payload = {"fileId": sfn.JsonPath.string_at("$.validation.fileId")}
            if map_error:
                payload["mapError"] = sfn.JsonPath.string_at("$.mapError.Error")
            step = tasks.LambdaInvoke(
                self,
                name,
                lambda_function=self.finish_function,
                payload=sfn.TaskInput.from_object(payload),
                payload_response_only=True,
                retry_on_service_exceptions=True,
            )
            step.add_retry(errors=["States.TaskFailed"], interval=Duration.seconds(10), backoff_rate=2, max_attempts=5)
            return step

        chunks.add_catch(
            finish("FinishFileAfterMapFailure", map_error=True), errors=["States.ALL"], result_path="$.mapError"
        )
        nothing_to_do = sfn.Succeed(self, "NothingToProcess", comment="Refused at validation, or another run has it")
        # At most filesAtOnce files are processed at once; the others wait here, and ask again in order.
        wait_for_slot = sfn.Wait(
            self, "WaitForSlot", time=sfn.WaitTime.duration(Duration.seconds(FILE_SLOT_WAIT_SECONDS))
        ).next(validate)
        # A validation step that fails past its retries (a timeout) still ends the file FAILED.
        failed_validation = tasks.LambdaInvoke(
            self,
            "FailFileAfterValidationFailure",
            lambda_function=self.finish_function,
            payload=sfn.TaskInput.from_object(
                {
                    "uploadKey": sfn.JsonPath.string_at("$.detail.object.key"),
                    "mapError": sfn.JsonPath.string_at("$.validationError.Error"),
                }
            ),
            payload_response_only=True,
            retry_on_service_exceptions=True,
        )
        validate.add_retry(errors=["States.TaskFailed"], interval=Duration.seconds(5), max_attempts=2)
        validate.add_catch(failed_validation, errors=["States.ALL"], result_path="$.validationError")
        definition = validate.next(
            sfn.Choice(self, "Proceed?")
            .when(sfn.Condition.boolean_equals("$.validation.proceed", True), chunks.next(finish("FinishFile", False)))
            .when(
                sfn.Condition.and_(
                    sfn.Condition.is_present("$.validation.wait"),
                    sfn.Condition.boolean_equals("$.validation.wait", True),
                ),
                wait_for_slot,
            )
            .otherwise(nothing_to_do)
        )
        machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=Duration.hours(24),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=logs.LogGroup(self, "StateMachineLogs", retention=_retention(settings.log_retention_days)),
                level=sfn.LogLevel.ALL,
                # States carry chunk ranges and counts, but never log what a step answered: no data at all.
                include_execution_data=False,
            ),
        )
        stack = Stack.of(self)

        def logical_id(construct: Construct) -> str:
            return stack.get_logical_id(construct.node.default_child)  # type: ignore[arg-type]

        executions = (
            'arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{"Fn::Select":[6,{"Fn::Split":'
            f'[":",{{"Ref":"{logical_id(machine)}"}}]}}]}}'
        )
        cdk.Validations.of(machine).acknowledge(
            *[
                cdk.Acknowledgment(
                    id=f"AwsSolutions::AwsSolutions-IAM5[Resource::<{logical_id(f)}.Arn>:*]",
                    reason="CDK's LambdaInvoke grants each version of the step's function (Arn:*)",
                )
                for f in (self.validate_function, self.batch_function, self.finish_function)
            ],
            cdk.Acknowledgment(
                id=f"AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::<{logical_id(self.bucket)}>/*]",
                reason="The map's item reader reads each file's chunk list (a key named by the fileId) and its result "
                "writer writes under the map run's id: keys known only at run time, in this bucket only",
            ),
            cdk.Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                reason="Active tracing: xray:PutTraceSegments and PutTelemetryRecords take no resource ARNs",
            ),
            cdk.Acknowledgment(
                id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{executions}:*]",
                reason="The Distributed Map starts and stops its own child executions, named at run time",
            ),
            cdk.Acknowledgment(
                id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{executions}/*:*]",
                reason="The Distributed Map's map runs and their executions, named at run time",
            ),
        )
        return machine

    def _start_on_upload(self) -> tuple[events.Rule, sqs.Queue]:
        dead_letters = sqs.Queue(
            self,
            "StartDeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        cdk.Validations.of(dead_letters).acknowledge(
            cdk.Acknowledgment(id="AwsSolutions::AwsSolutions-SQS3", reason="This queue is itself a dead-letter queue")
        )
        rule = events.Rule(
            self,
            "StartOnUpload",
            description="An upload completed in the files bucket: process it",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [self.bucket.bucket_name]},
                    "object": {"key": [{"prefix": UPLOADS_PREFIX}]},
                },
            ),
            targets=[
                targets.SfnStateMachine(
                    self.state_machine,
                    dead_letter_queue=dead_letters,
                    retry_attempts=185,
                    max_event_age=Duration.hours(24),
                )
            ],
        )
        return rule, dead_letters
