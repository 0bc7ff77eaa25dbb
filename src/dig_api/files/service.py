"""The batch-file routes' logic: declare a file (and get where to upload it), read its status, list
recent files. No HTTP here (dig_api.handler), no boto3 (dig_api.files.storage, db.files)."""

from __future__ import annotations

import base64
import logging
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from db.files import FileRecord, FileStore, now_iso, seconds_between
from dig_api.errors import ErrorDetail, ServiceUnavailable, ValidationFailed
from dig_api.files.storage import S3Files
from dig_api.ingest import Caller
from dig_contracts.events import require_number
from dig_contracts.extracts import EXTRACTS
from dig_contracts.files import (
    MAX_FILE_BYTES,
    MULTIPART_PART_BYTES,
    MULTIPART_THRESHOLD_BYTES,
    REPORT_URL_SECONDS,
    UPLOAD_URL_SECONDS,
    Compression,
    FileCounts,
    FileFormat,
    FileKind,
    FileStatus,
    file_id_for,
    report_key,
    results_prefix,
    upload_key,
)

logger = logging.getLogger(__name__)


def _per_kind(schema: dict[str, Any]) -> None:
    """What problems() checks, said in the schema, one complete schema per kind: an events file is JSON
    lines and has no name; an extract names one of the extracts."""
    base = {key: schema.pop(key) for key in ("properties", "required", "additionalProperties", "type")}

    def branch(title: str, changes: dict[str, Any], required: list[str]) -> dict[str, Any]:
        properties = {**base["properties"], **changes}
        return {**base, "title": title, "properties": properties, "required": [*base["required"], *required]}

    schema["oneOf"] = [
        branch(
            "EventsFile",
            {"kind": {"const": "events"}, "format": {"const": "jsonl", "default": "jsonl"}, "name": {"type": "null"}},
            [],
        ),
        branch("ExtractFile", {"kind": {"const": "extract"}, "name": {"enum": list(EXTRACTS)}}, ["name"]),
    ]


