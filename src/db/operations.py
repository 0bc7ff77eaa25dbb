"""Provider calls that must happen once per message, whichever copy of the message gets there first.

EventBridge and SQS deliver at least once, and a connector runs several invocations at a time, so two
copies of one message can be delivered at the same moment: both find it not yet delivered. For
idempotent calls that costs nothing; for a call the provider does not deduplicate (an Optimove
real-time event starts its campaign, a welcome mail, every time) the copies take turns:

  pk MSG#<messageId>   sk OP#<connector>#<operation>   state BUSY | DONE, owner, leaseUntil

A copy claims the operation (a conditional write) before calling, marks it DONE after a success, and
releases it after a failure so that a retry can call again. A claim left by an invocation that died
mid-call lapses after its lease.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from db.audit import message_pk
from db.table import is_conditional_failure

if TYPE_CHECKING:
    from db.table import Table

RETENTION_SECONDS = 180 * 86_400  # as long as a replay of the message can come (replay runs are kept as long)


class OperationClaim(StrEnum):
    MINE = "MINE"  # call now, then done() or release()
    DONE = "DONE"  # another copy of the message made the call: do not make it again
    BUSY = "BUSY"  # another copy is making it right now: try again later


class OperationLedger(Protocol):
    def claim(self, connector: str, message_id: str, operation: str, owner: str) -> OperationClaim: ...

    def done(self, connector: str, message_id: str, operation: str) -> None: ...

    def release(self, connector: str, message_id: str, operation: str, owner: str) -> None: ...


class DynamoOperationLedger:
    def __init__(self, table: Table, lease_seconds: int = 120, clock: Any = time.time) -> None:
        self._table = table
        self._lease = lease_seconds
        self._clock = clock

    @staticmethod
    def _key(connector: str, message_id: str, operation: str) -> dict[str, Any]:
        return {"pk": {"S": message_pk(message_id)}, "sk": {"S": f"OP#{connector}#{operation}"}}

    def claim(self, connector: str, message_id: str, operation: str, owner: str) -> OperationClaim:
        from botocore.exceptions import ClientError

        now = int(self._clock())
        try:
            self._table.call(
                "update_item",
                Key=self._key(connector, message_id, operation),
                UpdateExpression="SET #state = :busy, #owner = :owner, leaseUntil = :until, expiresAt = :expires",
                ConditionExpression="attribute_not_exists(pk) OR (#state = :busy AND leaseUntil < :now)",
                ExpressionAttributeNames={"#state": "state", "#owner": "owner"},
                ExpressionAttributeValues={
                    ":busy": {"S": OperationClaim.BUSY},
                    ":owner": {"S": owner},
                    ":until": {"N": str(now + self._lease)},
                    ":now": {"N": str(now)},
                    ":expires": {"N": str(now + RETENTION_SECONDS)},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return OperationClaim.MINE
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            state = (error.response.get("Item") or {}).get("state", {}).get("S")
            return OperationClaim.DONE if state == OperationClaim.DONE else OperationClaim.BUSY

    def done(self, connector: str, message_id: str, operation: str) -> None:
        self._table.call(
            "update_item",
            Key=self._key(connector, message_id, operation),
            UpdateExpression="SET #state = :done REMOVE leaseUntil",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":done": {"S": OperationClaim.DONE}},
        )

    def release(self, connector: str, message_id: str, operation: str, owner: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self._table.call(
                "update_item",
                Key=self._key(connector, message_id, operation),
                UpdateExpression="SET leaseUntil = :lapsed",
                ConditionExpression="#owner = :owner AND #state = :busy",
                ExpressionAttributeNames={"#owner": "owner", "#state": "state"},
                ExpressionAttributeValues={
                    ":lapsed": {"N": "0"},
                    ":owner": {"S": owner},
                    ":busy": {"S": OperationClaim.BUSY},
                },
            )
        except ClientError as error:  # the lease had lapsed and another copy holds it now: theirs
            if not is_conditional_failure(error):
                raise
