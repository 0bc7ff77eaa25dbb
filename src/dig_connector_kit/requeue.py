"""Sending a message back to the connector's own queue, later: for a provider verdict that may change
with time (Optimove's INVALID_CUSTOMER before the customer exists). The same shape a rule delivers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from dig_contracts.bus import BusDetail, eventbridge_event

SQS_MAX_DELAY_SECONDS = 900


class Requeue(Protocol):
    def send(self, details: Sequence[BusDetail], delay_seconds: int) -> None: ...


class SqsRequeue:
    def __init__(self, sqs: Any, queue_url: str, region: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._region = region

    def send(self, details: Sequence[BusDetail], delay_seconds: int) -> None:
        delay = max(0, min(delay_seconds, SQS_MAX_DELAY_SECONDS))
        for start in range(0, len(details), 10):
            entries = [
                {
                    "Id": str(index),
                    "MessageBody": json.dumps(eventbridge_event(detail, region=self._region)),
                    "DelaySeconds": delay,
                }
                for index, detail in enumerate(details[start : start + 10])
            ]
            answer = self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
            if answer.get("Failed"):
                raise RuntimeError(f"SQS refused {len(answer['Failed'])} of {len(entries)} messages")
