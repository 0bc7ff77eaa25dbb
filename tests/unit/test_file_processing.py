"""The batch-file flow's steps on moto: what a file's lines become (audit records naming file and
line, events on the bus), the counts and the rejected-lines report, every refusal with its reason,
and running a file again (after an interruption, a failed chunk, a second upload) without anything
published twice."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from dig_api.files.processing import ChunkNotDone
from dig_contracts.bus import message_id_for
from dig_contracts.examples import example_event
from dig_contracts.files import MAX_LINE_BYTES, FileStatus, upload_key
from tests.files_harness import BUCKET, CHUNK_LINES, FileHarness, gzipped, jsonl

CARD = "4111 1111 1111 1111"


@pytest.fixture
def harness() -> Iterator[FileHarness]:
    with mock_aws():
        yield FileHarness()


def event(number: int, **changes: Any) -> dict[str, Any]:
    return example_event("MEMBER_PROFILE_UPDATE", **{"eventId": f"evt-{number}", "memberId": f"M-{number}", **changes})


def mixed_file(count: int) -> tuple[bytes, dict[int, str]]:
    """``count`` lines, about 3% bad, of four kinds; the bad lines' numbers and expected codes."""
    lines: list[Any] = []
    bad: dict[int, str] = {}
    for number in range(1, count + 1):
        kind = number % 131
        if kind == 7:
            lines.append(b"{this is not json")
            bad[number] = "INVALID_JSON"
        elif kind == 50:
            lines.append(event(number, memberId=""))
            bad[number] = "VALIDATION_FAILED"
        elif kind == 90:
            broken = event(number)
            broken["data"]["profile"]["note"] = f"card {CARD}"
            lines.append(broken)
            bad[number] = "CARD_NUMBER_REFUSED"
        elif kind == 120:
            lines.append(b'{"x": "' + b"y" * MAX_LINE_BYTES + b'"}')
            bad[number] = "LINE_TOO_LONG"
        else:
            lines.append(event(number))
    return jsonl(lines), bad


def test_an_events_file_with_bad_lines_publishes_every_good_line_and_reports_each_bad_one(
    harness: FileHarness,
) -> None:
    data, bad = mixed_file(262)
    file_id = harness.declare(gzipped(data), compression="gzip")
    harness.upload(file_id, gzipped(data))

    result = harness.run(file_id)

    assert result["status"] == "COMPLETED_WITH_ERRORS"
    assert (result["lines"], result["accepted"], result["rejected"], result["duplicates"]) == (
        262,
        262 - len(bad),
        len(bad),
        0,
    )
    assert len(bad) == 8  # 3%
    good = [f"evt-{n}" for n in range(1, 263) if n not in bad]
    assert sorted(harness.published_event_ids()) == sorted(good)
    report = harness.report(file_id)
    assert report[0] == ["line", "id", "code", "field", "rule"]
    assert {int(row[0]): row[2] for row in report[1:]} == bad
    by_line = {int(row[0]): row for row in report[1:]}
    assert by_line[50][1:] == ["evt-50", "VALIDATION_FAILED", "memberId", "String should have at least 1 character"]
    assert by_line[90][3] == "data.profile.note"
    assert "4111" not in "\n".join(",".join(row) for row in report)  # never a submitted value
    record = harness.files.get(file_id)
    assert record is not None
    assert record.status is FileStatus.COMPLETED_WITH_ERRORS
    assert record.chunks == 27
    assert record.counts.unprocessed == 0
    message = harness.audit.get_message(message_id_for("evt-2"))
    assert message is not None
    assert (message.message.fileId, message.message.fileLine, message.message.client) == (file_id, 2, "es-loyalty")


def test_an_events_file_as_posted_events_are_deduplicated_by_event_id(harness: FileHarness) -> None:
    first = jsonl([event(1), event(2), event(1)])
    file_id = harness.declare(first)
    harness.upload(file_id, first)
    assert harness.run(file_id)["duplicates"] == 1  # line 3 repeats line 1

    second = jsonl([event(2), event(3)])  # another file: evt-2 is already in
    other = harness.declare(second)
    harness.upload(other, second)
    result = harness.run(other)

    assert (result["accepted"], result["duplicates"], result["status"]) == (1, 1, "COMPLETED")
    assert sorted(harness.published_event_ids()) == ["evt-1", "evt-2", "evt-3"]


