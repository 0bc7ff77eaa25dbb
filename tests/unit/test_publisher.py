"""PutEvents through the EventBridge adapter (botocore Stubber: the exact requests and replies)."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.stub import Stubber

from dig_contracts.bus import BusDetail
from dig_contracts.examples import example_event
from dig_contracts.publisher import EventBridgePublisher, entry_for, entry_size, plan_calls


def details(count: int, size: int = 0) -> list[BusDetail]:
    out = []
    for i in range(count):
        event = example_event("MEMBER_PROFILE_UPDATE", eventId=f"e-{i}")
        if size:
            event["data"]["profile"]["bio"] = "x" * size
        out.append(BusDetail(messageId=f"m-{i}", event=event))
    return out


def stubbed() -> tuple[EventBridgePublisher, Stubber]:
    client = boto3.client("events", region_name="us-east-1")
    return EventBridgePublisher(client, "dig-dev", backoff_seconds=0), Stubber(client)


def ok(count: int) -> dict[str, Any]:
    return {"FailedEntryCount": 0, "Entries": [{"EventId": f"id-{i}"} for i in range(count)]}


def test_500_events_take_50_calls_of_10() -> None:
    publisher, stub = stubbed()
    for _ in range(50):
        stub.add_response("put_events", ok(10))
    with stub:
        outcomes = publisher.publish(details(500))
    assert all(o.ok for o in outcomes)
    assert publisher.calls_made == 50


def test_calls_also_stay_under_1_mb() -> None:
    entries = [{"Source": "dig.api", "DetailType": "X", "Detail": "x" * 300_000} for _ in range(7)]
    calls = plan_calls(entries)
    assert [len(c) for c in calls] == [3, 3, 1]
    assert all(sum(entry_size(entries[i]) for i in call) <= 1_048_576 for call in calls)


def test_the_entry_is_what_connectors_receive() -> None:
    publisher, stub = stubbed()
    [detail] = details(1)
    expected = {
        "Entries": [
            {
                "EventBusName": "dig-dev",
                "Source": "dig.api",
                "DetailType": "MEMBER_PROFILE_UPDATE",
                "Detail": json.dumps(detail.model_dump(mode="json", exclude_none=True), separators=(",", ":")),
            }
        ]
    }
    stub.add_response("put_events", ok(1), expected)
    with stub:
        assert publisher.publish([detail])[0].ok
    stub.assert_no_pending_responses()


def test_only_the_failed_entries_are_sent_again() -> None:
    publisher, stub = stubbed()
    sent = details(3)
    first = {
        "FailedEntryCount": 1,
        "Entries": [{"EventId": "a"}, {"ErrorCode": "InternalFailure", "ErrorMessage": "oops"}, {"EventId": "c"}],
    }
    stub.add_response("put_events", first)
    stub.add_response("put_events", ok(1), {"Entries": [entry_for(sent[1], "dig-dev")]})
    with stub:
        outcomes = publisher.publish(sent)
    assert [o.ok for o in outcomes] == [True, True, True]
    assert publisher.calls_made == 2


def test_an_entry_that_keeps_failing_is_reported_failed_never_accepted() -> None:
    publisher, stub = stubbed()
    failing = {
        "FailedEntryCount": 1,
        "Entries": [{"EventId": "a"}, {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}],
    }
    stub.add_response("put_events", failing)
    stub.add_response("put_events", {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ThrottlingException"}]})
    stub.add_response("put_events", {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ThrottlingException"}]})
    with stub:
        outcomes = publisher.publish(details(2))
    assert outcomes[0].ok
    assert not outcomes[1].ok
    assert outcomes[1].error_code == "ThrottlingException"


def test_a_non_retryable_entry_error_is_not_sent_again() -> None:
    publisher, stub = stubbed()
    stub.add_response(
        "put_events", {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ValidationException", "ErrorMessage": "bad"}]}
    )
    with stub:
        [outcome] = publisher.publish(details(1))
    assert not outcome.ok
    assert outcome.error_code == "ValidationException"
    assert publisher.calls_made == 1


def test_a_whole_call_failing_is_retried() -> None:
    publisher, stub = stubbed()
    stub.add_client_error("put_events", service_error_code="InternalException", http_status_code=500)
    stub.add_response("put_events", ok(2))
    with stub:
        assert all(o.ok for o in publisher.publish(details(2)))
