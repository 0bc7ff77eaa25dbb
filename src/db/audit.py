"""The audit trail: every message DIG accepted, and its delivery to each connector.

Single-table layout (table spec: db.schema.AUDIT_TABLE). Items are kept flat with one JSON ``doc``
attribute for nested detail, because item complexity, not item count, is what costs time at volume.

  pk                     sk                    what
  MSG#<messageId>        MESSAGE               the message: envelope (compressed above a threshold),
                                               client, source IP, size, publish state
  MSG#<messageId>        DELIVERY#<connector>  one connector's delivery: status, attempts, errors
  MSG#<messageId>        OP#<connector>#<op>   a call only one copy of the message may make (db.operations)
  RUN#<runId>            RUN                   an operator's replay run (db.replay)
  STATE#<connector>#<m>  ATTRIBUTES            last delivered occurredAt per member attribute (db.watermarks)
  CALL#<connector>#<id>  CALL                  which messages a coalesced provider call carried (db.call_log)
  LIMIT#<key>            WINDOW                a provider rate limit's sliding window and calls in flight
                                               (connectors' limiters and concurrency gates)

Access patterns, each served by a key or an index, never a scan:
  by message id ............ GetItem / Query on pk
  by ES Loyalty event id ... the message id is derived from it (dig_contracts.bus.message_id_for)
  by member + time ......... index byMember:          MEMBER#<memberId>, <receivedAt>#<messageId>
  by event type + time ..... index byEventType:       TYPE#<eventType>#<day>, <receivedAt>#<messageId>;
                                                      the types in TYPE_INDEXED only
  by connector+status+time . index byConnectorStatus: DELIVERY#<connector>#<status>#<day>,
                                                      <updatedAt>#<messageId>; PENDING and FAILED
                                                      only (delivered and skipped: db.counters)
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import zlib
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from db.records import (
    Attempt,
    DeliveryRecord,
    DeliveryStatus,
    MessageRecord,
    MessageView,
    PublishState,
    epoch_after,
    iso,
    parse_iso,
    utc_now,
)
from db.table import Table, TableUnavailable, from_item
from dig_contracts.inbound import INBOUND_TYPES

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

COMPRESSION_THRESHOLD_BYTES = 4096
# The event types the byEventType index holds: those code reads by type (ES Loyalty's pull of the return
# path, `dig payouts`). A message of any other type is found by member, by delivery status, or by a
# bounded scan (`dig audit list --event-type`): an index entry for each was a write and its bytes kept,
# for a query nobody's code makes (issue #28).
TYPE_INDEXED = frozenset({*INBOUND_TYPES, "PAYOUT_REQUESTED"})
MAX_ATTEMPTS_KEPT = 25
MESSAGE_SK = "MESSAGE"
DELIVERY_SK_PREFIX = "DELIVERY#"


AuditUnavailable = TableUnavailable  # the audit table could not be read or written


# What a delivery that another copy of its message has already completed reads.
DONE = frozenset({DeliveryStatus.DELIVERED, DeliveryStatus.SKIPPED})


@dataclass(frozen=True)
class Retention:
    delivered_days: int = 30
    failed_days: int = 90

    def days_for(self, status: DeliveryStatus) -> int:
        if status in (DeliveryStatus.DELIVERED, DeliveryStatus.SKIPPED):
            return self.delivered_days
        return self.failed_days


class BeginOutcome(StrEnum):
    NEW = "NEW"  # first time this event is seen: publish it
    RESUMED = "RESUMED"  # recorded before but never published: this request completes the publish
    DUPLICATE = "DUPLICATE"  # already published
    IN_PROGRESS = "IN_PROGRESS"  # another request holds the publish lease right now


@dataclass(frozen=True)
class BeginResult:
    outcome: BeginOutcome
    record: MessageRecord
    # The message's item as this begin left it (NEW, RESUMED): marking it published rewrites it whole,
    # on the condition that nobody changed it since, which costs what an update costs and no more.
    item: dict[str, Any] | None = None


@dataclass(frozen=True)
class Recorded:
    """What ``record_messages`` did with one record."""

    written: bool
    standing: MessageRecord | None = None  # not written: the record that stood in its way
    unavailable: bool = False  # not written: the table failed


class AuditStore(Protocol):
    """The port the DIG API and the connectors write the audit trail through."""

    def begin_message(self, record: MessageRecord, *, owner: str, lease_seconds: int) -> BeginResult: ...

    def mark_published(
        self, message_id: str, state: PublishState = PublishState.PUBLISHED, begun: BeginResult | None = None
    ) -> None: ...

    def find_messages(self, message_ids: Iterable[str]) -> dict[str, MessageRecord]: ...

    def record_messages(
        self, records: Sequence[MessageRecord], *, owner: str, absent: Collection[str] = ()
    ) -> dict[str, Recorded]:
        """Write each record (published, or refused by the bus) unless the message already stands
        published; for each, whether it was written, what stood in its way, or that the table failed.
        ``absent``: the messages the caller just found no record of (``find_messages``)."""
        ...

    def get_message(self, message_id: str) -> MessageView | None: ...

    def get_deliveries(
        self, connector: str, message_ids: Iterable[str], *, consistent: bool = True
    ) -> dict[str, DeliveryRecord]: ...

    def save_deliveries(
        self, records: Sequence[DeliveryRecord], *, replace_done: bool = False
    ) -> dict[str, DeliveryRecord]:
        """Record outcomes. A PENDING or FAILED one does not replace a delivery another copy of the
        message recorded DONE meanwhile; those come back as they stand (``replace_done``: it does)."""
        ...


# --- item conversion -------------------------------------------------------------------------


def _s(value: str) -> dict[str, Any]:
    return {"S": value}


def _n(value: int) -> dict[str, Any]:
    return {"N": str(value)}


def _plain_item(item: dict[str, Any]) -> dict[str, Any]:
    return from_item(item)


def message_pk(message_id: str) -> str:
    return f"MSG#{message_id}"


def message_id_from_pk(pk: str) -> str:
    return pk.removeprefix("MSG#")


def status_partition(connector: str, status: DeliveryStatus | str, day: str) -> str:
    return f"{DELIVERY_SK_PREFIX}{connector}#{status}#{day}"


def message_to_item(record: MessageRecord, expires_at: int) -> dict[str, Any]:
    payload = json.dumps(record.envelope, separators=(",", ":"), ensure_ascii=False).encode()
    item: dict[str, Any] = {
        "pk": _s(message_pk(record.messageId)),
        "sk": _s(MESSAGE_SK),
        "eventId": _s(record.eventId),
        "eventType": _s(record.eventType),
        "memberId": _s(record.memberId),
        "occurredAt": _s(record.occurredAt),
        "receivedAt": _s(record.receivedAt),
        "sizeBytes": _n(record.sizeBytes),
        "publishState": _s(record.publishState),
        "publishAttempts": _n(record.publishAttempts),
        "gsiMemberPk": _s(f"MEMBER#{record.memberId}"),
        "gsiMemberSk": _s(f"{record.receivedAt}#{record.messageId}"),
        "expiresAt": _n(expires_at),
    }
    if record.eventType in TYPE_INDEXED:
        item["gsiTypePk"] = _s(f"TYPE#{record.eventType}#{record.receivedAt[:10]}")
        item["gsiTypeSk"] = _s(f"{record.receivedAt}#{record.messageId}")
    if len(payload) > COMPRESSION_THRESHOLD_BYTES:
        item["payloadZ"] = {"B": zlib.compress(payload, 6)}
    else:
        item["payload"] = _s(payload.decode())
    for name in ("programId", "client", "sourceIp", "publishedAt", "publishError", "erasedAt", "fileId"):
        value = getattr(record, name)
        if value is not None:
            item[name] = _s(value)
    if record.fileLine is not None:
        item["fileLine"] = _n(record.fileLine)
    return item


# DynamoDB refuses an item over 400 KB (and a BatchWriteItem holding one, whole); a message record keeps
# room for what is written to it later (publishError, erasure, a synchronous lease).
MAX_ITEM_BYTES = 400 * 1024
MAX_MESSAGE_ITEM_BYTES = MAX_ITEM_BYTES - 8 * 1024


def item_size(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it: UTF-8 names plus values, numbers about a byte per two
    digits, 3 bytes of overhead per map or list and 1 per element (``CapacityUnitCalculations``)."""

    def value_size(value: dict[str, Any]) -> int:
        ((kind, data),) = value.items()
        if kind == "S":
            return len(data.encode())
        if kind == "B":
            return len(data)
        if kind == "N":
            return (len(data.lstrip("-").replace(".", "")) + 1) // 2 + 1
        if kind == "BOOL" or kind == "NULL":
            return 1
        if kind == "M":
            return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in data.items())
        if kind == "L":
            return 3 + sum(value_size(v) + 1 for v in data)
        return sum(len(str(x).encode()) for x in data)  # SS, NS, BS

    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def message_item_size(record: MessageRecord) -> int:
    """The bytes a message record takes in the audit table, compressed as it is written."""
    return item_size(message_to_item(record, 0))