def test_a_run_interrupted_half_way_and_started_again_completes_without_duplicates(harness: FileHarness) -> None:
    data = jsonl([event(n) for n in range(1, 3 * CHUNK_LINES * 2 + 1)])  # 3 batches of 2 chunks
    file_id = harness.declare(data)
    harness.upload(file_id, data)
    validation = harness.steps.validate(f"uploads/{file_id}")
    harness.steps.process(harness.batches(validation)[0], validation["batchInput"])  # then the run dies

    result = harness.run(file_id, rerun=True)

    assert (result["status"], result["accepted"], result["duplicates"]) == ("COMPLETED", 60, 0)
    assert len(harness.published_event_ids()) == 60 == len(set(harness.published_event_ids()))


def test_a_chunk_that_failed_after_its_retries_leaves_the_file_failed_until_it_is_run_again(
    harness: FileHarness,
) -> None:
    data = jsonl([event(n) for n in range(1, 2 * CHUNK_LINES * 2 + 1)])
    file_id = harness.declare(data)
    harness.upload(file_id, data)

    failed = harness.run(file_id, skip_batches=[1])

    assert failed["status"] == "FAILED"
    assert failed["unprocessed"] == 2 * CHUNK_LINES
    record = harness.files.get(file_id)
    assert record is not None
    assert record.failureCode == "CHUNKS_FAILED"
    assert f"dig files retry {file_id}" in (record.failureMessage or "")

    again = harness.run(file_id, rerun=True)
    assert (again["status"], again["accepted"], again["unprocessed"]) == ("COMPLETED", 40, 0)
    assert len(harness.published_event_ids()) == 40


def test_a_batch_the_bus_refuses_is_retried_whole_and_then_counts_each_line_once(harness: FileHarness) -> None:
    data = jsonl([event(n) for n in range(1, 21)])
    file_id = harness.declare(data)
    harness.upload(file_id, data)
    validation = harness.steps.validate(f"uploads/{file_id}")
    [batch] = harness.batches(validation)
    harness.bus.refuse = {"evt-4"}

    with pytest.raises(ChunkNotDone, match="1 events could not be published"):
        harness.steps.process(batch, validation["batchInput"])
    harness.bus.refuse = set()
    harness.steps.process(batch, validation["batchInput"])  # the map's retry
    result = harness.steps.finish(file_id)

    assert (result["accepted"], result["duplicates"]) == (20, 0)
    assert sorted(harness.published_event_ids()) == sorted(f"evt-{n}" for n in range(1, 21))


def test_the_same_upload_reported_twice_is_processed_once(harness: FileHarness) -> None:
    data = jsonl([event(1)])
    file_id = harness.declare(data)
    harness.upload(file_id, data)
    assert harness.run(file_id)["status"] == "COMPLETED"

    second = harness.run(file_id)  # S3 and EventBridge deliver at least once

    assert second == {"proceed": False, "fileId": file_id, "reason": "the file is COMPLETED"}
    assert harness.published_event_ids() == ["evt-1"]


@pytest.mark.parametrize(
    ("upload", "declared", "code", "message"),
    [
        (b'{"a": 1}\n', {"declared_length": 99}, "SIZE_MISMATCH", "the upload is 9 bytes"),
        (b'{"a": 1}\n', {"declared_sha256": "0" * 64}, "CHECKSUM_MISMATCH", "not the declared sha256"),
        (b'{"a": 1}\n', {"compression": "gzip"}, "NOT_GZIP", "not a valid gzip stream"),
        (gzip.compress(b'{"a": 1}\n' * 1000, mtime=0)[:-20], {"compression": "gzip"}, "NOT_GZIP", "truncated"),
        (b"\n  \n\r\n", {}, "EMPTY_FILE", "no line holds anything"),
        (
            b"memberId,shoeSize\nM-1,9\n",
            {"kind": "extract", "name": "memberAccounts", "file_format": "csv"},
            "HEADER_MISMATCH",
            "columns 2 (counted from 1) are not columns of extract memberAccounts; "
            "required columns missing: LastUpdated",
        ),
    ],
)
def test_a_file_that_is_not_what_was_declared_is_refused_with_the_reason(
    harness: FileHarness, upload: bytes, declared: dict[str, Any], code: str, message: str
) -> None:
    file_id = harness.declare(upload, **declared)
    harness.upload(file_id, upload)

    result = harness.run(file_id)

    assert result == {"proceed": False, "fileId": file_id, "reason": code}
    record = harness.files.get(file_id)
    assert record is not None
    assert (record.status, record.failureCode) == (FileStatus.FAILED, code)
    assert message in (record.failureMessage or "")
    assert harness.bus.published == []


