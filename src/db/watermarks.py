"""The newest delivered value per member and attribute, so that an older event never overwrites a
newer one in the provider, whatever order SQS hands events over in.

One item per (connector, member): pk ``STATE#<connector>#<memberId>``, sk ``ATTRIBUTES``, and a JSON
map ``{field: [occurredAt, messageId]}`` (UTC ISO timestamps compare as strings).

Two invocations updating the same member at the same moment can lose one watermark (last writer
wins); the cost is that an out-of-order event for that attribute may then be sent. Conditional
per-member writes would close it at one DynamoDB call per member instead of one per 25.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from db.table import Table

Mark = tuple[str, str]  # (occurredAt as UTC ISO, messageId)


class WatermarkStore(Protocol):
    def get(self, connector: str, member_ids: Iterable[str]) -> dict[str, dict[str, Mark]]: ...

    def advance(
        self, connector: str, marks: Mapping[str, Mapping[str, Mark]], known: Mapping[str, Mapping[str, Mark]]
    ) -> None:
        """Store ``marks`` (member -> field -> mark) merged into ``known`` (what get() returned),
        keeping the newest per field."""
        ...

    def forget(self, connector: str, sent_by: Mapping[str, Mapping[str, str]]) -> None:
        """Drop the marks (member -> field -> messageId) that these messages set: the provider
        reported later that their values did not land, so a replay must send them again."""
        ...


def merge(known: Mapping[str, Mark], fields: Mapping[str, Mark]) -> dict[str, Mark]:
    merged = dict(known)
    for field, mark in fields.items():
        if field not in merged or merged[field][0] <= mark[0]:
            merged[field] = mark
    return merged


def _pk(connector: str, member_id: str) -> str:
    return f"STATE#{connector}#{member_id}"


class DynamoWatermarkStore:
    def __init__(self, table: Table, retention_days: int = 400) -> None:
        self._table = table
        self._retention_days = retention_days

    def get(self, connector: str, member_ids: Iterable[str]) -> dict[str, dict[str, Mark]]:
        keys = [{"pk": {"S": _pk(connector, m)}, "sk": {"S": "ATTRIBUTES"}} for m in dict.fromkeys(member_ids)]
        found: dict[str, dict[str, Mark]] = {}
        prefix = f"STATE#{connector}#"
        for item in self._table.batch_get(keys):
            member = item["pk"]["S"].removeprefix(prefix)
            found[member] = {k: (v[0], v[1]) for k, v in json.loads(item["w"]["S"]).items()}
        return found

    def advance(
        self, connector: str, marks: Mapping[str, Mapping[str, Mark]], known: Mapping[str, Mapping[str, Mark]]
    ) -> None:
        expires = int(time.time()) + self._retention_days * 86_400
        items: list[dict[str, Any]] = []
        for member, fields in marks.items():
            merged = merge(known.get(member, {}), fields)
            items.append(
                {
                    "pk": {"S": _pk(connector, member)},
                    "sk": {"S": "ATTRIBUTES"},
                    "w": {"S": json.dumps(merged, separators=(",", ":"))},
                    "expiresAt": {"N": str(expires)},
                }
            )
        self._table.batch_put(items)

    def forget(self, connector: str, sent_by: Mapping[str, Mapping[str, str]]) -> None:
        known = self.get(connector, sent_by)
        kept = {
            member: {f: mark for f, mark in known.get(member, {}).items() if sent_by[member].get(f) != mark[1]}
            for member in sent_by
        }
        expires = int(time.time()) + self._retention_days * 86_400
        self._table.batch_put(
            [
                {
                    "pk": {"S": _pk(connector, member)},
                    "sk": {"S": "ATTRIBUTES"},
                    "w": {"S": json.dumps(fields, separators=(",", ":"))},
                    "expiresAt": {"N": str(expires)},
                }
                for member, fields in kept.items()
            ]
        )