def message_from_item(item: dict[str, Any]) -> MessageRecord:
    plain = _plain_item(item)
    if "payloadZ" in plain:
        raw = plain["payloadZ"]
        if isinstance(raw, str):  # base64 text, as some tools hand binary attributes over
            raw = base64.b64decode(raw)
        envelope = json.loads(zlib.decompress(raw))
    else:
        envelope = json.loads(plain["payload"])
    return MessageRecord(
        messageId=message_id_from_pk(plain["pk"]),
        eventId=plain["eventId"],
        eventType=plain["eventType"],
        memberId=plain["memberId"],
        programId=plain.get("programId"),
        occurredAt=plain["occurredAt"],
        receivedAt=plain["receivedAt"],
        client=plain.get("client"),
        sourceIp=plain.get("sourceIp"),
        sizeBytes=plain["sizeBytes"],
        envelope=envelope,
        publishState=PublishState(plain["publishState"]),
        publishedAt=plain.get("publishedAt"),
        publishError=plain.get("publishError"),
        publishAttempts=plain.get("publishAttempts", 1),
        erasedAt=plain.get("erasedAt"),
        fileId=plain.get("fileId"),
        fileLine=plain.get("fileLine"),
    )


def delivery_to_item(record: DeliveryRecord, expires_at: int) -> dict[str, Any]:
    # Flat keys for the index and conditions, the rest in one JSON document: at a thousand
    # deliveries per batch, every attribute costs (DynamoDB, and moto even more so).
    doc: dict[str, Any] = {
        "updatedAt": record.updatedAt,
        "eventType": record.eventType,
        "memberId": record.memberId,
        "attemptCount": record.attemptCount,
        "attempts": [a.model_dump(exclude_none=True) for a in record.attempts],
    }
    if record.lastError:
        doc["lastError"] = record.lastError
    for name in ("notes", "completed", "retryUntil"):
        if getattr(record, name):
            doc[name] = getattr(record, name)
    item = {
        "pk": _s(message_pk(record.messageId)),
        "sk": _s(DELIVERY_SK_PREFIX + record.connector),
        "status": _s(record.status),
        "doc": _s(json.dumps(doc, separators=(",", ":"), ensure_ascii=False)),
        "expiresAt": _n(expires_at),
    }
    if record.status not in DONE:  # the status index is sparse: what an operator may act on (issue #28)
        item["gsiStatusPk"] = _s(status_partition(record.connector, record.status, record.updatedAt[:10]))
        item["gsiStatusSk"] = _s(f"{record.updatedAt}#{record.messageId}")
    if record.replayRunId:  # top level: a replay claims a delivery on a condition over it
        item["replayRunId"] = _s(record.replayRunId)
    return item


