"""A connector's daily feed in the audit table: the extracts that arrived for each day, each run that
built a day, and whether the day is complete; and the members forgotten, whom no feed sends again.

Items (pk, sk):
- ``FEED#<connector>#<day>``, ``INPUT#<fileId>``: an extract that arrived for the day (from its FILE_READY).
- ``FEED#<connector>#<day>``, ``RUN#<startedAt>``: one build of the day, what it read and wrote.
- ``FEED#<connector>#<day>``, ``DAY``: the day's state: COMPLETE once its completion marker is written.
- ``ERASED``, ``MEMBER#<memberId>``: a member forgotten with `dig member forget`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from db.records import epoch_after, iso, utc_now
from db.table import Table, from_item, is_conditional_failure, to_item

FEED_RETENTION_DAYS = 90
ERASED_PK = "ERASED"
ERASURE_RETENTION_DAYS = 800  # longer than any extract could still carry the member


def feed_pk(connector: str, day: str) -> str:
    return f"FEED#{connector}#{day}"


@dataclass(frozen=True)
class FeedInput:
    fileId: str
    name: str
    completedAt: str
    bucket: str
    parts: list[str]
    rows: int


@dataclass
class FeedRun:
    day: str
    startedAt: str
    trigger: str  # "schedule" or "operator"
    full: bool
    status: str = "RUNNING"  # RUNNING, COMPLETE, FAILED
    extracts: list[str] = field(default_factory=list)
    missingExtracts: list[str] = field(default_factory=list)
    considered: dict[str, int] = field(default_factory=dict)  # data set -> rows read
    sent: dict[str, int] = field(default_factory=dict)  # data set -> rows written
    merged: dict[str, int] = field(default_factory=dict)  # data set -> rows its Snowflake MERGE changed
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)  # data set -> reason -> rows
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    error: str | None = None


def feed_day(moment: datetime, readiness_utc: str, lead_minutes: int) -> str:
    """The feed day an extract completed at ``moment`` belongs to: the first day whose build, due
    ``lead_minutes`` before that day's readiness time, is still to come."""
    due_offset = _offset(readiness_utc) - timedelta(minutes=lead_minutes)
    return ((moment.astimezone(UTC) - due_offset).date() + timedelta(days=1)).isoformat()


def _offset(readiness_utc: str) -> timedelta:
    hours, minutes = map(int, readiness_utc.split(":"))
    return timedelta(hours=hours, minutes=minutes)


def build_due(day: str, readiness_utc: str, lead_minutes: int) -> datetime:
    """When ``day``'s build is due: ``lead_minutes`` before its readiness time."""
    start = datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=UTC)
    return start + _offset(readiness_utc) - timedelta(minutes=lead_minutes)


def readiness(day: str, readiness_utc: str) -> datetime:
    return build_due(day, readiness_utc, 0)


class FeedStore(Protocol):
    """A connector's batch-feed records, as its feed job uses them."""

    def record_input(self, day: str, found: FeedInput) -> bool: ...
    def inputs(self, day: str) -> list[FeedInput]: ...
    def save_run(self, run: FeedRun) -> None: ...
    def complete(self, day: str) -> bool: ...
    def mark_complete(self, day: str, manifest_key: str) -> None: ...
    def forgotten(self) -> set[str]: ...


class DynamoFeedStore:
    def __init__(self, table: Table, connector: str) -> None:
        self._table, self._connector = table, connector

    def record_input(self, day: str, found: FeedInput) -> bool:
        """Once per fileId (FILE_READY comes at least once); False when it was recorded already."""
        item = {
            "pk": feed_pk(self._connector, day),
            "sk": f"INPUT#{found.fileId}",
            **asdict(found),
            "expiresAt": epoch_after(utc_now(), FEED_RETENTION_DAYS),
        }
        from botocore.exceptions import ClientError

        try:
            self._table.call("put_item", Item=to_item(item), ConditionExpression="attribute_not_exists(pk)")
        except ClientError as error:
            if is_conditional_failure(error):
                return False
            raise
        return True

    def _day_items(self, day: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": to_item({":pk": feed_pk(self._connector, day)}),
            "ConsistentRead": True,
        }
        while True:
            answer = self._table.call("query", **request)
            items.extend(from_item(i) for i in answer.get("Items", []))
            if "LastEvaluatedKey" not in answer:
                return items
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def inputs(self, day: str) -> list[FeedInput]:
        fields = FeedInput.__dataclass_fields__
        return [
            FeedInput(**{k: v for k, v in i.items() if k in fields})
            for i in self._day_items(day)
            if str(i["sk"]).startswith("INPUT#")
        ]

    def runs(self, day: str) -> list[FeedRun]:
        fields = FeedRun.__dataclass_fields__
        return [
            FeedRun(**{k: v for k, v in i.items() if k in fields})
            for i in self._day_items(day)
            if str(i["sk"]).startswith("RUN#")
        ]

    def save_run(self, run: FeedRun) -> None:
        item = {
            "pk": feed_pk(self._connector, run.day),
            "sk": f"RUN#{run.startedAt}",
            **asdict(run),
            "expiresAt": epoch_after(utc_now(), FEED_RETENTION_DAYS),
        }
        self._table.call("put_item", Item=to_item({k: v for k, v in item.items() if v is not None}))

    def complete(self, day: str) -> bool:
        answer = self._table.call(
            "get_item", Key=to_item({"pk": feed_pk(self._connector, day), "sk": "DAY"}), ConsistentRead=True
        )
        return bool(answer.get("Item")) and from_item(answer["Item"]).get("status") == "COMPLETE"

    def mark_complete(self, day: str, manifest_key: str) -> None:
        item = {
            "pk": feed_pk(self._connector, day),
            "sk": "DAY",
            "status": "COMPLETE",
            "manifest": manifest_key,
            "completedAt": iso(utc_now()),
            "expiresAt": epoch_after(utc_now(), FEED_RETENTION_DAYS),
        }
        self._table.call("put_item", Item=to_item(item))

    def forgotten(self) -> set[str]:
        """Every member forgotten (a handful: read whole, once per build)."""
        members: set[str] = set()
        request: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": to_item({":pk": ERASED_PK}),
            "ProjectionExpression": "sk",
        }
        while True:
            answer = self._table.call("query", **request)
            members.update(i["sk"]["S"].removeprefix("MEMBER#") for i in answer.get("Items", []))
            if "LastEvaluatedKey" not in answer:
                return members
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


def record_erasure(table: Table, member_id: str) -> None:
    """Remember that ``member_id`` was forgotten (an UpdateItem: operators hold no PutItem)."""
    table.call(
        "update_item",
        Key=to_item({"pk": ERASED_PK, "sk": f"MEMBER#{member_id}"}),
        UpdateExpression="SET erasedAt = :now, expiresAt = :expires",
        # Conditioned like every write an operator makes: an erasure marker, or nothing.
        ConditionExpression="attribute_not_exists(pk) OR attribute_exists(erasedAt)",
        ExpressionAttributeValues=to_item(
            {":now": iso(utc_now()), ":expires": epoch_after(utc_now(), ERASURE_RETENTION_DAYS)}
        ),
    )
