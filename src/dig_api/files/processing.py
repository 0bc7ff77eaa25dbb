"""Processing an uploaded file: the three steps of the state machine, as logic (no Lambda, no HTTP).

1. ``validate``: the upload's size and SHA-256 against what was declared, gzip decoded (into a plain
   copy the chunks address), the CSV header against the extract's schema; the lines planned into
   chunks, written as the JSON array the Distributed Map's item reader reads.
2. ``process``: one batch of chunks (a child execution of the map): each line parsed and checked,
   events ingested exactly as ``POST /v1/events/batch`` ingests them, an extract's rows typed and
   written on; each chunk's result written to S3 under its index (a chunk run again overwrites it).
3. ``finish``: the chunks' results summed, the rejected-lines report written, the file's final
   status recorded, and an extract announced (``FILE_READY``).

Every step may run again (a retry, a redrive, an operator's ``dig files retry``): a line's event is
deduplicated by its eventId and its origin (file and line), results are overwritten, the file's
status moves only forward, and FILE_READY goes out once per completed run.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from db.contacts import ContactRow, ContactStore
from db.file_gate import FileGate
from db.files import FileRecord, FileStore, now_iso
from db.records import FileLine
from dig_api.errors import ApiError
from dig_api.files.lines import Chunk, ChunkPlanner, Line, read_lines
from dig_api.files.storage import S3Files
from dig_api.ingest import MAX_JSON_DEPTH, Caller, IngestService, IngestStatus, card_paths, too_deep
from dig_contracts.extracts import EXTRACTS, LAST_UPDATED, ExtractSchema, RowRefused, validate_row
from dig_contracts.files import (
    CHUNK_LINES,
    GZIP_RATIO_GRACE_BYTES,
    MAX_DECODED_BYTES,
    MAX_FILE_LINES,
    MAX_GZIP_RATIO,
    MAX_LINE_BYTES,
    Compression,
    FileCounts,
    FileFormat,
    FileKind,
    FileReadyDetail,
    FileStatus,
    chunks_key,
    extract_part_key,
    extract_prefix,
    file_id_from_key,
    plain_key,
    report_key,
    result_key,
    results_prefix,
    upload_key,
)
from dig_contracts.pan import echoable
from dig_contracts.publisher import EventPublisher

logger = logging.getLogger(__name__)
RESULT_READERS = 16
REPORT_COLUMNS = ("line", "id", "code", "field", "rule")
RERUN_FROM = frozenset({FileStatus.FAILED, FileStatus.PROCESSING, FileStatus.VALIDATING})


class ChunkNotDone(Exception):
    """Some lines of a chunk could not be ingested for a reason that passes (the bus or the audit
    table refused): the whole batch is retried, and what was done is not done twice."""


@dataclass(frozen=True)
class FileFailure:
    code: str
    message: str


@dataclass
class ChunkResult:
    index: int
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejections: list[dict[str, Any]] = field(default_factory=list)
    messages: list[list[Any]] = field(default_factory=list)  # [line, messageId, status]: dig audit list --file
    part: str | None = None  # an extract's rows, when the chunk had good ones
    rows: int = 0

    def reject(self, line: int, code: str, details: Iterable[tuple[str, str]], identifier: str | None = None) -> None:
        self.rejected += 1
        self.rejections.append(
            {"line": line, "id": identifier, "code": code, "details": [{"field": f, "rule": r} for f, r in details]}
        )

    def document(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "lines": self.lines,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "rejections": self.rejections,
            "messages": self.messages,
            "part": self.part,
            "rows": self.rows,
        }


# The extract whose rows fill the member contact store (db.contacts): each member's email and locale,
# so that a mail for a member whose events never carried an email still finds one.
CONTACT_EXTRACT = "memberAccounts"


class FileSteps:
    def __init__(
        self,
        storage: S3Files,
        files: FileStore,
        ingest: IngestService,
        publisher: EventPublisher,
        *,
        chunk_lines: int = CHUNK_LINES,
        gate: FileGate | None = None,
        contacts: ContactStore | None = None,
    ) -> None:
        self.contacts = contacts  # filled from memberAccounts rows (CONTACT_EXTRACT)
        self.storage = storage
        self.files = files
        self.ingest = ingest
        self.publisher = publisher
        self.chunk_lines = chunk_lines
        self.gate = gate

    # --- 1. validate ----------------------------------------------------------------------------

    def validate(self, key: str, *, rerun: bool = False) -> dict[str, Any]:
        """The state for the map: ``proceed`` false when there is nothing to process (unknown
        upload, another run has it, or the file failed validation and says why)."""
        file_id = file_id_from_key(key)
        record = self.files.get(file_id)
        if record is None:
            logger.warning("an upload nobody declared", extra={"key": key})
            return {"proceed": False, "fileId": file_id, "reason": "no such file"}
        allowed = RERUN_FROM | {FileStatus.AWAITING_UPLOAD} if rerun else {FileStatus.AWAITING_UPLOAD}
        if record.status not in allowed:
            logger.info("file not in a state to start", extra={"fileId": file_id, "status": record.status})
            return {"proceed": False, "fileId": file_id, "reason": f"the file is {record.status.value}"}
        # Files processed at once are capped; the others wait their turn (the state machine waits and
        # asks again), in the order they arrived.
        if self.gate is not None and not self.gate.admit(file_id):
            return {"proceed": False, "wait": True, "fileId": file_id, "reason": "waiting for a slot"}
        started = self.files.advance(
            file_id,
            FileStatus.VALIDATING,
            allowed_from=allowed,
            uploadedAt=record.uploadedAt or now_iso(),
            runs=record.runs + 1,
            counts=FileCounts(),
            failureCode=None,
            failureMessage=None,
            completedAt=None,
        )
        if started is None:
            self._release(file_id)
            logger.info("file not in a state to start", extra={"fileId": file_id, "status": record.status})
            return {"proceed": False, "fileId": file_id, "reason": f"the file is {record.status.value}"}
        try:
            outcome = self._check(started)
        except Exception:  # never left VALIDATING: FAILED, and `dig files retry` runs it again
            logger.exception("file validation failed", extra={"fileId": file_id})
            outcome = FileFailure("VALIDATION_ERROR", "the file could not be validated; retry it: dig files retry")
        if isinstance(outcome, FileFailure):
            self._fail(started, outcome)
            self._release(file_id)
            return {"proceed": False, "fileId": file_id, "reason": outcome.code}
        planner, source = outcome
        self.storage.put_json(chunks_key(file_id), [c.item() for c in planner.chunks])
        self.files.advance(
            file_id,
            FileStatus.PROCESSING,
            allowed_from={FileStatus.VALIDATING},
            chunks=len(planner.chunks),
            counts=FileCounts(lines=planner.lines),
            processingStartedAt=now_iso(),
        )
        header = planner.header_line.decode("utf-8", "replace") if planner.header_line is not None else None
        return {
            "proceed": True,
            "fileId": file_id,
            "chunks": len(planner.chunks),
            "chunksKey": chunks_key(file_id),
            "batchInput": {"fileId": file_id, "sourceKey": source, "header": header},
        }

    def _check(self, record: FileRecord) -> FileFailure | tuple[ChunkPlanner, str]:
        key = upload_key(record.fileId)
        size = self.storage.size(key)
        if size is None:
            return FileFailure("NOT_UPLOADED", "nothing was uploaded for this file")
        if size != record.contentLength:
            return FileFailure(
                "SIZE_MISMATCH",
                f"the upload is {size} bytes; the declaration said contentLength {record.contentLength}",
            )
        csv_file = record.format == FileFormat.CSV
        planner = ChunkPlanner(header=csv_file, chunk_lines=self.chunk_lines)
        digest = hashlib.sha256()
        gzipped = record.compression == Compression.GZIP
        writer = self.storage.writer(plain_key(record.fileId)) if gzipped else None
        read = _Counted(self.storage.stream(key), digest)
        decoded = 0
        try:
            for piece in _gunzip(read) if gzipped else read:
                planner.feed(piece)
                decoded += len(piece)
                if gzipped and _bomb(decoded, read.count):
                    _abort(writer)
                    return FileFailure(
                        "GZIP_BOMB",
                        f"the gzip stream decodes to more than {MAX_GZIP_RATIO} times its size (or past "
                        f"{MAX_DECODED_BYTES} bytes); refused as a decompression bomb",
                    )
                if planner.lines > MAX_FILE_LINES:
                    _abort(writer)
                    return FileFailure("TOO_MANY_LINES", f"a file may hold at most {MAX_FILE_LINES} lines")
                if writer is not None:
                    writer.write(piece)
            planner.finish()
        except zlib.error:
            _abort(writer)
            return FileFailure("NOT_GZIP", "the file was declared gzip but is not a valid gzip stream")
        except EOFError:
            _abort(writer)
            return FileFailure("NOT_GZIP", "the gzip stream ends before its end (a truncated file)")
        if digest.hexdigest() != record.sha256:
            _abort(writer)
            return FileFailure("CHECKSUM_MISMATCH", "the upload's SHA-256 is not the declared sha256")
        if planner.lines == 0:
            _abort(writer)
            what = "no line holds anything" if not csv_file else "it holds no row after its header"
            return FileFailure("EMPTY_FILE", f"the file is empty: {what}")
        if csv_file:
            problem = _header_problem(EXTRACTS[record.name or ""], planner.header_line or b"")
            if problem is not None:
                _abort(writer)
                return FileFailure("HEADER_MISMATCH", problem)
        if writer is not None:
            writer.close()
            return planner, plain_key(record.fileId)
        return planner, key

    def _fail(self, record: FileRecord, failure: FileFailure) -> None:
        logger.warning("file refused", extra={"fileId": record.fileId, "code": failure.code})
        self.files.advance(
            record.fileId,
            FileStatus.FAILED,
            allowed_from={FileStatus.VALIDATING},
            failureCode=failure.code,
            failureMessage=failure.message,
            completedAt=now_iso(),
        )

    # --- 2. process a batch of chunks -------------------------------------------------------------

    def process(self, items: list[dict[str, Any]], batch_input: dict[str, Any]) -> dict[str, Any]:
        file_id = batch_input["fileId"]
        record = self.files.get(file_id)
        if record is None:
            raise ValueError(f"no file {file_id}")
        totals = FileCounts()
        for item in items:
            chunk = Chunk.from_item(item)
            lines = read_lines(self.storage.stream(batch_input["sourceKey"], chunk.start, chunk.end), chunk.first_line)
            if record.kind == FileKind.EVENTS:
                result = self._events(record, chunk, lines)
            else:
                result = self._rows(record, chunk, lines, batch_input.get("header"))
            self.storage.put_json(result_key(file_id, chunk.index), result.document())
            for name in ("lines", "accepted", "duplicates", "rejected"):
                setattr(totals, name, getattr(totals, name) + getattr(result, name))
        return {"fileId": file_id, "chunks": [item["index"] for item in items], **totals.model_dump()}

    def _events(self, record: FileRecord, chunk: Chunk, lines: Iterator[Line]) -> ChunkResult:
        result = ChunkResult(chunk.index)
        documents: list[Any] = []
        found_paths: dict[int, list[str]] = {}
        sizes: list[int] = []
        origins: list[FileLine] = []
        for line in lines:
            result.lines += 1
            if line.text is None:
                result.reject(line.number, "LINE_TOO_LONG", [("(line)", f"at most {MAX_LINE_BYTES} bytes")])
                continue
            if too_deep(line.text):
                result.reject(line.number, "INVALID_JSON", [("(line)", f"at most {MAX_JSON_DEPTH} levels of nesting")])
                continue
            try:
                document = json.loads(line.text)
            except ValueError:
                result.reject(line.number, "INVALID_JSON", [("(line)", "must be one JSON object")])
                continue
            found = card_paths(line.text)
            if found:
                found_paths[len(documents)] = found
            documents.append(document)
            sizes.append(line.length)
            origins.append(FileLine(record.fileId, line.number))
        caller = Caller(request_id=f"file:{record.fileId}", client_id=record.client)
        outcomes = self.ingest.ingest_batch(documents, sizes, caller, origins, found_paths) if documents else []
        unfinished = [
            o.error for o in outcomes if o.error is not None and (o.error.status >= 500 or o.error.status == 409)
        ]
        if unfinished:
            raise ChunkNotDone(
                f"chunk {chunk.index}: {len(unfinished)} events could not be published ({unfinished[0].code}); "
                "the chunk is retried"
            )
        for origin, outcome in zip(origins, outcomes, strict=True):
            if outcome.status is IngestStatus.REJECTED:
                assert outcome.error is not None
                result.reject(origin.line, *_error(outcome.error), identifier=echoable(outcome.event_id))
                continue
            if outcome.status is IngestStatus.ACCEPTED:
                result.accepted += 1
            else:
                result.duplicates += 1
            result.messages.append([origin.line, outcome.message_id, outcome.status.value])
        result.rejections.sort(key=lambda r: r["line"])
        return result

    def _rows(self, record: FileRecord, chunk: Chunk, lines: Iterator[Line], header: str | None) -> ChunkResult:
        schema = EXTRACTS[record.name or ""]
        columns = next(csv.reader([header])) if header is not None else None
        result = ChunkResult(chunk.index)
        buffer = io.BytesIO()
        contact_rows: list[ContactRow] = []
        fills_contacts = schema.name == CONTACT_EXTRACT and self.contacts is not None
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as out:
            for line in lines:
                result.lines += 1
                row = _row(line, columns, result)
                if row is None:
                    continue
                identifier = echoable(row.get(schema.key))
                try:
                    typed = validate_row(schema, row)
                except RowRefused as refused:
                    result.reject(
                        line.number, "VALIDATION_FAILED", [(p.field, p.rule) for p in refused.problems], identifier
                    )
                    continue
                out.write(json.dumps(typed, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")
                result.rows += 1
                result.accepted += 1
                if fills_contacts:
                    contact_rows.append(contact_row(typed, f"extract {schema.name} {record.fileId}"))
        if result.rows:
            result.part = extract_part_key(schema.name, record.fileId, chunk.index)
            self.storage.put(result.part, buffer.getvalue(), "application/gzip")
        if contact_rows and self.contacts is not None:
            filled = self.contacts.fill(contact_rows)
            logger.info(
                "member contacts from the extract",
                extra={"fileId": record.fileId, "chunk": chunk.index, **vars(filled)},
            )
        return result

    # --- 3. finish --------------------------------------------------------------------------------

    def finish(self, file_id: str, map_error: str | None = None) -> dict[str, Any]:
        try:
            return self._finish(file_id, map_error)
        finally:
            self._release(file_id)

    def _release(self, file_id: str) -> None:
        if self.gate is not None:
            self.gate.release(file_id)

    def _finish(self, file_id: str, map_error: str | None) -> dict[str, Any]:
        record = self.files.get(file_id)
        if record is not None and record.status is FileStatus.VALIDATING and map_error is not None:
            # The validation step itself failed past its retries (a timeout, say): never left VALIDATING.
            self._fail(record, FileFailure("VALIDATION_ERROR", f"validation did not complete ({map_error}); retry it"))
            return {"fileId": file_id, "status": FileStatus.FAILED.value}
        if record is None or record.status is not FileStatus.PROCESSING:
            return {"fileId": file_id, "status": record.status.value if record else None}
        chunks = [Chunk.from_item(item) for item in self.storage.read_json(chunks_key(file_id))]
        done = {int(k.rsplit("/", 1)[1].removesuffix(".json")) for k in self.storage.keys(results_prefix(file_id))}
        counts = FileCounts(lines=record.counts.lines)
        parts: list[str] = []
        rows = 0
        writer = self.storage.writer(report_key(file_id))
        text = io.StringIO()
        report = csv.writer(text)
        report.writerow(REPORT_COLUMNS)
        with ThreadPoolExecutor(max_workers=RESULT_READERS) as pool:
            present = [c for c in chunks if c.index in done]
            for result in pool.map(lambda c: self.storage.read_json(result_key(file_id, c.index)), present):
                counts.accepted += result["accepted"]
                counts.duplicates += result["duplicates"]
                counts.rejected += result["rejected"]
                rows += result["rows"]
                if result["part"]:
                    parts.append(result["part"])
                for rejection in result["rejections"]:
                    for detail in rejection["details"] or [{"field": "", "rule": ""}]:
                        report.writerow(
                            [
                                rejection["line"],
                                report_cell(rejection["id"] or ""),
                                rejection["code"],
                                report_cell(detail["field"]),
                                report_cell(detail["rule"]),
                            ]
                        )
                writer.write(text.getvalue().encode())
                text.seek(0)
                text.truncate()
        writer.write(text.getvalue().encode())
        writer.close()
        missing = [c for c in chunks if c.index not in done]
        counts.unprocessed = sum(c.lines for c in missing)
        changes: dict[str, Any] = {"counts": counts, "completedAt": now_iso()}
        if missing:
            status = FileStatus.FAILED
            changes["failureCode"] = "CHUNKS_FAILED"
            changes["failureMessage"] = (
                f"{counts.unprocessed} lines in {len(missing)} of {len(chunks)} chunks were not processed "
                f"({map_error or 'their retries ran out'}); run the file again: dig files retry {file_id}"
            )
        elif counts.rejected:
            status = FileStatus.COMPLETED_WITH_ERRORS
        else:
            status = FileStatus.COMPLETED
        if record.kind == FileKind.EXTRACT and status is not FileStatus.FAILED:
            self._announce(record, parts, rows, counts.rejected, changes["completedAt"])
        self.files.advance(file_id, status, allowed_from={FileStatus.PROCESSING}, **changes)
        logger.info("file finished", extra={"fileId": file_id, "status": status.value, **counts.model_dump()})
        return {"fileId": file_id, "status": status.value, **counts.model_dump()}

    def _announce(self, record: FileRecord, parts: list[str], rows: int, rejected: int, completed_at: str) -> None:
        detail = FileReadyDetail(
            fileId=record.fileId,
            kind=FileKind.EXTRACT,
            name=record.name or "",
            bucket=self.storage.bucket,
            prefix=extract_prefix(record.name or "", record.fileId),
            parts=parts,
            rows=rows,
            rejected=rejected,
            uploadedAt=record.uploadedAt or record.createdAt,
            completedAt=completed_at,
        )
        outcome = self.publisher.publish_file_ready(detail)
        if not outcome.ok:  # the step is retried; the file stays PROCESSING until it is on the bus
            raise RuntimeError(f"FILE_READY not published: {outcome.error_code}")


# --- helpers ------------------------------------------------------------------------------------


class _Counted:
    """The upload's pieces, hashed and counted as they are read."""

    def __init__(self, pieces: Iterable[bytes], digest: Any) -> None:
        self._pieces = pieces
        self._digest = digest
        self.count = 0

    def __iter__(self) -> Iterator[bytes]:
        for piece in self._pieces:
            self._digest.update(piece)
            self.count += len(piece)
            yield piece


