"""The DIG API through its Lambda handler, with the audit table and the bus replaced by fakes:
every route, and a test per error case, each asserting the status and the JSON error body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from db.records import PublishState
from dig_api import dependencies, handler
from dig_api.ingest import IngestService
from dig_contracts.bus import message_id_for
from dig_contracts.examples import example_event
from tests.apigw import FakeLambdaContext, rest_event
from tests.fakes import FakeAuditStore, FakePublisher


@pytest.fixture
def audit() -> FakeAuditStore:
    return FakeAuditStore()


@pytest.fixture
def bus() -> FakePublisher:
    return FakePublisher()


@pytest.fixture(autouse=True)
def service(audit: FakeAuditStore, bus: FakePublisher) -> Iterator[IngestService]:
    service = IngestService(audit, bus)
    handler.app.dependency_overrides[dependencies.ingest_service] = lambda: service
    yield service
    handler.app.dependency_overrides.clear()


def call(method: str, path: str, body: Any = None, **options: Any) -> tuple[int, dict[str, str], Any]:
    answer = handler.lambda_handler(rest_event(method, path, body, **options), FakeLambdaContext())
    text = answer.get("body") or ""
    headers = {**answer.get("headers", {}), **{k: v[0] for k, v in (answer.get("multiValueHeaders") or {}).items()}}
    return answer["statusCode"], headers, json.loads(text) if text else None


def assert_error(body: dict[str, Any], code: str) -> None:
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], list)
    assert body["requestId"]


# --- POST /v1/events ------------------------------------------------------------------------


def test_an_event_is_recorded_published_and_answered_202(audit: FakeAuditStore, bus: FakePublisher) -> None:
    event = example_event("MEMBER_PROFILE_UPDATE")
    status, _, body = call("POST", "/v1/events", event)
    assert status == 202
    assert body == {"messageId": message_id_for(event["eventId"]), "status": "accepted"}
    record = audit.messages[body["messageId"]]
    assert record.publishState is PublishState.PUBLISHED
    assert record.client == "es-loyalty"
    assert record.sourceIp == "203.0.113.9"
    assert record.sizeBytes == len(json.dumps(event).encode())
    assert record.envelope["data"]["profile"]["city"] == "Ottawa"
    [detail] = bus.published
    assert detail.messageId == body["messageId"]
    assert detail.event["eventType"] == "MEMBER_PROFILE_UPDATE"


def test_the_same_event_id_again_is_a_duplicate_and_is_not_published_again(bus: FakePublisher) -> None:
    event = example_event("MEMBER_TIER")
    _, _, first = call("POST", "/v1/events", event)
    status, _, second = call("POST", "/v1/events", event)
    assert status == 200
    assert second == {"messageId": first["messageId"], "status": "duplicate"}
    assert len(bus.published) == 1


def test_invalid_json_is_400() -> None:
    status, _, body = call("POST", "/v1/events", '{"eventId": ', raw=True)
    assert status == 400
    assert_error(body, "INVALID_JSON")


def test_schema_violations_are_422_listing_every_field() -> None:
    event = example_event("REDEMPTION")
    event["data"]["reward"]["value"]["amount"] = "twelve"
    del event["memberId"]
    status, _, body = call("POST", "/v1/events", event)
    assert status == 422
    assert_error(body, "VALIDATION_FAILED")
    assert {(d["field"], d["rule"]) for d in body["error"]["details"]} == {
        ("memberId", "is required"),
        ("data.reward.value.amount", "String should match pattern '^-?\\d{1,15}(\\.\\d{1,4})?$'"),
    }


def test_an_unknown_event_type_is_422_on_eventType() -> None:
    status, _, body = call("POST", "/v1/events", example_event("MEMBER_TIER", eventType="POINTS_EXPIRED"))
    assert status == 422
    assert [d["field"] for d in body["error"]["details"]] == ["eventType"]


def test_a_card_number_is_refused_with_422_naming_the_field_and_never_echoed(
    bus: FakePublisher, audit: FakeAuditStore, capsys: pytest.CaptureFixture[str]
) -> None:
    event = example_event("MEMBER_PROFILE_UPDATE")
    event["data"]["profile"]["note"] = "card 4111 1111 1111 1111"
    status, _, body = call("POST", "/v1/events", event)
    assert status == 422
    assert_error(body, "CARD_NUMBER_REFUSED")
    assert body["error"]["details"] == [
        {
            "field": "data.profile.note",
            "rule": "must not contain a payment card number (DIG never accepts card numbers)",
        }
    ]
    assert not bus.published
    assert not audit.messages
    logged = capsys.readouterr()
    assert "4111" not in json.dumps(body) + logged.out + logged.err


def test_a_card_number_in_an_otherwise_invalid_event_is_reported_with_the_other_errors() -> None:
    event = example_event("PARTNER_CARD_LINK")
    event["data"]["cardNumber"] = "4111-1111-1111-1111"
    status, _, body = call("POST", "/v1/events", event)
    assert status == 422
    assert {d["field"] for d in body["error"]["details"]} == {"data.cardNumber"}
    assert len(body["error"]["details"]) == 2  # unknown key, and a card number
    assert "4111" not in json.dumps(body)


def test_an_event_over_1_mb_is_413() -> None:
    event = example_event("MEMBER_PROFILE_UPDATE")
    event["data"]["profile"]["bio"] = "x" * 1_000_001
    status, _, body = call("POST", "/v1/events", event)
    assert status == 413
    assert_error(body, "PAYLOAD_TOO_LARGE")


def test_a_content_type_other_than_json_is_415() -> None:
    status, _, body = call(
        "POST", "/v1/events", "eventId=1", raw=True, content_type="application/x-www-form-urlencoded"
    )
    assert status == 415
    assert_error(body, "UNSUPPORTED_MEDIA_TYPE")


def test_an_unknown_route_is_404() -> None:
    status, _, body = call("GET", "/v1/members/M-1")
    assert status == 404
    assert_error(body, "NOT_FOUND")


def test_a_wrong_method_is_405_with_allow() -> None:
    status, headers, body = call("DELETE", "/v1/events")
    assert status == 405
    assert headers["Allow"] == "POST"
    assert_error(body, "METHOD_NOT_ALLOWED")


def test_the_audit_table_unavailable_is_503_with_retry_after_and_nothing_published(
    audit: FakeAuditStore, bus: FakePublisher
) -> None:
    audit.fail_writes = True
    status, headers, body = call("POST", "/v1/events", example_event("MEMBER_TIER"))
    assert status == 503
    assert headers["Retry-After"] == "5"
    assert_error(body, "SERVICE_UNAVAILABLE")
    assert not bus.published


def test_the_bus_unavailable_is_503_the_record_says_so_and_a_retry_completes_the_publish(
    audit: FakeAuditStore, bus: FakePublisher
) -> None:
    event = example_event("REDEMPTION")
    bus.refuse.add(event["eventId"])
    status, headers, body = call("POST", "/v1/events", event)
    assert status == 503
    assert "Retry-After" in headers
    record = audit.messages[message_id_for(event["eventId"])]
    assert record.publishState is PublishState.FAILED
    assert record.publishError
    assert "InternalFailure" in record.publishError

    bus.refuse.clear()
    status, _, body = call("POST", "/v1/events", event)
    assert status == 202
    assert body["status"] == "accepted"
    assert audit.messages[body["messageId"]].publishState is PublishState.PUBLISHED
    assert len(bus.published) == 1


# --- GET --------------------------------------------------------------------------------------


def test_get_message_answers_the_audit_record() -> None:
    _, _, accepted = call("POST", "/v1/events", example_event("MEMBER_PROFILE_UPDATE"))
    status, _, body = call("GET", f"/v1/messages/{accepted['messageId']}")
    assert status == 200
    assert body["messageId"] == accepted["messageId"]
    assert body["eventId"] == "evt-prof-0001"
    assert body["eventType"] == "MEMBER_PROFILE_UPDATE"
    assert body["memberId"] == "M-100001"
    assert body["receivedAt"].endswith("Z")
    assert body["publishState"] == "PUBLISHED"
    assert body["deliveries"] == []


def test_get_by_event_id_finds_the_same_message() -> None:
    _, _, accepted = call("POST", "/v1/events", example_event("MEMBER_TIER"))
    status, _, body = call("GET", "/v1/events/evt-tier-0001")
    assert status == 200
    assert body["messageId"] == accepted["messageId"]


def test_get_an_unknown_message_is_404() -> None:
    status, _, body = call("GET", "/v1/messages/nope")
    assert status == 404
    assert_error(body, "NOT_FOUND")
