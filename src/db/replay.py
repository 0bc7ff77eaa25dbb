"""Replay runs in the audit table, and the claim that makes a replay safe to run twice.

  pk            sk               what
  RUN#<runId>   RUN              who, when, connector, filter, counts, state; in the byConnectorStatus
                                 index as RUNS#<connector>, <startedAt>
  RUN#<runId>   MSG#<messageId>  a message this run put on the connector's queue

Before a message goes on the queue its delivery is *claimed*: a conditional update sets it PENDING
and tags it with the run. Without --force only a FAILED delivery can be claimed, so a second run
with the same filter finds nothing left to send; with --force anything not in flight can, once per
run. A claim that could not be followed by its enqueue is released back to FAILED.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from db.audit import DELIVERY_SK_PREFIX, message_pk, status_partition
from db.records import DeliveryStatus, iso, utc_now
from db.table import Table, is_conditional_failure

RUN_RETENTION_SECONDS = 180 * 86_400


def runs_partition(connector: str) -> str:
    """A connector's runs in the byConnectorStatus index, by start time (`dig status` finds them)."""
    return f"RUNS#{connector}"


class Claim(StrEnum):
    CLAIMED = "claimed"
    ALREADY_DELIVERED = "already delivered"
    IN_FLIGHT = "in flight"
    ALREADY_IN_RUN = "already replayed by this run"
    NOT_REPLAYABLE = "not replayable"


@dataclass
class RunRecord:
    runId: str
    connector: str
    filter: dict[str, Any]
    force: bool
    startedBy: str
    startedAt: str
    state: str = "RUNNING"  # RUNNING | COMPLETED
    counts: dict[str, int] = field(default_factory=dict)


class ReplayStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    # --- runs --------------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord | None:
        item = self._table.call(
            "get_item",
            Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RUN"}},
            ConsistentRead=True,
        ).get("Item")
        if not item:
            return None
        return RunRecord(**json.loads(item["doc"]["S"]))

    # Operators write the audit table only through conditioned UpdateItems (they hold no PutItem or
    # BatchWriteItem): a run item is written only as the same run (its start), an enqueued mark once.

    def put_run(self, run: RunRecord) -> None:
        self._table.call(
            "update_item",
            Key={"pk": {"S": f"RUN#{run.runId}"}, "sk": {"S": "RUN"}},
            UpdateExpression="SET doc = :doc, gsiStatusPk = :gpk, gsiStatusSk = :started, expiresAt = :expires",
            ConditionExpression="attribute_not_exists(pk) OR gsiStatusSk = :started",
            ExpressionAttributeValues={
                ":doc": {"S": json.dumps(run.__dict__, sort_keys=True)},
                ":gpk": {"S": runs_partition(run.connector)},
                ":started": {"S": run.startedAt},
                ":expires": {"N": str(int(utc_now().timestamp()) + RUN_RETENTION_SECONDS)},
            },
        )

    def record_enqueued(self, run_id: str, message_ids: list[str]) -> None:
        from botocore.exceptions import ClientError

        now = iso(utc_now())
        expires = str(int(utc_now().timestamp()) + RUN_RETENTION_SECONDS)
        for message_id in message_ids:
            try:
                self._table.call(
                    "update_item",
                    Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": f"MSG#{message_id}"}},
                    UpdateExpression="SET #at = :now, expiresAt = :expires",
                    ConditionExpression="attribute_not_exists(pk)",
                    ExpressionAttributeNames={"#at": "at"},
                    ExpressionAttributeValues={":now": {"S": now}, ":expires": {"N": expires}},
                )
            except ClientError as error:
                if not is_conditional_failure(error):
                    raise

    def run_messages(self, run_id: str) -> list[str]:
        ids: list[str] = []
        request: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": f"RUN#{run_id}"}, ":prefix": {"S": "MSG#"}},
        }
        while True:
            answer = self._table.call("query", **request)
            ids.extend(item["sk"]["S"].removeprefix("MSG#") for item in answer.get("Items", []))
            if "LastEvaluatedKey" not in answer:
                return ids
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    # --- claims ------------------------------------------------------------------------------

    def claim(self, connector: str, message_id: str, run_id: str, *, force: bool, exists: bool) -> Claim:
        from botocore.exceptions import ClientError

        now = iso(utc_now())
        key = {"pk": {"S": message_pk(message_id)}, "sk": {"S": DELIVERY_SK_PREFIX + connector}}
        if not exists:
            # The connector never recorded this message (its rule target failed, say): start its record.
            doc = {"updatedAt": now, "eventType": "", "memberId": "", "attemptCount": 0, "attempts": []}
            try:
                self._table.call(
                    "update_item",
                    Key=key,
                    UpdateExpression="SET #status = :pending, doc = :doc, replayRunId = :run, gsiStatusPk = :gpk, "
                    "gsiStatusSk = :gsk, expiresAt = :expires",
                    ConditionExpression="attribute_not_exists(pk)",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={
                        ":pending": {"S": DeliveryStatus.PENDING},
                        ":doc": {"S": json.dumps(doc)},
                        ":run": {"S": run_id},
                        ":gpk": {"S": status_partition(connector, DeliveryStatus.PENDING, now[:10])},
                        ":gsk": {"S": f"{now}#{message_id}"},
                        # Until the connector records the delivery (with its own retention).
                        ":expires": {"N": str(int(utc_now().timestamp()) + RUN_RETENTION_SECONDS)},
                    },
                )
                return Claim.CLAIMED
            except ClientError as error:
                if is_conditional_failure(error):
                    return Claim.IN_FLIGHT
                raise
        if force:
            condition = "#status <> :pending AND (attribute_not_exists(replayRunId) OR replayRunId <> :run)"
        else:
            condition = "#status = :failed"
        try:
            self._table.call(
                "update_item",
                Key=key,
                UpdateExpression="SET #status = :pending, replayRunId = :run, gsiStatusPk = :gpk, gsiStatusSk = :gsk",
                ConditionExpression=f"attribute_exists(pk) AND {condition}",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":pending": {"S": DeliveryStatus.PENDING},
                    ":run": {"S": run_id},
                    ":gpk": {"S": status_partition(connector, DeliveryStatus.PENDING, now[:10])},
                    ":gsk": {"S": f"{now}#{message_id}"},
                    **({":failed": {"S": DeliveryStatus.FAILED}} if not force else {}),
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return Claim.CLAIMED
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            old = error.response.get("Item") or {}
            status = old.get("status", {}).get("S")
            if old.get("replayRunId", {}).get("S") == run_id:
                return Claim.ALREADY_IN_RUN
            if status == DeliveryStatus.DELIVERED:
                return Claim.ALREADY_DELIVERED
            if status == DeliveryStatus.PENDING:
                return Claim.IN_FLIGHT
            return Claim.NOT_REPLAYABLE

    def release(self, connector: str, message_id: str, run_id: str) -> None:
        """Undo this run's claim of a message that could not be put on the queue: FAILED again, replayable."""
        from botocore.exceptions import ClientError

        now = iso(utc_now())
        try:
            self._table.call(
                "update_item",
                Key={"pk": {"S": message_pk(message_id)}, "sk": {"S": DELIVERY_SK_PREFIX + connector}},
                UpdateExpression="SET #status = :failed, gsiStatusPk = :gpk, gsiStatusSk = :gsk REMOVE replayRunId",
                ConditionExpression="#status = :pending AND replayRunId = :run",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":failed": {"S": DeliveryStatus.FAILED},
                    ":pending": {"S": DeliveryStatus.PENDING},
                    ":run": {"S": run_id},
                    ":gpk": {"S": status_partition(connector, DeliveryStatus.FAILED, now[:10])},
                    ":gsk": {"S": f"{now}#{message_id}"},
                },
            )
        except ClientError as error:  # the connector took it meanwhile: its record stands
            if not is_conditional_failure(error):
                raise
