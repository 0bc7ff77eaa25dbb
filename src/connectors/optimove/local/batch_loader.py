"""The simulator's batch loader: reads a completed day of files the way Optimove's batch guide says its
ETL does (../shared/reference/optimove-api.md, "Batch data delivery"), and reports what it loaded.

Optimove's documented rules it applies: gzip only (a file that is not gzip is refused; a Parquet file
whose pages are not all GZIP-compressed likewise, DIG's reading of the rule for Parquet), at most 1 GB a
file, dates ``yyyy-MM-dd`` and datetimes ``yyyy-MM-dd HH:mm:ss`` in the columns the onboarding typed as
such (a row with a malformed one is refused), a customer id on every row, a missing-file check (every
data set the onboarding expects has a file; every file the manifest lists is there) and a row-count
check against the average of the last 180 days loaded (reported, not refused). A day is read only once
its completion marker exists. The customers data set creates the customers it brings (a tenant that
creates customers only in batch depends on it).

Its own assumption, not Optimove's documentation: the manifest and marker names (DIG's convention,
agreed at onboarding) and how a refusal is reported.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connectors.optimove.feed.config import BatchFeed, DataSetKind, file_type
from connectors.optimove.feed.files import COMPLETION_MARKER, MANIFEST, day_prefix, read_parts
from dig_contracts.extracts import LAST_UPDATED, ColumnType

MAX_FILE_BYTES = 1024**3
HISTORY_DAYS = 180
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


@dataclass
class LoadReport:
    day: str
    loaded: bool = False
    reason: str | None = None  # why the day was not loaded at all
    files: list[dict[str, Any]] = field(default_factory=list)  # key, dataSet, rows, status, reason
    rows: dict[str, int] = field(default_factory=dict)  # data set -> rows loaded
    refused: dict[str, int] = field(default_factory=dict)  # "dataSet: reason" -> rows
    missingFiles: list[str] = field(default_factory=list)
    rowCountCheck: dict[str, dict[str, float]] = field(default_factory=dict)
    customersCreated: int = 0


class BatchLoader:
    def __init__(self, feed: BatchFeed, add_customers: Callable[[dict[str, dict[str, str]]], int]) -> None:
        self._feed = feed
        self._add_customers = add_customers
        self._history: dict[str, list[int]] = defaultdict(list)  # data set -> rows of each day loaded
        # column -> its type, per data set: what the onboarding agreed (DIG's batchFeed stands for it)
        self._types = {
            d.name: {c.target: file_type(d, c) for c in d.columns} | {LAST_UPDATED: ColumnType.DATETIME}
            for d in feed.dataSets
        }

    def load(self, s3: Any, bucket: str, day: str) -> LoadReport:
        report = LoadReport(day)
        prefix = day_prefix(self._feed.destination.prefix, day)
        present = {o["Key"]: o["Size"] for o in _listing(s3, bucket, prefix)}
        if f"{prefix}{COMPLETION_MARKER}" not in present:
            report.reason = f"no {COMPLETION_MARKER} under {prefix}: the day is not complete"
            return report
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}{MANIFEST}")["Body"].read())
        listed = {p["key"] for p in manifest["parts"]}
        report.missingFiles = sorted(listed - set(present))
        by_data_set = {p["dataSet"] for p in manifest["parts"] if p["key"] in present}
        report.missingFiles += [f"{d.name}: no file" for d in self._feed.dataSets if d.name not in by_data_set]
        customers: dict[str, dict[str, str]] = {}
        for part in sorted(manifest["parts"], key=lambda p: p["key"]):
            key, data_set = part["key"], part["dataSet"]
            if key not in present:
                continue
            entry: dict[str, Any] = {"key": key, "dataSet": data_set, "rows": 0, "status": "loaded"}
            report.files.append(entry)
            if present[key] > MAX_FILE_BYTES:
                entry.update(status="refused", reason="over 1 GB")
                continue
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            read = _parquet_rows(body) if key.endswith(".parquet") else _gzip_rows(body, key)
            if read is None:
                entry.update(status="refused", reason="not gzip")
                continue
            for row in read:
                problem = self._problem(data_set, row)
                if problem:
                    report.refused[f"{data_set}: {problem}"] = report.refused.get(f"{data_set}: {problem}", 0) + 1
                    continue
                entry["rows"] += 1
                report.rows[data_set] = report.rows.get(data_set, 0) + 1
                if self._kind(data_set) is DataSetKind.CUSTOMERS:
                    customers[row[self._customer_id(data_set)]] = {
                        k: v for k, v in row.items() if k != self._customer_id(data_set)
                    }
        report.customersCreated = self._add_customers(customers)
        for data_set in self._types:
            history = self._history[data_set][-HISTORY_DAYS:]
            rows = report.rows.get(data_set, 0)
            average = sum(history) / len(history) if history else float(rows)
            report.rowCountCheck[data_set] = {
                "rows": rows,
                "average": round(average, 1),
                "ratio": round(rows / average, 3) if average else 0.0,
            }
            self._history[data_set].append(rows)
        report.loaded = True
        return report

    def _kind(self, data_set: str) -> DataSetKind:
        return next(d.kind for d in self._feed.dataSets if d.name == data_set)

    def _customer_id(self, data_set: str) -> str:
        return next(d.customerId for d in self._feed.dataSets if d.name == data_set)

    def _problem(self, data_set: str, row: dict[str, str]) -> str | None:
        if not (row.get(self._customer_id(data_set)) or "").strip():
            return "no customer id"
        for column, kind in self._types.get(data_set, {}).items():
            value = row.get(column) or ""
            if value and kind is ColumnType.DATE and not _DATE.match(value):
                return f"malformed date in {column}"
            if value and kind is ColumnType.DATETIME and not _DATETIME.match(value):
                return f"malformed datetime in {column}"
        return None


def _gzip_rows(body: bytes, key: str) -> list[dict[str, str]] | None:
    if body[:2] != b"\x1f\x8b":
        return None
    text = read_parts([body]).decode()
    if ".csv" in key:
        return list(csv.DictReader(io.StringIO(text)))
    return [{k: "" if v is None else str(v) for k, v in json.loads(line).items()} for line in text.splitlines() if line]


def _parquet_rows(body: bytes) -> list[dict[str, str]] | None:
    """A Parquet part's rows, None unless every column chunk is GZIP-compressed."""
    import pyarrow.parquet as pq

    if body[:4] != b"PAR1":
        return None
    parquet = pq.ParquetFile(io.BytesIO(body))
    metadata = parquet.metadata
    for group in range(metadata.num_row_groups):
        for column in range(metadata.num_columns):
            if metadata.row_group(group).column(column).compression != "GZIP":
                return None
    # Without threads: pyarrow 26 aborts at interpreter exit now and then after a threaded read.
    table = parquet.read(use_threads=False)
    return [{k: "" if v is None else str(v) for k, v in row.items()} for row in table.to_pylist()]


def _listing(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.extend(page.get("Contents", []))
    return found
