"""The database module: the audit table and the configuration table, from db.schema."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from db.schema import AUDIT_TABLE, CONFIG_TABLE, Index, Key, TableSpec

_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER, "B": dynamodb.AttributeType.BINARY}


def _attribute(key: Key) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=key.name, type=_TYPES[key.type])


# What accepting events asks of the audit table (dig_api.ingest, db.audit): whether they are recorded
# (BatchGetItem), their records (BatchWriteItem; PutItem over a refused one), the synchronous flow's
# lease (GetItem, PutItem, UpdateItem).
INGEST_ACTIONS = ("BatchGetItem", "BatchWriteItem", "PutItem", "UpdateItem", "GetItem")


class Database(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, point_in_time_recovery: bool = True) -> None:
        super().__init__(scope, construct_id)
        self._pitr = point_in_time_recovery
        self.audit_table = self._table(AUDIT_TABLE)
        self.config_table = self._table(CONFIG_TABLE)

    @staticmethod
    def grant(
        table: dynamodb.ITable, grantee: iam.IGrantable, *actions: str, indexes: tuple[str, ...] = ()
    ) -> iam.Grant:
        """``actions`` on the table, and on the named indexes only. (Table.grant() adds every index
        through a wildcard; the audit trail's writers never query an index.)"""
        resources = [table.table_arn, *(f"{table.table_arn}/index/{name}" for name in indexes)]
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=[f"dynamodb:{action}" for action in actions], resource_arns=resources
        )

    @staticmethod
    def grant_query(table: dynamodb.ITable, grantee: iam.IGrantable, index: str) -> iam.Grant:
        """Query on one index only, not on the table."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["dynamodb:Query"], resource_arns=[f"{table.table_arn}/index/{index}"]
        )

    def _table(self, spec: TableSpec) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            spec.logical_id,
            partition_key=_attribute(spec.partition_key),
            sort_key=_attribute(spec.sort_key),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=self._pitr
            ),
            time_to_live_attribute=spec.ttl_attribute,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        for index in spec.indexes:
            table.add_global_secondary_index(**_index(index))
        if not self._pitr:
            cdk.Validations.of(table).acknowledge(
                cdk.Acknowledgment(
                    id="AwsSolutions::AwsSolutions-DDB3",
                    reason="Point-in-time recovery switched off by the deployment (context pointInTimeRecovery=false)",
                )
            )
        return table


def _index(index: Index) -> dict[str, object]:
    projection: dict[str, object]
    if isinstance(index.projection, tuple):
        projection = {"projection_type": dynamodb.ProjectionType.INCLUDE, "non_key_attributes": list(index.projection)}
    else:
        projection = {"projection_type": dynamodb.ProjectionType[index.projection]}
    return {
        "index_name": index.name,
        "partition_key": _attribute(index.partition_key),
        "sort_key": _attribute(index.sort_key),
        **projection,
    }
