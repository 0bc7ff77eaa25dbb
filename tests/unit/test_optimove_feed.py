"""Optimove's daily batch channel: its configuration, the rows as Optimove's files want them, the
incremental choice of rows by content, and the day's files (splitting, manifest, marker, rebuilds)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from connectors.optimove.feed.build import Extract, Fingerprints, build_day
from connectors.optimove.feed.config import BatchFeed, FileFormat
from connectors.optimove.feed.files import COMPLETION_MARKER, MANIFEST, DataSetFile, read_parts
from connectors.optimove.feed.rows import optimove_datetime, optimove_text
from dig_contracts.extracts import ColumnType

# --- fakes -----------------------------------------------------------------------------------------


class MemorySink:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.order: list[str] = []

    def open(self, key: str) -> Any:
        sink = self

        class Writer:
            def __init__(self) -> None:
                self.chunks: list[bytes] = []

            def write(self, data: bytes) -> None:
                self.chunks.append(data)

            def close(self) -> None:
                sink.put(key, b"".join(self.chunks))

        return Writer()

    def put(self, key: str, body: bytes) -> None:
        self.objects[key] = body
        self.order.append(key)

    def rows(self, prefix: str) -> list[dict[str, str]]:
        """Every row of the parts under ``prefix`` (CSV), in part order."""
        found: list[dict[str, str]] = []
        for key in sorted(k for k in self.objects if k.startswith(prefix) and k.endswith(".csv.gz")):
            found.extend(csv.DictReader(io.StringIO(read_parts([self.objects[key]]).decode())))
        return found


class MemoryFingerprints:
    def __init__(self) -> None:
        self.days: dict[tuple[str, str, int], Fingerprints] = {}

    def before(self, data_set: str, day: str, partition: int) -> Fingerprints:
        earlier = [d for (s, d, p) in self.days if s == data_set and p == partition and d < day]
        return dict(self.days[(data_set, max(earlier), partition)]) if earlier else {}

    def save(self, data_set: str, day: str, partition: int, fingerprints: Fingerprints) -> None:
        self.days[(data_set, day, partition)] = dict(fingerprints)


FEED: dict[str, Any] = {
    "dataSets": [
        {
            "name": "customers",
            "kind": "customers",
            "extract": "memberAccounts",
            "columns": [
                {"source": "tier", "target": "Tier"},
                {"source": "pointsBalance", "target": "PointsBalance"},
                {"source": "enrolledAt", "target": "EnrolledAt"},
            ],
        }
    ],
    "destination": {"bucket": "optimove-tenant-bucket", "prefix": "dig/"},
    "readinessTimeUtc": "05:00",
}


def feed(**changes: Any) -> BatchFeed:
    return BatchFeed.model_validate({**FEED, **changes})


def member(i: int, tier: str = "GOLD", points: int = 100) -> dict[str, Any]:
    return {"memberId": f"M-{i:05d}", "tier": tier, "pointsBalance": points, "enrolledAt": "2024-01-31"}


def extract(rows: Sequence[Mapping[str, Any]], completed_at: str, file_id: str = "f-1") -> Extract:
    return Extract(file_id=file_id, name="memberAccounts", completed_at=completed_at, rows=lambda: rows)


# --- configuration ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "parquet"}, "format: parquet is not written by DIG yet"),
        ({"maxFileMegabytes": 2048}, "less than or equal to 1024"),
        ({"readinessTimeUtc": "25:00"}, "readinessTimeUtc"),
        (
            {"dataSets": [{**FEED["dataSets"][0], "extract": "members"}]},
            "dataSets[0] (customers).extract: 'members' is not an extract",
        ),
        (
            {"dataSets": [{**FEED["dataSets"][0], "columns": [{"source": "shoeSize", "target": "Shoe"}]}]},
            "dataSets[0] (customers).columns[0].source: 'shoeSize' is not a column of memberAccounts",
        ),
        (
            {"dataSets": [{**FEED["dataSets"][0], "columns": [{"source": "tier", "target": "Tier", "type": "date"}]}]},
            "tier is string in the extract; it cannot be written as date",
        ),
        (
            {"dataSets": [{**FEED["dataSets"][0], "columns": [{"source": "tier", "target": "LastUpdated"}]}]},
            "LastUpdated is DIG's",
        ),
        ({"destination": {"bucket": "b-1", "prefix": "/dig"}}, "prefix: must not start with '/'"),
    ],
)
def test_a_bad_feed_is_refused_naming_the_field_and_the_rule(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        feed(**change)


# --- rows as Optimove wants them ----------------------------------------------------------------------


def test_values_are_written_in_optimoves_formats() -> None:
    assert optimove_datetime("2026-11-30T23:15:00-05:00") == "2026-12-01 04:15:00"  # in UTC
    assert optimove_text("2026-11-30T23:15:00+00:00", ColumnType.DATE) == "2026-11-30"
    assert optimove_text(None, ColumnType.STRING) == ""  # nulls blank
    assert optimove_text("1234.50", ColumnType.DECIMAL) == "1234.50"  # dot decimal, as the extract typed it
    assert optimove_text("EUR", ColumnType.CURRENCY) == "EUR"  # in a column of its own
    assert optimove_text(False, ColumnType.BOOLEAN) == "false"


# --- incremental, by content ---------------------------------------------------------------------------

tiers = st.sampled_from(["GOLD", "SILVER", "BRONZE"])
day_one = st.dictionaries(st.integers(0, 200), st.tuples(tiers, st.integers(0, 10_000)), min_size=1, max_size=60)


@settings(max_examples=40, deadline=None)
@given(first=day_one, second=day_one)
def test_a_row_unchanged_in_content_is_never_sent_again_and_a_new_or_changed_one_always_is(
    first: dict[int, tuple[str, int]], second: dict[int, tuple[str, int]]
) -> None:
    sink, state = MemorySink(), MemoryFingerprints()
    build_day(
        feed(),
        "2026-12-01",
        [extract([member(i, *v) for i, v in first.items()], "2026-12-01T02:00:00Z")],
        sink,
        state,
        partitions=8,
    )
    # Day 2's extract: day 1's members as they are now (whatever its own timestamps), and new ones.
    today = {**first, **second}
    build_day(
        feed(),
        "2026-12-02",
        [extract([member(i, *v) for i, v in today.items()], "2026-12-02T02:00:00Z", "f-2")],
        sink,
        state,
        partitions=8,
    )
    sent = {row["CustomerID"]: row for row in sink.rows("dig/2026-12-02/")}
    expected = {i for i, v in today.items() if first.get(i) != v}
    assert set(sent) == {f"M-{i:05d}" for i in expected}
    assert all(row["LastUpdated"] == "2026-12-02 02:00:00" for row in sent.values())  # when DIG saw it


def test_day_one_sends_every_member_and_day_two_exactly_the_changed_and_new_ones() -> None:
    sink, state = MemorySink(), MemoryFingerprints()
    members = [member(i) for i in range(2000)]
    one = build_day(feed(), "2026-12-01", [extract(members, "2026-12-01T02:00:00Z")], sink, state, partitions=16)
    assert (one.data_sets["customers"].considered, one.data_sets["customers"].sent) == (2000, 2000)
    changed = [member(i, tier="SILVER") if i % 40 == 0 else member(i) for i in range(2000)]
    new = [member(i) for i in range(2000, 2010)]
    two = build_day(
        feed(), "2026-12-02", [extract(changed + new, "2026-12-02T02:00:00Z", "f-2")], sink, state, partitions=16
    )
    assert two.data_sets["customers"].sent == 50 + 10
    rows = {row["CustomerID"]: row for row in sink.rows("dig/2026-12-02/")}
    assert rows["M-00000"] == {
        "CustomerID": "M-00000",
        "Tier": "SILVER",
        "PointsBalance": "100",
        "EnrolledAt": "2024-01-31",
        "LastUpdated": "2026-12-02 02:00:00",
    }
    assert two.manifest.rows == {"customers": 60}
    # A full export is a mode: every row again.
    full = build_day(
        feed(),
        "2026-12-03",
        [extract(changed + new, "2026-12-03T02:00:00Z", "f-3")],
        sink,
        state,
        full=True,
        partitions=16,
    )
    assert full.data_sets["customers"].sent == 2010


def test_rows_without_a_customer_id_are_reported_and_forgotten_members_leave_the_files() -> None:
    sink, state = MemorySink(), MemoryFingerprints()
    rows = [member(1), {**member(2), "memberId": None}, member(3)]
    outcome = build_day(
        feed(), "2026-12-01", [extract(rows, "2026-12-01T02:00:00Z")], sink, state, forgotten=lambda m: m == "M-00003"
    )
    assert outcome.data_sets["customers"].sent == 1
    assert outcome.data_sets["customers"].skipped == {
        "memberId: is required: Optimove refuses a row without a customer id": 1
    }
    assert [r["CustomerID"] for r in sink.rows("dig/2026-12-01/")] == ["M-00001"]


# --- the day's files ---------------------------------------------------------------------------------


def test_a_day_is_its_parts_then_the_manifest_then_the_completion_marker_and_a_rebuild_is_identical() -> None:
    state = MemoryFingerprints()
    rows = [member(i) for i in range(500)]
    first, again = MemorySink(), MemorySink()
    build_day(feed(), "2026-12-01", [extract(rows, "2026-12-01T02:00:00Z")], first, state, partitions=4)
    build_day(feed(), "2026-12-01", [extract(rows, "2026-12-01T02:00:00Z")], again, state, partitions=4)
    assert first.order[-2:] == ["dig/2026-12-01/manifest.json", "dig/2026-12-01/_SUCCESS"]
    assert first.objects == again.objects  # same keys, same bytes: the day replaced exactly
    manifest = json.loads(first.objects[f"dig/2026-12-01/{MANIFEST}"])
    [part] = manifest["parts"]
    assert part["key"] == "dig/2026-12-01/customers/part-00001.csv.gz"
    assert (part["rows"], part["bytes"]) == (500, len(first.objects[part["key"]]))
    assert first.objects[part["key"]][:3] == b"\x1f\x8b\x08"  # gzip
    assert first.objects[f"dig/2026-12-01/{COMPLETION_MARKER}"] == b""


@pytest.mark.parametrize("file_format", [FileFormat.CSV, FileFormat.JSONL])
def test_parts_stay_under_the_size_limit_and_together_hold_every_row_once(file_format: FileFormat) -> None:
    sink, limit = MemorySink(), 64 * 1024
    out = DataSetFile(sink, "d/", "orders", ["CustomerID", "Note"], file_format, limit)
    rows = [[f"M-{i}", f"{i * 7919 % 100_003:x}-{i}" * 3] for i in range(20_000)]
    for row in rows:
        out.write(row)
    parts = out.close()
    assert len(parts) >= 3
    assert all(len(sink.objects[p.key]) == p.bytes <= limit for p in parts)
    assert sum(p.rows for p in parts) == len(rows)
    read: list[list[str]] = []
    for part in parts:
        text = read_parts([sink.objects[part.key]]).decode()
        if file_format is FileFormat.CSV:
            lines = list(csv.reader(io.StringIO(text)))
            assert lines[0] == ["CustomerID", "Note"]  # every part has its header
            read.extend(lines[1:])
        else:
            read.extend([list(json.loads(line).values()) for line in text.splitlines()])
    assert read == rows
