"""Erasing one member's personal data on request (``dig member forget``): the payload of each of
their messages in the audit trail (the record that a message was received, and its deliveries, stay:
they hold the member id and statuses, no personal data), their contact data, and the per-connector
delivery state that names them. A message whose payload is erased can no longer be replayed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from db.audit import MESSAGE_SK, DynamoAuditStore, is_conditional_failure, message_pk
from db.contacts import CONTACT_SK, contact_pk
from db.records import iso, utc_now

ERASED_PAYLOAD = "{}"


@dataclass
class ErasureReport:
    member_id: str
    messages: list[str] = field(default_factory=list)  # message ids whose payload was erased
    contact: bool = False
    connectors: list[str] = field(default_factory=list)


def forget_member(store: DynamoAuditStore, member_id: str, connectors: Iterable[str]) -> ErasureReport:
    client, table = store.client, store.table_name
    report = ErasureReport(member_id)
    now = iso(utc_now())
    kwargs: dict[str, Any] = {
        "TableName": table,
        "IndexName": "byMember",
        "KeyConditionExpression": "gsiMemberPk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": f"MEMBER#{member_id}"}},
        "ProjectionExpression": "pk",
    }
    while True:
        answer = client.query(**kwargs)
        for item in answer.get("Items", []):
            message_id = item["pk"]["S"].removeprefix("MSG#")
            try:
                client.update_item(
                    TableName=table,
                    Key={"pk": {"S": message_pk(message_id)}, "sk": {"S": MESSAGE_SK}},
                    UpdateExpression="SET payload = :erased, erasedAt = :now REMOVE payloadZ",
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeValues={":erased": {"S": ERASED_PAYLOAD}, ":now": {"S": now}},
                )
            except ClientError as error:  # expired meanwhile: nothing left to erase
                if not is_conditional_failure(error):
                    raise
                continue
            report.messages.append(message_id)
        if "LastEvaluatedKey" not in answer:
            break
        kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
    # Overwritten, not deleted: operators hold UpdateItem on the audit table, never DeleteItem.
    report.contact = forget_contact(store, member_id)
    for connector in connectors:
        pk = f"STATE#{connector}#{member_id}"
        if _update_if_present(client, table, pk, "ATTRIBUTES", "SET w = :nothing", {":nothing": "{}"}):
            report.connectors.append(connector)
    return report


def forget_contact(store: DynamoAuditStore, member_id: str) -> bool:
    """Erase a member's contact data; whether there was any."""
    return _update_if_present(
        store.client,
        store.table_name,
        contact_pk(member_id),
        CONTACT_SK,
        "REMOVE email, locale SET erasedAt = :now",
        {":now": iso(utc_now())},
    )


def _update_if_present(client: Any, table: str, pk: str, sk: str, expression: str, values: dict[str, str]) -> bool:
    try:
        client.update_item(
            TableName=table,
            Key={"pk": {"S": pk}, "sk": {"S": sk}},
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={name: {"S": value} for name, value in values.items()},
        )
    except ClientError as error:
        if not is_conditional_failure(error):
            raise
        return False
    return True
