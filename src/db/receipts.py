"""Providers' webhooks as the DIG API received and verified them, kept for the audit trail: what a
provider said, byte for byte (card numbers masked), whatever the connector made of it.

One item per webhook request: pk ``RECEIPT#<receiptId>`` (the API request id), sk ``RECEIPT``, in
the audit table, compressed above a few KB, expiring with the delivered messages' retention.
"""

from __future__ import annotations

import time
import zlib
from datetime import datetime
from typing import TYPE_CHECKING, Any

from db.records import iso
from dig_contracts.inbound import WebhookReceipt

if TYPE_CHECKING:
    from db.table import Table

RECEIPT_SK = "RECEIPT"
COMPRESS_ABOVE_BYTES = 4096


def receipt_pk(receipt_id: str) -> str:
    return f"RECEIPT#{receipt_id}"


class ReceiptStore:
    def __init__(self, table: Table, retention_days: int = 30, clock: Any = time.time) -> None:
        self._table = table
        self._retention_seconds = retention_days * 86_400
        self._clock = clock

    def keep(self, receipt: WebhookReceipt) -> None:
        body = receipt.body.encode()
        item: dict[str, Any] = {
            "pk": {"S": receipt_pk(receipt.receiptId)},
            "sk": {"S": RECEIPT_SK},
            "connector": {"S": receipt.connector},
            "source": {"S": receipt.source},
            "receivedAt": {"S": iso(receipt.receivedAt)},
            "expiresAt": {"N": str(int(self._clock()) + self._retention_seconds)},
        }
        if len(body) > COMPRESS_ABOVE_BYTES:
            item["bodyZ"] = {"B": zlib.compress(body, 6)}
        else:
            item["body"] = {"S": receipt.body}
        if receipt.contentType:
            item["contentType"] = {"S": receipt.contentType[:200]}
        if receipt.handshake:
            item["handshake"] = {"BOOL": True}
        self._table.call("put_item", Item=item)

    def get(self, receipt_id: str) -> WebhookReceipt | None:
        answer = self._table.call("get_item", Key={"pk": {"S": receipt_pk(receipt_id)}, "sk": {"S": RECEIPT_SK}})
        item = answer.get("Item")
        if item is None:
            return None
        body = zlib.decompress(item["bodyZ"]["B"]).decode() if "bodyZ" in item else item["body"]["S"]
        return WebhookReceipt(
            connector=item["connector"]["S"],
            source=item["source"]["S"],
            receiptId=receipt_id,
            receivedAt=datetime.fromisoformat(item["receivedAt"]["S"].replace("Z", "+00:00")),
            body=body,
            contentType=item.get("contentType", {}).get("S"),
            handshake=item.get("handshake", {}).get("BOOL", False),
        )
