"""Erasing one member's personal data on request (``dig member forget``): the payload of each of their
messages in the audit trail (the record that a message was received, and its deliveries, stay: they
hold the member id and statuses, no personal data), their contact data, and the per-connector
delivery state that names them. A message whose payload is erased can no longer be replayed.
Everything is overwritten, not deleted: operators hold UpdateItem on the audit table, never DeleteItem.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from db.audit import MESSAGE_SK, DynamoAuditStore, message_pk
from db.contacts import CONTACT_SK, contact_pk
from db.feeds import record_erasure
from db.records import iso, utc_now
from db.table import Table

ERASED_PAYLOAD = "{}"


@dataclass
class ErasureReport:
    member_id: str
    messages: list[str] = field(default_factory=list)  # message ids whose payload was erased
    contact: bool = False
    connectors: list[str] = field(default_factory=list)


def forget_member(store: DynamoAuditStore, member_id: str, connectors: Iterable[str]) -> ErasureReport:
    table = store.table
    report = ErasureReport(member_id)
    now = iso(utc_now())
    request: dict[str, Any] = {
        "IndexName": "byMember",
        "KeyConditionExpression": "gsiMemberPk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": f"MEMBER#{member_id}"}},
        "ProjectionExpression": "pk",
    }
    while True:
        answer = table.call("query", **request)
        for item in answer.get("Items", []):
            message_id = item["pk"]["S"].removeprefix("MSG#")
            key = {"pk": {"S": message_pk(message_id)}, "sk": {"S": MESSAGE_SK}}
            # A message that expired meanwhile has nothing left to erase.
            if table.update_if_present(
                key, "SET payload = :erased, erasedAt = :now REMOVE payloadZ", {":erased": ERASED_PAYLOAD, ":now": now}
            ):
                report.messages.append(message_id)
        if "LastEvaluatedKey" not in answer:
            break
        request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
    report.contact = forget_contact(store.table, member_id)
    # Remembered, so that no daily feed sends the member again (db.feeds; the feed drops its fingerprints).
    record_erasure(table, member_id)
    for connector in connectors:
        key = {"pk": {"S": f"STATE#{connector}#{member_id}"}, "sk": {"S": "ATTRIBUTES"}}
        if table.update_if_present(key, "SET w = :nothing", {":nothing": "{}"}):
            report.connectors.append(connector)
    return report


def forget_contact(table: Table, member_id: str) -> bool:
    """Erase a member's contact data; whether there was any."""
    key = {"pk": {"S": contact_pk(member_id)}, "sk": {"S": CONTACT_SK}}
    return table.update_if_present(key, "REMOVE email, locale SET erasedAt = :now", {":now": iso(utc_now())})
