"""The least-privilege policy an operator needs for ``dig audit``, ``dig replay``, ``dig config``,
``dig status`` and ``dig member forget``: read the audit trail, mark replayed deliveries and erase a
member's data (UpdateItem, never DeleteItem), send to the connectors' own queues, read their depths
and the stack's alarms, manage the connectors' configuration, and read the stack's outputs. Attach
it to the operators' role."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from db.schema import AUDIT_TABLE, OPERATOR_WRITABLE_KEYS
from dig_contracts.files import WORK_PREFIX
from infra.database import Database

if TYPE_CHECKING:
    from infra.connector import ConnectorModule
    from infra.files import FileFlow


class OperatorAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        database: Database,
        connectors: Sequence[ConnectorModule],
        files: FileFlow | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description="DIG operators: audit queries, replay through connector queues, connector configuration",
        )
        Database.grant(
            database.audit_table,
            self.policy,
            "GetItem",
            "BatchGetItem",
            "Query",
            # `dig audit list --event-type` of a type the byEventType index does not hold: bounded.
            "Scan",
            indexes=tuple(index.name for index in AUDIT_TABLE.indexes),
        )
        # Writes: UpdateItem only (no PutItem, BatchWriteItem or DeleteItem), on the items replay and
        # erasure change, and every one the CLI makes is conditioned (tests/unit/test_operator_writes.py).
        self.policy.add_statements(
            iam.PolicyStatement(
                sid="ReplayAndEraseByConditionedUpdates",
                actions=["dynamodb:UpdateItem"],
                resources=[database.audit_table.table_arn],
                # The core's keys, and those a connector's own erasure updates (its manifest's member_erasure).
                conditions={
                    "ForAllValues:StringLike": {
                        "dynamodb:LeadingKeys": [
                            *OPERATOR_WRITABLE_KEYS,
                            *(
                                key
                                for c in connectors
                                if c.manifest.member_erasure
                                for key in c.manifest.member_erasure.keys
                            ),
                        ]
                    }
                },
            )
        )
        Database.grant(database.config_table, self.policy, "GetItem", "Query", "PutItem", "ConditionCheckItem")
        self.policy.add_statements(
            iam.PolicyStatement(
                sid="ResolveTheStack",
                actions=["cloudformation:DescribeStacks"],
                resources=[stack.stack_id],
            ),
        )
        self.policy.add_statements(
            iam.PolicyStatement(
                sid="SeeTheStacksAlarms",  # dig status
                actions=["cloudwatch:DescribeAlarms"],
                resources=[
                    stack.format_arn(
                        service="cloudwatch",
                        resource="alarm",
                        resource_name=f"{stack.stack_name}-*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            ),
            iam.PolicyStatement(
                sid="ReadQueueAges",  # dig status: SQS publishes the oldest message's age only as a metric
                actions=["cloudwatch:GetMetricStatistics"],
                resources=["*"],  # CloudWatch has no resource-level permissions for reading metrics
            ),
        )
        for finding, reason in (
            ("Resource::*", "cloudwatch:GetMetricStatistics has no resource-level permissions"),
            (
                f"Resource::arn:<AWS::Partition>:cloudwatch:<AWS::Region>:<AWS::AccountId>:alarm:{stack.stack_name}-*",
                "this stack's alarms, whose names CloudFormation generates from the stack name",
            ),
        ):
            cdk.Validations.of(self.policy).acknowledge(
                cdk.Acknowledgment(id=f"AwsSolutions::AwsSolutions-IAM5[{finding}]", reason=reason)
            )
        for connector in connectors:
            connector.queue.grant_send_messages(self.policy)
            for queue in (connector.queue, connector.target_dead_letter_queue):
                queue.grant(self.policy, "sqs:GetQueueAttributes")
            connector.dead_letter_queue.grant(
                self.policy,
                "sqs:ReceiveMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
                "sqs:DeleteMessage",
            )
            for job in connector.jobs.values():  # dig feed run: a day built again, by the job's own function
                self.policy.add_statements(
                    iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[job.function_arn])
                )
        if files is not None:
            self._files(files)

    def _files(self, files: FileFlow) -> None:
        """``dig files retry`` starts the state machine again; ``dig audit list --file`` reads the
        file's per-chunk results (which lines became which messages)."""
        files.state_machine.grant_start_execution(self.policy)
        self.policy.add_statements(
            iam.PolicyStatement(
                sid="ReadFileResults",
                actions=["s3:GetObject"],
                resources=[files.bucket.arn_for_objects(f"{WORK_PREFIX}*")],
            ),
            iam.PolicyStatement(
                sid="ListFileResults",
                actions=["s3:ListBucket"],
                resources=[files.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{WORK_PREFIX}*"]}},
            ),
        )
        logical_id = Stack.of(self).get_logical_id(files.bucket.node.default_child)  # type: ignore[arg-type]
        cdk.Validations.of(self.policy).acknowledge(
            cdk.Acknowledgment(
                id=f"AwsSolutions::AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/{WORK_PREFIX}*]",
                reason="A file's results, one key per chunk under its fileId",
            )
        )
