"""Putting messages on the EventBridge bus.

PutEvents takes 1 to 10 entries and 1 MB per call, processes each entry on its own and reports the
failed ones in the reply; only those are sent again. An entry that still fails is reported failed,
never accepted.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from dig_contracts.bus import BUS_SOURCE, CALLBACK_SOURCE, BusDetail, CallbackDetail, callback_detail_type
from dig_contracts.files import FILE_READY, FILES_SOURCE, FileReadyDetail
from dig_contracts.inbound import (
    INBOUND_RECEIVED_SOURCE,
    INBOUND_SOURCE,
    WebhookReceipt,
    inbound_received_detail_type,
    is_inbound_type,
)

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

MAX_ENTRIES_PER_CALL = 10
MAX_BYTES_PER_CALL = 1_048_576
# One entry: EventBridge's 1 MB, less its delivery envelope (about 200 B) within SQS's 1 MiB, with a
# margin (an entry of exactly 1 MB was seen accepted and then not delivered).
MAX_ENTRY_BYTES = 1_000_000
# EventBridge's own throttling and internal errors are worth another try; anything else is not.
RETRYABLE_ERROR_CODES = frozenset({"InternalFailure", "ThrottlingException", "ServiceUnavailable"})


@dataclass(frozen=True)
class PublishOutcome:
    ok: bool
    error_code: str | None = None
    error_message: str | None = None


PUBLISHED = PublishOutcome(ok=True)


class EventPublisher(Protocol):
    def publish(self, details: Sequence[BusDetail]) -> list[PublishOutcome]:
        """Publish every detail; one outcome per detail, in order."""
        ...

    def publish_callback(self, detail: CallbackDetail) -> PublishOutcome:
        """Put a provider's callback on the bus, for the connector that asked for it."""
        ...

    def publish_file_ready(self, detail: FileReadyDetail) -> PublishOutcome:
        """Announce a validated extract to the connectors whose manifests map it."""
        ...

    def publish_webhook_receipt(self, receipt: WebhookReceipt) -> PublishOutcome:
        """Hand a provider's verified webhook to its connector."""
        ...


def entry_for(detail: BusDetail, bus_name: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "EventBusName": bus_name,
        # A provider's inbound event (dig_contracts.inbound) has a source of its own: only the
        # connector that delivers to ES Loyalty subscribes to it.
        "Source": INBOUND_SOURCE if is_inbound_type(detail.event["eventType"]) else BUS_SOURCE,
        "DetailType": detail.event["eventType"],
        # UTF-8 as it is counted, not \u escapes: a non-Latin name would take twice the bytes or more.
        "Detail": json.dumps(
            detail.model_dump(mode="json", exclude_none=True), separators=(",", ":"), ensure_ascii=False
        ),
    }
    trace_header = os.environ.get("_X_AMZN_TRACE_ID")
    if trace_header:
        entry["TraceHeader"] = trace_header
    return entry


def entry_size(entry: dict[str, Any]) -> int:
    """The size EventBridge counts for an entry (its documented formula; Time counts 14 bytes)."""
    return 14 + len(entry["Source"].encode()) + len(entry["DetailType"].encode()) + len(entry["Detail"].encode())


def detail_entry_size(detail: BusDetail) -> int:
    """The size EventBridge counts for this message's entry, encoded as it is sent."""
    return entry_size(entry_for(detail, ""))


def plan_calls(entries: Sequence[dict[str, Any]]) -> list[list[int]]:
    """Group entry indexes into calls of at most 10 entries and 1 MB, in order."""
    calls: list[list[int]] = []
    current: list[int] = []
    current_bytes = 0
    for index, entry in enumerate(entries):
        size = entry_size(entry)
        if current and (len(current) == MAX_ENTRIES_PER_CALL or current_bytes + size > MAX_BYTES_PER_CALL):
            calls.append(current)
            current, current_bytes = [], 0
        current.append(index)
        current_bytes += size
    if current:
        calls.append(current)
    return calls


