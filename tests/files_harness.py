"""The file-processing steps on moto (in process: no socket), driven the way the state machine
drives them (validate, the map's batches, finish), with the bus a fake that records what it got."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable
from typing import Any

import boto3

from db.audit import DynamoAuditStore
from db.contacts import DynamoContactStore
from db.files import FileRecord, FileStore, now_iso
from db.table import Table
from dig_api.files.processing import FileSteps
from dig_api.files.storage import S3Files
from dig_api.ingest import IngestService
from dig_contracts.files import CHUNKS_PER_BATCH, file_id_for, upload_key
from tests.aws import AUDIT, create_tables
from tests.fakes import FakePublisher

BUCKET = "test-files"
CHUNK_LINES = 10  # small chunks: many chunks and batches from a few lines (moto writes ~10 ms an event)


class FileHarness:
    def __init__(self) -> None:
        dynamodb = create_tables()
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        self.s3 = s3
        self.bus = FakePublisher()
        self.audit = DynamoAuditStore(dynamodb, AUDIT)
        self.files = FileStore(Table(dynamodb, AUDIT))
        self.storage = S3Files(s3, BUCKET)
        ingest = IngestService(self.audit, self.bus, parallelism=1)
        self.contacts = DynamoContactStore(Table(dynamodb, AUDIT))
        self.steps = FileSteps(
            self.storage, self.files, ingest, self.bus, chunk_lines=CHUNK_LINES, contacts=self.contacts
        )

    def declare(
        self,
        data: bytes,
        *,
        kind: str = "events",
        name: str | None = None,
        file_format: str = "jsonl",
        compression: str = "none",
        declared_sha256: str | None = None,
        declared_length: int | None = None,
    ) -> str:
        sha256 = declared_sha256 or hashlib.sha256(data).hexdigest()
        length = declared_length if declared_length is not None else len(data)
        file_id = file_id_for(kind, name, file_format, compression, sha256, length)
        record = FileRecord(
            fileId=file_id,
            kind=kind,
            name=name,
            format=file_format,
            compression=compression,
            sha256=sha256,
            contentLength=length,
            client="es-loyalty",
            createdAt=now_iso(),
        )
        self.files.create(record)
        return file_id

    def upload(self, file_id: str, data: bytes) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=upload_key(file_id), Body=data)

    def run(self, file_id: str, *, rerun: bool = False, skip_batches: Iterable[int] = ()) -> dict[str, Any]:
        """One execution; ``skip_batches``: child executions that fail after their retries."""
        validation = self.steps.validate(upload_key(file_id), rerun=rerun)
        if not validation["proceed"]:
            return validation
        for number, batch in enumerate(self.batches(validation)):
            if number not in set(skip_batches):
                self.steps.process(batch, validation["batchInput"])
        return self.steps.finish(file_id)

    def batches(self, validation: dict[str, Any]) -> list[list[dict[str, Any]]]:
        items = json.loads(self.s3.get_object(Bucket=BUCKET, Key=validation["chunksKey"])["Body"].read())
        return [items[i : i + CHUNKS_PER_BATCH] for i in range(0, len(items), CHUNKS_PER_BATCH)]

    def report(self, file_id: str) -> list[list[str]]:
        import csv
        import io

        from dig_contracts.files import report_key

        text = self.s3.get_object(Bucket=BUCKET, Key=report_key(file_id))["Body"].read().decode()
        return list(csv.reader(io.StringIO(text)))

    def published_event_ids(self) -> list[str]:
        return [d.event["eventId"] for d in self.bus.published]


def jsonl(documents: Iterable[Any]) -> bytes:
    return b"".join((d if isinstance(d, bytes) else json.dumps(d).encode()) + b"\n" for d in documents)


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)