class FileDeclaration(BaseModel):
    """What ES Loyalty is about to upload."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_per_kind)

    kind: FileKind
    name: str | None = Field(default=None, description="The extract's name (kind extract only): " + ", ".join(EXTRACTS))
    format: FileFormat = FileFormat.JSONL
    compression: Compression = Compression.NONE
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the bytes to upload, lowercase hex")
    # A JSON number, never true or "12" (as every whole number DIG takes: dig_contracts.events).
    contentLength: Annotated[int, BeforeValidator(require_number)] = Field(
        ge=1, le=MAX_FILE_BYTES, description="Bytes to upload (compressed size for gzip)"
    )

    def problems(self) -> list[ErrorDetail]:
        """What the schema cannot say: the fields that must agree with one another."""
        details = []
        if self.kind is FileKind.EXTRACT and self.name not in EXTRACTS:
            details.append(ErrorDetail(field="name", rule="must name an extract: " + ", ".join(EXTRACTS)))
        if self.kind is FileKind.EVENTS and self.name is not None:
            details.append(ErrorDetail(field="name", rule="only extract files have a name"))
        if self.kind is FileKind.EVENTS and self.format is FileFormat.CSV:
            details.append(ErrorDetail(field="format", rule="events files are JSON lines (jsonl)"))
        return details


class UploadInstructions(BaseModel):
    method: Literal["PUT", "MULTIPART"]
    url: str | None = Field(default=None, description="PUT the file's bytes here (method PUT)")
    headers: dict[str, str] = Field(description="Headers to send with the PUT, exactly")
    expiresAt: str
    uploadId: str | None = None
    partBytes: int | None = Field(default=None, description="MULTIPART: each part but the last is this long")
    parts: list[dict[str, Any]] | None = Field(
        default=None, description="MULTIPART: PUT bytes [start, end) to each url; keep each answer's ETag"
    )
    completeUrl: str | None = Field(
        default=None, description="MULTIPART: POST the CompleteMultipartUpload XML (part numbers and ETags) here"
    )


class FileDeclared(BaseModel):
    fileId: str
    status: FileStatus
    duplicate: bool = Field(description="The same file was declared before: nothing to upload, see its status")
    upload: UploadInstructions | None = None


class FileTimings(BaseModel):
    createdAt: str
    uploadedAt: str | None = None
    processingStartedAt: str | None = None
    completedAt: str | None = None
    seconds: float | None = Field(default=None, description="From upload to completion")


class FileProgress(BaseModel):
    chunks: int
    chunksDone: int


class FileFailureView(BaseModel):
    code: str
    message: str


class FileReport(BaseModel):
    url: str = Field(description="The rejected lines, CSV: line, id, code, field, rule (never a submitted value)")
    expiresAt: str


class FileView(BaseModel):
    fileId: str
    kind: FileKind
    name: str | None = None
    format: FileFormat
    compression: Compression
    contentLength: int
    status: FileStatus
    counts: FileCounts
    progress: FileProgress | None = None
    timings: FileTimings
    failure: FileFailureView | None = None
    report: FileReport | None = None


class FileList(BaseModel):
    files: list[FileView]


class FileService:
    def __init__(
        self,
        files: FileStore,
        storage: S3Files,
        *,
        multipart_threshold: int = MULTIPART_THRESHOLD_BYTES,
        part_bytes: int = MULTIPART_PART_BYTES,
    ) -> None:
        self._files = files
        self._storage = storage
        self._threshold = multipart_threshold
        self._part_bytes = part_bytes

    def declare(self, declaration: FileDeclaration, caller: Caller) -> FileDeclared:
        problems = declaration.problems()
        if problems:
            raise ValidationFailed("the file declaration is not consistent", problems)
        file_id = file_id_for(
            declaration.kind,
            declaration.name,
            declaration.format,
            declaration.compression,
            declaration.sha256,
            declaration.contentLength,
        )
        record = FileRecord(
            fileId=file_id,
            kind=declaration.kind.value,
            name=declaration.name,
            format=declaration.format.value,
            compression=declaration.compression.value,
            sha256=declaration.sha256,
            contentLength=declaration.contentLength,
            client=caller.client_id,
            createdAt=now_iso(),
        )
        created = self._guard(lambda: self._files.create(record))
        if created is None:
            existing = self._guard(lambda: self._files.get(file_id))
            assert existing is not None
            # Not uploaded yet, or refused as uploaded (a bad checksum, a broken gzip): upload again.
            again = existing.status is FileStatus.AWAITING_UPLOAD or (
                existing.status is FileStatus.FAILED and existing.chunks is None
            )
            if not again:
                return FileDeclared(fileId=file_id, status=existing.status, duplicate=True)
            if existing.status is FileStatus.FAILED:
                self._guard(
                    lambda: self._files.advance(
                        file_id, FileStatus.AWAITING_UPLOAD, allowed_from={FileStatus.FAILED}, uploadedAt=None
                    )
                )
        upload = self._storage.presign_upload(
            upload_key(file_id),
            sha256_b64=base64.b64encode(bytes.fromhex(declaration.sha256)).decode(),
            length=declaration.contentLength,
            expires_in=UPLOAD_URL_SECONDS,
            threshold=self._threshold,
            part_bytes=self._part_bytes,
        )
        logger.info("file declared", extra={"fileId": file_id, "kind": declaration.kind, "bytes": record.contentLength})
        return FileDeclared(
            fileId=file_id,
            status=FileStatus.AWAITING_UPLOAD,
            duplicate=False,
            upload=UploadInstructions.model_validate(upload.document()),
        )

    def view(self, file_id: str) -> FileView | None:
        record = self._guard(lambda: self._files.get(file_id))
        return None if record is None else self._view(record, detailed=True)

    def recent(self, limit: int) -> FileList:
        records = self._guard(lambda: self._files.recent(limit))
        return FileList(files=[self._view(r, detailed=False) for r in records])

    def _view(self, record: FileRecord, *, detailed: bool) -> FileView:
        progress = None
        if detailed and record.status is FileStatus.PROCESSING and record.chunks is not None:
            done = sum(1 for _ in self._storage.keys(results_prefix(record.fileId)))
            progress = FileProgress(chunks=record.chunks, chunksDone=min(done, record.chunks))
        report = None
        if detailed and record.status.final and record.counts.rejected:
            url, expires = self._storage.presign_download(report_key(record.fileId), REPORT_URL_SECONDS)
            report = FileReport(url=url, expiresAt=expires)
        failure = (
            FileFailureView(code=record.failureCode, message=record.failureMessage or "")
            if record.failureCode
            else None
        )
        return FileView(
            fileId=record.fileId,
            kind=FileKind(record.kind),
            name=record.name,
            format=FileFormat(record.format),
            compression=Compression(record.compression),
            contentLength=record.contentLength,
            status=record.status,
            counts=record.counts,
            progress=progress,
            timings=FileTimings(
                createdAt=record.createdAt,
                uploadedAt=record.uploadedAt,
                processingStartedAt=record.processingStartedAt,
                completedAt=record.completedAt,
                seconds=seconds_between(record.uploadedAt, record.completedAt),
            ),
            failure=failure,
            report=report,
        )

    @staticmethod
    def _guard(action: Any) -> Any:
        from db.table import TableUnavailable

        try:
            return action()
        except TableUnavailable as error:
            logger.error("audit table unavailable", extra={"error": str(error)})
            raise ServiceUnavailable("file records cannot be read or written right now; retry later") from None