class EventBridgePublisher:
    def __init__(
        self,
        client: EventBridgeClient,
        bus_name: str,
        *,
        attempts: int = 3,
        backoff_seconds: float = 0.1,
        parallelism: int = 8,
    ) -> None:
        self._client = client
        self._bus_name = bus_name
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._parallelism = parallelism
        self._lock = threading.Lock()
        self.calls_made = 0

    def publish_callback(self, detail: CallbackDetail) -> PublishOutcome:
        entry = {
            "EventBusName": self._bus_name,
            "Source": CALLBACK_SOURCE,
            "DetailType": callback_detail_type(detail.connector),
            "Detail": json.dumps(detail.model_dump(mode="json"), separators=(",", ":")),
        }
        return self._publish_entries([entry])[0]

    def publish_file_ready(self, detail: FileReadyDetail) -> PublishOutcome:
        entry = {
            "EventBusName": self._bus_name,
            "Source": FILES_SOURCE,
            "DetailType": FILE_READY,
            "Detail": detail.model_dump_json(),
        }
        return self._publish_entries([entry])[0]

    def publish_webhook_receipt(self, receipt: WebhookReceipt) -> PublishOutcome:
        entry = {
            "EventBusName": self._bus_name,
            "Source": INBOUND_RECEIVED_SOURCE,
            "DetailType": inbound_received_detail_type(receipt.connector),
            "Detail": receipt.model_dump_json(),
        }
        return self._publish_entries([entry])[0]

    def publish(self, details: Sequence[BusDetail]) -> list[PublishOutcome]:
        return self._publish_entries([entry_for(detail, self._bus_name) for detail in details])

    def _publish_entries(self, entries: list[dict[str, Any]]) -> list[PublishOutcome]:
        outcomes: list[PublishOutcome | None] = [None] * len(entries)
        pending = list(range(len(entries)))
        for attempt in range(self._attempts):
            if attempt:
                time.sleep(self._backoff * 2 ** (attempt - 1))
            calls = [[pending[i] for i in call] for call in plan_calls([entries[i] for i in pending])]
            if len(calls) > 1:
                # A 500-event batch is 50 calls of 10 entries: side by side, not one after another.
                with ThreadPoolExecutor(max_workers=min(self._parallelism, len(calls))) as pool:
                    retries = list(pool.map(lambda indexes: self._put(entries, indexes, outcomes), calls))
            else:
                retries = [self._put(entries, indexes, outcomes) for indexes in calls]
            pending = [i for retry in retries for i in retry]
            if not pending:
                break
        return [outcome or PublishOutcome(ok=False, error_code="InternalFailure") for outcome in outcomes]

    def _put(
        self, entries: list[dict[str, Any]], indexes: list[int], outcomes: list[PublishOutcome | None]
    ) -> list[int]:
        """One PutEvents call; records final outcomes and returns the indexes worth retrying."""
        from botocore.exceptions import BotoCoreError, ClientError

        with self._lock:
            self.calls_made += 1
        try:
            answer = self._client.put_events(Entries=[entries[i] for i in indexes])
        except (ClientError, BotoCoreError) as error:
            code = (
                error.response["Error"].get("Code", "ClientError") if isinstance(error, ClientError) else "NetworkError"
            )
            for i in indexes:
                outcomes[i] = PublishOutcome(ok=False, error_code=code, error_message=str(error)[:300])
            return list(indexes)
        retry: list[int] = []
        for i, result in zip(indexes, answer["Entries"], strict=True):
            code = result.get("ErrorCode")
            if not code:
                outcomes[i] = PUBLISHED
                continue
            outcomes[i] = PublishOutcome(ok=False, error_code=code, error_message=result.get("ErrorMessage"))
            if code in RETRYABLE_ERROR_CODES:
                retry.append(i)
        return retry
