"""An extract's validated row as a row of an Optimove data set: the mapped columns, each written the
way Optimove's batch guide asks (dates ``yyyy-MM-dd``, datetimes ``yyyy-MM-dd HH:mm:ss`` in UTC,
nulls blank, dot decimals, currency in a column of its own), and the fingerprint of that content.

A row's fingerprint covers what Optimove would receive, ``LastUpdated`` aside: a row whose mapped
content did not change is not sent again, whatever the extract's own timestamps say.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.optimove.feed.config import DataSet, DataSetKind, file_type
from dig_contracts.extracts import ColumnType

FINGERPRINT_BYTES = 16


class RowSkipped(ValueError):
    """A row that cannot be sent: the column and the rule (never the value: it may be personal data)."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field, self.rule = field, rule


@dataclass(frozen=True)
class MappedRow:
    key: str  # the member id (the data set's customer id) for customers, else the extract's key
    member: str
    values: tuple[str, ...]  # in the data set's column order, customer id first, LastUpdated not yet


def fingerprint(values: tuple[str, ...]) -> bytes:
    """The content's fingerprint: the values as a JSON array (unambiguous separators), hashed; 128
    bits is far beyond any collision risk for 10 million rows a data set."""
    canonical = json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.blake2b(canonical, digest_size=FINGERPRINT_BYTES).digest()


def header(data_set: DataSet) -> list[str]:
    from dig_contracts.extracts import LAST_UPDATED

    return [data_set.customerId, *data_set.attribute_columns(), LAST_UPDATED]


class RowMapper:
    """A data set's rows from its extract's: the columns and their file types resolved once."""

    def __init__(self, data_set: DataSet, key_column: str) -> None:
        self._member = data_set.customerIdSource
        self._columns = [(c.source, file_type(data_set, c)) for c in data_set.columns]
        self._key = None if data_set.kind is DataSetKind.CUSTOMERS else key_column

    def __call__(self, row: Mapping[str, Any]) -> MappedRow:
        member = row.get(self._member)
        if member is None or str(member).strip() == "":
            raise RowSkipped(self._member, "is required: Optimove refuses a row without a customer id")
        member = str(member)
        values = (member, *[optimove_text(row.get(source), kind) for source, kind in self._columns])
        return MappedRow(key=member if self._key is None else str(row.get(self._key)), member=member, values=values)


def optimove_text(value: Any, kind: ColumnType) -> str:
    """``value`` (typed as dig_contracts.extracts types an extract's values) as Optimove's files want it."""
    if value is None:
        return ""
    if kind is ColumnType.DATETIME:
        return optimove_datetime(str(value))
    if kind is ColumnType.DATE:
        return str(value)[:10]  # ISO already; from a datetime, its date as the extract wrote it
    if kind is ColumnType.BOOLEAN:
        # Unverified: Optimove's guide does not say how booleans are written; "true"/"false" as JSON has them.
        return "true" if value else "false"
    return str(value)  # text, whole numbers, dot decimals (kept as text by the extract), ISO 4217 codes


def optimove_datetime(iso: str) -> str:
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")
