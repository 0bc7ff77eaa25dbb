"""Which messages a coalesced provider call carried, per customer, for the provider's later
per-customer results (a callback) to be traced back to the messages they concern; and whether those
results came, so that results that never arrive are noticed instead of counting as success.

One item per call: pk ``CALL#<connector>#<callId>``, sk ``CALL``, with
  docZ       zlib-compressed JSON ``{customerId: {messageId: [fields]}}`` (``doc``, the same uncompressed,
             in items written before it was compressed): a thousand customers' message ids and field
             names are tens of KB, written to the table and its index alike, compressed about 3x
  calledAt / dueAt (when results count as overdue) / resultsAt / overdueAt
  results    the raw body the provider posted (kept as received, readable or not), ``readable``
and, while results are awaited, the keys of the byConnectorStatus index: ``CALLS#<connector>#AWAITING``,
``<dueAt>#<callId>``, so that a scheduled check finds the overdue ones with one query. Kept as long as
a callback URL can be valid (seven days).
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from db.records import iso
from db.table import Table, is_conditional_failure
from dig_contracts.callbacks import MAX_VALIDITY_SECONDS

RETENTION_SECONDS = MAX_VALIDITY_SECONDS  # results may come as long as a callback URL is valid
MAX_RESULTS_KEPT_BYTES = 100_000  # a DynamoDB item holds 400 KB; results beyond this are cut, and say so
STATUS_INDEX = "byConnectorStatus"
Carried = Mapping[str, Mapping[str, list[str]]]  # customer -> message -> fields


def awaiting_partition(connector: str) -> str:
    return f"CALLS#{connector}#AWAITING"


def overdue_partition(connector: str) -> str:
    return f"CALLS#{connector}#OVERDUE"


@dataclass(frozen=True)
class CallStatus:
    call_id: str
    called_at: str | None
    due_at: str | None
    results_at: str | None = None
    readable: bool | None = None
    overdue_at: str | None = None

    def describe(self) -> str:
        if self.results_at:
            how = "" if self.readable else " (unreadable: kept with the call's log)"
            return f"results received {self.results_at}{how}"
        if self.overdue_at:
            return f"results OVERDUE: due {self.due_at}, none received (flagged {self.overdue_at})"
        return f"results awaited until {self.due_at}"


class CallNotRecorded(Exception):
    """Results for a call the log does not hold (yet): the connector records a call just after the provider
    answers it, so results can only overtake that write by milliseconds, or follow an invocation that stopped
    between the two. Raised so that the results go back to the queue and are applied once the call is there
    (or end in the dead-letter queue), not kept on an item the call's own record would then overwrite."""


class CallLog(Protocol):
    def record(self, connector: str, call_id: str, carried: Carried, *, due_in_seconds: int) -> None: ...

    def lookup(self, connector: str, call_id: str) -> dict[str, dict[str, list[str]]] | None: ...

    def keep_results(
        self, connector: str, call_id: str, payload: Any, *, readable: bool, receipt: str | None = None
    ) -> bool:
        """Keep a call's results; False (nothing kept) when results from another receipt (another
        post to the callback URL) were kept before: a call's results are applied once. Raises
        CallNotRecorded when the log holds no such call."""
        ...

    def flag_overdue(self, connector: str) -> list[str]:
        """Mark the calls whose results are overdue, each once; their ids."""
        ...

    def status(self, connector: str, call_id: str) -> CallStatus | None: ...


