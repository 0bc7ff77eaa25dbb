"""The batch-file flow's records, in the audit table: one item per file, its state and counts.

  pk              sk     what
  FILE#<fileId>   FILE   the file: what was declared, who uploaded it, its status, counts, timings

Listed newest first through the byConnectorStatus index (``FILES``, ``<createdAt>#<fileId>``): files
are few (a handful a day), so one partition holds them all. The status only moves forward
(``advance``), each move a conditional write, so that two executions for one upload cannot both
process it, and a finished file is never reopened except by an operator's run (``reopen``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from db.records import epoch_after, iso, parse_iso, utc_now
from db.table import Table, from_item, is_conditional_failure, to_item
from dig_contracts.files import FileCounts, FileStatus

FILES_PARTITION = "FILES"
FILE_SK = "FILE"


def file_pk(file_id: str) -> str:
    return f"FILE#{file_id}"


class FileRecord(BaseModel):
    fileId: str
    kind: str
    name: str | None = None
    format: str
    compression: str
    sha256: str
    contentLength: int
    status: FileStatus = FileStatus.AWAITING_UPLOAD
    client: str | None = None
    createdAt: str
    uploadedAt: str | None = None
    processingStartedAt: str | None = None
    completedAt: str | None = None
    chunks: int | None = None
    counts: FileCounts = Field(default_factory=FileCounts)
    failureCode: str | None = None
    failureMessage: str | None = None
    runs: int = 0


class FileStore:
    def __init__(self, table: Table, *, retention_days: int = 90) -> None:
        self._table = table
        self._retention_days = retention_days

    @property
    def table(self) -> Table:
        return self._table

    def get(self, file_id: str) -> FileRecord | None:
        answer = self._table.call("get_item", Key=_key(file_id), ConsistentRead=True)
        return _record(answer["Item"]) if "Item" in answer else None

    def create(self, record: FileRecord) -> FileRecord | None:
        """Record a new file; None when the id exists (the same file was declared before)."""
        from botocore.exceptions import ClientError

        item = {
            **_key(record.fileId),
            **to_item(
                {
                    "doc": record.model_dump_json(exclude={"status"}),
                    "status": record.status.value,
                    "gsiStatusPk": FILES_PARTITION,
                    "gsiStatusSk": f"{record.createdAt}#{record.fileId}",
                    "expiresAt": epoch_after(utc_now(), self._retention_days),
                }
            ),
        }
        try:
            self._table.call("put_item", Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as error:
            if is_conditional_failure(error):
                return None
            raise
        return record

    def advance(
        self, file_id: str, to: FileStatus, *, allowed_from: Iterable[FileStatus], **changes: Any
    ) -> FileRecord | None:
        """Move the file to ``to`` if it stands in one of ``allowed_from``, applying ``changes`` to its
        record; the record as it now stands, or None when the move was refused."""
        from botocore.exceptions import ClientError

        current = self.get(file_id)
        if current is None or current.status not in set(allowed_from):
            return None
        updated = current.model_copy(update={"status": to, **changes})
        try:
            self._table.call(
                "update_item",
                Key=_key(file_id),
                UpdateExpression="SET #status = :to, doc = :doc",
                ConditionExpression="#status = :from",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=to_item(
                    {
                        ":to": to.value,
                        ":from": current.status.value,
                        ":doc": updated.model_dump_json(exclude={"status"}),
                    }
                ),
            )
        except ClientError as error:
            if is_conditional_failure(error):  # another execution moved it first
                return None
            raise
        return updated

    def recent(self, limit: int = 20) -> list[FileRecord]:
        answer = self._table.call(
            "query",
            IndexName="byConnectorStatus",
            KeyConditionExpression="gsiStatusPk = :files",
            ExpressionAttributeValues={":files": {"S": FILES_PARTITION}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [_record(item) for item in answer.get("Items", [])]


def _key(file_id: str) -> dict[str, Any]:
    return {"pk": {"S": file_pk(file_id)}, "sk": {"S": FILE_SK}}


def _record(item: dict[str, Any]) -> FileRecord:
    plain = from_item(item)
    return FileRecord.model_validate_json(plain["doc"]).model_copy(update={"status": FileStatus(plain["status"])})


def now_iso(moment: datetime | None = None) -> str:
    return iso(moment or utc_now())


def seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((parse_iso(end) - parse_iso(start)).total_seconds(), 1)
