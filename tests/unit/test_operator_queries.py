"""Every access pattern of the audit trail, and the replay claims that make a rerun safe."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from db.audit import DynamoAuditStore
from db.queries import AuditQueries, Window
from db.records import DeliveryRecord, DeliveryStatus, MessageRecord, iso
from db.replay import Claim, ReplayStore
from dig_cli.replay import Candidate, Replayer, ReplayFilter, candidates, fail_stranded, run_status
from dig_contracts.bus import BusDetail, message_id_for
from dig_contracts.examples import example_event
from tests.aws import AUDIT, create_tables

NOW = datetime.now(UTC)  # when the module loads: windows reach hours past it, however long the suite runs


@pytest.fixture
def store() -> Iterator[DynamoAuditStore]:
    with mock_aws():
        yield DynamoAuditStore(create_tables(), AUDIT)


def record(
    store: DynamoAuditStore,
    event_id: str,
    *,
    event_type: str = "REDEMPTION",
    member: str = "M-1",
    status: DeliveryStatus = DeliveryStatus.FAILED,
    when: datetime = NOW,
) -> str:
    message_id = message_id_for(event_id)
    envelope = example_event(event_type, eventId=event_id, memberId=member)
    message = MessageRecord(
        messageId=message_id,
        eventId=event_id,
        eventType=event_type,
        memberId=member,
        occurredAt=envelope["occurredAt"],
        receivedAt=iso(when),
        sizeBytes=100,
        envelope=envelope,
    )
    store.begin_message(message, owner="test", lease_seconds=30)
    store.mark_published(message_id)
    store.save_deliveries(
        [
            DeliveryRecord(
                messageId=message_id,
                connector="optimove",
                status=status,
                eventType=event_type,
                memberId=member,
                updatedAt=iso(when),
                lastError="boom" if status is DeliveryStatus.FAILED else None,
            )
        ]
    )
    return message_id


def test_by_connector_status_and_time_across_day_partitions(store: DynamoAuditStore) -> None:
    recent = record(store, "e-recent", when=NOW - timedelta(hours=2))
    yesterday = record(store, "e-yesterday", when=NOW - timedelta(hours=30))
    record(store, "e-old", when=NOW - timedelta(days=5))
    record(store, "e-ok", status=DeliveryStatus.DELIVERED)
    queries = AuditQueries(store)
    found = [
        d.messageId
        for d in queries.deliveries_by_status("optimove", DeliveryStatus.FAILED, Window(NOW - timedelta(hours=36), NOW))
    ]
    assert found == [recent, yesterday]
    six_hours = [
        d.messageId
        for d in queries.deliveries_by_status("optimove", DeliveryStatus.FAILED, Window(NOW - timedelta(hours=6), NOW))
    ]
    assert six_hours == [recent]


def test_by_member_and_time(store: DynamoAuditStore) -> None:
    mine = record(store, "e-mine", member="M-7")
    record(store, "e-theirs", member="M-8")
    queries = AuditQueries(store)
    rows = list(
        queries.with_deliveries(
            queries.messages_by_member("M-7", Window(NOW - timedelta(days=1), NOW + timedelta(seconds=1))), "optimove"
        )
    )
    assert [(r.message_id, r.delivery.status if r.delivery else None) for r in rows] == [(mine, DeliveryStatus.FAILED)]


def test_by_event_type_and_time_from_the_index_for_the_types_it_holds(store: DynamoAuditStore) -> None:
    payout = record(store, "e-pay", event_type="PAYOUT_REQUESTED")
    record(store, "e-red", event_type="REDEMPTION")
    window = Window(NOW - timedelta(days=1), NOW + timedelta(seconds=1))
    rows = list(AuditQueries(store).messages_by_event_type("PAYOUT_REQUESTED", window))
    assert [r.message_id for r in rows] == [payout]
    with pytest.raises(ValueError, match="REDEMPTION is not in the byEventType index"):
        list(AuditQueries(store).messages_by_event_type("REDEMPTION", window))


def test_a_type_the_index_does_not_hold_is_found_by_a_scan_that_says_how_far_it_read(store: DynamoAuditStore) -> None:
    tiers = [record(store, f"e-tier-{i}", event_type="MEMBER_TIER", when=NOW - timedelta(minutes=i)) for i in range(3)]
    record(store, "e-red", event_type="REDEMPTION")
    record(store, "e-old", event_type="MEMBER_TIER", when=NOW - timedelta(days=3))
    queries = AuditQueries(store)
    window = Window(NOW - timedelta(days=1), NOW + timedelta(seconds=1))
    found = queries.scan_messages_by_event_type("MEMBER_TIER", window, scan_limit=10_000)
    assert found.complete
    assert [r.message_id for r in found.rows] == tiers  # newest first, the old one outside the window
    # Each message has its item and a delivery: a limit of 2 items reads part of the table, and says so.
    partial = queries.scan_messages_by_event_type("MEMBER_TIER", window, scan_limit=2)
    assert (partial.items, partial.complete) == (2, False)
    # A message of an unindexed type has no byEventType entry at all (issue #28: its write and its bytes).
    item = store.table.call("get_item", Key={"pk": {"S": f"MSG#{tiers[0]}"}, "sk": {"S": "MESSAGE"}})["Item"]
    assert "gsiTypePk" not in item
    assert "gsiMemberPk" in item


def test_by_message_id_and_by_event_id(store: DynamoAuditStore) -> None:
    message_id = record(store, "e-1")
    view = store.get_message(message_id)
    assert view is not None
    assert view.message.eventId == "e-1"
    assert store.get_message(message_id_for("e-1")) == view


def test_a_failed_delivery_is_claimed_once(store: DynamoAuditStore) -> None:
    message_id = record(store, "e-1")
    replays = ReplayStore(store.table)
    assert replays.claim("optimove", message_id, "run-a", force=False, exists=True) is Claim.CLAIMED
    assert replays.claim("optimove", message_id, "run-b", force=False, exists=True) is Claim.IN_FLIGHT
    assert replays.claim("optimove", message_id, "run-a", force=False, exists=True) is Claim.ALREADY_IN_RUN


def test_a_delivered_message_is_only_claimed_with_force_and_once_per_run(store: DynamoAuditStore) -> None:
    message_id = record(store, "e-1", status=DeliveryStatus.DELIVERED)
    replays = ReplayStore(store.table)
    assert replays.claim("optimove", message_id, "run-a", force=False, exists=True) is Claim.ALREADY_DELIVERED
    assert replays.claim("optimove", message_id, "run-a", force=True, exists=True) is Claim.CLAIMED
    assert replays.claim("optimove", message_id, "run-a", force=True, exists=True) is Claim.ALREADY_IN_RUN


def test_a_released_claim_is_failed_and_replayable_again(store: DynamoAuditStore) -> None:
    message_id = record(store, "e-1")
    replays = ReplayStore(store.table)
    replays.claim("optimove", message_id, "run-a", force=False, exists=True)
    replays.release("optimove", message_id, "run-a")
    assert store.get_deliveries("optimove", [message_id])[message_id].status is DeliveryStatus.FAILED
    assert replays.claim("optimove", message_id, "run-b", force=False, exists=True) is Claim.CLAIMED


class FlakyQueue:
    """SQS SendMessageBatch that fails on command, and records what it was sent."""

    def __init__(self, fail_after_batches: int | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.batches = 0
        self.fail_after = fail_after_batches

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        if self.fail_after is not None and self.batches >= self.fail_after:
            raise KeyboardInterrupt  # the operator's Ctrl-C, mid-run
        self.batches += 1
        self.sent.extend(json.loads(e["MessageBody"]) for e in Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def failed_filter() -> ReplayFilter:
    return ReplayFilter(
        "optimove", status=DeliveryStatus.FAILED, window=Window(NOW - timedelta(days=1), NOW + timedelta(hours=6))
    )


def test_a_replay_sends_each_failed_message_once_tagged_with_its_run(store: DynamoAuditStore) -> None:
    ids = {record(store, f"e-{i}") for i in range(12)}
    queue = FlakyQueue()
    found = list(candidates(store, failed_filter()))
    summary = Replayer(store, queue, "queue-url", "us-east-1").run(
        failed_filter(), found, force=False, operator="ops", rate=0
    )
    assert summary.replayed == 12
    assert {m["detail"]["messageId"] for m in queue.sent} == ids
    assert {m["detail"]["replay"]["runId"] for m in queue.sent} == {summary.run_id}
    assert queue.sent[0]["detail-type"] == "REDEMPTION"
    assert queue.sent[0]["source"] == "dig.api"
    run, counts = run_status(store, summary.run_id)
    assert run is not None
    assert run.state == "COMPLETED"
    assert counts == {"PENDING": 12, "DELIVERED": 0, "FAILED": 0, "SKIPPED": 0}
    # The same filter again finds nothing left to send.
    assert list(candidates(store, failed_filter())) == []


def test_an_interrupted_replay_run_again_sends_nothing_twice(store: DynamoAuditStore) -> None:
    ids = {record(store, f"e-{i}") for i in range(25)}
    interrupted = FlakyQueue(fail_after_batches=1)
    found = list(candidates(store, failed_filter()))
    with pytest.raises(KeyboardInterrupt):
        Replayer(store, interrupted, "queue-url", "us-east-1").run(
            failed_filter(), found, force=False, operator="ops", rate=0
        )
    assert len(interrupted.sent) == 10  # one batch out; the 11th message was claimed, not sent

    resumed = FlakyQueue()
    found = list(candidates(store, failed_filter()))
    summary = Replayer(store, resumed, "queue-url", "us-east-1").run(
        failed_filter(), found, force=False, operator="ops", rate=0
    )
    sent_twice = {m["detail"]["messageId"] for m in interrupted.sent} & {m["detail"]["messageId"] for m in resumed.sent}
    assert sent_twice == set()
    assert {m["detail"]["messageId"] for m in interrupted.sent + resumed.sent} == ids
    assert summary.run_id == resumed.sent[0]["detail"]["replay"]["runId"]  # the interrupted run, resumed


def test_replay_by_message_id_skips_what_was_delivered_unless_forced(store: DynamoAuditStore) -> None:
    delivered = record(store, "e-ok", status=DeliveryStatus.DELIVERED)
    failed = record(store, "e-bad")
    wanted = ReplayFilter("optimove", message_ids=(delivered, failed))
    queue = FlakyQueue()
    summary = Replayer(store, queue, "q", "us-east-1").run(
        wanted, list(candidates(store, wanted)), force=False, operator="ops", rate=0
    )
    assert (summary.replayed, summary.skipped) == (1, {"already delivered": 1})
    forced = FlakyQueue()
    summary = Replayer(store, forced, "q", "us-east-1").run(
        wanted, list(candidates(store, wanted)), force=True, operator="ops", rate=0
    )
    assert summary.replayed == 1  # the delivered one; the failed one is in flight from the first run
    assert forced.sent[0]["detail"]["replay"] == {"runId": summary.run_id, "force": True}


def test_a_message_the_connector_never_recorded_can_be_replayed_by_id(store: DynamoAuditStore) -> None:
    message_id = record(store, "e-lost")
    store.client.delete_item(TableName=AUDIT, Key={"pk": {"S": f"MSG#{message_id}"}, "sk": {"S": "DELIVERY#optimove"}})
    wanted = ReplayFilter("optimove", message_ids=(message_id,))
    [candidate] = list(candidates(store, wanted))
    assert candidate == Candidate(message_id, "REDEMPTION", "M-1", None)
    queue = FlakyQueue()
    assert (
        Replayer(store, queue, "q", "us-east-1").run(wanted, [candidate], force=False, operator="ops", rate=0).replayed
        == 1
    )
    started = store.client.get_item(
        TableName=AUDIT, Key={"pk": {"S": f"MSG#{message_id}"}, "sk": {"S": "DELIVERY#optimove"}}
    )["Item"]
    assert started["status"]["S"] == "PENDING"
    assert int(started["expiresAt"]["N"]) > NOW.timestamp()  # TTL removes it if nothing ever records it


def test_replay_keeps_to_its_rate(store: DynamoAuditStore) -> None:
    for i in range(6):
        record(store, f"e-{i}")
    slept: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    replayer = Replayer(store, FlakyQueue(), "q", "us-east-1", sleep=sleep, clock=lambda: now[0])
    replayer.run(failed_filter(), list(candidates(store, failed_filter())), force=False, operator="ops", rate=2)
    assert sum(slept) == pytest.approx(3.0)  # 6 messages at 2 per second


def test_moto_sqs_takes_what_a_replay_sends() -> None:
    with mock_aws():
        store = DynamoAuditStore(create_tables(), AUDIT)
        record(store, "e-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="optimove")["QueueUrl"]
        summary = Replayer(store, sqs, url, "us-east-1").run(
            failed_filter(), list(candidates(store, failed_filter())), force=False, operator="ops", rate=0
        )
        [message] = sqs.receive_message(QueueUrl=url)["Messages"]
        assert json.loads(message["Body"])["detail"]["replay"]["runId"] == summary.run_id


def test_a_stale_claim_left_by_a_run_that_never_completed_is_adopted(store: DynamoAuditStore) -> None:
    message_id = record(store, "e-orphan")
    replays = ReplayStore(store.table)
    assert replays.claim("optimove", message_id, "run-crashed", force=False, exists=True) is Claim.CLAIMED
    key = {"pk": {"S": f"MSG#{message_id}"}, "sk": {"S": "DELIVERY#optimove"}}
    long_ago = iso(NOW - timedelta(minutes=30))
    store.client.update_item(
        TableName=AUDIT,
        Key=key,
        UpdateExpression="SET gsiStatusSk = :t",
        ExpressionAttributeValues={":t": {"S": f"{long_ago}#{message_id}"}},
    )
    queue = FlakyQueue()
    summary = Replayer(store, queue, "q", "us-east-1").run(failed_filter(), [], force=False, operator="ops", rate=0)
    assert (summary.replayed, summary.adopted) == (1, 1)
    assert [m["detail"]["messageId"] for m in queue.sent] == [message_id]


def test_a_fresh_claim_of_a_replay_in_progress_is_left_alone(store: DynamoAuditStore) -> None:
    message_id = record(store, "e-busy")
    ReplayStore(store.table).claim("optimove", message_id, "run-in-progress", force=False, exists=True)
    queue = FlakyQueue()
    summary = Replayer(store, queue, "q", "us-east-1").run(failed_filter(), [], force=False, operator="ops", rate=0)
    assert (summary.replayed, summary.adopted, queue.sent) == (0, 0, [])


# --- messages stranded in a dead-letter queue -------------------------------------------------------


def bus_detail(event_id: str, event_type: str = "REDEMPTION") -> BusDetail:
    return BusDetail(messageId=message_id_for(event_id), event=example_event(event_type, eventId=event_id))


def test_a_delivery_left_pending_in_the_dead_letter_queue_is_recorded_failed_and_replayable(
    store: DynamoAuditStore,
) -> None:
    message_id = record(store, "e-1", status=DeliveryStatus.PENDING)
    previous = store.get_deliveries("optimove", [message_id])[message_id]

    assert fail_stranded(store, "optimove", bus_detail("e-1"), previous) is True

    failed = store.get_deliveries("optimove", [message_id])[message_id]
    assert failed.status is DeliveryStatus.FAILED
    assert failed.lastError == (
        "the queue gave up on it (it is in the dead-letter queue) before the connector could record its end"
    )
    wanted = ReplayFilter(connector="optimove", window=Window(NOW - timedelta(hours=1), NOW + timedelta(hours=6)))
    assert [c.message_id for c in candidates(store, wanted)] == [message_id]


def test_a_message_the_connector_never_recorded_is_recorded_failed_from_the_queued_event(
    store: DynamoAuditStore,
) -> None:
    detail = bus_detail("e-2", "MEMBER_TIER")
    assert fail_stranded(store, "optimove", detail, None) is True
    failed = store.get_deliveries("optimove", [detail.messageId])[detail.messageId]
    assert (failed.status, failed.eventType, failed.memberId) == (DeliveryStatus.FAILED, "MEMBER_TIER", "M-100001")


def test_what_is_delivered_or_claimed_by_a_replay_is_not_touched(store: DynamoAuditStore) -> None:
    delivered = record(store, "e-ok", status=DeliveryStatus.DELIVERED)
    claimed = record(store, "e-claimed")
    ReplayStore(store.table).claim("optimove", claimed, "run-a", force=False, exists=True)
    found = store.get_deliveries("optimove", [delivered, claimed])

    assert fail_stranded(store, "optimove", bus_detail("e-ok"), found[delivered]) is False
    assert fail_stranded(store, "optimove", bus_detail("e-claimed"), found[claimed]) is False
    after = store.get_deliveries("optimove", [delivered, claimed])
    assert after[delivered].status is DeliveryStatus.DELIVERED
    assert (after[claimed].status, after[claimed].replayRunId) == (DeliveryStatus.PENDING, "run-a")


def test_a_delivery_that_changed_since_it_was_read_is_left_as_it_now_is(store: DynamoAuditStore) -> None:
    message_id = record(store, "e-1", status=DeliveryStatus.PENDING)
    stale = store.get_deliveries("optimove", [message_id])[message_id]
    store.save_deliveries([stale.model_copy(update={"status": DeliveryStatus.DELIVERED, "updatedAt": iso(NOW)})])

    assert fail_stranded(store, "optimove", bus_detail("e-1"), stale) is False
    assert store.get_deliveries("optimove", [message_id])[message_id].status is DeliveryStatus.DELIVERED
    # and a record created meanwhile is not overwritten either
    assert fail_stranded(store, "optimove", bus_detail("e-1"), None) is False
