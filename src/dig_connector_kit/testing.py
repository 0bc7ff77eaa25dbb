"""Test doubles a connector author's tests use: the audit store in memory, SQS records as the event
source mapping hands them over. (DIG's own tests use them too.)"""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from db.audit import DONE, BeginOutcome, BeginResult, Recorded
from db.records import DeliveryRecord, MessageRecord, MessageView, PublishState
from dig_contracts.bus import BusDetail, eventbridge_event, message_id_for
from dig_contracts.files import FILE_READY, FILES_SOURCE, FileReadyDetail


def sqs_record(event: dict[str, Any], *, receive_count: int = 1, record_id: str | None = None) -> dict[str, Any]:
    """An ES Loyalty event as the connector's queue delivers it (the EventBridge event a rule put there)."""
    detail = BusDetail(messageId=message_id_for(event["eventId"]), event=event)
    return {
        "messageId": record_id or f"sqs-{event['eventId']}-{receive_count}",
        "body": json.dumps(eventbridge_event(detail, region="us-east-1")),
        "attributes": {"ApproximateReceiveCount": str(receive_count)},
    }


def file_ready_record(detail: FileReadyDetail, *, record_id: str | None = None) -> dict[str, Any]:
    """A FILE_READY event as the connector's queue delivers it (a connector whose manifest names extracts)."""
    event = {
        "version": "0",
        "id": f"file-ready-{detail.fileId}",
        "detail-type": FILE_READY,
        "source": FILES_SOURCE,
        "time": detail.completedAt,
        "region": "us-east-1",
        "resources": [],
        "detail": detail.model_dump(mode="json"),
    }
    return {
        "messageId": record_id or f"sqs-{detail.fileId}",
        "body": json.dumps(event),
        "attributes": {"ApproximateReceiveCount": "1"},
    }


class InMemoryAuditStore:
    """The audit store's contract, in memory: conditional create, publish lease, deliveries."""

    def __init__(self) -> None:
        self.messages: dict[str, MessageRecord] = {}
        self.deliveries: dict[tuple[str, str], DeliveryRecord] = {}
        self.leases: dict[str, str] = {}
        self.fail_writes = False
        self.fail_records = False  # record_messages fails (after the publish), reads still work
        self._lock = threading.Lock()

    def begin_message(self, record: MessageRecord, *, owner: str, lease_seconds: int) -> BeginResult:
        from db.audit import AuditUnavailable

        if self.fail_writes:
            raise AuditUnavailable("fake: table unavailable")
        with self._lock:
            existing = self.messages.get(record.messageId)
            if existing is None:
                self.messages[record.messageId] = record
                self.leases[record.messageId] = owner
                return BeginResult(BeginOutcome.NEW, record)
            if existing.publishState in (PublishState.PUBLISHED, PublishState.SYNC):
                return BeginResult(BeginOutcome.DUPLICATE, existing)
            if self.leases.get(record.messageId, owner) != owner:
                return BeginResult(BeginOutcome.IN_PROGRESS, existing)
            self.leases[record.messageId] = owner
            existing.publishAttempts += 1
            return BeginResult(BeginOutcome.RESUMED, existing)

    def mark_published(
        self, message_id: str, state: PublishState = PublishState.PUBLISHED, begun: BeginResult | None = None
    ) -> None:
        with self._lock:
            self.messages[message_id].publishState = state
            self.leases.pop(message_id, None)

    def find_messages(self, message_ids: Iterable[str]) -> dict[str, MessageRecord]:
        from db.audit import AuditUnavailable

        if self.fail_writes:
            raise AuditUnavailable("fake: table unavailable")
        return {m: self.messages[m].model_copy() for m in message_ids if m in self.messages}

    def record_messages(
        self, records: Sequence[MessageRecord], *, owner: str, absent: Collection[str] = ()
    ) -> dict[str, Recorded]:
        answers: dict[str, Recorded] = {}
        with self._lock:
            for record in records:
                standing = self.messages.get(record.messageId)
                holder = self.leases.get(record.messageId)
                replaceable = standing is None or (
                    not standing.erasedAt
                    and (
                        standing.publishState is PublishState.FAILED
                        or (standing.publishState is PublishState.PENDING and holder in (None, owner))
                    )
                )
                if self.fail_writes or self.fail_records:
                    answers[record.messageId] = Recorded(False, unavailable=True)
                elif replaceable:
                    self.messages[record.messageId] = record.model_copy()
                    self.leases.pop(record.messageId, None)
                    answers[record.messageId] = Recorded(True)
                else:
                    assert standing is not None
                    answers[record.messageId] = Recorded(False, standing=standing.model_copy())
        return answers

    def get_message(self, message_id: str) -> MessageView | None:
        message = self.messages.get(message_id)
        if message is None:
            return None
        deliveries = [d for (m, _), d in self.deliveries.items() if m == message_id]
        return MessageView(message=message, deliveries=deliveries)

    def get_deliveries(self, connector: str, message_ids: Iterable[str]) -> dict[str, DeliveryRecord]:
        return {m: self.deliveries[(m, connector)] for m in message_ids if (m, connector) in self.deliveries}

    def save_deliveries(
        self, records: Sequence[DeliveryRecord], *, replace_done: bool = False
    ) -> dict[str, DeliveryRecord]:
        standing: dict[str, DeliveryRecord] = {}
        for record in records:
            key = (record.messageId, record.connector)
            stored = self.deliveries.get(key)
            if not replace_done and record.status not in DONE and stored is not None and stored.status in DONE:
                standing[record.messageId] = stored
                continue
            self.deliveries[key] = record
        return standing
