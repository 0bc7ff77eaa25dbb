"""Where a connector's poll of a provider's feed has read to: one item per (connector, job), pk
``POLL#<connector>#<job>``, sk ``CURSOR``, in the audit table. The poll reads again from a little
before it (an overlap), so a day is never missed; the inbound events' ids make what it reads twice
one event (dig_contracts.inbound)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from db.records import iso, utc_now

if TYPE_CHECKING:
    from db.table import Table

CURSOR_SK = "CURSOR"


def cursor_pk(connector: str, job: str) -> str:
    return f"POLL#{connector}#{job}"


class PollCursors(Protocol):
    def read(self, connector: str, job: str) -> str | None: ...

    def advance(self, connector: str, job: str, position: str) -> None:
        """Keep ``position`` as where the poll has read to (it never moves back)."""
        ...


class DynamoPollCursors:
    def __init__(self, table: Table) -> None:
        self._table = table

    def read(self, connector: str, job: str) -> str | None:
        answer = self._table.call(
            "get_item",
            Key={"pk": {"S": cursor_pk(connector, job)}, "sk": {"S": CURSOR_SK}},
            ConsistentRead=True,
        )
        item = answer.get("Item")
        return item["position"]["S"] if item else None

    def advance(self, connector: str, job: str, position: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self._table.call(
                "put_item",
                Item={
                    "pk": {"S": cursor_pk(connector, job)},
                    "sk": {"S": CURSOR_SK},
                    "position": {"S": position},
                    "advancedAt": {"S": iso(utc_now())},
                },
                ConditionExpression="attribute_not_exists(#p) OR #p <= :position",
                ExpressionAttributeNames={"#p": "position"},
                ExpressionAttributeValues={":position": {"S": position}},
            )
        except ClientError:  # Table.call re-raises only the conditional refusal: a later position stands
            return
