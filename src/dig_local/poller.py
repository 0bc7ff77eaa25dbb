"""The local event source mapping: polls a connector's queue and hands batches to the real
connector handler, deleting what succeeded and returning the batchItemFailures to the queue after
a short delay (moto moves a message to the dead-letter queue after maxReceiveCount receives)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dig_contracts.manifest import ConnectorManifest
from dig_local.lambda_context import LocalContext

logger = logging.getLogger(__name__)
DELETERS = 4
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class QueuePoller(threading.Thread):
    def __init__(
        self,
        *,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        handler: Handler,
        manifest: ConnectorManifest,
        region: str,
        retry_delay_seconds: int = 2,
        batching_window_seconds: float | None = None,
        idle_sleep_seconds: float = 0.1,
    ) -> None:
        super().__init__(name=f"poller-{manifest.name}", daemon=True)
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._handler = handler
        self._manifest = manifest
        self._region = region
        self._retry_delay = retry_delay_seconds
        window = manifest.max_batching_window_seconds
        self._window = window if batching_window_seconds is None else min(batching_window_seconds, window)
        self._idle = idle_sleep_seconds
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=DELETERS, thread_name_prefix=f"poller-{manifest.name}-delete")
        self.invocations = 0

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = self._receive_batch()
                if not messages:
                    self._stopping.wait(self._idle)
                    continue
                self._invoke(messages)
            except Exception:  # keep polling, as the event source mapping would
                if self._stopping.is_set():
                    break  # the stack is stopping: its services may be gone already
                logger.exception("poller error")
                self._stopping.wait(1.0)

    def _receive_batch(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        deadline = time.monotonic() + self._window
        visibility = self._manifest.timeout_seconds + 30
        while len(batch) < self._manifest.batch_size and not self._stopping.is_set():
            answer = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=min(10, self._manifest.batch_size - len(batch)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                VisibilityTimeout=visibility,
            )
            received = answer.get("Messages", [])
            batch.extend(received)
            if not received and (not batch or time.monotonic() >= deadline):
                break
            if time.monotonic() >= deadline and batch:
                break
        return batch

    def _invoke(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [self._record(m) for m in messages]}
        self.invocations += 1
        try:
            answer = self._handler(event, LocalContext(f"dig-{self._manifest.name}", self._manifest.timeout_seconds))
            failed = {item["itemIdentifier"] for item in (answer or {}).get("batchItemFailures", [])}
        except Exception:
            logger.exception("connector handler raised: the whole batch goes back to the queue")
            failed = {m["MessageId"] for m in messages}
        done = [m for m in messages if m["MessageId"] not in failed]
        chunks = [done[start : start + 10] for start in range(0, len(done), 10)]
        # Side by side, as the event source mapping deletes a thousand-message batch (100 calls).
        list(self._pool.map(self._delete_chunk, chunks))
        retry = [m for m in messages if m["MessageId"] in failed]
        for start in range(0, len(retry), 10):
            chunk = retry[start : start + 10]
            self._sqs.change_message_visibility_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": self._retry_delay}
                    for i, m in enumerate(chunk)
                ],
            )

    # Not ``_delete``: threading.Thread has a method of that name, which it calls as the thread ends.
    def _delete_chunk(self, chunk: list[dict[str, Any]]) -> None:
        self._sqs.delete_message_batch(
            QueueUrl=self._queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
        )

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        """An SQS message as the event source mapping hands it to Lambda."""
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": self._region,
        }
