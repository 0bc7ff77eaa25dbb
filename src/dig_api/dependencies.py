"""Wiring: the ingest service with its DynamoDB and EventBridge adapters, built once per container.

boto3 is imported here, on first use, not when the handler module loads.
"""

from __future__ import annotations

import os
from functools import cache

from dig_api.ingest import IngestService


@cache
def boto_config() -> object:
    from botocore.config import Config

    # The API must answer well inside API Gateway's 29 s: short timeouts, a few quick retries.
    return Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})


@cache
def ingest_service() -> IngestService:
    import boto3

    from db.audit import DynamoAuditStore, Retention
    from dig_api.publisher import EventBridgePublisher

    session = boto3.session.Session()
    retention = Retention(
        delivered_days=int(os.environ.get("AUDIT_RETENTION_DAYS", "30")),
        failed_days=int(os.environ.get("AUDIT_FAILED_RETENTION_DAYS", "90")),
    )
    audit = DynamoAuditStore(
        session.client("dynamodb", config=boto_config()), os.environ["AUDIT_TABLE_NAME"], retention
    )
    publisher = EventBridgePublisher(session.client("events", config=boto_config()), os.environ["EVENT_BUS_NAME"])
    return IngestService(audit, publisher)
