"""DIG's audit table under moto, for a connector's contract test of a store of its own (Kit.table)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from db.table import Table


@contextmanager
def moto_audit_table(name: str = "connector-test-audit") -> Iterator[Table]:
    """The audit table's schema, in moto's in-process DynamoDB, for as long as the block runs."""
    import boto3
    from moto import mock_aws

    from db.schema import AUDIT_TABLE

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(**AUDIT_TABLE.create_table_request(name))
        yield Table(client, name)
