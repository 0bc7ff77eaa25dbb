"""The connector runtime, the same for every connector: deduplication, statuses on the audit trail,
batchItemFailures, and FAILED exactly when the queue is about to give up on a message."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from db.records import Attempt, DeliveryRecord, DeliveryStatus
from dig_connector_kit.model import (
    CallbackReport,
    CapabilityMismatch,
    Deadline,
    InboundMessage,
    LateFailure,
    Outcome,
    Result,
    check_capabilities,
)
from dig_connector_kit.runtime import ConnectorRuntime
from dig_connector_kit.sync import SyncRequest, deliver_one
from dig_connector_kit.testing import scheduled_check_record
from dig_contracts.bus import BusDetail, ReplayTag, eventbridge_event, message_id_for
from dig_contracts.events import EventType
from dig_contracts.examples import example_event
from dig_contracts.manifest import ConnectorManifest
from tests.fakes import FakeAuditStore


class ScriptedConnector:
    name = "scripted"

    def __init__(self, results: dict[str, Result]) -> None:
        self.results = results
        self.received: list[InboundMessage] = []

    def deliver(self, messages: Sequence[InboundMessage], deadline: Deadline) -> Mapping[str, Outcome]:
        self.received.extend(messages)
        outcomes = {}
        for message in messages:
            result = self.results.get(message.event.eventId, Result.DELIVERED)
            attempt = Attempt(
                at="2026-11-21T12:00:00.000Z",
                call="Call",
                status="200" if result is Result.DELIVERED else "503",
                latencyMs=5,
            )
            outcomes[message.message_id] = Outcome(
                result, error=None if result is Result.DELIVERED else "503 busy", attempts=[attempt]
            )
        return outcomes


def sqs_record(
    event_id: str, receive_count: int = 1, replay: ReplayTag | None = None, record_id: str | None = None
) -> dict[str, Any]:
    document = example_event("MEMBER_TIER", eventId=event_id)
    detail = BusDetail(messageId=message_id_for(event_id), event=document, replay=replay)
    return {
        "messageId": record_id or f"sqs-{event_id}-{receive_count}",
        "body": json.dumps(eventbridge_event(detail, region="us-east-1")),
        "attributes": {"ApproximateReceiveCount": str(receive_count)},
    }


def run(runtime: ConnectorRuntime, *records: dict[str, Any]) -> Any:
    return runtime.handle_sqs_batch({"Records": list(records)}, Deadline(60))


def test_delivered_messages_are_recorded_and_acknowledged() -> None:
    audit = FakeAuditStore()
    runtime = ConnectorRuntime(ScriptedConnector({}), audit, max_receive_count=5)
    report = run(runtime, sqs_record("e-1"))
    assert report.response() == {"batchItemFailures": []}
    record = audit.deliveries[(message_id_for("e-1"), "scripted")]
    assert record.status is DeliveryStatus.DELIVERED
    assert record.attemptCount == 1
    assert record.lastError is None


def test_a_transient_failure_stays_pending_and_goes_back_to_the_queue() -> None:
    audit = FakeAuditStore()
    runtime = ConnectorRuntime(ScriptedConnector({"e-1": Result.RETRY}), audit, max_receive_count=5)
    report = run(runtime, sqs_record("e-1", receive_count=2), sqs_record("e-2"))
    assert report.response() == {"batchItemFailures": [{"itemIdentifier": "sqs-e-1-2"}]}
    assert audit.deliveries[(message_id_for("e-1"), "scripted")].status is DeliveryStatus.PENDING
    assert audit.deliveries[(message_id_for("e-2"), "scripted")].status is DeliveryStatus.DELIVERED


def test_on_the_last_receive_a_transient_failure_is_recorded_failed_with_every_attempt() -> None:
    audit = FakeAuditStore()
    runtime = ConnectorRuntime(ScriptedConnector({"e-1": Result.RETRY}), audit, max_receive_count=3)
    for receive in (1, 2, 3):
        report = run(runtime, sqs_record("e-1", receive_count=receive))
        # Back to the queue every time, the last one too: SQS moves it to the dead-letter queue.
        assert report.response() == {"batchItemFailures": [{"itemIdentifier": f"sqs-e-1-{receive}"}]}
    record = audit.deliveries[(message_id_for("e-1"), "scripted")]
    assert record.status is DeliveryStatus.FAILED
    assert record.attemptCount == 3
    assert len(record.attempts) == 3
    assert record.lastError == "retries spent after 3 receives: 503 busy"


class RaisingConnector:
    name = "scripted"

    def deliver(self, messages: Sequence[InboundMessage], deadline: Deadline) -> Mapping[str, Outcome]:
        raise RuntimeError("boom")


class ForgetfulConnector(ScriptedConnector):
    """Reports an outcome for every message but e-2."""

    def deliver(self, messages: Sequence[InboundMessage], deadline: Deadline) -> Mapping[str, Outcome]:
        outcomes = dict(super().deliver(messages, deadline))
        outcomes.pop(message_id_for("e-2"), None)
        return outcomes


def test_a_connector_that_raises_has_every_message_retried_then_failed_not_lost() -> None:
    audit = FakeAuditStore()
    runtime = ConnectorRuntime(RaisingConnector(), audit, max_receive_count=2)
    first = run(runtime, sqs_record("e-1", receive_count=1), sqs_record("e-2", receive_count=1))
    assert first.response() == {"batchItemFailures": [{"itemIdentifier": "sqs-e-1-1"}, {"itemIdentifier": "sqs-e-2-1"}]}
    for event_id in ("e-1", "e-2"):
        pending = audit.deliveries[(message_id_for(event_id), "scripted")]
        assert pending.status is DeliveryStatus.PENDING
        assert pending.lastError == "the connector raised RuntimeError: boom"

    last = run(runtime, sqs_record("e-1", receive_count=2), sqs_record("e-2", receive_count=2))
    assert len(last.response()["batchItemFailures"]) == 2  # SQS moves them to the dead-letter queue
    for event_id in ("e-1", "e-2"):
        failed = audit.deliveries[(message_id_for(event_id), "scripted")]
        assert failed.status is DeliveryStatus.FAILED
        assert failed.lastError == "retries spent after 2 receives: the connector raised RuntimeError: boom"


def test_a_message_the_connector_gives_no_outcome_for_is_retried_not_acknowledged() -> None:
    audit = FakeAuditStore()
    runtime = ConnectorRuntime(ForgetfulConnector({}), audit, max_receive_count=5)
    report = run(runtime, sqs_record("e-1"), sqs_record("e-2"))
    assert report.response() == {"batchItemFailures": [{"itemIdentifier": "sqs-e-2-1"}]}
    assert audit.deliveries[(message_id_for("e-1"), "scripted")].status is DeliveryStatus.DELIVERED
    forgotten = audit.deliveries[(message_id_for("e-2"), "scripted")]
    assert forgotten.status is DeliveryStatus.PENDING
    assert forgotten.lastError == "the connector reported no outcome for it"


def test_a_final_failure_is_recorded_at_once_and_not_retried() -> None:
    audit = FakeAuditStore()
    runtime = ConnectorRuntime(ScriptedConnector({"e-1": Result.FAILED}), audit, max_receive_count=5)
    report = run(runtime, sqs_record("e-1"))
    assert report.response() == {"batchItemFailures": []}
    assert audit.deliveries[(message_id_for("e-1"), "scripted")].status is DeliveryStatus.FAILED


def test_a_message_already_delivered_is_not_delivered_again() -> None:
    audit = FakeAuditStore()
    connector = ScriptedConnector({})
    runtime = ConnectorRuntime(connector, audit, max_receive_count=5)
    run(runtime, sqs_record("e-1"))
    report = run(runtime, sqs_record("e-1", record_id="duplicate-from-eventbridge"))
    assert report.response() == {"batchItemFailures": []}
    assert len(connector.received) == 1


def test_two_copies_in_one_batch_are_delivered_once_and_both_acknowledged() -> None:
    audit = FakeAuditStore()
    connector = ScriptedConnector({"e-1": Result.RETRY})
    runtime = ConnectorRuntime(connector, audit, max_receive_count=5)
    report = run(runtime, sqs_record("e-1", record_id="a"), sqs_record("e-1", record_id="b"))
    assert len(connector.received) == 1
    assert sorted(i["itemIdentifier"] for i in report.response()["batchItemFailures"]) == ["a", "b"]
    assert report.duplicates == 1


def test_an_unreadable_record_goes_back_to_the_queue_for_the_dead_letter_queue() -> None:
    runtime = ConnectorRuntime(ScriptedConnector({}), FakeAuditStore(), max_receive_count=5)
    report = run(runtime, {"messageId": "garbage", "body": "not json"}, sqs_record("e-1"))
    assert report.response() == {"batchItemFailures": [{"itemIdentifier": "garbage"}]}
    assert report.unreadable == 1


def test_a_replay_is_tagged_with_its_run_on_the_record() -> None:
    audit = FakeAuditStore()
    runtime = ConnectorRuntime(ScriptedConnector({}), audit, max_receive_count=5)
    run(runtime, sqs_record("e-1", replay=ReplayTag(runId="run-7")))
    assert audit.deliveries[(message_id_for("e-1"), "scripted")].replayRunId == "run-7"


def test_attempts_accumulate_across_receives() -> None:
    audit = FakeAuditStore()
    audit.deliveries[(message_id_for("e-1"), "scripted")] = DeliveryRecord(
        messageId=message_id_for("e-1"),
        connector="scripted",
        status=DeliveryStatus.PENDING,
        eventType="MEMBER_TIER",
        memberId="M-100001",
        updatedAt="x",
        attempts=[Attempt(at="t0", call="Call", status="503", latencyMs=1)],
        attemptCount=1,
    )
    runtime = ConnectorRuntime(ScriptedConnector({}), audit, max_receive_count=5)
    run(runtime, sqs_record("e-1", receive_count=2))
    record = audit.deliveries[(message_id_for("e-1"), "scripted")]
    assert [a.status for a in record.attempts] == ["503", "200"]
    assert record.attemptCount == 2


def test_the_synchronous_flow_answers_the_delivery_and_a_transient_failure_is_final() -> None:
    audit = FakeAuditStore()
    runtime = ConnectorRuntime(ScriptedConnector({"e-1": Result.RETRY}), audit, max_receive_count=5)
    detail = BusDetail(messageId=message_id_for("e-1"), event=example_event("MEMBER_TIER", eventId="e-1"))
    answer = deliver_one(runtime, SyncRequest(detail=detail), Deadline(20))
    assert answer == {
        "connector": "scripted",
        "status": "FAILED",
        "error": "synchronous flow, not retried: 503 busy",
        "attempts": 1,
        "notes": [],
    }


class RacedConnector(ScriptedConnector):
    """While this copy fails, another copy of the same message completes it (at least once delivery)."""

    def __init__(self, audit: FakeAuditStore, other_copy_result: DeliveryStatus) -> None:
        super().__init__({"e-1": Result.RETRY})
        self.audit, self.other_copy_result = audit, other_copy_result

    def deliver(self, messages: Sequence[InboundMessage], deadline: Deadline) -> Mapping[str, Outcome]:
        for message in messages:
            self.audit.save_deliveries(
                [
                    DeliveryRecord(
                        messageId=message.message_id,
                        connector=self.name,
                        status=self.other_copy_result,
                        eventType="MEMBER_TIER",
                        memberId="M-100001",
                        updatedAt="2026-11-21T12:00:01.000Z",
                    )
                ]
            )
        return super().deliver(messages, deadline)


def test_a_copy_that_fails_while_another_completes_the_message_leaves_it_completed_and_is_not_retried() -> None:
    for other_copy_result in (DeliveryStatus.DELIVERED, DeliveryStatus.SKIPPED):
        audit = FakeAuditStore()
        runtime = ConnectorRuntime(RacedConnector(audit, other_copy_result), audit, max_receive_count=5)
        report = run(runtime, sqs_record("e-1"))
        assert report.response() == {"batchItemFailures": []}
        assert report.statuses[message_id_for("e-1")] is other_copy_result
        assert audit.deliveries[(message_id_for("e-1"), "scripted")].status is other_copy_result


def test_on_the_last_receive_too_a_completed_delivery_is_not_turned_failed() -> None:
    audit = FakeAuditStore()
    runtime = ConnectorRuntime(RacedConnector(audit, DeliveryStatus.DELIVERED), audit, max_receive_count=5)
    report = run(runtime, sqs_record("e-1", receive_count=5))
    assert report.response() == {"batchItemFailures": []}
    assert audit.deliveries[(message_id_for("e-1"), "scripted")].status is DeliveryStatus.DELIVERED


def archived(event_id: str) -> dict[str, Any]:
    """The record as an EventBridge archive replay puts it on the queue: the event, with replay-name."""
    record = sqs_record(event_id)
    body = json.loads(record["body"])
    record["body"] = json.dumps({**body, "replay-name": "after-the-outage"})
    return record


def test_an_archive_replay_skips_erased_members_and_messages_the_audit_trail_no_longer_holds() -> None:
    from db.records import MessageRecord

    audit = FakeAuditStore()
    for event_id, erased in (("e-kept", None), ("e-erased", "2026-11-30T00:00:00.000Z")):
        audit.messages[message_id_for(event_id)] = MessageRecord(
            messageId=message_id_for(event_id),
            eventId=event_id,
            eventType="MEMBER_TIER",
            memberId="M-1",
            occurredAt="t",
            receivedAt="t",
            sizeBytes=1,
            envelope={} if erased else example_event("MEMBER_TIER", eventId=event_id),
            erasedAt=erased,
        )
    connector = ScriptedConnector({})
    runtime = ConnectorRuntime(connector, audit, max_receive_count=5)
    report = run(runtime, archived("e-kept"), archived("e-erased"), archived("e-expired"), sqs_record("e-live"))
    assert report.response() == {"batchItemFailures": []}
    assert sorted(m.event.eventId for m in connector.received) == ["e-kept", "e-live"]
    erased = audit.deliveries[(message_id_for("e-erased"), "scripted")]
    assert erased.status is DeliveryStatus.SKIPPED
    assert "member was erased at 2026-11-30" in (erased.lastError or "")
    expired = audit.deliveries[(message_id_for("e-expired"), "scripted")]
    assert (expired.status, "no longer in the audit trail" in (expired.lastError or "")) == (
        DeliveryStatus.SKIPPED,
        True,
    )


class PollingConnector(ScriptedConnector):
    """A provider whose results are polled: the scheduled check asks it which accepted messages failed."""

    def __init__(self, late: list[LateFailure], *, raises: bool = False) -> None:
        super().__init__({})
        self.late, self.raises, self.polls = late, raises, 0

    def poll_results(self, deadline: Deadline) -> CallbackReport:
        self.polls += 1
        if self.raises:
            raise RuntimeError("status URL unreachable")
        return CallbackReport(failures=self.late)


def test_polled_results_fail_a_delivered_message_on_the_scheduled_check_saying_who_reported_it() -> None:
    audit = FakeAuditStore()
    message_id = message_id_for("e-1")
    connector = PollingConnector([LateFailure(message_id, "row 1: EmailAddress is not valid")])
    runtime = ConnectorRuntime(connector, audit, max_receive_count=5)
    run(runtime, sqs_record("e-1"))
    assert audit.deliveries[(message_id, "scripted")].status is DeliveryStatus.DELIVERED

    report = run(runtime, scheduled_check_record())
    record = audit.deliveries[(message_id, "scripted")]
    assert (connector.polls, report.late_failures, report.failures) == (1, 1, [])
    assert record.status is DeliveryStatus.FAILED
    assert record.lastError == "row 1: EmailAddress is not valid"
    assert record.notes[-1] == "reported failed by the provider's results, polled"


def test_a_poll_that_raises_sends_the_check_back_to_the_queue_and_changes_no_record() -> None:
    audit = FakeAuditStore()
    runtime = ConnectorRuntime(PollingConnector([], raises=True), audit, max_receive_count=5)
    run(runtime, sqs_record("e-1"))
    report = run(runtime, scheduled_check_record(record_id="check-1"))
    assert report.failures == ["check-1"]
    assert audit.deliveries[(message_id_for("e-1"), "scripted")].status is DeliveryStatus.DELIVERED


def manifest_of(**declared: Any) -> ConnectorManifest:
    return ConnectorManifest(
        name="scripted",
        description="a test connector",
        event_types=(EventType.MEMBER_TIER,),
        handler="scripted.handler",
        packages=(),
        **declared,
    )


class MisspeltCallbacks(ScriptedConnector):
    def handle_callbacks(self, detail: Any) -> CallbackReport:  # "handle_callback" was meant
        return CallbackReport()

    def overdue_results(self) -> int:
        return 0


def test_a_misspelt_capability_method_is_an_error_when_the_connector_is_built_naming_the_method() -> None:
    with pytest.raises(CapabilityMismatch, match="declares callbacks but MisspeltCallbacks lacks handle_callback"):
        check_capabilities(manifest_of(callbacks=True), MisspeltCallbacks({}))


def test_a_capability_the_manifest_does_not_declare_is_an_error_too() -> None:
    with pytest.raises(CapabilityMismatch, match="implements poll_results but the manifest does not declare"):
        check_capabilities(manifest_of(), PollingConnector([]))
    check_capabilities(manifest_of(polled_results=True), PollingConnector([]))  # declared: fine
    assert manifest_of(polled_results=True).checks_results


def test_the_days_delivered_and_skipped_are_counted_once_an_invocation_for_dig_status() -> None:
    from db.counters import InMemoryCounters

    audit, counters = FakeAuditStore(), InMemoryCounters()
    connector = ScriptedConnector({"e-2": Result.SKIPPED, "e-3": Result.RETRY, "e-4": Result.FAILED})
    runtime = ConnectorRuntime(connector, audit, max_receive_count=5, counters=counters)
    run(runtime, sqs_record("e-1"), sqs_record("e-2"), sqs_record("e-3"), sqs_record("e-4"), sqs_record("e-5"))
    # Pending and failed deliveries are in the status index; delivered and skipped ones only counted.
    assert list(counters.days.values()) == [{"delivered": 2, "skipped": 1}]
    run(runtime, sqs_record("e-1", receive_count=2))  # already delivered: acknowledged, not counted again
    assert list(counters.days.values()) == [{"delivered": 2, "skipped": 1}]
