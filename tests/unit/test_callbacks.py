"""Optimove's per-customer results, posted later to a signed callback URL: a rejected customer fails
only that member's messages, the audit trail says so, and a replay can send them again."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors.optimove.tests.harness import CALLBACK_KEY, harness, inbound
from db.call_log import CallNotRecorded
from db.records import DeliveryRecord, DeliveryStatus, MessageRecord, PublishState
from dig_api import handler
from dig_api.dependencies import providers
from dig_api.ingest import IngestService
from dig_connector_kit.model import CallbackReport, Deadline, Result
from dig_connector_kit.runtime import ConnectorRuntime
from dig_connector_kit.testing import FakeRequeue
from dig_contracts.bus import CALLBACK_SOURCE, SCHEDULED_CHECK, CallbackDetail, callback_detail_type
from dig_contracts.callbacks import callback_url, signature, verify
from dig_contracts.examples import example_event
from tests.apigw import FakeLambdaContext, rest_event
from tests.fakes import FakeAuditStore, FakePublisher

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def profile(member: str, event_id: str, **fields: Any) -> dict[str, Any]:
    document = example_event("MEMBER_PROFILE_UPDATE", eventId=event_id, memberId=member, occurredAt=T0.isoformat())
    document["data"] = {"profile": fields}
    return document


def callback_of(url: str, results: dict[str, Any], receipt: str = "request-1") -> CallbackDetail:
    parts = urlsplit(url)
    connector, call_id = parts.path.split("/")[-2:]
    query = parse_qs(parts.query)
    assert verify(CALLBACK_KEY, connector, call_id, query["exp"][0], query["sig"][0])
    return CallbackDetail(
        connector=connector, callId=call_id, payload=results, receivedAt="2026-11-21T12:01:00.000Z", receiptId=receipt
    )


def test_the_call_carries_a_signed_callback_url_and_its_results_fail_only_the_rejected_member() -> None:
    h = harness(callbacks=True)
    good = inbound(profile("M-good", "e-good", city="Ottawa"))
    bad = inbound(profile("M-bad", "e-bad", city="Paris", firstName="Ada"))
    h.simulator.rejections["M-bad"] = "INVALID_VALUE"
    outcomes = h.deliver(good, bad)
    assert {o.result for o in outcomes.values()} == {Result.DELIVERED}  # accepted by the call itself
    [call] = h.calls("UpdateCustomerAttributes")
    assert call["body"]["CallbackURL"].startswith("https://dig.test/v1/callbacks/optimove/")

    [(url, results)] = h.callbacks
    assert results["isSuccess"] is False
    assert results["errors"] == [
        {"error": "INVALID_VALUE", "customerId": "M-bad", "realFieldName": "CITY"},
        {"error": "INVALID_VALUE", "customerId": "M-bad", "realFieldName": "FIRST_NAME"},
    ]
    report = h.connector.handle_callback(callback_of(url, results))
    assert [(f.message_id, f.retry_in_seconds) for f in report.failures] == [(bad.message_id, None)]
    assert "INVALID_VALUE for CITY, INVALID_VALUE for FIRST_NAME" in report.failures[0].error
    # The rejected values' watermarks are dropped, so that a replay sends them again.
    assert h.watermarks.marks["optimove"]["M-bad"] == {}
    assert set(h.watermarks.marks["optimove"]["M-good"]) == {"CITY"}
    # The raw results are kept with the call's log.
    call_id = urlsplit(url).path.split("/")[-1]
    assert h.call_log.results[("optimove", call_id)] == (results, True)
    # SQS redelivering the same receipt applies it again (harmless); another post of the URL changes nothing.
    assert h.connector.handle_callback(callback_of(url, results)).failures == report.failures
    assert h.connector.handle_callback(callback_of(url, results, receipt="request-2")) == CallbackReport()


def test_an_unknown_field_fails_only_the_message_that_sent_it() -> None:
    h = harness(callbacks=True, known_fields={"CITY"})
    older = inbound(profile("M-1", "e-1", city="Ottawa"))
    newer_doc = profile("M-1", "e-2", firstName="Ada")
    newer_doc["occurredAt"] = (T0 + timedelta(minutes=1)).isoformat()
    newer = inbound(newer_doc)
    h.deliver(older, newer)
    [(url, results)] = h.callbacks
    assert results["errors"] == [{"error": "INVALID_FIELD", "customerId": "M-1", "realFieldName": "FIRST_NAME"}]
    failures = h.connector.handle_callback(callback_of(url, results)).failures
    assert [(f.message_id, "INVALID_FIELD for FIRST_NAME" in f.error) for f in failures] == [(newer.message_id, True)]


def test_results_for_a_call_not_in_the_log_go_back_to_the_queue_and_change_nothing() -> None:
    """Results that overtook the call's record (or followed an invocation that stopped before writing it):
    retried until the call is there, then the dead-letter queue; never kept on an item the record would
    overwrite, nor dropped."""
    h = harness(callbacks=True)
    detail = CallbackDetail(
        connector="optimove",
        callId="not-recorded-yet",
        payload={"isSuccess": False, "errors": [{"error": "INVALID_CUSTOMER", "customerId": "M-1"}]},
        receivedAt="t",
    )
    with pytest.raises(CallNotRecorded):
        h.connector.handle_callback(detail)
    assert h.call_log.results == {}
    runtime = ConnectorRuntime(h.connector, audit := FakeAuditStore(), max_receive_count=5)
    report = runtime.handle_sqs_batch({"Records": [sqs_callback(detail)]}, Deadline(60))
    assert report.response() == {"batchItemFailures": [{"itemIdentifier": "sqs-callback"}]}
    assert audit.deliveries == {}
    h.call_log.record("optimove", "not-recorded-yet", {"M-1": {"msg-1": ["CITY"]}}, due_in_seconds=60)
    assert [f.message_id for f in h.connector.handle_callback(detail).failures] == ["msg-1"]


def test_an_unreadable_callback_is_kept_and_counted_and_fails_nothing() -> None:
    h = harness(callbacks=True)
    detail = CallbackDetail(connector="optimove", callId="c-1", payload="<html>oops</html>", receivedAt="t")
    h.call_log.record("optimove", "c-1", {"M-1": {"msg-1": ["CITY"]}}, due_in_seconds=60)
    assert h.connector.handle_callback(detail) == CallbackReport(unreadable=True)
    assert h.call_log.results[("optimove", "c-1")] == ("<html>oops</html>", False)
    runtime = ConnectorRuntime(h.connector, FakeAuditStore(), max_receive_count=5)
    report = runtime.handle_sqs_batch({"Records": [sqs_callback(detail)]}, Deadline(60))
    assert (report.response(), report.callbacks_unreadable) == ({"batchItemFailures": []}, 1)


def sqs_callback(detail: CallbackDetail) -> dict[str, Any]:
    body = {"source": CALLBACK_SOURCE, "detail-type": callback_detail_type("optimove"), "detail": detail.model_dump()}
    return {"messageId": "sqs-callback", "body": json.dumps(body), "attributes": {"ApproximateReceiveCount": "1"}}


def delivered(message: Any, member: str, **changes: Any) -> DeliveryRecord:
    return DeliveryRecord(
        messageId=message.message_id,
        connector="optimove",
        status=DeliveryStatus.DELIVERED,
        eventType="MEMBER_PROFILE_UPDATE",
        memberId=member,
        updatedAt="t",
        attemptCount=1,
        **changes,
    )


def test_the_runtime_records_late_failures_on_the_audit_trail() -> None:
    h = harness(callbacks=True)
    message = inbound(profile("M-bad", "e-bad", city="Paris"))
    h.simulator.rejections["M-bad"] = "INVALID_VALUE"
    audit = FakeAuditStore()
    runtime = ConnectorRuntime(h.connector, audit, max_receive_count=5)
    h.deliver(message)
    audit.save_deliveries([delivered(message, "M-bad")])
    [(url, results)] = h.callbacks
    report = runtime.handle_sqs_batch({"Records": [sqs_callback(callback_of(url, results))]}, Deadline(60))
    assert report.response() == {"batchItemFailures": []}
    after = audit.deliveries[(message.message_id, "optimove")]
    assert after.status is DeliveryStatus.FAILED
    assert after.lastError is not None
    assert "INVALID_VALUE for CITY" in after.lastError
    assert after.notes[-1].startswith("reported failed by the provider's callback")


def test_an_update_for_a_customer_optimove_does_not_have_yet_is_sent_again_until_it_gives_up() -> None:
    h = harness(callbacks=True)
    document = profile("M-new-1", "e-new", city="Paris")
    message = inbound(document)
    audit, requeue = FakeAuditStore(), FakeRequeue()
    now = [T0]
    runtime = ConnectorRuntime(h.connector, audit, max_receive_count=5, requeue=requeue, clock=lambda: now[0])
    audit.messages[message.message_id] = message_record(message.message_id, document)
    h.deliver(message)
    audit.save_deliveries([delivered(message, "M-new-1")])
    [(url, results)] = h.callbacks
    assert results["errors"] == [{"error": "INVALID_CUSTOMER", "customerId": "M-new-1", "realFieldName": "CITY"}]

    report = runtime.handle_sqs_batch({"Records": [sqs_callback(callback_of(url, results))]}, Deadline(60))
    after = audit.deliveries[(message.message_id, "optimove")]
    retry = h.config.customers
    assert (after.status, report.requeued) == (DeliveryStatus.PENDING, 1)
    assert after.retryUntil == "2026-11-21T13:00:00.000Z"  # giveUpAfterMinutes (60) after the first report
    [(detail, delay)] = requeue.sent
    assert (detail.messageId, detail.event["memberId"], delay) == (
        message.message_id,
        "M-new-1",
        retry.retryDelaySeconds,
    )

    # Still unknown past the give-up time: FAILED, with the reason.
    now[0] = T0 + timedelta(minutes=61)
    report = runtime.handle_sqs_batch({"Records": [sqs_callback(callback_of(url, results))]}, Deadline(60))
    after = audit.deliveries[(message.message_id, "optimove")]
    assert after.status is DeliveryStatus.FAILED
    assert after.lastError is not None
    assert "INVALID_CUSTOMER for CITY" in after.lastError
    assert "still so after retrying until 2026-11-21T13:00:00.000Z" in after.lastError
    assert len(requeue.sent) == 1


def test_a_registration_creates_the_customer_before_the_batchs_updates_reach_it() -> None:
    h = harness(callbacks=True)
    registration = inbound(example_event("MEMBER_REGISTRATION", eventId="reg-new", memberId="M-new-2"))
    update_doc = profile("M-new-2", "upd-new", city="Paris")
    update_doc["occurredAt"] = "2026-11-22T12:00:00+00:00"
    outcomes = h.deliver(registration, inbound(update_doc))
    assert {o.result for o in outcomes.values()} == {Result.DELIVERED}
    calls = [c["call"] for c in h.calls() if c["call"] != "reportEvent"]
    assert calls == ["InsertOrUpdateCustomers"]  # created with every attribute of the batch, in one call
    assert all(not r["errors"] for _, r in h.callbacks)
    assert h.simulator.customers["M-new-2"]["CITY"] == "Paris"


def test_calls_whose_results_never_come_are_flagged_once_by_the_scheduled_check() -> None:
    h = harness(callbacks=True)
    h.deliver(inbound(profile("M-1", "e-1", city="Paris")))
    runtime = ConnectorRuntime(h.connector, FakeAuditStore(), max_receive_count=5)
    check = {"messageId": "s-1", "body": json.dumps(SCHEDULED_CHECK)}
    assert runtime.handle_sqs_batch({"Records": [check]}, Deadline(60)).results_overdue == 0
    h.call_log.now += h.config.callbackResultsOverdueMinutes * 60 + 1
    assert runtime.handle_sqs_batch({"Records": [check]}, Deadline(60)).results_overdue == 1
    assert runtime.handle_sqs_batch({"Records": [check]}, Deadline(60)).results_overdue == 0


def message_record(message_id: str, document: dict[str, Any]) -> MessageRecord:
    return MessageRecord(
        messageId=message_id,
        eventId=document["eventId"],
        eventType=document["eventType"],
        memberId=document["memberId"],
        occurredAt=document["occurredAt"],
        receivedAt="2026-11-21T12:00:00.000Z",
        sizeBytes=100,
        envelope=document,
        publishState=PublishState.PUBLISHED,
    )


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


SOON = int(time.time()) + 3600


@pytest.mark.parametrize(
    "query",
    [
        f"exp={SOON}&sig=",
        f"exp={SOON}&sig={'0' * 64}",
        f"exp={SOON}&sig={signature('another-key', 'optimove', 'call-1', SOON)}",
        f"exp={SOON + 1}&sig={signature(CALLBACK_KEY, 'optimove', 'call-1', SOON)}",  # expiry changed
        f"exp={SOON}&sig={signature(CALLBACK_KEY, 'optimove', 'call-2', SOON)}",  # another call's
        f"exp={int(time.time()) - 1}&sig={signature(CALLBACK_KEY, 'optimove', 'call-1', int(time.time()) - 1)}",
        f"exp={SOON + 30 * 86400}&sig={signature(CALLBACK_KEY, 'optimove', 'call-1', SOON + 30 * 86400)}",
        f"exp=soon&sig={signature(CALLBACK_KEY, 'optimove', 'call-1', SOON)}",
        f"exp={SOON}&sig=%C3%A9t%C3%A9",  # not ASCII: compare_digest would raise
        f"sig={signature(CALLBACK_KEY, 'optimove', 'call-1', SOON)}",
    ],
    ids=[
        "empty",
        "zeros",
        "other-key",
        "exp-changed",
        "other-call",
        "expired",
        "too-far",
        "exp-text",
        "non-ascii",
        "no-exp",
    ],
)
def test_an_unsigned_forged_or_expired_callback_is_403_and_goes_nowhere(bus: FakePublisher, query: str) -> None:
    answer = post(f"/v1/callbacks/optimove/call-1?{query}", {"Errors": []})
    assert answer["statusCode"] == 403
    assert json.loads(answer["body"])["error"]["code"] == "FORBIDDEN"
    assert bus.callbacks == []


def test_a_callback_url_is_valid_until_its_expiry_and_no_longer() -> None:
    url = urlsplit(callback_url("https://x/v1/callbacks", CALLBACK_KEY, "optimove", "c", validity_seconds=60, now=1000))
    query = parse_qs(url.query)
    assert query["exp"] == ["1060"]
    assert verify(CALLBACK_KEY, "optimove", "c", "1060", query["sig"][0], now=1060)
    assert not verify(CALLBACK_KEY, "optimove", "c", "1060", query["sig"][0], now=1061)
    with pytest.raises(ValueError, match="valid for 1 to"):
        callback_url("https://x", CALLBACK_KEY, "optimove", "c", validity_seconds=30 * 86400)


def test_a_card_number_in_a_callback_body_is_masked_before_it_goes_anywhere(bus: FakePublisher) -> None:
    url = callback_url("https://x/v1/callbacks", CALLBACK_KEY, "optimove", "call-1")
    body = {"errors": [{"customerId": "4111 1111 1111 1111", "note": 4111111111111111}]}
    answer = post(urlsplit(url).path + "?" + urlsplit(url).query, body)
    assert answer["statusCode"] == 202
    [detail] = bus.callbacks
    assert detail.payload == {"errors": [{"customerId": "411111******1111", "note": "411111******1111"}]}
    assert detail.receiptId


def test_a_callback_body_that_is_not_json_is_accepted_and_passed_on_as_received(bus: FakePublisher) -> None:
    url = urlsplit(callback_url("https://x/v1/callbacks", CALLBACK_KEY, "optimove", "call-2"))
    event = rest_event("POST", url.path, None)
    event["body"] = "<html>Bad Gateway</html>"
    event["queryStringParameters"] = {k: v[0] for k, v in parse_qs(url.query).items()}
    event["multiValueQueryStringParameters"] = parse_qs(url.query)
    answer = handler.lambda_handler(event, FakeLambdaContext())
    assert answer["statusCode"] == 202
    [detail] = bus.callbacks
    assert detail.payload == "<html>Bad Gateway</html>"
