"""Tables created in moto (in process: no socket) from the same definitions the CDK app deploys."""

from __future__ import annotations

from typing import Any

import boto3

from db.schema import AUDIT_TABLE, CONFIG_TABLE

AUDIT = "test-audit"
CONFIG = "test-config"


def create_tables() -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(**AUDIT_TABLE.create_table_request(AUDIT))
    client.create_table(**CONFIG_TABLE.create_table_request(CONFIG))
    return client
