"""Wiring: the services the routes use, built once per container, and swappable for tests.

Routes call ``providers.ingest()`` and ``providers.sync()``; a test (or the local stack) replaces
a provider with a function returning a service built on fakes. (Powertools' ``Depends`` would do
the same, but it re-evaluates type hints on every request: about 0.9 ms each.)

boto3 is imported here, on first use, not when the handler module loads; under SnapStart ``warm``
builds the services while Lambda snapshots, and ``refresh`` drops them after a restore
(dig_contracts.snapstart).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, partial
from typing import TYPE_CHECKING

from dig_contracts import environment as env
from dig_contracts import snapstart

if TYPE_CHECKING:
    from dig_api.files.processing import FileSteps
    from dig_api.files.service import FileService
    from dig_api.inbound import InboundService
    from dig_api.ingest import IngestService
    from dig_api.sync import SyncService


INGEST_PARALLELISM = 16


@cache
def boto_config() -> object:
    from botocore.config import Config

    # The API must answer well inside API Gateway's 29 s: short timeouts, a few quick retries; and a
    # connection per thread of a batch's parallel audit writes (IngestService's parallelism).
    return Config(
        connect_timeout=2,
        read_timeout=5,
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=INGEST_PARALLELISM,
    )


@cache
def ingest_service() -> IngestService:
    from db.audit import DynamoAuditStore, Retention
    from dig_api.ingest import IngestService
    from dig_contracts.publisher import EventBridgePublisher

    session = snapstart.session()
    retention = Retention(
        delivered_days=int(os.environ.get(env.AUDIT_RETENTION_DAYS, "30")),
        failed_days=int(os.environ.get(env.AUDIT_FAILED_RETENTION_DAYS, "90")),
    )
    audit = DynamoAuditStore(
        session.client("dynamodb", config=boto_config()), os.environ[env.AUDIT_TABLE_NAME], retention
    )
    publisher = EventBridgePublisher(session.client("events", config=boto_config()), os.environ[env.EVENT_BUS_NAME])
    return IngestService(audit, publisher, parallelism=INGEST_PARALLELISM)


@cache
def sync_service() -> SyncService:
    from botocore.config import Config

    from dig_api.sync import LambdaInvoker, SyncService, parse_sync_connectors

    connectors = parse_sync_connectors(os.environ.get(env.SYNC_CONNECTORS, "{}"))
    # The connector's sync function has 25 s; the API 28 s: one attempt, no SDK retry.
    lambda_client = snapstart.session().client(
        "lambda", config=Config(connect_timeout=2, read_timeout=26, retries={"total_max_attempts": 1})
    )
    service = providers.ingest()
    return SyncService(service, service.audit, LambdaInvoker(lambda_client, connectors), connectors)


@cache
def s3_files() -> object:
    from botocore.config import Config

    from dig_api.files.storage import S3Files

    # SigV4 presigned URLs (S3 refuses SigV2 in most regions), the regional endpoint.
    config = Config(signature_version="s3v4", retries={"mode": "standard", "max_attempts": 5})
    return S3Files(snapstart.session().client("s3", config=config), os.environ[env.FILES_BUCKET_NAME])


@cache
def file_store() -> object:
    from db.files import FileStore
    from db.table import Table

    client = snapstart.session().client("dynamodb", config=boto_config())
    retention = int(os.environ.get(env.AUDIT_FAILED_RETENTION_DAYS, "90"))
    return FileStore(Table(client, os.environ[env.AUDIT_TABLE_NAME]), retention_days=retention)


@cache
def file_service() -> FileService:
    from dig_api.files.service import FileService

    return FileService(file_store(), s3_files())  # type: ignore[arg-type]


@cache
def file_steps() -> FileSteps:
    from db.file_gate import FileGate
    from dig_api.files.processing import FileSteps

    ingest = providers.ingest()
    store = file_store()
    from db.contacts import DynamoContactStore

    gate = FileGate(store.table, limit=int(os.environ.get(env.FILES_AT_ONCE, "2")))  # type: ignore[attr-defined]
    contacts = DynamoContactStore(
        store.table,  # type: ignore[attr-defined]
        retention_days=int(os.environ.get(env.CONTACT_RETENTION_DAYS, "400")),
    )
    return FileSteps(s3_files(), store, ingest, ingest.publisher, gate=gate, contacts=contacts)  # type: ignore[arg-type]


@cache
def inbound_service() -> InboundService:
    import json

    from aws_lambda_powertools.utilities.parameters import get_secret

    from db.inbound_feed import InboundFeed
    from db.receipts import ReceiptStore
    from db.table import Table
    from dig_api.inbound import FunctionInvoke, InboundService, no_functions, parse_sources

    table = Table(snapstart.session().client("dynamodb", config=boto_config()), os.environ[env.AUDIT_TABLE_NAME])
    retention = int(os.environ.get(env.AUDIT_RETENTION_DAYS, "30"))

    def secret(name: str) -> str:
        return str(json.loads(str(get_secret(name, max_age=300)))["secret"])

    sources = parse_sources(os.environ.get(env.INBOUND_SOURCES, "{}"))
    invoke: FunctionInvoke = no_functions
    if any(spec.function for specs in sources.values() for spec in specs.values()):
        from botocore.config import Config

        from dig_api.sync import invoke_function

        # The connector's sync function has 25 s; the API 28 s: one attempt, no SDK retry.
        client = snapstart.session().client(
            "lambda", config=Config(connect_timeout=2, read_timeout=26, retries={"total_max_attempts": 1})
        )
        invoke = partial(invoke_function, client)
    return InboundService(
        sources,
        secret,
        ReceiptStore(table, retention_days=retention),
        providers.ingest().publisher,
        InboundFeed(table, retention_days=retention),
        invoke=invoke,
    )


BUILDERS = (ingest_service, inbound_service, sync_service, s3_files, file_store, file_service, file_steps)


def warm() -> None:
    """The API's services, built (imports, clients; no request made): SnapStart's snapshot holds them."""
    providers.ingest()
    providers.sync()
    providers.files()


def refresh() -> None:
    """After a restore: the services are built again on first use, with fresh credentials and connections."""
    for builder in BUILDERS:
        builder.cache_clear()


def callback_key() -> str | None:
    """The key that signs provider callback URLs (None when the stack has no callbacks)."""
    arn = os.environ.get(env.CALLBACK_KEY_SECRET_ARN)
    if not arn:
        return None
    import json

    from aws_lambda_powertools.utilities.parameters import get_secret

    return str(json.loads(str(get_secret(arn, max_age=300)))["key"])


@dataclass
class Providers:
    ingest: Callable[[], IngestService] = field(default=ingest_service)
    sync: Callable[[], SyncService] = field(default=sync_service)
    callback_key: Callable[[], str | None] = field(default=callback_key)
    files: Callable[[], FileService] = field(default=file_service)
    file_steps: Callable[[], FileSteps] = field(default=file_steps)
    inbound: Callable[[], InboundService] = field(default=inbound_service)

    def reset(self) -> None:
        self.inbound = inbound_service
        self.ingest = ingest_service
        self.sync = sync_service
        self.callback_key = callback_key
        self.files = file_service
        self.file_steps = file_steps


providers = Providers()
