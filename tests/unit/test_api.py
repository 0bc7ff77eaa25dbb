"""The DIG API through its Lambda handler, with the audit table and the bus replaced by fakes:
every route, and a test per error case, each asserting the status and the JSON error body."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from db.records import PublishState
from dig_api import handler
from dig_api.dependencies import providers
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
    providers.ingest = lambda: service
    yield service
    providers.reset()


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
        ("data.reward.value.amount", "String should match pattern '^-?\\d{1,8}(\\.\\d{1,4})?$'"),
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
    # An unknown key is named by its position, never echoed; the card-number rule names it the same way.
    assert {(d["field"], d["rule"][:24]) for d in body["error"]["details"]} == {
        ("data.<key 6>", "is not a known field (un"),
        ("data.<key 6>", "must not contain a payme"),
    }
    assert len(body["error"]["details"]) == 2  # unknown key, and a card number
    assert "4111" not in json.dumps(body)


def test_a_card_number_as_a_key_is_refused_and_never_echoed_in_the_error_or_the_log(
    bus: FakePublisher, audit: FakeAuditStore, capsys: pytest.CaptureFixture[str]
) -> None:
    event = example_event("MEMBER_PROFILE_UPDATE")
    event["data"]["profile"]["card 5500-0000-0000-0004"] = "a card number written as a field name"
    status, _, body = call("POST", "/v1/events", event)
    assert status == 422
    assert_error(body, "VALIDATION_FAILED")
    assert body["error"]["details"] == [
        {
            "field": "data.profile.<key 4>",
            "rule": "String should match pattern '^[A-Za-z][A-Za-z0-9_.-]*$'",
        },
        {
            "field": "data.profile.<key 4>",
            "rule": "must not contain a payment card number (DIG never accepts card numbers)",
        },
    ]
    logged = capsys.readouterr()
    assert "0000-0000" not in json.dumps(body) + logged.out + logged.err
    assert not bus.published
    assert not audit.messages


def test_a_card_number_sent_as_a_json_float_is_refused(bus: FakePublisher, audit: FakeAuditStore) -> None:
    body_text = json.dumps(example_event("MEMBER_PROFILE_UPDATE")).replace(
        '"city": "Ottawa"', '"city": "Ottawa", "note": 4111111111111111.0'
    )
    status, _, body = call("POST", "/v1/events", body_text, raw=True)
    assert status == 422
    assert_error(body, "CARD_NUMBER_REFUSED")
    assert [d["field"] for d in body["error"]["details"]] == ["data.profile.note"]
    assert not bus.published
    assert not audit.messages


def test_a_voucher_code_that_could_be_a_card_number_is_refused(bus: FakePublisher, audit: FakeAuditStore) -> None:
    event = example_event("VOUCHER_ISSUED")
    event["data"]["codeReference"] = "4111-1111-1111-1111"
    status, _, body = call("POST", "/v1/events", event)
    assert status == 422
    refusal = "must not contain a payment card number (DIG never accepts card numbers)"
    assert {"field": "data.codeReference", "rule": refusal} in body["error"]["details"]
    assert not bus.published
    assert not audit.messages


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


def test_an_event_published_but_not_recorded_is_not_accepted_and_its_retry_records_it(
    audit: FakeAuditStore, bus: FakePublisher
) -> None:
    event = example_event("REDEMPTION")
    audit.fail_records = True
    status, headers, body = call("POST", "/v1/events", event)
    assert status == 503
    assert headers["Retry-After"] == "5"
    assert_error(body, "SERVICE_UNAVAILABLE")
    assert "nothing was accepted" in body["error"]["message"]
    assert message_id_for(event["eventId"]) not in audit.messages

    audit.fail_records = False
    status, _, body = call("POST", "/v1/events", event)
    assert (status, body["status"]) == (202, "accepted")
    assert audit.messages[body["messageId"]].publishState is PublishState.PUBLISHED
    # On the bus twice, as one message: connectors deliver on messageId, once.
    assert [d.messageId for d in bus.published] == [body["messageId"]] * 2


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


# --- POST /v1/sync/events -------------------------------------------------------------------


class FakeInvoker:
    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def invoke(self, connector: str, request: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((connector, request))
        answer = self.answers[connector]
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)


@pytest.fixture
def invoker(service: IngestService, audit: FakeAuditStore) -> Iterator[FakeInvoker]:
    from dig_api.sync import SyncConnector, SyncService

    fake = FakeInvoker(
        {
            "optimove": {"connector": "optimove", "status": "DELIVERED", "error": None, "attempts": 2, "notes": []},
            "marketo": RuntimeError("Task timed out after 25.00 seconds"),
        }
    )
    connectors = [
        SyncConnector("optimove", "arn:optimove", frozenset({"REDEMPTION", "MEMBER_TIER"})),
        SyncConnector("marketo", "arn:marketo", frozenset({"REDEMPTION"})),
    ]
    providers.sync = lambda: SyncService(service, audit, fake, connectors)
    return fake


def test_the_synchronous_flow_answers_each_subscribed_connectors_result(
    invoker: FakeInvoker, audit: FakeAuditStore, bus: FakePublisher
) -> None:
    event = example_event("REDEMPTION")
    status, _, body = call("POST", "/v1/sync/events", event)
    assert status == 200
    message_id = message_id_for(event["eventId"])
    assert body["messageId"] == message_id
    assert body["status"] == "completed"
    by_connector = {d["connector"]: d for d in body["deliveries"]}
    assert by_connector["optimove"] == {
        "connector": "optimove",
        "status": "DELIVERED",
        "error": None,
        "attempts": 2,
        "notes": [],
    }
    assert by_connector["marketo"]["status"] == "FAILED"
    assert by_connector["marketo"]["error"].startswith(
        "the connector did not answer the synchronous call: Task timed out"
    )
    # Audited like every other message, recorded as delivered synchronously, never put on the bus.
    assert audit.messages[message_id].publishState is PublishState.SYNC
    assert audit.deliveries[(message_id, "marketo")].status.value == "FAILED"
    assert not bus.published
    [(_, request)] = [c for c in invoker.calls if c[0] == "optimove"]
    assert request["detail"]["messageId"] == message_id
    assert request["detail"]["event"]["data"]["redemptionId"] == "R-55501"


def test_only_connectors_subscribed_to_the_event_type_are_invoked(invoker: FakeInvoker) -> None:
    status, _, body = call("POST", "/v1/sync/events", example_event("MEMBER_TIER"))
    assert status == 200
    assert [d["connector"] for d in body["deliveries"]] == ["optimove"]
    assert [c[0] for c in invoker.calls] == ["optimove"]


def test_the_same_event_again_answers_its_recorded_deliveries_as_duplicate(invoker: FakeInvoker) -> None:
    event = example_event("REDEMPTION")
    call("POST", "/v1/sync/events", event)
    status, _, body = call("POST", "/v1/sync/events", event)
    assert status == 200
    assert body["status"] == "duplicate"
    assert [d["connector"] for d in body["deliveries"]] == ["marketo"]  # what the audit trail holds
    assert len(invoker.calls) == 2  # not invoked again


def test_the_synchronous_flow_validates_like_the_asynchronous_one(invoker: FakeInvoker) -> None:
    status, _, body = call("POST", "/v1/sync/events", example_event("REDEMPTION", memberId=""))
    assert status == 422
    assert [d["field"] for d in body["error"]["details"]] == ["memberId"]
    assert invoker.calls == []


# --- POST /v1/events/batch ------------------------------------------------------------------


def test_a_batch_answers_one_result_per_entry_in_order_and_a_bad_entry_rejects_only_itself(
    bus: FakePublisher,
) -> None:
    good = example_event("MEMBER_TIER", eventId="b-1")
    bad = example_event("REDEMPTION", eventId="b-2")
    bad["data"]["pointsRedeemed"] = -5
    card = example_event("MEMBER_PROFILE_UPDATE", eventId="b-3")
    card["data"]["profile"]["note"] = "5500 0000 0000 0004"
    status, _, body = call("POST", "/v1/events/batch", {"events": [good, bad, card, "not an object", good]})
    assert status == 200
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected", "rejected", "duplicate"]
    assert results[0]["messageId"] == message_id_for("b-1") == results[4]["messageId"]
    assert results[1]["eventId"] == "b-2"
    assert results[1]["error"]["code"] == "VALIDATION_FAILED"
    assert results[1]["error"]["details"] == [
        {"field": "data.pointsRedeemed", "rule": "Input should be greater than 0"}
    ]
    assert results[1]["retryable"] is False
    assert results[2]["error"]["code"] == "CARD_NUMBER_REFUSED"
    assert "5500" not in json.dumps(body)
    assert results[3]["eventId"] is None
    assert [d.event["eventId"] for d in bus.published] == ["b-1"]


def test_an_entry_the_bus_refuses_is_rejected_as_retryable_never_accepted(
    bus: FakePublisher, audit: FakeAuditStore
) -> None:
    events = [example_event("MEMBER_TIER", eventId=f"c-{i}") for i in range(3)]
    bus.refuse.add("c-1")
    status, _, body = call("POST", "/v1/events/batch", {"events": events})
    assert status == 200
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "accepted"]
    assert body["results"][1]["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert body["results"][1]["retryable"] is True
    assert audit.messages[message_id_for("c-1")].publishState is PublishState.FAILED
    bus.refuse.clear()
    _, _, again = call("POST", "/v1/events/batch", {"events": events})
    assert [r["status"] for r in again["results"]] == ["duplicate", "accepted", "duplicate"]


def test_a_batch_over_500_events_is_422_as_its_schema_says() -> None:
    events = [example_event("MEMBER_TIER", eventId=f"d-{i}") for i in range(501)]
    status, _, body = call("POST", "/v1/events/batch", {"events": events})
    assert status == 422
    assert_error(body, "VALIDATION_FAILED")
    assert body["error"]["details"] == [
        {"field": "events", "rule": "List should have at most 500 items after validation, not 501"}
    ]


def test_a_batch_over_the_lambda_payload_limit_is_413() -> None:
    big = example_event("MEMBER_PROFILE_UPDATE")
    big["data"]["profile"]["bio"] = "x" * 900_000
    events = [dict(big, eventId=f"e-{i}") for i in range(7)]
    status, _, body = call("POST", "/v1/events/batch", {"events": events})
    assert status == 413
    assert_error(body, "PAYLOAD_TOO_LARGE")


def test_a_batch_body_that_is_not_an_object_with_events_is_422() -> None:
    status, _, body = call("POST", "/v1/events/batch", {"items": []})
    assert status == 422
    assert {d["field"] for d in body["error"]["details"]} == {"events", "<key 1>"}  # unknown keys not echoed


def test_a_body_that_is_not_utf8_is_400_not_a_server_error() -> None:
    import base64

    event = rest_event("POST", "/v1/events/batch", None)
    event["body"] = base64.b64encode(b"\xf1h\xe8").decode()
    event["isBase64Encoded"] = True
    answer = handler.lambda_handler(event, FakeLambdaContext())
    assert answer["statusCode"] == 400
    assert json.loads(answer["body"])["error"]["code"] == "INVALID_JSON"


def test_a_batch_publishes_one_metric_value_per_status_not_one_per_event(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    handler.metrics.clear_metrics()  # what earlier tests added while metrics were disabled (never flushed)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    events = [example_event("MEMBER_TIER", eventId=f"m-{i}") for i in range(150)]
    events[7] = {**events[7], "memberId": ""}  # rejected
    status, _, body = call("POST", "/v1/events/batch", {"events": events})
    assert status == 200
    assert [r["status"] for r in body["results"]].count("accepted") == 149

    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert len(emitted) == 1  # one EMF document: no value array ran over EMF's 100 per metric
    assert (emitted[0]["EventsAccepted"], emitted[0]["EventsRejected"]) == ([149.0], [1.0])


def test_a_request_that_counts_nothing_leaves_no_metrics_warning_in_the_logs() -> None:
    # In a fresh interpreter, as Lambda imports the handler (pytest drops filters set at collection).
    script = """