def contact_row(row: dict[str, Any], source: str) -> ContactRow:
    """A memberAccounts row's contact data, its time (LastUpdated) in the contact store's UTC form."""
    updated = datetime.fromisoformat(row[LAST_UPDATED]).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return ContactRow(row["memberId"], row.get("email"), row.get("locale"), updated, source)


def _bomb(decoded: int, compressed: int) -> bool:
    return decoded > MAX_DECODED_BYTES or (
        decoded > GZIP_RATIO_GRACE_BYTES and decoded > MAX_GZIP_RATIO * max(compressed, 1)
    )


def report_cell(text: str) -> str:
    """A report cell a spreadsheet shows as text: one starting with = + - @ (or a tab or carriage
    return) would be read as a formula (OWASP's CSV injection rule: prefix a single quote)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _gunzip(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """Decoded gzip, members one after another (as `cat a.gz b.gz` makes), at most a megabyte of
    output at a time whatever the ratio; zlib.error when it is not gzip, EOFError when the stream
    stops inside a member."""
    limit = 1024 * 1024
    decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    in_member = False
    for piece in pieces:
        data = piece
        while True:
            in_member = in_member or bool(data)
            out = decoder.decompress(data, limit)
            if out:
                yield out
            if decoder.eof:
                data, in_member = decoder.unused_data, False
                decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                if not data:
                    break
                continue
            data = decoder.unconsumed_tail
            if not data and len(out) < limit:
                break
    if in_member:
        raise EOFError("truncated gzip")


def _abort(writer: Any) -> None:
    if writer is not None:
        writer.abort()


def _header_problem(schema: ExtractSchema, header: bytes) -> str | None:
    try:
        columns = next(csv.reader([header.decode("utf-8")]))
    except (UnicodeDecodeError, StopIteration, csv.Error):
        return f"the first line must be the CSV header of extract {schema.name}"
    names = [c.strip() for c in columns]
    # Which column, by position, never its text: a header is client data too.
    unknown = [str(position) for position, n in enumerate(names, start=1) if schema.column(n) is None]
    missing = [c.name for c in schema.columns if c.required and c.name not in names]
    repeated = sorted({n for n in names if names.count(n) > 1 and schema.column(n) is not None})
    problems = []
    if unknown:
        problems.append(f"columns {', '.join(unknown)} (counted from 1) are not columns of extract {schema.name}")
    if missing:
        problems.append(f"required columns missing: {', '.join(missing)}")
    if repeated:
        problems.append(f"columns named twice: {', '.join(repeated)}")
    return "; ".join(problems) or None


def _row(line: Line, columns: list[str] | None, result: ChunkResult) -> dict[str, Any] | None:
    if line.text is None:
        result.reject(line.number, "LINE_TOO_LONG", [("(line)", f"at most {MAX_LINE_BYTES} bytes")])
        return None
    if columns is None:
        if too_deep(line.text):
            result.reject(line.number, "INVALID_JSON", [("(line)", f"at most {MAX_JSON_DEPTH} levels of nesting")])
            return None
        try:
            row = json.loads(line.text)
        except ValueError:
            result.reject(line.number, "INVALID_JSON", [("(line)", "must be one JSON object")])
            return None
        if not isinstance(row, dict):
            result.reject(line.number, "INVALID_JSON", [("(line)", "must be one JSON object")])
            return None
        return row
    try:
        values = next(csv.reader([line.text.decode("utf-8")]))
    except (UnicodeDecodeError, csv.Error, StopIteration):
        result.reject(line.number, "INVALID_CSV", [("(line)", "must be one UTF-8 CSV row")])
        return None
    if len(values) != len(columns):
        result.reject(
            line.number, "WRONG_COLUMN_COUNT", [("(line)", f"must have {len(columns)} columns as the header has")]
        )
        return None
    return {name.strip(): value for name, value in zip(columns, values, strict=True)}


def _error(error: ApiError) -> tuple[str, list[tuple[str, str]]]:
    return error.code, [(d.field, d.rule) for d in error.details] or [("(event)", error.message)]
