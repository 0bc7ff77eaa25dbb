"""What AWS bills for a request's size: DynamoDB item sizes and capacity units, 64 KB chunks.

Hand-written: no maintained Python library computes DynamoDB item sizes; the rules are AWS's
("Item sizes and formats", DynamoDB developer guide).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

CHUNK_BYTES = 64 * 1024
WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096


def chunks_64k(size_bytes: int) -> int:
    """EventBridge and SQS bill each request (or entry) per 64 KB chunk, at least one."""
    return max(1, math.ceil(size_bytes / CHUNK_BYTES))


def value_size(value: Mapping[str, Any]) -> int:
    """The size DynamoDB counts for one attribute value (low-level form: {"S": ...}, {"N": ...}, ...)."""
    ((kind, data),) = value.items()
    if kind == "S":
        return len(str(data).encode())
    if kind == "N":
        digits = str(data).lstrip("-").replace(".", "").lstrip("0") or "0"
        return math.ceil(len(digits.rstrip("0") or "0") / 2) + 1
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in data)
    if kind == "NS":
        return sum(value_size({"N": n}) for n in data)
    if kind == "BS":
        return sum(len(b) for b in data)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in data.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: Mapping[str, Mapping[str, Any]] | None) -> int:
    """Attribute names plus values, as DynamoDB sizes an item."""
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size_bytes: int) -> int:
    return max(1, math.ceil(size_bytes / WRITE_UNIT_BYTES))


def read_units(size_bytes: int, *, consistent: bool) -> float:
    units = max(1, math.ceil(size_bytes / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2