def test_an_extract_is_validated_row_by_row_and_announced_once_with_its_typed_rows(harness: FileHarness) -> None:
    data = (
        b"memberId,email,pointsBalance,emailOptIn,enrolledAt,LastUpdated\n"
        b"M-1,ada@example.com,120,true,2024-01-02,2026-11-30T10:00:00Z\n"
        b"M-2,bob@example.com,lots,false,2024-01-02,2026-11-30T10:00:00Z\n"
        b"M-3,cy@example.com,5\n"
        b"M-4,,0,0,,2026-11-30T11:00:00+01:00\n"
    )
    file_id = harness.declare(data, kind="extract", name="memberAccounts", file_format="csv")
    harness.upload(file_id, data)

    result = harness.run(file_id)
    harness.steps.finish(file_id)  # the step retried after it completed: announced once all the same

    assert (result["status"], result["lines"], result["accepted"], result["rejected"]) == (
        "COMPLETED_WITH_ERRORS",
        4,
        2,
        2,
    )
    [ready] = harness.bus.files_ready
    assert (ready.name, ready.rows, ready.rejected, ready.bucket) == ("memberAccounts", 2, 2, BUCKET)
    [part] = ready.parts
    rows = [
        json.loads(line)
        for line in gzip.decompress(harness.s3.get_object(Bucket=BUCKET, Key=part)["Body"].read()).splitlines()
    ]
    assert rows[0]["pointsBalance"] == 120
    assert rows[0]["emailOptIn"] is True
    assert rows[0]["enrolledAt"] == "2024-01-02"
    assert rows[1]["email"] is None
    assert rows[1]["LastUpdated"] == "2026-11-30T11:00:00+01:00"
    assert [row[:4] for row in harness.report(file_id)[1:]] == [
        ["3", "M-2", "VALIDATION_FAILED", "pointsBalance"],
        ["4", "", "WRONG_COLUMN_COUNT", "(line)"],
    ]
    # Its good rows' emails fill the member contact store (a mail for M-1 finds it); M-4 had none.
    contacts = harness.contacts.get(["M-1", "M-2", "M-4"])
    assert list(contacts) == ["M-1"]
    assert (contacts["M-1"].email, contacts["M-1"].seen_at, contacts["M-1"].source) == (
        "ada@example.com",
        "2026-11-30T10:00:00.000000Z",
        f"extract memberAccounts {file_id}",
    )


# --- hardening (#21) ------------------------------------------------------------------------------

DISGUISED = [
    "4111.1111.1111.1111",
    "tel 6135550100 4111111111111111",
    "x4111111111111111/123",
    "\uff14" + "\uff11" * 15,  # full-width digits
]