class DynamoCallLog:
    def __init__(self, table: Table, clock: Any = time.time) -> None:
        self._table = table
        self._clock = clock

    @staticmethod
    def _key(connector: str, call_id: str) -> dict[str, dict[str, str]]:
        return {"pk": {"S": f"CALL#{connector}#{call_id}"}, "sk": {"S": "CALL"}}

    def _now(self, later_seconds: float = 0) -> str:
        return iso(datetime.fromtimestamp(self._clock() + later_seconds, UTC))

    def record(self, connector: str, call_id: str, carried: Carried, *, due_in_seconds: int) -> None:
        now = self._clock()
        due = self._now(due_in_seconds)
        self._table.call(
            "put_item",
            Item={
                **self._key(connector, call_id),
                "docZ": {"B": zlib.compress(json.dumps(carried, separators=(",", ":")).encode(), 6)},
                "calledAt": {"S": self._now()},
                "dueAt": {"S": due},
                "gsiStatusPk": {"S": awaiting_partition(connector)},
                "gsiStatusSk": {"S": f"{due}#{call_id}"},
                "expiresAt": {"N": str(int(now) + RETENTION_SECONDS)},
            },
        )

    def lookup(self, connector: str, call_id: str) -> dict[str, dict[str, list[str]]] | None:
        item = self._table.call("get_item", Key=self._key(connector, call_id)).get("Item")
        if item and "docZ" in item:
            return json.loads(zlib.decompress(item["docZ"]["B"]))
        return json.loads(item["doc"]["S"]) if item and "doc" in item else None

    def keep_results(
        self, connector: str, call_id: str, payload: Any, *, readable: bool, receipt: str | None = None
    ) -> bool:
        from botocore.exceptions import ClientError

        text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        if len(text) > MAX_RESULTS_KEPT_BYTES:
            text = text[:MAX_RESULTS_KEPT_BYTES] + f"... [cut: {len(text)} characters received]"
        values: dict[str, Any] = {
            ":results": {"S": text},
            ":now": {"S": self._now()},
            ":readable": {"BOOL": readable},
            ":expires": {"N": str(int(self._clock()) + RETENTION_SECONDS)},
        }
        condition = "attribute_exists(pk)"
        if receipt is not None:  # the same receipt again is SQS redelivering it: applied again, harmlessly
            values[":receipt"] = {"S": receipt}
            condition += " AND (attribute_not_exists(resultsReceipt) OR resultsReceipt = :receipt)"
        key = self._key(connector, call_id)
        try:
            self._table.call(
                "update_item",
                Key=key,
                UpdateExpression="SET results = :results, resultsAt = :now, readable = :readable, "
                + ("resultsReceipt = :receipt, " if receipt is not None else "")
                + "expiresAt = if_not_exists(expiresAt, :expires) REMOVE gsiStatusPk, gsiStatusSk",
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            if "Item" not in self._table.call("get_item", Key=key, ConsistentRead=True, ProjectionExpression="pk"):
                raise CallNotRecorded(f"{connector} call {call_id} is not in the call log") from None
            return False
        return True

    def flag_overdue(self, connector: str) -> list[str]:
        from botocore.exceptions import ClientError

        now = self._now()
        flagged: list[str] = []
        kwargs: dict[str, Any] = {
            "IndexName": STATUS_INDEX,
            "KeyConditionExpression": "gsiStatusPk = :pk AND gsiStatusSk < :now",
            "ExpressionAttributeValues": {":pk": {"S": awaiting_partition(connector)}, ":now": {"S": now}},
        }
        while True:
            answer = self._table.call("query", **kwargs)
            for item in answer.get("Items", []):
                call_id = item["pk"]["S"].removeprefix(f"CALL#{connector}#")
                try:  # results may have arrived since the index was read
                    self._table.call(
                        "update_item",
                        Key=self._key(connector, call_id),
                        UpdateExpression="SET gsiStatusPk = :overdue, overdueAt = :now",
                        ConditionExpression="gsiStatusPk = :awaiting",
                        ExpressionAttributeValues={
                            ":overdue": {"S": overdue_partition(connector)},
                            ":awaiting": {"S": awaiting_partition(connector)},
                            ":now": {"S": now},
                        },
                    )
                except ClientError as error:
                    if not is_conditional_failure(error):
                        raise
                    continue
                flagged.append(call_id)
            if "LastEvaluatedKey" not in answer:
                return flagged
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def status(self, connector: str, call_id: str) -> CallStatus | None:
        item = self._table.call("get_item", Key=self._key(connector, call_id)).get("Item")
        if not item:
            return None

        def text(name: str) -> str | None:
            return item[name]["S"] if name in item else None

        return CallStatus(
            call_id=call_id,
            called_at=text("calledAt"),
            due_at=text("dueAt"),
            results_at=text("resultsAt"),
            readable=item["readable"]["BOOL"] if "readable" in item else None,
            overdue_at=text("overdueAt"),
        )
