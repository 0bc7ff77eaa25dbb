"""Optimove's daily batch channel: its configuration, the rows as Optimove's files want them, the
incremental choice of rows by content, and the day's files (splitting, manifest, marker, rebuilds)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
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
    marker = first.objects[f"dig/2026-12-01/{COMPLETION_MARKER}"]
    assert marker == hashlib.sha256(first.objects[f"dig/2026-12-01/{MANIFEST}"]).hexdigest().encode() + b"\n"


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


# --- the service: arrivals, the schedule, runs ------------------------------------------------------


class MemoryRecords:
    def __init__(self) -> None:
        self.inputs_by_day: dict[str, list[Any]] = {}
        self.runs: list[Any] = []
        self.completed: set[str] = set()
        self.erased: set[str] = set()

    def record_input(self, day: str, found: Any) -> bool:
        known = self.inputs_by_day.setdefault(day, [])
        if any(i.fileId == found.fileId for i in known):
            return False
        known.append(found)
        return True

    def inputs(self, day: str) -> list[Any]:
        return list(self.inputs_by_day.get(day, []))

    def save_run(self, run: Any) -> None:
        self.runs.append(run)

    def complete(self, day: str) -> bool:
        return day in self.completed

    def mark_complete(self, day: str, manifest_key: str) -> None:
        self.completed.add(day)

    def forgotten(self) -> set[str]:
        return set(self.erased)


def file_ready(file_id: str, completed_at: str, name: str = "memberAccounts") -> Any:
    from dig_contracts.files import FileReadyDetail

    return FileReadyDetail(
        fileId=file_id,
        kind="extract",
        name=name,
        bucket="files",
        prefix=f"extracts/{name}/{file_id}/",
        parts=[f"extracts/{name}/{file_id}/part-1.jsonl.gz"],
        rows=2,
        rejected=0,
        uploadedAt=completed_at,
        completedAt=completed_at,
    )


def feed_service(records: MemoryRecords, now: str, rows: dict[str, list[dict[str, Any]]], sink: MemorySink) -> Any:
    from datetime import datetime

    from connectors.optimove.feed.service import FeedService

    state = MemoryFingerprints()
    return FeedService(
        lambda: feed(),
        records,
        lambda found: rows[found.fileId],
        lambda destination: sink,
        lambda: state,
        clock=lambda: datetime.fromisoformat(now),
    )


def test_an_extract_feeds_the_first_day_whose_build_is_to_come_and_a_late_one_the_next() -> None:
    records, sink = MemoryRecords(), MemorySink()
    service = feed_service(records, "2026-12-01T04:30:00+00:00", {}, sink)
    # Readiness 05:00 UTC, built an hour before: until 04:00 an extract feeds that day, after it the next.
    assert service.record_arrival(file_ready("a", "2026-12-01T03:59:59Z")) == "2026-12-01"
    assert service.record_arrival(file_ready("b", "2026-12-01T04:00:00Z")) == "2026-12-02"
    assert service.record_arrival(file_ready("c", "2026-12-01T03:00:00Z", name="orders")) is None  # not mapped
    records.completed.add("2026-12-01")
    assert service.record_arrival(file_ready("d", "2026-12-01T03:30:00Z")) == "2026-12-02"  # its day was built
    assert [i.fileId for i in records.inputs("2026-12-02")] == ["b", "d"]


def test_the_schedule_builds_the_due_day_once_and_reports_missing_extracts_and_lateness() -> None:
    records, sink = MemoryRecords(), MemorySink()
    records.record_input("2026-12-01", file_ready("a", "2026-12-01T01:00:00Z"))
    service = feed_service(records, "2026-12-01T04:15:00+00:00", {"a": [member(1), member(2)]}, sink)
    tick = service.tick()
    assert tick is not None
    assert (tick.day, tick.late, tick.missing_extracts) == ("2026-12-01", False, [])
    assert tick.built is not None
    assert tick.built.sent == {"customers": 2}
    again = service.tick()
    assert again is not None
    assert again.built is None  # complete: not built again by the schedule
    assert [r.status for r in records.runs] == ["COMPLETE"]

    # A day with no extract at all, past its readiness time and failing to write: late, missing, failed.
    class Refusing(MemorySink):
        def put(self, key: str, body: bytes) -> None:
            raise PermissionError("AccessDenied")

    late = feed_service(MemoryRecords(), "2026-12-01T05:30:00+00:00", {}, Refusing())
    tick = late.tick()
    assert tick is not None
    assert (tick.late, tick.missing_extracts) == (True, [])
    assert tick.error == "PermissionError: AccessDenied"


def test_a_destination_other_than_the_deployed_one_is_refused_naming_the_field() -> None:
    from connectors.optimove.feed.config import Destination
    from connectors.optimove.feed.service import DestinationRefused, check_destination

    deployed = {"bucket": "optimove-tenant-123", "roleArn": "", "kmsKeyArn": "arn:aws:kms:us-east-1:1:key/k"}
    allowed = Destination(bucket="optimove-tenant-123", kmsKeyArn="arn:aws:kms:us-east-1:1:key/k")
    check_destination(allowed, deployed.get)  # the role is not restricted: none is named
    check_destination(Destination(bucket="anything-local"), lambda field: "")  # nothing deployed: local
    with pytest.raises(DestinationRefused, match=r"destination.bucket is elsewhere-bucket, but this deployment"):
        check_destination(Destination(bucket="elsewhere-bucket", kmsKeyArn=allowed.kmsKeyArn), deployed.get)
    with pytest.raises(DestinationRefused, match=r"destination.kmsKeyArn is unset"):
        check_destination(Destination(bucket="optimove-tenant-123"), deployed.get)


def test_without_a_batch_channel_the_schedule_does_nothing_and_fails_nothing() -> None:
    from datetime import datetime

    from connectors.optimove.feed.service import FeedNotConfigured, FeedService

    service = FeedService(
        lambda: None,
        MemoryRecords(),
        lambda found: [],
        lambda destination: MemorySink(),
        MemoryFingerprints,
        clock=lambda: datetime.fromisoformat("2026-12-01T06:00:00+00:00"),
    )
    assert service.tick() is None
    assert service.record_arrival(file_ready("a", "2026-12-01T01:00:00Z")) is None
    with pytest.raises(FeedNotConfigured, match="the Optimove configuration has no batchFeed"):
        service.run("2026-12-01")


def test_a_run_records_what_it_read_and_wrote_and_a_forgotten_member_is_not_sent() -> None:
    records, sink = MemoryRecords(), MemorySink()
    records.erased.add("M-00002")
    records.record_input("2026-12-01", file_ready("a", "2026-12-01T01:00:00Z"))
    service = feed_service(records, "2026-12-01T12:00:00+00:00", {"a": [member(1), member(2), member(3)]}, sink)
    run = service.run("2026-12-01", full=True)
    assert (run.status, run.trigger, run.full, run.extracts) == ("COMPLETE", "operator", True, ["a"])
    assert (run.considered, run.sent, run.files) == ({"customers": 3}, {"customers": 2}, 1)
    assert run.bytes == sum(len(v) for k, v in sink.objects.items() if k.endswith(".gz"))
    assert {r["CustomerID"] for r in sink.rows("dig/2026-12-01/")} == {"M-00001", "M-00003"}


# --- the simulator's daily load ------------------------------------------------------------------------


def test_the_simulated_optimove_loads_a_complete_day_and_refuses_what_optimove_refuses() -> None:
    import boto3
    from moto import mock_aws

    from connectors.optimove.local.batch_loader import BatchLoader

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="optimove-tenant-bucket")
        created: dict[str, dict[str, str]] = {}

        def add(customers: dict[str, dict[str, str]]) -> int:
            new = len(set(customers) - set(created))
            created.update(customers)
            return new

        loader = BatchLoader(feed(), add)
        assert loader.load(s3, "optimove-tenant-bucket", "2026-12-01").reason == (
            "no _SUCCESS under dig/2026-12-01/: the day is not complete"
        )

        sink = MemorySink()
        build_day(
            feed(), "2026-12-01", [extract([member(1), member(2)], "2026-12-01T02:00:00Z")], sink, MemoryFingerprints()
        )
        # Three rows Optimove refuses, written over the good part: no customer id, malformed dates.
        text = "CustomerID,Tier,PointsBalance,EnrolledAt,LastUpdated\n"
        text += "M-1,GOLD,1,2024-01-31,2026-12-01 02:00:00\n,GOLD,1,2024-01-31,2026-12-01 02:00:00\n"
        text += "M-3,GOLD,1,31/01/2024,2026-12-01 02:00:00\nM-4,GOLD,1,2024-01-31,2026-12-01T02:00:00Z\n"
        import gzip

        part = "dig/2026-12-01/customers/part-00001.csv.gz"
        sink.objects[part] = gzip.compress(text.encode())
        for key, body in sink.objects.items():
            s3.put_object(Bucket="optimove-tenant-bucket", Key=key, Body=body)
        report = loader.load(s3, "optimove-tenant-bucket", "2026-12-01")
        assert report.loaded
        assert report.rows == {"customers": 1}
        assert report.refused == {
            "customers: no customer id": 1,
            "customers: malformed date in EnrolledAt": 1,
            "customers: malformed datetime in LastUpdated": 1,
        }
        assert (report.customersCreated, set(created)) == (1, {"M-1"})

        # A part that is not gzip is refused whole; a part the manifest lists but the bucket lacks is missing.
        s3.put_object(Bucket="optimove-tenant-bucket", Key=part, Body=text.encode())
        manifest = json.loads(sink.objects["dig/2026-12-01/manifest.json"])
        manifest["parts"].append({**manifest["parts"][0], "key": "dig/2026-12-01/customers/part-00002.csv.gz"})
        s3.put_object(Bucket="optimove-tenant-bucket", Key="dig/2026-12-01/manifest.json", Body=json.dumps(manifest))
        again = loader.load(s3, "optimove-tenant-bucket", "2026-12-01")
        assert [(f["key"], f["status"], f.get("reason")) for f in again.files] == [(part, "refused", "not gzip")]
        assert again.missingFiles == ["dig/2026-12-01/customers/part-00002.csv.gz"]
        # The row-count check: no rows against the one of the day before.
        assert again.rowCountCheck["customers"] == {"rows": 0, "average": 1.0, "ratio": 0.0}


# --- the S3 adapters, and the fakes' contract ------------------------------------------------------------


@pytest.fixture
def s3() -> Any:
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="files")
        yield client


@pytest.mark.parametrize("kind", ["memory", "s3"])
def test_the_fingerprint_store_answers_the_latest_day_before_the_one_asked(kind: str, s3: Any) -> None:
    from connectors.optimove.feed.storage import S3FingerprintStore

    store: Any = MemoryFingerprints() if kind == "memory" else S3FingerprintStore(s3, "files", "jobs/optimove/feed/")
    store.save("customers", "2026-12-01", 3, {"M-1": b"\x01" * 16, "M\tX": b"\x02" * 16})
    store.save("customers", "2026-12-02", 3, {"M-1": b"\x03" * 16})
    if kind == "s3":
        store = S3FingerprintStore(s3, "files", "jobs/optimove/feed/")  # a new build lists the days again
    assert store.before("customers", "2026-12-01", 3) == {}
    assert store.before("customers", "2026-12-02", 3) == {"M-1": b"\x01" * 16, "M\tX": b"\x02" * 16}
    assert store.before("customers", "2026-12-05", 3) == {"M-1": b"\x03" * 16}
    assert store.before("customers", "2026-12-05", 4) == {}
    assert store.before("offers", "2026-12-05", 3) == {}


def test_the_s3_sink_streams_a_large_part_as_a_multipart_upload_and_a_small_one_as_one_put(s3: Any) -> None:
    from connectors.optimove.feed.storage import UPLOAD_PART_BYTES, S3Sink

    sink = S3Sink(s3, "files")
    big = bytes(range(256)) * (UPLOAD_PART_BYTES // 256 * 2 + 100)
    writer = sink.open("day/big.gz")
    for start in range(0, len(big), 1_000_000):
        writer.write(big[start : start + 1_000_000])
    writer.close()
    sink.put("day/_SUCCESS", b"abc\n")
    assert s3.get_object(Bucket="files", Key="day/big.gz")["Body"].read() == big
    # Parts of at least 8 MiB as written (9 MB, then the rest): a two-part upload.
    assert s3.head_object(Bucket="files", Key="day/big.gz")["ETag"].endswith('-2"')
    assert s3.get_object(Bucket="files", Key="day/_SUCCESS")["Body"].read() == b"abc\n"


# --- Parquet ------------------------------------------------------------------------------------------


def test_parquet_parts_have_gzip_pages_stay_under_the_limit_and_hold_every_row_once() -> None:
    import pyarrow.parquet as pq

    from connectors.optimove.feed.files import ParquetDataSetFile

    sink, limit = MemorySink(), 64 * 1024
    out = ParquetDataSetFile(sink, "d/", "orders", ["CustomerID", "Note"], limit, group_rows=1000)
    rows = [[f"M-{i}", "" if i % 7 == 0 else f"{i * 7919 % 100_003:x}-{i}" * 3] for i in range(20_000)]
    for row in rows:
        out.write(row)
    parts = out.close()
    assert len(parts) >= 3
    assert all(p.key.endswith(".parquet") and len(sink.objects[p.key]) == p.bytes <= limit for p in parts)
    read: list[list[str | None]] = []
    for part in parts:
        parquet = pq.ParquetFile(io.BytesIO(sink.objects[part.key]))
        meta = parquet.metadata
        assert {meta.row_group(g).column(c).compression for g in range(meta.num_row_groups) for c in range(2)} == {
            "GZIP"
        }
        assert parquet.schema_arrow.names == ["CustomerID", "Note"]
        # Without threads: pyarrow 26 aborts at interpreter exit now and then after a threaded read.
        read.extend([r["CustomerID"], r["Note"]] for r in parquet.read(use_threads=False).to_pylist())
    assert read == [[a, b or None] for a, b in rows]  # blank as null


def test_a_parquet_day_is_deterministic_and_the_simulated_optimove_loads_it(s3: Any) -> None:
    from connectors.optimove.local.batch_loader import BatchLoader

    parquet = feed(format="parquet", destination={"bucket": "files", "prefix": "dig/"})
    rows = [member(i) for i in range(300)]
    first, again = MemorySink(), MemorySink()
    build_day(parquet, "2026-12-01", [extract(rows, "2026-12-01T02:00:00Z")], first, MemoryFingerprints())
    build_day(parquet, "2026-12-01", [extract(rows, "2026-12-01T02:00:00Z")], again, MemoryFingerprints())
    assert first.objects == again.objects
    assert "dig/2026-12-01/customers/part-00001.parquet" in first.objects
    for key, body in first.objects.items():
        s3.put_object(Bucket="files", Key=key, Body=body)
    created: dict[str, dict[str, str]] = {}

    def add(customers: dict[str, dict[str, str]]) -> int:
        created.update(customers)
        return len(customers)

    report = BatchLoader(parquet, add).load(s3, "files", "2026-12-01")
    assert (report.loaded, report.rows, report.refused) == (True, {"customers": 300}, {})
    assert sorted(created)[:2] == ["M-00000", "M-00001"]
    assert created["M-00001"]["Tier"] == "GOLD"


def test_the_feed_jobs_trimmed_pyarrow_still_writes_and_reads_parquet(tmp_path: Path) -> None:
    """The layer leaves out what PYARROW_UNUSED names; on the x86_64 wheel of the same version, what
    stays imports and round-trips a GZIP Parquet table in a fresh interpreter."""
    import shutil
    import subprocess
    import sys

    import pyarrow

    from connectors.optimove.manifest import PYARROW_UNUSED

    installed = Path(pyarrow.__file__).parent
    shutil.copytree(installed, tmp_path / "pyarrow", symlinks=True)
    before = sum(f.stat().st_size for f in (tmp_path / "pyarrow").rglob("*") if f.is_file())
    for pattern in PYARROW_UNUSED:
        for path in tmp_path.glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    after = sum(f.stat().st_size for f in (tmp_path / "pyarrow").rglob("*") if f.is_file())
    assert after < 0.75 * before
    code = (
        "import io, pyarrow as pa, pyarrow.parquet as pq\n"
        f"assert pa.__file__.startswith({str(tmp_path)!r})\n"
        "t = pa.table({'a': pa.array(['x', None], pa.string())})\n"
        "b = io.BytesIO(); w = pq.ParquetWriter(b, t.schema, compression='gzip'); w.write_table(t); w.close()\n"
        "read = pq.read_table(io.BytesIO(b.getvalue()), use_threads=False)\n"
        "assert read.to_pylist() == [{'a': 'x'}, {'a': None}]\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env={"PYTHONPATH": str(tmp_path)}, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
