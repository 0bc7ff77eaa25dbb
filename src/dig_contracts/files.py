"""The batch-file flow's shared vocabulary: what a file is, its states, its limits, and the
``FILE_READY`` event an extract's processing puts on the bus for the connectors that map it.

A file is uploaded straight to S3 under ``uploads/<fileId>`` (a presigned request), processed by a
Step Functions state machine (validate, a Distributed Map over chunks of lines, finish), and its
results stay in the same bucket: ``work/<fileId>/`` (chunks, per-chunk results), ``reports/<fileId>/``
(rejected lines) and ``extracts/<name>/<fileId>/`` (an extract's validated rows).
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

FILES_SOURCE = "dig.files"
FILE_READY = "FILE_READY"


class FileKind(StrEnum):
    EVENTS = "events"  # each line an event envelope, ingested as POST /v1/events/batch ingests it
    EXTRACT = "extract"  # rows of a named data extract (dig_contracts.extracts), announced as FILE_READY


class FileFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


class Compression(StrEnum):
    GZIP = "gzip"
    NONE = "none"


class FileStatus(StrEnum):
    AWAITING_UPLOAD = "AWAITING_UPLOAD"
    VALIDATING = "VALIDATING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    COMPLETED_WITH_ERRORS = "COMPLETED_WITH_ERRORS"
    FAILED = "FAILED"

    @property
    def final(self) -> bool:
        return self in (FileStatus.COMPLETED, FileStatus.COMPLETED_WITH_ERRORS, FileStatus.FAILED)


# A line is one event or one row; the API refuses an event over 1 MB, the file flow a line over it.
MAX_LINE_BYTES = 1_000_000
# Lines per chunk: one chunk is what one POST /v1/events/batch may carry.
CHUNK_LINES = 500
# A chunk also ends at this many bytes, so that no chunk's lines outgrow the batch handler's memory.
CHUNK_MAX_BYTES = 8 * 1024 * 1024
# Chunks per child execution of the Distributed Map (its ItemBatcher): 1,000 lines per invocation.
CHUNKS_PER_BATCH = 2
# The map's child executions: a batch the bus or the table refused is tried this often (10 s, doubling),
# and the run stops above this share of failed children. The local file driver follows the same.
BATCH_RETRY_ATTEMPTS = 6
TOLERATED_FAILURE_PERCENT = 10
# Uploads larger than this are multipart: one presigned URL per part.
MULTIPART_THRESHOLD_BYTES = 100 * 1024 * 1024
MULTIPART_PART_BYTES = 64 * 1024 * 1024
MAX_FILE_BYTES = 50 * 1024**3  # 800 parts; the validate step reads it well within Lambda's 15 minutes
# A gzip upload decoding to more than this, or more than MAX_GZIP_RATIO times its compressed size past
# the first GZIP_RATIO_GRACE_BYTES, is a gzip bomb: FAILED (GZIP_BOMB) as soon as it passes.
MAX_DECODED_BYTES = 200 * 1024**3
MAX_GZIP_RATIO = 100
GZIP_RATIO_GRACE_BYTES = 64 * 1024**2
FILE_SLOT_WAIT_SECONDS = 60  # a file waiting for a slot asks again this often (within 24 h: 1,440 loops)
MAX_FILE_LINES = 50_000_000  # 100,000 chunks of 500: the map's child executions stay countable
UPLOAD_URL_SECONDS = 3600
REPORT_URL_SECONDS = 900

UPLOADS_PREFIX = "uploads/"
WORK_PREFIX = "work/"
REPORTS_PREFIX = "reports/"
EXTRACTS_PREFIX = "extracts/"


def upload_key(file_id: str) -> str:
    return f"{UPLOADS_PREFIX}{file_id}"


def file_id_from_key(key: str) -> str:
    return key.removeprefix(UPLOADS_PREFIX)


def plain_key(file_id: str) -> str:
    """The decompressed copy of a gzip upload, which the chunks address by byte range."""
    return f"{WORK_PREFIX}{file_id}/plain"


def chunks_key(file_id: str) -> str:
    return f"{WORK_PREFIX}{file_id}/chunks.json"


def results_prefix(file_id: str) -> str:
    return f"{WORK_PREFIX}{file_id}/results/"


def result_key(file_id: str, chunk: int) -> str:
    return f"{results_prefix(file_id)}{chunk:06d}.json"


def map_results_prefix(file_id: str) -> str:
    """Where the Distributed Map's ResultWriter writes its own record of the child executions."""
    return f"{WORK_PREFIX}{file_id}/map"


def report_key(file_id: str) -> str:
    return f"{REPORTS_PREFIX}{file_id}/rejected-lines.csv"


def extract_prefix(name: str, file_id: str) -> str:
    return f"{EXTRACTS_PREFIX}{name}/{file_id}/"


def extract_part_key(name: str, file_id: str, chunk: int) -> str:
    return f"{extract_prefix(name, file_id)}part-{chunk:06d}.jsonl.gz"


def file_id_for(kind: str, name: str | None, file_format: str, compression: str, sha256: str, length: int) -> str:
    """The same file (same kind, name, format and bytes) always gets the same id: uploading it again
    finds the first upload instead of processing it twice."""
    digest = hashlib.sha256(f"{kind}|{name or ''}|{file_format}|{compression}|{sha256}|{length}".encode()).hexdigest()
    return f"f{digest[:31]}"


class FileCounts(BaseModel):
    """Every non-blank line is counted once: lines = accepted + duplicates + rejected + unprocessed."""

    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    unprocessed: int = Field(default=0, description="In chunks that failed after every retry: run the file again")


class FileReadyDetail(BaseModel):
    """The detail of a ``FILE_READY`` event: an extract validated, its good rows in S3 as gzip JSON
    lines (one object per row, typed as the extract's schema says). Delivered at least once: a
    consumer deduplicates on ``fileId``."""

    model_config = ConfigDict(frozen=True)

    fileId: str
    kind: FileKind
    name: str
    bucket: str
    prefix: str = Field(description="Every part of the validated rows is under this prefix")
    parts: list[str] = Field(description="The parts' keys, in line order")
    rows: int = Field(description="Rows validated and written to the parts")
    rejected: int = Field(description="Rows refused (listed in the file's rejected-lines report)")
    uploadedAt: str
    completedAt: str
