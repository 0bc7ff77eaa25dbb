"""Tables created in moto (in process: no socket) from the same definitions the CDK app deploys."""

from __future__ import annotations

import threading
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


class AtomicCalls:
    """Each DynamoDB call atomic, as the service guarantees (moto's in-process backend does not
    lock between threads, so two conditional writes could otherwise both pass)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def atomic(**kwargs: Any) -> Any:
            with self._lock:
                return method(**kwargs)

        return atomic
