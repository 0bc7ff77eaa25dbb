"""Which messages a coalesced provider call carried, per customer, for the provider's later
per-customer results (a callback) to be traced back to the messages they concern.

One item per call: pk ``CALL#<connector>#<callId>``, sk ``CALL``, a JSON map
``{customerId: {messageId: [fields]}}``; kept three days (Optimove answers within about a minute).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Protocol

from db.audit import DynamoAuditStore

RETENTION_SECONDS = 3 * 86_400
Carried = Mapping[str, Mapping[str, list[str]]]  # customer -> message -> fields


class CallLog(Protocol):
    def record(self, connector: str, call_id: str, carried: Carried) -> None: ...

    def lookup(self, connector: str, call_id: str) -> dict[str, dict[str, list[str]]] | None: ...


class DynamoCallLog:
    def __init__(self, audit: DynamoAuditStore) -> None:
        self._client = audit.client
        self._table = audit.table_name

    @staticmethod
    def _key(connector: str, call_id: str) -> dict[str, dict[str, str]]:
        return {"pk": {"S": f"CALL#{connector}#{call_id}"}, "sk": {"S": "CALL"}}

    def record(self, connector: str, call_id: str, carried: Carried) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={
                **self._key(connector, call_id),
                "doc": {"S": json.dumps(carried, separators=(",", ":"))},
                "expiresAt": {"N": str(int(time.time()) + RETENTION_SECONDS)},
            },
        )

    def lookup(self, connector: str, call_id: str) -> dict[str, dict[str, list[str]]] | None:
        item = self._client.get_item(TableName=self._table, Key=self._key(connector, call_id)).get("Item")
        return json.loads(item["doc"]["S"]) if item else None
