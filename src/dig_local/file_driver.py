"""The local stand-in for the file-processing state machine (moto cannot run a Distributed Map).

In AWS, S3 reports an upload to EventBridge and a rule starts the state machine. Locally the same
rule (in moto) puts the S3 event on a queue; this driver takes it from there and runs the state
machine's definition with the real step handlers: validate; the chunks in batches of
CHUNKS_PER_BATCH, at most ``concurrency`` at once, each retried as the map's retry policy would; the
finish step (after a map failure too). ``dig files retry --local`` sends ``{"detail": ..., "rerun":
true}`` to the same queue, as the AWS command starts an execution with that input.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dig_contracts.files import BATCH_RETRY_ATTEMPTS, CHUNKS_PER_BATCH, TOLERATED_FAILURE_PERCENT
from dig_local.lambda_context import LocalContext

logger = logging.getLogger(__name__)
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class MapRunFailed(Exception):
    pass


class FileDriver(threading.Thread):
    def __init__(
        self,
        *,
        sqs: Any,
        s3: Any,
        queue_url: str,
        bucket: str,
        validate: Handler,
        batch: Handler,
        finish: Handler,
        concurrency: int = 4,
        retry_seconds: float = 0.5,
    ) -> None:
        super().__init__(name="file-driver", daemon=True)
        self._sqs, self._s3 = sqs, s3
        self._queue_url, self._bucket = queue_url, bucket
        self._validate, self._batch, self._finish = validate, batch, finish
        self._concurrency = concurrency
        self._retry_seconds = retry_seconds
        self._stopping = threading.Event()
        self.executions = 0

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                answer = self._sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1)
                for message in answer.get("Messages", []):
                    self.execute(json.loads(message["Body"]))
                    self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
            except Exception:  # an execution that failed: the state machine's FileRunsFailed alarm, locally a log
                if self._stopping.is_set():
                    break  # the stack is stopping: moto's server may be gone already
                logger.exception("file execution failed")
                self._stopping.wait(1.0)

    def execute(self, execution_input: dict[str, Any]) -> dict[str, Any] | None:
        """One execution of the state machine's definition (infra.files.FileFlow._state_machine)."""
        self.executions += 1
        state = dict(execution_input)
        state["validation"] = self._validate(execution_input, LocalContext("dig-files-validate", 900))
        while state["validation"].get("wait") and not self._stopping.wait(self._retry_seconds):  # WaitForSlot
            state["validation"] = self._validate(execution_input, LocalContext("dig-files-validate", 900))
        validation = state["validation"]
        if not validation["proceed"]:
            return None
        try:
            self._map(validation)
        except MapRunFailed as error:
            return self._finish({"fileId": validation["fileId"], "mapError": str(error)}, LocalContext("finish", 300))
        return self._finish({"fileId": validation["fileId"]}, LocalContext("dig-files-finish", 300))

    def _map(self, validation: dict[str, Any]) -> None:
        body = self._s3.get_object(Bucket=self._bucket, Key=validation["chunksKey"])["Body"].read()
        items = json.loads(body)
        batches = [items[i : i + CHUNKS_PER_BATCH] for i in range(0, len(items), CHUNKS_PER_BATCH)]
        batch_input = validation["batchInput"]
        with ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="file-map") as pool:
            outcomes = list(pool.map(lambda batch: self._child({"Items": batch, "BatchInput": batch_input}), batches))
        failed = outcomes.count(False)
        if batches and 100 * failed / len(batches) > TOLERATED_FAILURE_PERCENT:
            raise MapRunFailed(f"States.ExceedToleratedFailureThreshold: {failed} of {len(batches)} batches failed")

    def _child(self, event: dict[str, Any]) -> bool:
        """A child execution: the batch step with its retry policy (interval, backoff 2)."""
        delay = self._retry_seconds
        for attempt in range(1, BATCH_RETRY_ATTEMPTS + 1):
            try:
                self._batch(event, LocalContext("dig-files-batch", 300))
                return True
            except Exception as error:
                logger.warning("file batch failed (attempt %s): %s", attempt, type(error).__name__)
                if attempt == BATCH_RETRY_ATTEMPTS or self._stopping.wait(delay):
                    return False
                delay *= 2
        return False
