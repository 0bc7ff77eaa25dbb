"""Lines of an uploaded file, streamed: planning chunks by byte range, and reading a chunk back.

Hand-written because no library splits a byte stream into numbered lines with a size cap while
remembering byte offsets; both passes hold at most one line (capped) in memory, whatever the file.

Line numbers are physical (1 is the first line of the file, a CSV header included); blank lines are
skipped and counted nowhere, so that ``lines`` = every line holding something.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dig_contracts.files import CHUNK_LINES, CHUNK_MAX_BYTES, MAX_LINE_BYTES

MAX_HEADER_BYTES = 65_536


@dataclass(frozen=True)
class Chunk:
    """Lines ``first_line``.. of the file, held in bytes [start, end) of the object the map reads."""

    index: int
    start: int
    end: int
    first_line: int
    lines: int  # non-blank lines in it

    def item(self) -> dict[str, Any]:
        """As the Distributed Map's item reader hands it to the batch handler."""
        return {
            "index": self.index,
            "start": self.start,
            "end": self.end,
            "firstLine": self.first_line,
            "lines": self.lines,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Chunk:
        return cls(item["index"], item["start"], item["end"], item["firstLine"], item["lines"])


@dataclass
class ChunkPlanner:
    """Fed the file's bytes in any pieces; plans chunks of at most CHUNK_LINES lines and about
    CHUNK_MAX_BYTES bytes. With ``header``, the first non-blank line is the CSV header, kept apart."""

    header: bool = False
    chunk_lines: int = CHUNK_LINES
    chunk_bytes: int = CHUNK_MAX_BYTES
    chunks: list[Chunk] = field(default_factory=list)
    header_line: bytes | None = None
    lines: int = 0
    size: int = 0
    _line_start: int = 0
    _line_number: int = 1
    _line_has_content: bool = False
    _header_buffer: bytearray = field(default_factory=bytearray)
    _chunk_start: int | None = None
    _chunk_first: int = 0
    _chunk_count: int = 0

    def feed(self, piece: bytes) -> None:
        position = 0
        while position < len(piece):
            newline = piece.find(b"\n", position)
            segment_end = len(piece) if newline < 0 else newline
            self._see(piece, position, segment_end)
            if newline < 0:
                break
            self._end_line(self.size + newline + 1)
            position = newline + 1
        self.size += len(piece)

    def finish(self) -> list[Chunk]:
        if self._line_start < self.size:
            self._end_line(self.size)
        self._close_chunk(self.size)
        return self.chunks

    def _see(self, piece: bytes, start: int, end: int) -> None:
        if end <= start:
            return
        if not self._line_has_content and piece[start:end].strip():
            self._line_has_content = True
        if self.header and self.header_line is None and len(self._header_buffer) <= MAX_HEADER_BYTES:
            self._header_buffer += piece[start:end]

    def _end_line(self, next_start: int) -> None:
        if self._line_has_content:
            if self.header and self.header_line is None:
                self.header_line = bytes(self._header_buffer[: MAX_HEADER_BYTES + 1]).rstrip(b"\r")
            else:
                if self._chunk_start is None:
                    self._chunk_start, self._chunk_first, self._chunk_count = self._line_start, self._line_number, 0
                self._chunk_count += 1
                self.lines += 1
                if self._chunk_count >= self.chunk_lines or next_start - self._chunk_start >= self.chunk_bytes:
                    self._close_chunk(next_start)
        self._header_buffer.clear()
        self._line_start = next_start
        self._line_number += 1
        self._line_has_content = False

    def _close_chunk(self, end: int) -> None:
        if self._chunk_start is None or self._chunk_count == 0:
            return
        self.chunks.append(Chunk(len(self.chunks), self._chunk_start, end, self._chunk_first, self._chunk_count))
        self._chunk_start = None


@dataclass(frozen=True)
class Line:
    number: int
    text: bytes | None  # None: longer than MAX_LINE_BYTES (its bytes were not kept)
    length: int


def read_lines(pieces: Iterable[bytes], first_line: int, max_bytes: int = MAX_LINE_BYTES) -> Iterator[Line]:
    """The non-blank lines in ``pieces`` (one chunk's bytes), numbered from ``first_line``; a line
    over ``max_bytes`` comes back with no text, and is never held whole. Blank means what it means
    to ChunkPlanner, so that both passes count the same lines."""
    number = first_line
    buffer = bytearray()
    length = 0
    has_content = False
    for piece in pieces:
        position = 0
        while position < len(piece):
            newline = piece.find(b"\n", position)
            end = len(piece) if newline < 0 else newline
            if end > position:
                if not has_content and piece[position:end].strip():
                    has_content = True
                if length + end - position <= max_bytes + 1:  # a CR before the LF may take one byte more
                    buffer += piece[position:end]
                length += end - position
            if newline < 0:
                break
            if has_content:
                yield _line(number, buffer, length, max_bytes)
            number += 1
            buffer.clear()
            length, has_content = 0, False
            position = newline + 1
    if has_content:
        yield _line(number, buffer, length, max_bytes)


def _line(number: int, buffer: bytearray, length: int, max_bytes: int) -> Line:
    text = bytes(buffer).removesuffix(b"\r") if length <= max_bytes + 1 else None
    if text is None or len(text) > max_bytes:
        return Line(number, None, length)
    return Line(number, text, len(text))
