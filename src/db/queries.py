"""Operators' queries on the audit table: each served by a key or an index; one bounded scan.

connector + status + time   index byConnectorStatus, one partition per day (PENDING and FAILED)
member + time               index byMember (message items)
event type + time           index byEventType, one partition per day (db.audit.TYPE_INDEXED);
                            any other type: a scan of at most ``scan_limit`` items, which says so
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from db.audit import (
    DELIVERY_SK_PREFIX,
    MESSAGE_SK,
    TYPE_INDEXED,
    DynamoAuditStore,
    delivery_from_item,
    message_id_from_pk,
    status_partition,
)
from db.records import DeliveryRecord, DeliveryStatus, iso
from db.replay import runs_partition


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime

    def days(self) -> list[str]:
        """The day partitions the window touches, newest first."""
        days, day = [], self.until.date()
        while day >= self.since.date():
            days.append(day.isoformat())
            day -= timedelta(days=1)
        return days


@dataclass(frozen=True)
class MessageRow:
    """One line of `dig audit list`: a message, and its delivery to one connector when known."""

    message_id: str
    time: str
    event_type: str
    member_id: str
    delivery: DeliveryRecord | None = None
    connector: str | None = None


@dataclass
class ScannedRows:
    """What a bounded scan found, how many items it read, and whether it read the whole table."""

    rows: list[MessageRow] = field(default_factory=list)
    items: int = 0
    complete: bool = False


class AuditQueries:
    def __init__(self, store: DynamoAuditStore) -> None:
        self._store = store
        self._client = store.client
        self._table_name = store.table_name

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        request = {"TableName": self._table_name, **kwargs}
        while True:
            answer = self._client.query(**request)
            yield from answer.get("Items", [])
            if "LastEvaluatedKey" not in answer:
                return
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def deliveries_by_status(
        self, connector: str, status: DeliveryStatus, window: Window, newest_first: bool = True
    ) -> Iterator[DeliveryRecord]:
        days = window.days() if newest_first else list(reversed(window.days()))
        for day in days:
            for item in self._query(
                IndexName="byConnectorStatus",
                KeyConditionExpression="gsiStatusPk = :pk AND gsiStatusSk BETWEEN :since AND :until",
                ExpressionAttributeValues={
                    ":pk": {"S": status_partition(connector, status, day)},
                    ":since": {"S": iso(window.since)},
                    ":until": {"S": iso(window.until) + "~"},
                },
                ScanIndexForward=not newest_first,
            ):
                yield delivery_from_item(item)

    def count_deliveries(self, connector: str, status: DeliveryStatus, window: Window) -> int:
        """How many of a connector's deliveries stand at ``status``, last updated within ``window``."""
        total = 0
        for day in window.days():
            request: dict[str, Any] = {
                "TableName": self._table_name,
                "IndexName": "byConnectorStatus",
                "Select": "COUNT",
                "KeyConditionExpression": "gsiStatusPk = :pk AND gsiStatusSk BETWEEN :since AND :until",
                "ExpressionAttributeValues": {
                    ":pk": {"S": status_partition(connector, status, day)},
                    ":since": {"S": iso(window.since)},
                    ":until": {"S": iso(window.until) + "~"},
                },
            }
            while True:
                answer = self._client.query(**request)
                total += int(answer.get("Count", 0))
                if "LastEvaluatedKey" not in answer:
                    break
                request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return total

    def runs_since(self, connector: str, since: datetime) -> list[str]:
        """The replay runs of a connector started since then, newest first (db.replay indexes them)."""
        items = self._query(
            IndexName="byConnectorStatus",
            KeyConditionExpression="gsiStatusPk = :pk AND gsiStatusSk >= :since",
            ExpressionAttributeValues={":pk": {"S": runs_partition(connector)}, ":since": {"S": iso(since)}},
            ScanIndexForward=False,
        )
        return [item["pk"]["S"].removeprefix("RUN#") for item in items]

    def messages_by_member(self, member_id: str, window: Window) -> Iterator[MessageRow]:
        for item in self._query(
            IndexName="byMember",
            KeyConditionExpression="gsiMemberPk = :pk AND gsiMemberSk BETWEEN :since AND :until",
            ExpressionAttributeValues={
                ":pk": {"S": f"MEMBER#{member_id}"},
                ":since": {"S": iso(window.since)},
                ":until": {"S": iso(window.until) + "~"},
            },
            ScanIndexForward=False,
        ):
            yield _message_row(item)

    def messages_by_event_type(self, event_type: str, window: Window) -> Iterator[MessageRow]:
        """Messages of an indexed type (db.audit.TYPE_INDEXED), newest first."""
        if event_type not in TYPE_INDEXED:
            raise ValueError(f"{event_type} is not in the byEventType index: scan_messages_by_event_type")
        for day in window.days():
            for item in self._query(
                IndexName="byEventType",
                KeyConditionExpression="gsiTypePk = :pk AND gsiTypeSk BETWEEN :since AND :until",
                ExpressionAttributeValues={
                    ":pk": {"S": f"TYPE#{event_type}#{day}"},
                    ":since": {"S": iso(window.since)},
                    ":until": {"S": iso(window.until) + "~"},
                },
                ScanIndexForward=False,
            ):
                yield _message_row(item)

    def scan_messages_by_event_type(self, event_type: str, window: Window, scan_limit: int) -> ScannedRows:
        """Messages of a type the index does not hold: a scan of at most ``scan_limit`` items of the table
        (every item read is billed: a read unit per 4 KB), in the table's order, not by time."""
        scanned = ScannedRows()
        request: dict[str, Any] = {
            "TableName": self._table_name,
            "FilterExpression": "sk = :message AND eventType = :type AND receivedAt BETWEEN :since AND :until",
            "ExpressionAttributeValues": {
                ":message": {"S": MESSAGE_SK},
                ":type": {"S": event_type},
                ":since": {"S": iso(window.since)},
                ":until": {"S": iso(window.until) + "~"},
            },
            "ProjectionExpression": "pk, eventType, memberId, receivedAt",
        }
        while scanned.items < scan_limit:
            request["Limit"] = min(1000, scan_limit - scanned.items)
            answer = self._client.scan(**request)
            scanned.items += int(answer.get("ScannedCount", 0))
            scanned.rows.extend(_message_row(item) for item in answer.get("Items", []))
            if "LastEvaluatedKey" not in answer:
                scanned.complete = True
                break
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        scanned.rows.sort(key=lambda row: row.time, reverse=True)
        return scanned

    def with_deliveries(self, rows: Iterator[MessageRow], connector: str | None) -> Iterator[MessageRow]:
        """Rows with each message's delivery to ``connector`` (or to every connector)."""
        for row in rows:
            view = self._store.get_message(row.message_id)
            deliveries = [d for d in (view.deliveries if view else []) if connector in (None, d.connector)]
            if not deliveries:
                yield row
            for delivery in deliveries:
                yield MessageRow(row.message_id, row.time, row.event_type, row.member_id, delivery, delivery.connector)


def _message_row(item: dict[str, Any]) -> MessageRow:
    return MessageRow(
        message_id=message_id_from_pk(item["pk"]["S"]),
        time=item["receivedAt"]["S"],
        event_type=item["eventType"]["S"],
        member_id=item["memberId"]["S"],
    )


def delivery_row(delivery: DeliveryRecord) -> MessageRow:
    return MessageRow(
        message_id=delivery.messageId,
        time=delivery.updatedAt,
        event_type=delivery.eventType,
        member_id=delivery.memberId,
        delivery=delivery,
        connector=delivery.connector,
    )


__all__ = ["DELIVERY_SK_PREFIX", "AuditQueries", "MessageRow", "ScannedRows", "Window", "delivery_row"]
