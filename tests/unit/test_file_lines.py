"""The two streaming passes over a file's lines: planning chunks, then reading each chunk back.
Property: whatever the lines (good, blank, CRLF, over the size cap) and however the bytes arrive,
every line that holds something is read exactly once, in one chunk, with its own line number."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from dig_api.files.lines import ChunkPlanner, read_lines

MAX = 40  # a small line cap, so that overlong lines are common in generated files

line_texts = st.one_of(
    st.text(alphabet='abc{}":, 0123', min_size=1, max_size=30).filter(lambda t: t.strip() != ""),
    st.sampled_from(["", "   ", "\r", " \t "]),  # blank: never counted
    st.text(alphabet="x", min_size=MAX + 1, max_size=MAX * 3),  # over the cap
)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def plan(data: bytes, cuts: list[int], **options: int) -> ChunkPlanner:
    planner = ChunkPlanner(**options)  # type: ignore[arg-type]
    for piece in split(data, cuts):
        planner.feed(piece)
    planner.finish()
    return planner


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(line_texts, max_size=60),
    crlf=st.booleans(),
    final_newline=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=8),
    chunk_lines=st.integers(min_value=1, max_value=7),
    chunk_bytes=st.integers(min_value=1, max_value=200),
)
def test_every_line_is_read_once_in_exactly_one_chunk(
    lines: list[str], crlf: bool, final_newline: bool, cuts: list[int], chunk_lines: int, chunk_bytes: int
) -> None:
    newline = "\r\n" if crlf else "\n"
    text = newline.join(lines) + (newline if final_newline and lines else "")
    data = text.encode()
    expected = [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]

    planner = plan(data, cuts, chunk_lines=chunk_lines, chunk_bytes=chunk_bytes)
    assert planner.lines == len(expected)
    assert sum(c.lines for c in planner.chunks) == len(expected)
    assert all(1 <= c.lines <= chunk_lines for c in planner.chunks)
    assert [c.index for c in planner.chunks] == list(range(len(planner.chunks)))

    read = []
    for chunk in planner.chunks:
        found = list(read_lines(split(data[chunk.start : chunk.end], cuts), chunk.first_line, max_bytes=MAX))
        assert len(found) == chunk.lines
        read.extend(found)
    assert [line.number for line in read] == [number for number, _ in expected]
    for line, (_, original) in zip(read, expected, strict=True):
        if len(original.encode()) > MAX:
            assert line.text is None  # refused as too long, its bytes never kept whole
        else:
            assert line.text == original.encode()


def test_chunks_end_at_the_line_limit_and_skip_blank_lines_between_them() -> None:
    data = b"a\n\nb\nc\n\n\nd\n"
    planner = plan(data, [], chunk_lines=2, chunk_bytes=1_000)
    assert [(c.first_line, c.lines) for c in planner.chunks] == [(1, 2), (4, 2)]
    assert data[planner.chunks[1].start : planner.chunks[1].end] == b"c\n\n\nd\n"


def test_a_csv_header_is_kept_apart_and_not_counted_as_a_line() -> None:
    planner = plan(b"\nmemberId,LastUpdated\r\nM-1,2026-11-30T00:00:00Z\n", [3, 9], header=True)  # type: ignore[list-item]
    assert planner.header_line == b"memberId,LastUpdated"
    assert planner.lines == 1
    [chunk] = planner.chunks
    assert chunk.first_line == 3