def test_card_numbers_in_disguise_and_hostile_lines_are_refused_alone_and_never_written(harness: FileHarness) -> None:
    lines: list[Any] = [event(1)]
    for number, card in enumerate(DISGUISED, start=2):
        document = event(number)
        document["data"]["profile"]["note"] = card
        lines.append(document)
    lines.append(b'{"eventId": "evt-6", "n": 4111111111111111.0}')
    lines.append(b"[" * 3000 + b"]" * 3000)  # would exhaust the recursion of a parser or a walk
    hostile = {**event(8), '=HYPERLINK("http://x")': "1", "eventId": "=cmd|' /C calc'!A0"}
    lines.append(hostile)
    data = jsonl(lines)
    file_id = harness.declare(data)
    harness.upload(file_id, data)

    result = harness.run(file_id)

    assert (result["accepted"], result["rejected"]) == (1, 7)
    report = harness.report(file_id)
    by_line = {int(row[0]): row for row in report[1:]}
    assert [by_line[n][2] for n in range(2, 6)] == ["CARD_NUMBER_REFUSED"] * 4
    rows_6 = [row for row in report[1:] if row[0] == "6"]  # a card number as a JSON float, in an invalid event
    assert {(row[2], row[3]) for row in rows_6} >= {("VALIDATION_FAILED", "eventType"), ("VALIDATION_FAILED", "n")}
    assert any(row[3] == "n" and "card number" in row[4] for row in rows_6)
    assert by_line[7][2:] == ["INVALID_JSON", "(line)", "at most 32 levels of nesting"]
    # A cell a spreadsheet would run as a formula starts with a quote; an unknown key is named by position.
    rows_8 = [row for row in report[1:] if row[0] == "8"]
    assert {row[1] for row in rows_8} == {"'=cmd|' /C calc'!A0"}
    assert {row[3] for row in rows_8} == {"eventId", f"<key {len(hostile)}>"}
    text = "\n".join(",".join(row) for row in report)
    assert "4111" not in text
    assert "HYPERLINK" not in text


def test_a_gzip_bomb_fails_fast_with_the_reason(harness: FileHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    # The ratio applies past a grace of 64 MiB decoded (reading 64 million empty lines took
    # half a minute of the unit tests), 2 MiB here, the rule the same.
    monkeypatch.setattr("dig_api.files.processing.GZIP_RATIO_GRACE_BYTES", 2 * 1024**2)
    bomb = gzip.compress(b"\n" * (3 * 1024**2), compresslevel=9)  # 3 MiB of newlines in about 3 KB
    file_id = harness.declare(bomb, compression="gzip")
    harness.upload(file_id, bomb)

    assert harness.run(file_id) == {"proceed": False, "fileId": file_id, "reason": "GZIP_BOMB"}
    record = harness.files.get(file_id)
    assert record is not None
    assert record.status is FileStatus.FAILED
    assert "decompression bomb" in (record.failureMessage or "")


def test_a_file_the_validator_cannot_read_ends_failed_not_validating(harness: FileHarness) -> None:
    data = jsonl([event(1)])
    file_id = harness.declare(data)
    harness.upload(file_id, data)

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("S3 went away")

    harness.steps.storage.stream = broken  # type: ignore[method-assign]
    assert harness.run(file_id)["reason"] == "VALIDATION_ERROR"
    record = harness.files.get(file_id)
    assert record is not None
    assert (record.status, record.failureCode) == (FileStatus.FAILED, "VALIDATION_ERROR")


def test_a_file_over_the_cap_waits_and_runs_once_a_slot_is_free(harness: FileHarness) -> None:
    from db.file_gate import FileGate

    harness.steps.gate = FileGate(harness.files.table, limit=1)
    first, second = jsonl([event(1)]), jsonl([event(2)])
    one, two = harness.declare(first), harness.declare(second)
    harness.upload(one, first)
    harness.upload(two, second)
    assert harness.steps.gate.admit(one)  # the first file is being processed
    waiting = harness.steps.validate(upload_key(two))
    assert waiting == {"proceed": False, "wait": True, "fileId": two, "reason": "waiting for a slot"}
    record = harness.files.get(two)
    assert record is not None
    assert record.status is FileStatus.AWAITING_UPLOAD  # untouched while it waits
    harness.steps.gate.release(one)
    assert harness.run(two)["status"] == "COMPLETED"
    assert harness.steps.gate.state()["running"] == {}


def test_a_validation_step_that_failed_past_its_retries_ends_the_file_failed(harness: FileHarness) -> None:
    data = jsonl([event(1)])
    file_id = harness.declare(data)
    harness.upload(file_id, data)
    harness.files.advance(file_id, FileStatus.VALIDATING, allowed_from={FileStatus.AWAITING_UPLOAD})
    assert harness.steps.finish(file_id, "States.Timeout") == {"fileId": file_id, "status": "FAILED"}
    record = harness.files.get(file_id)
    assert record is not None
    assert (record.status, record.failureCode) == (FileStatus.FAILED, "VALIDATION_ERROR")
