"""The day's files as Optimove reads them: gzip parts (CSV, JSON lines) or Parquet parts with GZIP
pages, of at most the configured size per data set,
under ``<prefix><yyyy-MM-dd>/``, then ``manifest.json`` (every part: data set, rows, bytes, SHA-256),
then the completion marker ``_SUCCESS`` (the manifest's SHA-256), last, so that Optimove never reads half a day.

Deterministic: the same rows give the same bytes (gzip without a timestamp or a name, rows in a
fixed order, no clock in the manifest), so writing a day again replaces it exactly.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from connectors.optimove.feed.config import FileFormat

MANIFEST = "manifest.json"
COMPLETION_MARKER = "_SUCCESS"
GZIP_WBITS = 31  # zlib's gzip container: no file name, modification time 0
MEBIBYTE = 1024 * 1024


class PartWriter(Protocol):
    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...


class Sink(Protocol):
    """Where a day's objects go (Optimove's bucket in AWS, the local stack's S3, memory in tests)."""

    def open(self, key: str) -> PartWriter: ...
    def put(self, key: str, body: bytes) -> None: ...


@dataclass(frozen=True)
class Part:
    key: str
    dataSet: str
    rows: int
    bytes: int
    sha256: str


@dataclass
class Manifest:
    day: str
    format: str
    parts: list[Part] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # data set -> rows in its parts
    extracts: list[str] = field(default_factory=list)  # the fileIds the day was built from

    def body(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()


def day_prefix(prefix: str, day: str) -> str:
    return f"{prefix}{day}/"


class DataSetFile:
    """Rows of one data set into gzip parts, a new part before one would pass ``max_bytes``."""

    def __init__(
        self, sink: Sink, prefix: str, name: str, header: Sequence[str], file_format: FileFormat, max_bytes: int
    ) -> None:
        self._sink, self._prefix, self._name, self._header = sink, prefix, name, list(header)
        self._format, self._max_bytes = file_format, max_bytes
        # Flushed every so much input, the compressed size is exact there: a part is closed when the
        # next stretch, even incompressible, could take it over the limit.
        self._stretch = max(1024, min(4 * MEBIBYTE, max_bytes // 4))
        self.parts: list[Part] = []
        self._writer: PartWriter | None = None
        self._text = io.StringIO()
        self._csv = csv.writer(self._text, lineterminator="\n")
        self._rows = self._out = self._pending = 0

    def write(self, values: Sequence[str]) -> None:
        if self._writer is None:
            self._open()
        if self._format is FileFormat.CSV:
            self._csv.writerow(values)
        else:
            self._text.write(json.dumps(dict(zip(self._header, values, strict=True)), ensure_ascii=False) + "\n")
        self._rows += 1
        if self._text.tell() >= 64 * 1024:
            self._drain()
        if self._pending >= self._stretch:
            self._emit(self._compressor.flush(zlib.Z_SYNC_FLUSH))
            self._pending = 0
            if self._out + self._stretch * 1.01 + 1024 > self._max_bytes:
                self._close_part()

    def close(self) -> list[Part]:
        if self._writer is None and not self.parts:
            self._open()  # a data set with nothing new still gets its (header-only) part: a file per day
        if self._writer is not None:
            self._close_part()
        return self.parts

    def _open(self) -> None:
        number = len(self.parts) + 1
        self._key = f"{self._prefix}{self._name}/part-{number:05d}.{self._format.value}.gz"
        self._writer = self._sink.open(self._key)
        self._compressor = zlib.compressobj(6, zlib.DEFLATED, GZIP_WBITS)
        self._digest = hashlib.sha256()
        self._rows = self._out = self._pending = 0
        if self._format is FileFormat.CSV:
            self._csv.writerow(self._header)

    def _drain(self) -> None:
        data = self._text.getvalue().encode()
        self._text.seek(0)
        self._text.truncate()
        self._pending += len(data)
        self._emit(self._compressor.compress(data))

    def _emit(self, data: bytes) -> None:
        if data:
            assert self._writer is not None
            self._writer.write(data)
            self._digest.update(data)
            self._out += len(data)

    def _close_part(self) -> None:
        self._drain()
        self._emit(self._compressor.flush(zlib.Z_FINISH))
        assert self._writer is not None
        self._writer.close()
        self.parts.append(Part(self._key, self._name, self._rows, self._out, self._digest.hexdigest()))
        self._writer = None


class _CountedWriter:
    """A part's writer as the file-like object pyarrow writes to, counting and hashing what passes."""

    def __init__(self, writer: PartWriter) -> None:
        self._writer, self.bytes, self.digest, self.closed = writer, 0, hashlib.sha256(), False

    def write(self, data: bytes) -> int:
        data = bytes(data)
        self._writer.write(data)
        self.digest.update(data)
        self.bytes += len(data)
        return len(data)

    def tell(self) -> int:
        return self.bytes

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._writer.close()


class ParquetDataSetFile:
    """Rows of one data set into Parquet parts (every column text, as the CSV has it, blank as null;
    GZIP pages: "gzip only", read for Parquet as the codec; UNVERIFIED), a row group every
    ``group_rows`` rows, a new part before the next row group could take one over ``max_bytes``."""

    GROUP_ROWS = 50_000

    def __init__(
        self, sink: Sink, prefix: str, name: str, header: Sequence[str], max_bytes: int, group_rows: int = GROUP_ROWS
    ) -> None:
        import pyarrow as pa

        self._sink, self._prefix, self._name, self._header = sink, prefix, name, list(header)
        self._max_bytes, self._group_rows = max_bytes, group_rows
        self._schema = pa.schema([(column, pa.string()) for column in self._header])
        self._pending: list[Sequence[str]] = []
        self._writer: Any = None
        self._out: _CountedWriter | None = None
        self._rows = 0
        self.parts: list[Part] = []

    def write(self, values: Sequence[str]) -> None:
        self._pending.append(values)
        if len(self._pending) >= self._group_rows:
            self._write_group()

    def close(self) -> list[Part]:
        if self._pending or (self._writer is None and not self.parts):
            self._write_group()  # a data set with nothing new still gets its (empty) part
        if self._writer is not None:
            self._close_part()
        return self.parts

    def _write_group(self) -> None:
        import pyarrow as pa

        if self._writer is None:
            self._open()
        assert self._out is not None
        columns = list(zip(*self._pending, strict=True)) if self._pending else [() for _ in self._header]
        table = pa.table(
            [pa.array([v or None for v in column], pa.string()) for column in columns], schema=self._schema
        )
        before = self._out.bytes
        self._writer.write_table(table)
        self._rows += len(self._pending)
        self._pending = []
        group_bytes = self._out.bytes - before
        if self._out.bytes + 1.2 * group_bytes + 64 * 1024 > self._max_bytes:
            self._close_part()

    def _open(self) -> None:
        import pyarrow.parquet as pq

        self._key = f"{self._prefix}{self._name}/part-{len(self.parts) + 1:05d}.parquet"
        self._out = _CountedWriter(self._sink.open(self._key))
        self._writer = pq.ParquetWriter(self._out, self._schema, compression="gzip")
        self._rows = 0

    def _close_part(self) -> None:
        assert self._out is not None
        self._writer.close()
        self._out.close()
        self.parts.append(Part(self._key, self._name, self._rows, self._out.bytes, self._out.digest.hexdigest()))
        self._writer = self._out = None


def data_set_file(
    sink: Sink, prefix: str, name: str, header: Sequence[str], file_format: FileFormat, max_bytes: int
) -> DataSetFile | ParquetDataSetFile:
    if file_format is FileFormat.PARQUET:
        return ParquetDataSetFile(sink, prefix, name, header, max_bytes)
    return DataSetFile(sink, prefix, name, header, file_format, max_bytes)


def finish_day(sink: Sink, prefix: str, manifest: Manifest) -> None:
    """The manifest, then the completion marker (the manifest's SHA-256): the day is complete once the
    marker exists."""
    body = manifest.body()
    sink.put(f"{prefix}{MANIFEST}", body)
    sink.put(f"{prefix}{COMPLETION_MARKER}", f"{hashlib.sha256(body).hexdigest()}\n".encode())


def read_parts(chunks: Iterable[bytes]) -> bytes:
    """A part's content, uncompressed (for the simulator's loader and tests)."""
    decompressor = zlib.decompressobj(GZIP_WBITS)
    return b"".join(decompressor.decompress(c) for c in chunks) + decompressor.flush()