from tests.apigw import FakeLambdaContext, rest_event
from tests.fakes import FakeAuditStore, FakePublisher
from dig_api import handler
from dig_api.dependencies import providers
from dig_api.ingest import IngestService
service = IngestService(FakeAuditStore(), FakePublisher())
providers.ingest = lambda: service
answer = handler.lambda_handler(rest_event("GET", "/v1/messages/nobody"), FakeLambdaContext())
print(answer["statusCode"])
"""
    repo = Path(__file__).resolve().parents[2]
    environment = {**os.environ, "POWERTOOLS_METRICS_DISABLED": "false", "PYTHONPATH": f"{repo / 'src'}:{repo}"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment, check=True)
    assert done.stdout.strip().endswith("404")
    assert "No application metrics" not in done.stderr


def test_the_handler_imports_nothing_its_paths_do_not_use_even_with_tracing_on() -> None:
    # As a deployed function imports it (Powertools traces only where LAMBDA_TASK_ROOT is set).
    script = "import sys, dig_api.handler; print(sorted(m for m in ('httpx', 'babel', 'boto3') if m in sys.modules))"
    repo = Path(__file__).resolve().parents[2]
    environment = {
        **{k: v for k, v in os.environ.items() if k != "POWERTOOLS_TRACE_DISABLED"},
        "LAMBDA_TASK_ROOT": str(repo / "src"),
        "PYTHONPATH": f"{repo / 'src'}:{repo}",
    }
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment, check=True)
    assert done.stdout.strip() == "[]"


# --- one bad input hurts nobody else (#21) ---------------------------------------------------------


def oversized(index: int) -> dict[str, Any]:
    """An event within every field's limit that no audit record can hold: 800 KB of incompressible text."""
    import random
    import string

    rng = random.Random(index)
    event = example_event("MEMBER_PROFILE_UPDATE", eventId=f"evt-big-{index}")
    event["data"]["profile"] = {f"f{i}": "".join(rng.choices(string.ascii_letters, k=4000)) for i in range(200)}
    return event


