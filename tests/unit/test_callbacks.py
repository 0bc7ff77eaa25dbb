"""Optimove's per-customer results, posted later to a signed callback URL: a rejected customer fails
only that member's messages, the audit trail says so, and a replay can send them again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from db.records import DeliveryRecord, DeliveryStatus
from dig_api import handler
from dig_api.dependencies import providers
from dig_api.ingest import IngestService
from dig_connector_kit.model import Deadline, Result
from dig_connector_kit.runtime import ConnectorRuntime
from dig_contracts.bus import CALLBACK_SOURCE, CallbackDetail, callback_detail_type
from dig_contracts.callbacks import callback_url, signature, verify
from dig_contracts.examples import example_event
from tests.apigw import FakeLambdaContext, rest_event
from tests.fakes import FakeAuditStore, FakePublisher
from tests.optimove_harness import CALLBACK_KEY, harness, inbound

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def profile(member: str, event_id: str, **fields: Any) -> dict[str, Any]:
    document = example_event("MEMBER_PROFILE_UPDATE", eventId=event_id, memberId=member, occurredAt=T0.isoformat())
    document["data"] = {"profile": fields}
    return document


def callback_of(url: str, results: dict[str, Any]) -> CallbackDetail:
    parts = urlsplit(url)
    connector, call_id = parts.path.split("/")[-2:]
    assert verify(CALLBACK_KEY, connector, call_id, parse_qs(parts.query)["sig"][0])
    return CallbackDetail(connector=connector, callId=call_id, payload=results, receivedAt="2026-11-21T12:01:00.000Z")


def test_the_call_carries_a_signed_callback_url_and_its_results_fail_only_the_rejected_member() -> None:
    h = harness(callbacks=True)
    good = inbound(profile("M-good", "e-good", city="Ottawa"))
    bad = inbound(profile("M-bad", "e-bad", city="Paris", firstName="Ada"))
    h.simulator.invalid_customers.add("M-bad")
    outcomes = h.deliver(good, bad)
    assert {o.result for o in outcomes.values()} == {Result.DELIVERED}  # accepted by the call itself
    [call] = h.calls("UpdateCustomerAttributes")
    assert call["body"]["CallbackURL"].startswith("https://dig.test/v1/callbacks/optimove/")

    [(url, results)] = h.callbacks
    assert results == {"Errors": [{"CustomerID": "M-bad", "ErrorCode": "INVALID_CUSTOMER"}]}
    failures = h.connector.handle_callback(callback_of(url, results))
    assert [f.message_id for f in failures] == [bad.message_id]
    assert "INVALID_CUSTOMER" in failures[0].error
    # The rejected values' watermarks are dropped, so that a replay sends them again.
    assert h.watermarks.marks["optimove"]["M-bad"] == {}
    assert set(h.watermarks.marks["optimove"]["M-good"]) == {"CITY"}


def test_an_unknown_field_fails_only_the_message_that_sent_it() -> None:
    h = harness(callbacks=True, known_fields={"CITY"})
    older = inbound(profile("M-1", "e-1", city="Ottawa"))
    newer_doc = profile("M-1", "e-2", firstName="Ada")
    newer_doc["occurredAt"] = (T0 + timedelta(minutes=1)).isoformat()
    newer = inbound(newer_doc)
    h.deliver(older, newer)
    [(url, results)] = h.callbacks
    assert results == {"Errors": [{"CustomerID": "M-1", "ErrorCode": "INVALID_FIELD", "RealFieldName": "FIRST_NAME"}]}
    failures = h.connector.handle_callback(callback_of(url, results))
    assert [(f.message_id, "INVALID_FIELD for FIRST_NAME" in f.error) for f in failures] == [(newer.message_id, True)]


def test_results_for_an_unknown_call_change_nothing() -> None:
    h = harness(callbacks=True)
    detail = CallbackDetail(
        connector="optimove",
        callId="expired",
        payload={"Errors": [{"CustomerID": "M-1", "ErrorCode": "INVALID_CUSTOMER"}]},
        receivedAt="t",
    )
    assert h.connector.handle_callback(detail) == []


def test_the_runtime_records_late_failures_on_the_audit_trail() -> None:
    h = harness(callbacks=True)
    message = inbound(profile("M-bad", "e-bad", city="Paris"))
    h.simulator.invalid_customers.add("M-bad")
    audit = FakeAuditStore()
    runtime = ConnectorRuntime(h.connector, audit, max_receive_count=5)
    delivered = DeliveryRecord(
        messageId=message.message_id,
        connector="optimove",
        status=DeliveryStatus.DELIVERED,
        eventType="MEMBER_PROFILE_UPDATE",
        memberId="M-bad",
        updatedAt="t",
        attemptCount=1,
    )
    h.deliver(message)
    audit.save_deliveries([delivered])
    [(url, results)] = h.callbacks
    detail = callback_of(url, results)
    record = {
        "messageId": "sqs-callback",
        "body": json.dumps(
            {"source": CALLBACK_SOURCE, "detail-type": callback_detail_type("optimove"), "detail": detail.model_dump()}
        ),
        "attributes": {"ApproximateReceiveCount": "1"},
    }
    report = runtime.handle_sqs_batch({"Records": [record]}, Deadline(60))
    assert report.response() == {"batchItemFailures": []}
    after = audit.deliveries[(message.message_id, "optimove")]
    assert after.status is DeliveryStatus.FAILED
    assert after.lastError is not None
    assert "INVALID_CUSTOMER" in after.lastError
    assert after.notes[-1].startswith("reported failed by the provider's callback")


# --- the API's callback route ------------------------------------------------------------------------


@pytest.fixture
def bus() -> Iterator[FakePublisher]:
    published = FakePublisher()
    providers.ingest = lambda: IngestService(FakeAuditStore(), published)
    providers.callback_key = lambda: CALLBACK_KEY
    yield published
    providers.reset()


def post(path: str, body: Any) -> dict[str, Any]:
    event = rest_event("POST", path.split("?")[0], body)
    query = parse_qs(urlsplit(path).query)
    event["queryStringParameters"] = {k: v[0] for k, v in query.items()} or None
    event["multiValueQueryStringParameters"] = query or None
    return handler.lambda_handler(event, FakeLambdaContext())


def test_a_signed_callback_is_put_on_the_bus_for_its_connector(bus: FakePublisher) -> None:
    url = callback_url("https://x/v1/callbacks", CALLBACK_KEY, "optimove", "call-1")
    answer = post(urlsplit(url).path + "?" + urlsplit(url).query, {"Errors": []})
    assert answer["statusCode"] == 202
    [detail] = bus.callbacks
    assert (detail.connector, detail.callId, detail.payload) == ("optimove", "call-1", {"Errors": []})


@pytest.mark.parametrize("sig", ["", "0" * 64, signature("another-key", "optimove", "call-1")])
def test_an_unsigned_or_forged_callback_is_403(bus: FakePublisher, sig: str) -> None:
    answer = post(f"/v1/callbacks/optimove/call-1?sig={sig}", {"Errors": []})
    assert answer["statusCode"] == 403
    assert json.loads(answer["body"])["error"]["code"] == "FORBIDDEN"
    assert bus.callbacks == []
