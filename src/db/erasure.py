"""Erasing one member's personal data on request (``dig member forget``): the payload of each of their
messages in the audit trail, and the body of each provider webhook one of their inbound events came in
(the record that a message was received, and its deliveries, stay: they hold the member id and
statuses, no personal data), their contact data and the email lookup that names them, and the
per-connector delivery state that names them. A message whose payload is erased can no longer be
replayed. Everything is overwritten, not deleted: operators hold UpdateItem on the audit table, never
DeleteItem.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from db.audit import MESSAGE_SK, DynamoAuditStore, message_pk
from db.contacts import CONTACT_SK, contact_pk, email_pk
from db.feeds import record_erasure
from db.receipts import RECEIPT_SK, receipt_pk
from db.records import iso, utc_now
from db.table import Table
from dig_contracts.inbound import INBOUND_TYPES

ERASED_PAYLOAD = "{}"


@dataclass
class ErasureReport:
    member_id: str
    messages: list[str] = field(default_factory=list)  # message ids whose payload was erased
    contact: bool = False
    connectors: list[str] = field(default_factory=list)
    receipts: list[str] = field(default_factory=list)  # providers' webhooks (the return path) that named them
    # connector -> items its own erasure changed (a manifest's member_erasure: CataBoom's accounts)
    connector_items: dict[str, int] = field(default_factory=dict)


def forget_member(
    store: DynamoAuditStore,
    member_id: str,
    connectors: Iterable[str],
    erasures: Mapping[str, Callable[[Table, str], int]] | None = None,
) -> ErasureReport:
    """``erasures``: connector -> its own erasure of what it keeps of a member (the manifests')."""
    table = store.table
    report = ErasureReport(member_id)
    now = iso(utc_now())
    request: dict[str, Any] = {
        "IndexName": "byMember",
        "KeyConditionExpression": "gsiMemberPk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": f"MEMBER#{member_id}"}},
        "ProjectionExpression": "pk, eventType",
    }
    while True:
        answer = table.call("query", **request)
        for item in answer.get("Items", []):
            message_id = item["pk"]["S"].removeprefix("MSG#")
            key = {"pk": {"S": message_pk(message_id)}, "sk": {"S": MESSAGE_SK}}
            if item.get("eventType", {}).get("S") in INBOUND_TYPES:
                # Its payload names the webhook receipt it came in (small, never compressed); the index
                # does not project it.
                item = {**item, **next(iter(table.batch_get([key])), {})}
            # A message that expired meanwhile has nothing left to erase.
            if table.update_if_present(
                key, "SET payload = :erased, erasedAt = :now REMOVE payloadZ", {":erased": ERASED_PAYLOAD, ":now": now}
            ):
                report.messages.append(message_id)
            receipt = _receipt_of(item)
            if receipt and table.update_if_present(
                {"pk": {"S": receipt_pk(receipt)}, "sk": {"S": RECEIPT_SK}},
                "SET body = :erased, erasedAt = :now REMOVE bodyZ",
                {":erased": ERASED_PAYLOAD, ":now": now},
            ):
                report.receipts.append(receipt)
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
    for connector, erase in sorted((erasures or {}).items()):
        report.connector_items[connector] = erase(table, member_id)
    return report


def _receipt_of(item: dict[str, Any]) -> str | None:
    """The webhook receipt an inbound event came in (dig_contracts.inbound: origin.receiptId), if any."""
    if item.get("eventType", {}).get("S") not in INBOUND_TYPES or "payload" not in item:
        return None
    try:
        receipt = json.loads(item["payload"]["S"]).get("origin", {}).get("receiptId")
    except (ValueError, AttributeError):
        return None
    return str(receipt) if receipt else None


def forget_contact(table: Table, member_id: str) -> bool:
    """Erase a member's contact data, and the email lookup that names them; whether there was any."""
    from botocore.exceptions import ClientError

    now = iso(utc_now())
    try:
        answer = table.call(
            "update_item",
            Key={"pk": {"S": contact_pk(member_id)}, "sk": {"S": CONTACT_SK}},
            UpdateExpression="REMOVE email, locale, mobile, smsOptIn, smsSeenAt SET erasedAt = :now",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":now": {"S": now}},
            ReturnValues="UPDATED_OLD",
        )
    except ClientError:  # Table.call re-raises only the conditional refusal: no contact data
        return False
    email = answer.get("Attributes", {}).get("email", {}).get("S")
    if email:
        table.update_if_present(
            {"pk": {"S": email_pk(email)}, "sk": {"S": CONTACT_SK}},
            "REMOVE memberId SET erasedAt = :now",
            {":now": now},
        )
    return True