def test_a_batch_of_500_with_one_oversized_event_accepts_the_499_and_names_the_limit(
    audit: FakeAuditStore, bus: FakePublisher
) -> None:
    events = [example_event("MEMBER_TIER", eventId=f"evt-{i:03d}") for i in range(500)]
    events[137] = oversized(137)
    status, _, body = call("POST", "/v1/events/batch", {"events": events})
    assert status == 200
    statuses = [r["status"] for r in body["results"]]
    assert statuses.count("accepted") == 499
    refused = body["results"][137]
    assert (refused["status"], refused["error"]["code"], refused["retryable"]) == (
        "rejected",
        "PAYLOAD_TOO_LARGE",
        False,
    )
    assert refused["error"]["details"] == [{"field": "(event)", "rule": "at most 401408 bytes as stored"}]
    assert "DynamoDB's 400 KB item" in refused["error"]["message"]
    assert len(bus.published) == 499
    assert message_id_for("evt-big-137") not in audit.messages


def test_an_oversized_single_event_is_413_naming_the_limit(bus: FakePublisher) -> None:
    status, _, body = call("POST", "/v1/events", oversized(1))
    assert status == 413
    assert_error(body, "PAYLOAD_TOO_LARGE")
    assert body["error"]["details"][0]["rule"] == "at most 401408 bytes as stored"
    assert not bus.published


