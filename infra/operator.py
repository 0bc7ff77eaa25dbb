"""The least-privilege policy an operator needs for ``dig audit``, ``dig replay`` and ``dig config``:
read the audit trail, mark replayed deliveries, send to the connectors' own queues, manage the
connectors' configuration, and read the stack's outputs. Attach it to the operators' role."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from db.schema import AUDIT_TABLE
from infra.database import Database

if TYPE_CHECKING:
    from infra.connector import ConnectorModule


class OperatorAccess(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, database: Database, connectors: Sequence[ConnectorModule]
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
            "PutItem",
            "UpdateItem",
            indexes=tuple(index.name for index in AUDIT_TABLE.indexes),
        )
        Database.grant(database.config_table, self.policy, "GetItem", "Query", "PutItem", "ConditionCheckItem")
        self.policy.add_statements(
            iam.PolicyStatement(
                sid="ResolveTheStack",
                actions=["cloudformation:DescribeStacks"],
                resources=[stack.stack_id],
            ),
        )
        for connector in connectors:
            connector.queue.grant_send_messages(self.policy)
            connector.dead_letter_queue.grant(
                self.policy,
                "sqs:ReceiveMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
                "sqs:DeleteMessage",
            )
