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

from dig_contracts.manifest import ConnectorManifest, Lane
from dig_local.lambda_context import LocalContext

logger = logging.getLogger(__name__)
DELETERS = 4
LONG_POLL_SECONDS = 1  # short enough for the stack to stop within a second
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def local_window(window: float, shortened_to: float | None) -> float:
    """A lane's batching window as the local stack runs it: the manifest's, or ``--batching-window`` if shorter."""
    return window if shortened_to is None else min(window, shortened_to)


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
        lane: Lane | None = None,
        retry_delay_seconds: int = 2,
        batching_window_seconds: float | None = None,
    ) -> None:
        self.lane = lane or manifest.lanes[0]
        super().__init__(name=f"poller-{manifest.name}-{self.lane.name}", daemon=True)
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._handler = handler
        self._manifest = manifest
        self._region = region
        self._retry_delay = retry_delay_seconds
        self._window = local_window(self.lane.max_batching_window_seconds, batching_window_seconds)
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=DELETERS, thread_name_prefix=f"poller-{manifest.name}-delete")
        self.invocations = 0

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = self._receive_batch()  # an idle queue: a long poll, then the next
                if messages:
                    self._invoke(messages)
            except Exception:  # keep polling, as the event source mapping would
                if self._stopping.is_set():
                    break  # the stack is stopping: its services may be gone already
                logger.exception("poller error")
                self._stopping.wait(1.0)

    def _receive_batch(self) -> list[dict[str, Any]]:
        """A batch as the event source mapping gathers one: the first message by a long poll (an idle
        queue costs a request a second, and an arrival wakes it at once), then, while the lane's batching
        window (counted from the first message) lasts and the batch is not full, what is there at once,
        and when nothing is, a wait for more within what is left of the window."""
        batch = self._receive(LONG_POLL_SECONDS, min(10, self.lane.batch_size))
        if not batch:
            return []
        deadline = time.monotonic() + self._window
        while len(batch) < self.lane.batch_size and not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            most = min(10, self.lane.batch_size - len(batch))
            received = self._receive(0, most)
            if not received:
                if remaining >= LONG_POLL_SECONDS:
                    received = self._receive(LONG_POLL_SECONDS, most)
                else:  # SQS waits whole seconds: the window's last fraction by the clock, then a last look
                    self._stopping.wait(remaining)
                    received = self._receive(0, most)
            batch.extend(received)
        return batch

    def _receive(self, wait_seconds: int, most: int) -> list[dict[str, Any]]:
        answer = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=most,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            VisibilityTimeout=self._manifest.timeout_seconds + 30,
            WaitTimeSeconds=wait_seconds,
        )
        received: list[dict[str, Any]] = answer.get("Messages", [])
        return received

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