@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/batch", "/v1/sync/events", "/v1/files"])
def test_deeply_nested_json_is_400_not_500(path: str) -> None:
    status, _, body = call("POST", path, "[" * 5000 + "]" * 5000, raw=True)
    assert status == 400
    assert_error(body, "INVALID_JSON")
    assert body["error"]["details"] == [{"field": "(body)", "rule": "at most 32 levels of arrays and objects"}]


def test_brackets_inside_strings_do_not_count_as_nesting(bus: FakePublisher) -> None:
    event = example_event("MEMBER_PROFILE_UPDATE")
    event["data"]["profile"]["note"] = "[[[[{{{{" * 20
    assert call("POST", "/v1/events", event)[0] == 202


def test_the_batch_answer_never_echoes_an_event_id_that_could_be_a_card_number(bus: FakePublisher) -> None:
    events = [example_event("MEMBER_TIER", eventId="evt-4111111111111111"), example_event("MEMBER_TIER")]
    _, _, body = call("POST", "/v1/events/batch", {"events": events})
    first = body["results"][0]
    assert (first["eventId"], first["error"]["code"]) == (None, "CARD_NUMBER_REFUSED")
    assert first["error"]["details"] == [
        {"field": "eventId", "rule": "must not contain a payment card number (DIG never accepts card numbers)"}
    ]
    assert "4111" not in json.dumps(body)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/messages/4111111111111111", 404),
        ("GET", "/v1/events/evt-%3Cscript%3E", 404),
        ("GET", "/v1/files/4111-1111-1111-1111", 404),
        ("GET", "/v1/nothing/4111111111111111", 404),
        ("DELETE", "/v1/events/4111111111111111", 405),
    ],
)
def test_404_and_405_bodies_echo_no_id_and_no_path(method: str, path: str, status: int) -> None:
    providers.files = lambda: type("NoFiles", (), {"view": staticmethod(lambda file_id: None)})()
    got, _, body = call(method, path)
    assert got == status
    assert "4111" not in json.dumps(body)
    assert "script" not in json.dumps(body)
