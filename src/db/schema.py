"""The DynamoDB tables, defined once. The CDK app and the local stack both build from these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

KeyType = Literal["S", "N", "B"]


@dataclass(frozen=True)
class Key:
    name: str
    type: KeyType = "S"


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: Key
    sort_key: Key
    # "ALL", "KEYS_ONLY", or the non-key attributes to project.
    projection: Literal["ALL", "KEYS_ONLY"] | tuple[str, ...] = "ALL"


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    partition_key: Key
    sort_key: Key
    ttl_attribute: str
    indexes: tuple[Index, ...] = field(default_factory=tuple)

    def create_table_request(self, table_name: str) -> dict[str, Any]:
        """Keyword arguments for DynamoDB CreateTable (on-demand), as the local stack uses them."""
        keys = {self.partition_key, self.sort_key}
        for index in self.indexes:
            keys |= {index.partition_key, index.sort_key}
        request: dict[str, Any] = {
            "TableName": table_name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [
                {"AttributeName": k.name, "AttributeType": k.type} for k in sorted(keys, key=lambda k: k.name)
            ],
            "KeySchema": _key_schema(self.partition_key, self.sort_key),
        }
        if self.indexes:
            request["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": index.name,
                    "KeySchema": _key_schema(index.partition_key, index.sort_key),
                    "Projection": _projection(index.projection),
                }
                for index in self.indexes
            ]
        return request


def _key_schema(partition_key: Key, sort_key: Key) -> list[dict[str, str]]:
    return [
        {"AttributeName": partition_key.name, "KeyType": "HASH"},
        {"AttributeName": sort_key.name, "KeyType": "RANGE"},
    ]


def _projection(projection: str | tuple[str, ...]) -> dict[str, Any]:
    if isinstance(projection, tuple):
        return {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(projection)}
    return {"ProjectionType": projection}


TTL_ATTRIBUTE = "expiresAt"
# The message attributes its index entries carry (db.queries.MessageRow).
MESSAGE_ROW = ("eventType", "memberId", "receivedAt")

# The audit table: one item per message, one per (message, connector) delivery, replay runs,
# and per-member delivery watermarks. Its access patterns are documented in db/audit.py.
AUDIT_TABLE = TableSpec(
    logical_id="AuditTable",
    partition_key=Key("pk"),
    sort_key=Key("sk"),
    ttl_attribute=TTL_ATTRIBUTE,
    indexes=(
        # What `dig audit list` shows of a message and `dig member forget` needs to find it; the rest
        # (the payload) is read from the item itself. A wider projection is written, and stored, again
        # with every message: the index entries were most of an event's audit bytes (issue #28).
        Index("byMember", Key("gsiMemberPk"), Key("gsiMemberSk"), MESSAGE_ROW),
        Index("byEventType", Key("gsiTypePk"), Key("gsiTypeSk"), MESSAGE_ROW),
        # Sparse: PENDING and FAILED deliveries, replay runs, awaited calls, files. A delivered or
        # skipped delivery leaves it (its count is the runtime's, db.counters).
        Index("byConnectorStatus", Key("gsiStatusPk"), Key("gsiStatusSk")),
    ),
)

# The configuration table: versioned connector configurations.
CONFIG_TABLE = TableSpec(
    logical_id="ConfigTable",
    partition_key=Key("pk"),
    sort_key=Key("sk"),
    ttl_attribute=TTL_ATTRIBUTE,
)


# The partition keys an operator's UpdateItem may touch (dig replay: runs and deliveries; dig member
# forget: messages, webhook receipts, contacts and their email lookups, per-connector state, the erasure marker). IAM's
# dynamodb:LeadingKeys.
OPERATOR_WRITABLE_KEYS = ("MSG#*", "RUN#*", "CONTACT#*", "CONTACTEMAIL#*", "RECEIPT#*", "STATE#*", "ERASED")
