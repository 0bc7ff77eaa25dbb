"""Generic DynamoDB table access, used by every store on the audit table (audit, watermarks, ledger,
call log, contacts, replay runs, erasure) and the configuration table: one error mapping, batch
reads and writes of any size with their retries of unprocessed keys, a few calls at a time, the
conditional-failure helper, and boto3's own serializers for plain values.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

T = TypeVar("T")
R = TypeVar("R")
BATCH_GET_KEYS = 100
BATCH_WRITE_ITEMS = 25
BATCH_RETRIES = 8


class TableUnavailable(Exception):
    """The table could not be read or written (throttled, unreachable, misconfigured)."""


def is_conditional_failure(error: Any) -> bool:
    """Whether a botocore ClientError is DynamoDB refusing a write on its condition."""
    return bool(error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


@cache
def _serializers() -> tuple[Any, Any]:
    # Imported when first needed: importing boto3 costs a handler's cold start ~100 ms it may not need.
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """Plain values (str, int, bool, bytes, None, lists, dicts) as DynamoDB attribute values."""
    serializer, _ = _serializers()
    return {key: serializer.serialize(_decimals(value)) for key, value in values.items()}


def _decimals(value: Any) -> Any:
    """boto3's serializer takes numbers as Decimal only (a float's binary error is not silently stored)."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    if isinstance(value, dict):
        return {k: _decimals(v) for k, v in value.items()}
    return value


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values as plain ones; numbers as int when whole, else float."""
    _, deserializer = _serializers()
    return {key: _plain(deserializer.deserialize(value)) for key, value in item.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if hasattr(value, "value") and type(value).__name__ == "Binary":
        return bytes(value.value)
    return value


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Table:
    def __init__(self, client: DynamoDBClient, name: str, *, parallelism: int = 4) -> None:
        self.client = client
        self.name = name
        # A connector batch writes a thousand deliveries and as many watermarks: 80 BatchWriteItem
        # calls, latency-bound, so several run at once (the client's pool must allow as many).
        self._parallelism = parallelism
        self._pool: ThreadPoolExecutor | None = None

    def map(self, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if len(items) <= 1 or self._parallelism <= 1:
            return [function(item) for item in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self._parallelism, thread_name_prefix=f"table-{self.name}")
        return list(self._pool.map(function, items))

    def call(self, operation: str, **kwargs: Any) -> Any:
        """One DynamoDB call on this table; a conditional refusal is raised as botocore raised it, any
        other failure as TableUnavailable."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if operation.startswith(("batch_", "transact_")):  # these name their tables in the request
                return getattr(self.client, operation)(**kwargs)
            return getattr(self.client, operation)(**{"TableName": self.name, **kwargs})
        except ClientError as error:
            if is_conditional_failure(error):
                raise
            raise TableUnavailable(f"{operation} on {self.name}: {error}") from error
        except BotoCoreError as error:
            raise TableUnavailable(f"{operation} on {self.name}: {error}") from error

    def batch_get(self, keys: Sequence[dict[str, Any]], *, consistent: bool = True) -> list[dict[str, Any]]:
        """The items at ``keys`` (any number), in calls of 100 keys, a few at a time."""
        calls = [(list(part), consistent) for part in chunks(keys, BATCH_GET_KEYS)]
        return [item for found in self.map(self._batch_get, calls) for item in found]

    def _batch_get(self, call: tuple[list[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        from botocore.exceptions import BotoCoreError, ClientError

        keys, consistent = call
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {self.name: {"Keys": keys, "ConsistentRead": consistent}}
        for attempt in range(BATCH_RETRIES):
            try:
                answer = self.client.batch_get_item(RequestItems=request)
            except (ClientError, BotoCoreError) as error:
                raise TableUnavailable(f"batch_get_item on {self.name}: {error}") from error
            items.extend(answer.get("Responses", {}).get(self.name, []))
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                return items
            time.sleep(min(0.05 * 2**attempt, 1.0))
        raise TableUnavailable(f"batch_get_item on {self.name}: keys left unprocessed after retries")

    def batch_put(self, items: Sequence[dict[str, Any]]) -> None:
        """Put ``items`` (any number), in calls of 25 items, a few at a time."""
        self.map(self._batch_put, list(chunks(items, BATCH_WRITE_ITEMS)))

    def _batch_put(self, items: Sequence[dict[str, Any]]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        request: dict[str, Any] = {self.name: [{"PutRequest": {"Item": item}} for item in items]}
        for attempt in range(BATCH_RETRIES):
            try:
                answer = self.client.batch_write_item(RequestItems=request)
            except (ClientError, BotoCoreError) as error:
                raise TableUnavailable(f"batch_write_item on {self.name}: {error}") from error
            request = answer.get("UnprocessedItems") or {}
            if not request:
                return
            time.sleep(min(0.05 * 2**attempt, 1.0))
        raise TableUnavailable(f"batch_write_item on {self.name}: items left unprocessed")

    def update_if_present(self, key: dict[str, Any], expression: str, values: Mapping[str, Any]) -> bool:
        """Apply an update expression to the item at ``key`` if it exists; whether it did."""
        from botocore.exceptions import ClientError

        try:
            self.call(
                "update_item",
                Key=key,
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=to_item(values),
            )
        except ClientError as error:  # call() re-raises only the conditional refusal
            if not is_conditional_failure(error):
                raise
            return False
        return True
