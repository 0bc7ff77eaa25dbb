"""The audit store on DynamoDB (moto, in process): the publish protocol, deliveries, compression."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from moto import mock_aws

from db.audit import COMPRESSION_THRESHOLD_BYTES, BeginOutcome, DynamoAuditStore, Retention
from db.records import Attempt, DeliveryRecord, DeliveryStatus, MessageRecord, PublishState
from tests.aws import AUDIT, AtomicCalls, create_tables


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        yield create_tables()


@pytest.fixture
def store(dynamodb: Any) -> DynamoAuditStore:
    return DynamoAuditStore(dynamodb, AUDIT, Retention(delivered_days=30, failed_days=90))


def message(message_id: str = "m-1", **changes: Any) -> MessageRecord:
    envelope = {"eventId": "e-1", "eventType": "MEMBER_TIER", "memberId": "M-1", "data": {"newTier": "GOLD"}}
    fields: dict[str, Any] = {
        "messageId": message_id,
        "eventId": "e-1",
        "eventType": "MEMBER_TIER",
        "memberId": "M-1",
        "occurredAt": "2026-11-21T12:00:00Z",
        "receivedAt": "2026-11-21T12:00:01.000Z",
        "sizeBytes": 120,
        "envelope": envelope,
        "client": "es-loyalty",
    }
    return MessageRecord(**{**fields, **changes})


def test_a_new_message_is_recorded_pending_then_published(store: DynamoAuditStore) -> None:
    begun = store.begin_message(message(), owner="req-1", lease_seconds=30)
    assert begun.outcome is BeginOutcome.NEW
    view = store.get_message("m-1")
    assert view is not None
    assert view.message.publishState is PublishState.PENDING
    store.mark_published("m-1")
    view = store.get_message("m-1")
    assert view is not None
    assert view.message.publishState is PublishState.PUBLISHED
    assert view.message.publishedAt is not None
    assert view.message.envelope["data"] == {"newTier": "GOLD"}


def item_of(dynamodb: Any, message_id: str = "m-1") -> dict[str, Any]:
    return dict(
        dynamodb.get_item(TableName=AUDIT, Key={"pk": {"S": f"MSG#{message_id}"}, "sk": {"S": "MESSAGE"}})["Item"]
    )


def test_marked_published_by_rewriting_the_item_its_begin_left(store: DynamoAuditStore, dynamodb: Any) -> None:
    begun = store.begin_message(message(), owner="req-1", lease_seconds=30)
    before = item_of(dynamodb)

    store.mark_published("m-1", begun=begun)

    after = item_of(dynamodb)
    assert after["publishState"] == {"S": "PUBLISHED"}
    assert "publishedAt" in after
    assert "publishLeaseOwner" not in after
    assert "publishLeaseUntil" not in after
    unchanged = set(before) - {"publishState", "publishLeaseOwner", "publishLeaseUntil"}
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}


@pytest.mark.parametrize(
    "meanwhile",
    [
        "SET expiresAt = :later",  # a connector that failed the delivery kept the message longer
        "SET erasedAt = :now",  # dig member forget
        "SET publishLeaseOwner = :other",  # another request took the publish over
    ],
)
def test_an_item_changed_since_its_begin_is_marked_published_without_undoing_the_change(
    store: DynamoAuditStore, dynamodb: Any, meanwhile: str
) -> None:
    begun = store.begin_message(message(), owner="req-1", lease_seconds=30)
    values = {":later": {"N": "9999999999"}, ":now": {"S": "2026-11-30T00:00:00Z"}, ":other": {"S": "req-2"}}
    used = {k: v for k, v in values.items() if k in meanwhile}
    dynamodb.update_item(
        TableName=AUDIT,
        Key={"pk": {"S": "MSG#m-1"}, "sk": {"S": "MESSAGE"}},
        UpdateExpression=meanwhile,
        ExpressionAttributeValues=used,
    )
    changed = item_of(dynamodb)

    store.mark_published("m-1", begun=begun)

    after = item_of(dynamodb)
    assert after["publishState"] == {"S": "PUBLISHED"}
    attribute = meanwhile.split()[1]
    if attribute != "publishLeaseOwner":
        assert after[attribute] == changed[attribute]


def test_the_same_message_again_is_a_duplicate_once_published(store: DynamoAuditStore) -> None:
    store.begin_message(message(), owner="req-1", lease_seconds=30)
    store.mark_published("m-1")
    assert store.begin_message(message(), owner="req-2", lease_seconds=30).outcome is BeginOutcome.DUPLICATE


def test_while_one_request_holds_the_lease_another_is_told_in_progress(store: DynamoAuditStore) -> None:
    store.begin_message(message(), owner="req-1", lease_seconds=30)
    assert store.begin_message(message(), owner="req-2", lease_seconds=30).outcome is BeginOutcome.IN_PROGRESS


def test_a_message_is_recorded_once_published_and_found_by_its_id(store: DynamoAuditStore) -> None:
    published = message(publishState=PublishState.PUBLISHED, publishedAt="2026-11-21T12:00:01.100Z")
    assert store.record_messages([published], owner="req-1")["m-1"].written
    found = store.find_messages(["m-1", "m-unknown"])
    assert list(found) == ["m-1"]
    assert found["m-1"].publishState is PublishState.PUBLISHED
    assert found["m-1"].envelope["data"] == {"newTier": "GOLD"}


def test_a_published_record_stands_against_a_second_one(store: DynamoAuditStore) -> None:
    store.record_messages([message(publishState=PublishState.PUBLISHED)], owner="req-1")
    again = message(publishState=PublishState.PUBLISHED, receivedAt="2026-11-21T12:05:00.000Z", client="other")
    answer = store.record_messages([again], owner="req-2")["m-1"]
    assert not answer.written
    assert answer.standing is not None
    assert (answer.standing.receivedAt, answer.standing.client) == ("2026-11-21T12:00:01.000Z", "es-loyalty")


def test_a_publish_the_bus_refused_is_recorded_then_replaced_by_the_retry(store: DynamoAuditStore) -> None:
    refused = message(publishState=PublishState.FAILED, publishError="InternalFailure: bus down")
    assert store.record_messages([refused], owner="req-1")["m-1"].written
    assert store.find_messages(["m-1"])["m-1"].publishState is PublishState.FAILED
    retried = message(publishState=PublishState.PUBLISHED, publishAttempts=2)
    assert store.record_messages([retried], owner="req-2")["m-1"].written
    view = store.get_message("m-1")
    assert view is not None
    assert (view.message.publishState, view.message.publishAttempts, view.message.publishError) == (
        PublishState.PUBLISHED,
        2,
        None,
    )


def test_a_refused_publish_never_replaces_a_published_record(store: DynamoAuditStore) -> None:
    store.record_messages([message(publishState=PublishState.PUBLISHED)], owner="req-1")
    answer = store.record_messages([message(publishState=PublishState.FAILED)], owner="req-2")["m-1"]
    assert answer.standing is not None
    assert answer.standing.publishState is PublishState.PUBLISHED


def test_an_erased_record_is_never_written_over(store: DynamoAuditStore, dynamodb: Any) -> None:
    store.record_messages([message(publishState=PublishState.FAILED)], owner="req-1")
    dynamodb.update_item(
        TableName=AUDIT,
        Key={"pk": {"S": "MSG#m-1"}, "sk": {"S": "MESSAGE"}},
        UpdateExpression="SET erasedAt = :now",
        ExpressionAttributeValues={":now": {"S": "2026-11-30T00:00:00Z"}},
    )
    assert not store.record_messages([message(publishState=PublishState.PUBLISHED)], owner="req-2")["m-1"].written
    assert "erasedAt" in item_of(dynamodb)


def test_a_synchronous_delivery_holding_the_message_keeps_it_until_its_lease_lapses(store: DynamoAuditStore) -> None:
    store.begin_message(message(), owner="sync-request", lease_seconds=30)
    held = store.record_messages([message(publishState=PublishState.PUBLISHED)], owner="req-2")["m-1"]
    assert not held.written
    assert held.standing is not None
    assert held.standing.publishState is PublishState.PENDING
    store.begin_message(message(eventId="e-2", messageId="m-2"), owner="crashed-sync", lease_seconds=-1)
    lapsed = message(messageId="m-2", publishState=PublishState.PUBLISHED)
    assert store.record_messages([lapsed], owner="r")["m-2"].written


def test_records_found_absent_are_written_25_to_a_call_and_the_others_on_their_condition(dynamodb: Any) -> None:
    calls: list[str] = []

    class Counting:
        def __getattr__(self, name: str) -> Any:
            calls.append(name)
            return getattr(dynamodb, name)

    store = DynamoAuditStore(Counting(), AUDIT)  # type: ignore[arg-type]
    store.record_messages([message(messageId="m-old", publishState=PublishState.FAILED)], owner="a")
    calls.clear()
    fresh = [message(messageId=f"m-{i}", publishState=PublishState.PUBLISHED) for i in range(30)]
    refused = message(messageId="m-refused", publishState=PublishState.FAILED)
    retried = message(messageId="m-old", publishState=PublishState.PUBLISHED)
    answers = store.record_messages(
        [*fresh, refused, retried], owner="b", absent={*(r.messageId for r in fresh), "m-refused"}
    )
    assert all(a.written for a in answers.values())
    assert sorted(calls) == ["batch_write_item"] * 2 + ["put_item"] * 2
    assert {m: r.publishState for m, r in store.find_messages(["m-0", "m-29", "m-refused", "m-old"]).items()} == {
        "m-0": PublishState.PUBLISHED,
        "m-29": PublishState.PUBLISHED,
        "m-refused": PublishState.FAILED,
        "m-old": PublishState.PUBLISHED,
    }


def test_the_table_failing_is_reported_per_record_not_raised(dynamodb: Any) -> None:
    store = DynamoAuditStore(dynamodb, "no-such-table")
    published = message(publishState=PublishState.PUBLISHED)
    for absent in (set(), {"m-1"}):  # on its condition, and in a batch
        answer = store.record_messages([published], owner="req-1", absent=absent)["m-1"]
        assert (answer.written, answer.unavailable) == (False, True)


def test_an_expired_lease_is_taken_over(store: DynamoAuditStore) -> None:
    store.begin_message(message(), owner="crashed-request", lease_seconds=-1)
    assert store.begin_message(message(), owner="req-2", lease_seconds=30).outcome is BeginOutcome.RESUMED


def test_racing_requests_yield_one_publisher(dynamodb: Any) -> None:
    store = DynamoAuditStore(AtomicCalls(dynamodb), AUDIT)  # each call atomic, as DynamoDB's are
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(
            pool.map(lambda i: store.begin_message(message(), owner=f"r{i}", lease_seconds=30).outcome, range(8))
        )
    assert outcomes.count(BeginOutcome.NEW) == 1
    assert set(outcomes) <= {BeginOutcome.NEW, BeginOutcome.IN_PROGRESS}


def test_a_large_payload_is_stored_compressed_and_read_back(store: DynamoAuditStore, dynamodb: Any) -> None:
    envelope = {"eventId": "e-1", "data": {"profile": {"bio": "x" * (COMPRESSION_THRESHOLD_BYTES * 2)}}}
    store.begin_message(message(envelope=envelope), owner="r", lease_seconds=30)
    item = dynamodb.get_item(TableName=AUDIT, Key={"pk": {"S": "MSG#m-1"}, "sk": {"S": "MESSAGE"}})["Item"]
    assert "payloadZ" in item
    assert "payload" not in item
    assert len(item["payloadZ"]["B"]) < COMPRESSION_THRESHOLD_BYTES
    view = store.get_message("m-1")
    assert view is not None
    assert view.message.envelope == envelope


def test_deliveries_are_saved_read_and_listed_with_the_message(store: DynamoAuditStore, dynamodb: Any) -> None:
    store.begin_message(message(), owner="r", lease_seconds=30)
    attempt = Attempt(
        at="2026-11-21T12:00:02.000Z", call="UpdateCustomerAttributes", status="500", latencyMs=12, error="boom"
    )
    failed = DeliveryRecord(
        messageId="m-1",
        connector="optimove",
        status=DeliveryStatus.FAILED,
        eventType="MEMBER_TIER",
        memberId="M-1",
        updatedAt="2026-11-21T12:00:03.000Z",
        attempts=[attempt],
        attemptCount=1,
        lastError="retries spent: 500",
    )
    store.save_deliveries([failed])
    assert store.get_deliveries("optimove", ["m-1", "m-unknown"]) == {"m-1": failed}
    view = store.get_message("m-1")
    assert view is not None
    assert view.deliveries == [failed]
    item = dynamodb.get_item(TableName=AUDIT, Key={"pk": {"S": "MSG#m-1"}, "sk": {"S": "DELIVERY#optimove"}})["Item"]
    assert item["gsiStatusPk"]["S"] == "DELIVERY#optimove#FAILED#2026-11-21"


def test_a_failure_keeps_its_message_as_long_as_itself(store: DynamoAuditStore, dynamodb: Any) -> None:
    store.begin_message(message(), owner="r", lease_seconds=30)
    key = {"pk": {"S": "MSG#m-1"}, "sk": {"S": "MESSAGE"}}
    before = int(dynamodb.get_item(TableName=AUDIT, Key=key)["Item"]["expiresAt"]["N"])
    failed = DeliveryRecord(
        messageId="m-1",
        connector="optimove",
        status=DeliveryStatus.FAILED,
        eventType="MEMBER_TIER",
        memberId="M-1",
        updatedAt="2026-11-21T12:00:03.000Z",
    )
    store.save_deliveries([failed])
    after = int(dynamodb.get_item(TableName=AUDIT, Key=key)["Item"]["expiresAt"]["N"])
    assert after - before > 50 * 86_400  # 90 days from now rather than 30 from receipt


def test_a_message_delivered_synchronously_is_a_duplicate_afterwards(store: DynamoAuditStore) -> None:
    store.begin_message(message(), owner="r", lease_seconds=30)
    store.mark_published("m-1", PublishState.SYNC)
    assert store.begin_message(message(), owner="r2", lease_seconds=30).outcome is BeginOutcome.DUPLICATE


def delivery(message_id: str, status: DeliveryStatus, second: int = 0) -> DeliveryRecord:
    return DeliveryRecord(
        messageId=message_id,
        connector="optimove",
        status=status,
        eventType="MEMBER_TIER",
        memberId="M-1",
        updatedAt=f"2026-11-21T12:00:{second:02d}.000Z",
        lastError=None if status in (DeliveryStatus.DELIVERED, DeliveryStatus.SKIPPED) else "503 busy",
    )


def test_a_pending_or_failed_outcome_never_replaces_a_delivery_another_copy_completed(
    store: DynamoAuditStore,
) -> None:
    delivered, skipped = delivery("m-1", DeliveryStatus.DELIVERED), delivery("m-2", DeliveryStatus.SKIPPED)
    failed_before = delivery("m-3", DeliveryStatus.FAILED)
    store.save_deliveries([delivered, skipped, failed_before])

    late = [
        delivery("m-1", DeliveryStatus.PENDING, 5),
        delivery("m-2", DeliveryStatus.FAILED, 5),
        delivery("m-3", DeliveryStatus.PENDING, 5),  # a replay retrying a failure: replaces it
        delivery("m-4", DeliveryStatus.FAILED, 5),  # never recorded before
    ]
    standing = store.save_deliveries(late)

    assert standing == {"m-1": delivered, "m-2": skipped}
    assert store.get_deliveries("optimove", ["m-1", "m-2", "m-3", "m-4"]) == {
        "m-1": delivered,
        "m-2": skipped,
        "m-3": late[2],
        "m-4": late[3],
    }


def test_a_providers_later_verdict_replaces_a_delivered_record(store: DynamoAuditStore) -> None:
    store.save_deliveries([delivery("m-1", DeliveryStatus.DELIVERED)])
    verdict = delivery("m-1", DeliveryStatus.FAILED, 59)
    assert store.save_deliveries([verdict], replace_done=True) == {}
    assert store.get_deliveries("optimove", ["m-1"]) == {"m-1": verdict}


@pytest.mark.parametrize("kind", ["dynamodb", "in-memory fake"])
def test_the_fake_records_messages_as_the_dynamodb_store_does(dynamodb: Any, kind: str) -> None:
    """The contract the ingest tests rely on when they use the kit's in-memory store."""
    from dig_connector_kit.testing import InMemoryAuditStore

    store: Any = DynamoAuditStore(dynamodb, AUDIT) if kind == "dynamodb" else InMemoryAuditStore()
    seen = []
    for state, owner in [(PublishState.FAILED, "a"), (PublishState.PUBLISHED, "b"), (PublishState.PUBLISHED, "c")]:
        answer = store.record_messages([message(publishState=state, client=owner)], owner=owner)["m-1"]
        standing = answer.standing.publishState if answer.standing else None
        seen.append((answer.written, standing, store.find_messages(["m-1"])["m-1"].client))
    assert seen == [(True, None, "a"), (True, None, "b"), (False, PublishState.PUBLISHED, "b")]
    store.begin_message(message(messageId="m-2"), owner="sync", lease_seconds=30)
    held = store.record_messages([message(messageId="m-2", publishState=PublishState.PUBLISHED)], owner="x")["m-2"]
    assert (held.written, held.standing.publishState if held.standing else None) == (False, PublishState.PENDING)