def delivery_from_item(item: dict[str, Any]) -> DeliveryRecord:
    doc = json.loads(item["doc"]["S"])
    return DeliveryRecord(
        messageId=message_id_from_pk(item["pk"]["S"]),
        connector=item["sk"]["S"].removeprefix(DELIVERY_SK_PREFIX),
        status=DeliveryStatus(item["status"]["S"]),
        eventType=doc["eventType"],
        memberId=doc["memberId"],
        updatedAt=doc["updatedAt"],
        attempts=[Attempt(**a) for a in doc.get("attempts", [])],
        attemptCount=doc.get("attemptCount", 0),
        lastError=doc.get("lastError"),
        notes=doc.get("notes", []),
        completed=doc.get("completed", []),
        retryUntil=doc.get("retryUntil"),
        replayRunId=item["replayRunId"]["S"] if "replayRunId" in item else None,
    )


T = TypeVar("T")
R = TypeVar("R")


# --- DynamoDB --------------------------------------------------------------------------------


class DynamoAuditStore:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        retention: Retention | None = None,
        *,
        parallelism: int = 4,
    ) -> None:
        self._client = client
        self._table_name = table_name
        self._retention = retention or Retention()
        self.table = Table(client, table_name, parallelism=parallelism)

    def _map(self, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
        return self.table.map(function, items)

    @property
    def table_name(self) -> str:
        return self._table_name

    @property
    def client(self) -> DynamoDBClient:
        return self._client

    def _call(self, operation: str, **kwargs: Any) -> Any:
        kwargs.pop("TableName", None)
        return self.table.call(operation, **kwargs)

    # The DIG API's side: record, then publish, then mark published.

    def begin_message(self, record: MessageRecord, *, owner: str, lease_seconds: int) -> BeginResult:
        from botocore.exceptions import ClientError

        now = int(time.time())
        item = message_to_item(record, epoch_after(parse_iso(record.receivedAt), self._retention.delivered_days))
        item["publishLeaseOwner"] = _s(owner)
        item["publishLeaseUntil"] = _n(now + lease_seconds)
        try:
            self._call("put_item", Item=item, ConditionExpression="attribute_not_exists(pk)")
            return BeginResult(BeginOutcome.NEW, record, item)
        except ClientError:
            pass
        # Seen before. Take the publish over if it was never completed and nobody else holds it now (the
        # same owner may: a file's chunk run again after an interruption).
        try:
            answer = self._call(
                "update_item",
                TableName=self._table_name,
                Key={"pk": _s(message_pk(record.messageId)), "sk": _s(MESSAGE_SK)},
                UpdateExpression="SET publishLeaseOwner = :owner, publishLeaseUntil = :until ADD publishAttempts :one",
                ConditionExpression="publishState <> :published AND publishState <> :sync AND "
                "(attribute_not_exists(publishLeaseUntil) OR publishLeaseUntil < :now OR publishLeaseOwner = :owner)",
                ExpressionAttributeValues={
                    ":owner": _s(owner),
                    ":until": _n(now + lease_seconds),
                    ":one": _n(1),
                    ":published": _s(PublishState.PUBLISHED),
                    ":sync": _s(PublishState.SYNC),
                    ":now": _n(now),
                },
                ReturnValues="ALL_NEW",
            )
            return BeginResult(BeginOutcome.RESUMED, message_from_item(answer["Attributes"]), answer["Attributes"])
        except ClientError:
            pass
        existing = self._get_message_item(record.messageId)
        if existing is None:  # expired by TTL between the two calls: start afresh
            return self.begin_message(record, owner=owner, lease_seconds=lease_seconds)
        done = existing.publishState in (PublishState.PUBLISHED, PublishState.SYNC)
        return BeginResult(BeginOutcome.DUPLICATE if done else BeginOutcome.IN_PROGRESS, existing)

    def mark_published(
        self, message_id: str, state: PublishState = PublishState.PUBLISHED, begun: BeginResult | None = None
    ) -> None:
        if begun is not None and begun.item is not None and self._put_published(begun.item, state):
            return
        self._call(
            "update_item",
            TableName=self._table_name,
            Key={"pk": _s(message_pk(message_id)), "sk": _s(MESSAGE_SK)},
            UpdateExpression="SET publishState = :published, publishedAt = :now "
            "REMOVE publishLeaseOwner, publishLeaseUntil, publishError",
            ExpressionAttributeValues={":published": _s(state), ":now": _s(_now_iso())},
        )

    def _put_published(self, item: dict[str, Any], state: PublishState) -> bool:
        """The item rewritten as published, if it still stands as ``begin_message`` left it (same lease,
        same expiry, not erased); False when something changed it, and an update must do."""
        from botocore.exceptions import ClientError

        written = dict(item)
        owner, until = written.pop("publishLeaseOwner", None), written.pop("publishLeaseUntil", None)
        if owner is None or until is None:
            return False
        written.pop("publishError", None)
        written["publishState"] = _s(state)
        written["publishedAt"] = _s(_now_iso())
        try:
            self._call(
                "put_item",
                Item=written,
                ConditionExpression="publishLeaseOwner = :owner AND publishLeaseUntil = :until "
                "AND expiresAt = :expires AND attribute_not_exists(erasedAt)",
                ExpressionAttributeValues={":owner": owner, ":until": until, ":expires": item["expiresAt"]},
            )
        except ClientError:  # _call re-raises only the conditional refusal
            return False
        return True

    # The asynchronous flows: publish, then record once (ingest.py says why in that order).

    def find_messages(self, message_ids: Iterable[str]) -> dict[str, MessageRecord]:
        """The messages recorded under these ids. Eventually consistent reads, at half the price: a
        record missed here is still caught by the condition of ``record_messages``."""
        keys = [{"pk": _s(message_pk(m)), "sk": _s(MESSAGE_SK)} for m in dict.fromkeys(message_ids)]
        found = (message_from_item(item) for item in self.table.batch_get(keys, consistent=False))
        return {record.messageId: record for record in found}

    def record_messages(
        self, records: Sequence[MessageRecord], *, owner: str, absent: Collection[str] = ()
    ) -> dict[str, Recorded]:
        now = int(time.time())
        answers: dict[str, Recorded] = {}
        # Published and found absent a moment ago: written in batches of 25 (a conditional write is one
        # call per item). Only a post of the same event racing this one, within that moment, can have
        # written the record since; its record is the same event, received a few milliseconds apart.
        batched = [r for r in records if r.messageId in absent and r.publishState is PublishState.PUBLISHED]
        if batched:
            expiry = self._retention.delivered_days
            items = [message_to_item(r, epoch_after(parse_iso(r.receivedAt), expiry)) for r in batched]
            try:
                self.table.batch_put(items)
                answers.update((r.messageId, Recorded(True)) for r in batched)
            except AuditUnavailable:
                answers.update((r.messageId, Recorded(False, unavailable=True)) for r in batched)
        conditional = [r for r in records if r.messageId not in answers]

        def put(record: MessageRecord) -> Recorded:
            from botocore.exceptions import ClientError

            item = message_to_item(record, epoch_after(parse_iso(record.receivedAt), self._retention.delivered_days))
            try:
                self._call(
                    "put_item",
                    Item=item,
                    # Never over a published one, an erased one, or one a synchronous delivery holds now.
                    ConditionExpression="attribute_not_exists(pk) OR (attribute_not_exists(erasedAt) AND "
                    "(publishState = :failed OR (publishState = :pending AND (attribute_not_exists(publishLeaseUntil)"
                    " OR publishLeaseUntil < :now OR publishLeaseOwner = :owner))))",
                    ExpressionAttributeValues={
                        ":failed": _s(PublishState.FAILED),
                        ":pending": _s(PublishState.PENDING),
                        ":now": _n(now),
                        ":owner": _s(owner),
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as error:  # _call re-raises only the conditional refusal
                old = error.response.get("Item")
                return Recorded(False, standing=message_from_item(old) if old else None)
            except AuditUnavailable:
                return Recorded(False, unavailable=True)
            return Recorded(True)

        answers.update(zip((r.messageId for r in conditional), self._map(put, conditional), strict=True))
        return answers

    # Reading.

    def _get_message_item(self, message_id: str) -> MessageRecord | None:
        answer = self._call(
            "get_item",
            TableName=self._table_name,
            Key={"pk": _s(message_pk(message_id)), "sk": _s(MESSAGE_SK)},
            ConsistentRead=True,
        )
        return message_from_item(answer["Item"]) if "Item" in answer else None

    def get_message(self, message_id: str) -> MessageView | None:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": _s(message_pk(message_id))},
            "ConsistentRead": True,
        }
        while True:
            answer = self._call("query", **kwargs)
            items.extend(answer.get("Items", []))
            if "LastEvaluatedKey" not in answer:
                break
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        message = next((i for i in items if i["sk"]["S"] == MESSAGE_SK), None)
        if message is None:
            return None
        deliveries = [delivery_from_item(i) for i in items if i["sk"]["S"].startswith(DELIVERY_SK_PREFIX)]
        return MessageView(message=message_from_item(message), deliveries=deliveries)

    # The connectors' side.

    def get_deliveries(
        self, connector: str, message_ids: Iterable[str], *, consistent: bool = True
    ) -> dict[str, DeliveryRecord]:
        """``consistent=False``: at half the price, where a write of the last second missed changes nothing."""
        keys = [
            {"pk": _s(message_pk(message_id)), "sk": _s(DELIVERY_SK_PREFIX + connector)}
            for message_id in dict.fromkeys(message_ids)
        ]
        records = (delivery_from_item(item) for item in self.table.batch_get(keys, consistent=consistent))
        return {record.messageId: record for record in records}

    def batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The items at ``keys`` (any number)."""
        return self.table.batch_get(keys)

    def save_deliveries(
        self, records: Sequence[DeliveryRecord], *, replace_done: bool = False
    ) -> dict[str, DeliveryRecord]:
        """Record these outcomes. SQS and EventBridge deliver at least once, so two copies of a message
        can be delivered at the same moment: a PENDING or FAILED outcome does not replace a delivery
        the other copy has recorded DELIVERED or SKIPPED meanwhile, which comes back as it stands.
        ``replace_done``: a provider's later verdict, which does replace it."""
        now = utc_now()
        done = [r for r in records if replace_done or r.status in DONE]
        undone = [r for r in records if not (replace_done or r.status in DONE)]
        self.batch_put([delivery_to_item(r, epoch_after(now, self._retention.days_for(r.status))) for r in done])
        standing = self._map(lambda record: self._put_unless_done(record, now), undone)
        kept = {record.messageId: found for record, found in zip(undone, standing, strict=True) if found is not None}
        failed = [r.messageId for r in records if r.status is DeliveryStatus.FAILED and r.messageId not in kept]
        keep_until = epoch_after(now, self._retention.failed_days)
        self._map(lambda message_id: self._keep_message_until(message_id, keep_until), failed)
        return kept

    def _put_unless_done(self, record: DeliveryRecord, now: datetime) -> DeliveryRecord | None:
        """Write ``record`` unless the delivery reads DELIVERED or SKIPPED; then that record."""
        standing = self._put_delivery(
            record,
            now,
            ConditionExpression="attribute_not_exists(pk) OR (#status <> :delivered AND #status <> :skipped)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":delivered": _s(DeliveryStatus.DELIVERED),
                ":skipped": _s(DeliveryStatus.SKIPPED),
            },
        )
        return None if standing is None else delivery_from_item(standing)

    def put_delivery_if_unchanged(self, record: DeliveryRecord, previous: DeliveryRecord | None) -> bool:
        """Write ``record`` only if the delivery is still what ``previous`` was when read (None: that
        there is none; else a PENDING or FAILED one, which the status index holds and so carries its time
        in ``gsiStatusSk``); False when it changed meanwhile (a connector or a replay got to it)."""
        if previous is not None and previous.status in DONE:
            raise ValueError("a delivered or skipped delivery is final: nothing replaces it on a condition")
        now = utc_now()
        if previous is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            seen = delivery_to_item(previous, 0)
            condition = {
                "ConditionExpression": "#status = :status AND gsiStatusSk = :sk AND "
                + ("replayRunId = :run" if previous.replayRunId else "attribute_not_exists(replayRunId)"),
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {
                    ":status": seen["status"],
                    ":sk": seen["gsiStatusSk"],
                    **({":run": seen["replayRunId"]} if previous.replayRunId else {}),
                },
            }
        if self._put_delivery(record, now, **condition) is not None:
            return False
        if record.status is DeliveryStatus.FAILED:
            self._keep_message_until(record.messageId, epoch_after(now, self._retention.failed_days))
        return True

    def _put_delivery(self, record: DeliveryRecord, now: datetime, **condition: Any) -> dict[str, Any] | None:
        """Put ``record`` on ``condition``: None when written, else the item that stood in its way
        (empty only for a condition that can fail with no item there)."""
        from botocore.exceptions import ClientError

        item = delivery_to_item(record, epoch_after(now, self._retention.days_for(record.status)))
        try:
            self._call("put_item", Item=item, ReturnValuesOnConditionCheckFailure="ALL_OLD", **condition)
        except ClientError as error:  # ConditionalCheckFailed: _call re-raises only that one
            return dict(error.response.get("Item", {}))
        return None

    def _keep_message_until(self, message_id: str, expires_at: int) -> None:
        """A failure is kept longer than a delivery, and so is the message it is replayed from."""
        from botocore.exceptions import ClientError

        # No message item (expired), or one already kept long enough: nothing to do.
        with contextlib.suppress(ClientError):
            self._call(
                "update_item",
                TableName=self._table_name,
                Key={"pk": _s(message_pk(message_id)), "sk": _s(MESSAGE_SK)},
                UpdateExpression="SET expiresAt = :until",
                ConditionExpression="attribute_exists(pk) AND expiresAt < :until",
                ExpressionAttributeValues={":until": _n(expires_at)},
            )

    def batch_put(self, items: Sequence[dict[str, Any]]) -> None:
        """Put ``items`` (any number)."""
        self.table.batch_put(items)


def _now_iso() -> str:
    return iso(utc_now())
