"""`dig dlq`'s reading of what sits in a dead-letter queue: events by their delivery, provider callbacks by
their call's results, the schedule's check; and which of them nothing waits on any more."""

from __future__ import annotations

import json

from db.records import DeliveryRecord, DeliveryStatus
from dig_cli.dead_letters import Kind, Standing, read_dead_letter, standing_of
from dig_connector_kit.testing import FakeCallLog
from dig_contracts.bus import CALLBACK_SOURCE, SCHEDULED_CHECK, BusDetail, CallbackDetail, callback_detail_type
from dig_contracts.bus import eventbridge_event as bus_event
from dig_contracts.examples import example_event


def event_body(message_id: str) -> str:
    detail = BusDetail(messageId=message_id, event=example_event("MEMBER_TIER"))
    return json.dumps(bus_event(detail, region="us-east-1"))


def callback_body(call_id: str) -> str:
    detail = CallbackDetail(
        connector="optimove", callId=call_id, payload={"errors": []}, receivedAt="2026-12-07T10:00:00Z"
    )
    return json.dumps(
        {"source": CALLBACK_SOURCE, "detail-type": callback_detail_type("optimove"), "detail": detail.model_dump()}
    )


def delivery(message_id: str, status: DeliveryStatus) -> DeliveryRecord:
    return DeliveryRecord(
        messageId=message_id,
        connector="optimove",
        status=status,
        eventType="MEMBER_TIER",
        memberId="M-100001",
        updatedAt="2026-12-07T10:00:00.000Z",
        lastError=None if status is DeliveryStatus.DELIVERED else "SendTransactionalMail: 503",
    )


def test_each_kind_of_message_is_read_for_what_it_is() -> None:
    event = read_dead_letter("sqs-1", event_body("m-1"))
    assert (event.kind, event.shown_id) == (Kind.EVENT, "m-1")
    callback = read_dead_letter("sqs-2", callback_body("call-9"))
    assert (callback.kind, callback.shown_id) == (Kind.CALLBACK, "callback call-9")
    assert callback.callback is not None
    assert callback.callback.payload == {"errors": []}
    check = read_dead_letter("sqs-3", json.dumps(SCHEDULED_CHECK))
    assert (check.kind, check.shown_id) == (Kind.SCHEDULED_CHECK, "sqs-3")
    for body in ("not json", "[1, 2]", json.dumps({"source": CALLBACK_SOURCE, "detail": {"callId": "c"}}), "{}"):
        unreadable = read_dead_letter("sqs-4", body)
        assert (unreadable.kind, unreadable.shown_id) == (Kind.UNREADABLE, "sqs-4")


def test_what_nothing_waits_on_is_resolved_and_what_still_matters_is_not() -> None:
    log = FakeCallLog(now=1_796_000_000)
    log.record("optimove", "applied", {"M-1": {"m-9": ["CITY"]}}, due_in_seconds=3600)
    log.keep_results("optimove", "applied", {"errors": []}, readable=True, receipt="r1")
    log.record("optimove", "awaited", {"M-2": {"m-8": ["CITY"]}}, due_in_seconds=3600)
    deliveries = {
        "m-done": delivery("m-done", DeliveryStatus.DELIVERED),
        "m-failed": delivery("m-failed", DeliveryStatus.FAILED),
    }

    def standing(body: str) -> Standing:
        return standing_of(read_dead_letter("sqs", body), deliveries, lambda call_id: log.status("optimove", call_id))

    done = standing(event_body("m-done"))
    assert (done.status, done.resolved, done.delivery) == ("DELIVERED", True, deliveries["m-done"])
    failed = standing(event_body("m-failed"))
    assert (failed.status, failed.note, failed.resolved) == ("FAILED", "SendTransactionalMail: 503", False)
    assert (standing(event_body("m-never")).status, standing(event_body("m-never")).resolved) == (
        "(no delivery)",
        False,
    )

    applied = standing(callback_body("applied"))  # another post of the same results was applied
    assert (applied.status, applied.resolved) == ("callback: results kept", True)
    assert applied.note.startswith("results received ")
    stray = standing(callback_body("never-recorded"))  # the runbook's "Results that never came back", step 4
    assert (stray.status, stray.resolved) == ("callback: no such call", True)
    awaited = standing(callback_body("awaited"))  # its call still waits for exactly these results: keep it
    assert (awaited.status, awaited.resolved) == ("callback: NOT APPLIED", False)
    assert "results awaited until" in awaited.note
    assert "callback not applied" in awaited.note

    check = standing(json.dumps(SCHEDULED_CHECK))
    assert (check.status, check.resolved) == ("scheduled check", True)
    garbage = standing("not json")
    assert (garbage.status, garbage.resolved) == ("(unreadable body)", False)
