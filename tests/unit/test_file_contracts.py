"""The contracts of the batch-file flow that connectors build on: extract schemas and their row
rules, a manifest subscribing to extracts (its rule pattern, matched as EventBridge matches it),
and the runtime handing a FILE_READY to the connector."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from moto.events.models import EventPattern
from pydantic import ValidationError

from dig_connector_kit.model import Deadline, InboundMessage, Outcome
from dig_connector_kit.runtime import ConnectorRuntime
from dig_connector_kit.testing import file_ready_record
from dig_contracts.extracts import EXTRACTS, LAST_UPDATED, RowRefused, validate_row
from dig_contracts.files import FILE_READY, FILES_SOURCE, FileKind, FileReadyDetail
from dig_contracts.manifest import ConnectorManifest
from tests.fakes import FakeAuditStore

READY = FileReadyDetail(
    fileId="f1",
    kind=FileKind.EXTRACT,
    name="memberAccounts",
    bucket="files",
    prefix="extracts/memberAccounts/f1/",
    parts=["extracts/memberAccounts/f1/part-000000.jsonl.gz"],
    rows=2,
    rejected=0,
    uploadedAt="2026-11-30T01:00:00.000Z",
    completedAt="2026-11-30T01:01:00.000Z",
)


def manifest(**changes: Any) -> ConnectorManifest:
    fields: dict[str, Any] = {
        "name": "feeds",
        "description": "test",
        "event_types": ["MEMBER_TIER"],
        "handler": "x.handler",
        "packages": ("x",),
        **changes,
    }
    return ConnectorManifest(**fields)


def test_every_extract_has_a_key_and_a_last_updated_column_both_required() -> None:
    for schema in EXTRACTS.values():
        key, last = schema.column(schema.key), schema.column(LAST_UPDATED)
        assert key is not None
        assert key.required
        assert schema.columns[0] is key
        assert last is not None
        assert last.required
        assert last.type == "datetime"


def test_a_row_is_typed_as_its_schema_says() -> None:
    row = validate_row(
        EXTRACTS["personalizedOffers"],
        {
            "assignmentId": "A-1",
            "memberId": "M-1",
            "offerCode": "SPRING",
            "validFrom": "2026-03-01",
            "validTo": "",
            "value": "12.50",
            "currency": "CAD",
            "LastUpdated": "2026-11-30T10:00:00-05:00",
        },
    )
    assert row == {
        "assignmentId": "A-1",
        "memberId": "M-1",
        "offerCode": "SPRING",
        "validFrom": "2026-03-01",
        "validTo": None,
        "value": "12.50",
        "currency": "CAD",
        "LastUpdated": "2026-11-30T10:00:00-05:00",
    }


def test_a_row_breaking_rules_is_refused_naming_every_column_and_never_its_values() -> None:
    with pytest.raises(RowRefused) as refused:
        validate_row(
            EXTRACTS["orders"],
            {
                "orderId": "O-1",
                "memberId": "4111111111111111",
                "orderedAt": "2026-11-30 10:00",
                "amount": "1,5",
                "currency": "cad",
                "LastUpdated": "2026-11-30T10:00:00",
                "coupon": "X",
            },
        )
    problems = {p.field: p.rule for p in refused.value.problems}
    assert problems == {
        "<key 7>": "is not a column of extract orders",  # by position: a key is never echoed
        "memberId": "must not contain a payment card number",
        "orderedAt": "must carry an offset (Z or +hh:mm)",
        "amount": "must be a dot decimal with at most 6 decimal places",
        "currency": "must be an ISO 4217 currency code",
        "LastUpdated": "must carry an offset (Z or +hh:mm)",
    }
    assert "4111" not in str(refused.value)


def event_for(detail: FileReadyDetail) -> dict[str, Any]:
    return {"source": FILES_SOURCE, "detail-type": FILE_READY, "detail": json.loads(detail.model_dump_json())}


def test_a_manifest_naming_extracts_routes_their_file_ready_events_and_no_others() -> None:
    pattern = manifest(extracts=("memberAccounts", "orders")).file_pattern()
    assert pattern == {
        "source": ["dig.files"],
        "detail-type": ["FILE_READY"],
        "detail": {"name": ["memberAccounts", "orders"]},
    }
    matcher = EventPattern.load(json.dumps(pattern))
    assert matcher.matches_event(event_for(READY))
    assert not matcher.matches_event(event_for(READY.model_copy(update={"name": "partnerLinks"})))
    assert manifest().file_pattern() is None


def test_a_manifest_naming_an_unknown_extract_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"extracts \['shoeSizes'\] are not among"):
        manifest(extracts=("shoeSizes",))


class FileReader:
    name = "feeds"

    def __init__(self, fail: bool = False) -> None:
        self.files: list[FileReadyDetail] = []
        self.fail = fail

    def deliver(self, messages: Sequence[InboundMessage], deadline: Deadline) -> Mapping[str, Outcome]:
        return {}

    def handle_file_ready(self, detail: FileReadyDetail) -> None:
        if self.fail:
            raise RuntimeError("S3 unavailable")
        self.files.append(detail)


def test_the_runtime_hands_a_file_ready_to_the_connector_and_retries_it_when_that_fails() -> None:
    reader = FileReader()
    report = ConnectorRuntime(reader, FakeAuditStore(), max_receive_count=5).handle_sqs_batch(
        {"Records": [file_ready_record(READY)]}, Deadline(60)
    )
    assert reader.files == [READY]
    assert report.files_ready == 1
    assert report.failures == []

    failing = FileReader(fail=True)
    report = ConnectorRuntime(failing, FakeAuditStore(), max_receive_count=5).handle_sqs_batch(
        {"Records": [file_ready_record(READY, record_id="r-1")]}, Deadline(60)
    )
    assert report.failures == ["r-1"]
    assert report.files_ready == 0


def test_a_file_ready_for_a_connector_that_reads_no_files_goes_to_its_dead_letter_queue() -> None:
    class EventsOnly:
        name = "events"

        def deliver(self, messages: Sequence[InboundMessage], deadline: Deadline) -> Mapping[str, Outcome]:
            return {}

    report = ConnectorRuntime(EventsOnly(), FakeAuditStore(), max_receive_count=5).handle_sqs_batch(
        {"Records": [file_ready_record(READY, record_id="r-2")]}, Deadline(60)
    )
    assert report.failures == ["r-2"]
