"""Small hand-written fakes for the ports, so that logic is tested without mocks or AWS."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from db.audit import DONE, BeginOutcome, BeginResult
from db.operations import OperationClaim
from db.records import DeliveryRecord, MessageRecord, MessageView, PublishState
from db.watermarks import Mark, merge
from dig_api.publisher import PUBLISHED, PublishOutcome
from dig_contracts.bus import BusDetail, CallbackDetail


class FakeAuditStore:
    """The audit store's contract, in memory: conditional create, publish lease, deliveries."""

    def __init__(self) -> None:
        self.messages: dict[str, MessageRecord] = {}
        self.deliveries: dict[tuple[str, str], DeliveryRecord] = {}
        self.leases: dict[str, str] = {}
        self.fail_writes = False
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
            if record.messageId in self.leases:
                return BeginResult(BeginOutcome.IN_PROGRESS, existing)
            self.leases[record.messageId] = owner
            existing.publishAttempts += 1
            return BeginResult(BeginOutcome.RESUMED, existing)

    def mark_published(self, message_id: str, state: PublishState = PublishState.PUBLISHED) -> None:
        with self._lock:
            self.messages[message_id].publishState = state
            self.leases.pop(message_id, None)

    def mark_publish_failed(self, message_id: str, error: str) -> None:
        with self._lock:
            self.messages[message_id].publishState = PublishState.FAILED
            self.messages[message_id].publishError = error
            self.leases.pop(message_id, None)

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


@dataclass
class FakePublisher:
    """PutEvents in memory; ``refuse`` names eventIds the bus rejects."""

    published: list[BusDetail] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    calls: int = 0

    callbacks: list[CallbackDetail] = field(default_factory=list)

    def publish_callback(self, detail: CallbackDetail) -> PublishOutcome:
        self.callbacks.append(detail)
        return PUBLISHED

    def publish(self, details: Sequence[BusDetail]) -> list[PublishOutcome]:
        self.calls += 1
        outcomes = []
        for detail in details:
            if detail.event["eventId"] in self.refuse:
                outcomes.append(PublishOutcome(ok=False, error_code="InternalFailure", error_message="fake refusal"))
            else:
                self.published.append(detail)
                outcomes.append(PUBLISHED)
        return outcomes


@dataclass
class FakeWatermarks:
    marks: dict[str, dict[str, dict[str, Mark]]] = field(default_factory=dict)

    def get(self, connector: str, member_ids: Iterable[str]) -> dict[str, dict[str, Mark]]:
        stored = self.marks.get(connector, {})
        return {m: dict(stored[m]) for m in member_ids if m in stored}

    def advance(
        self, connector: str, marks: Mapping[str, Mapping[str, Mark]], known: Mapping[str, Mapping[str, Mark]]
    ) -> None:
        stored = self.marks.setdefault(connector, {})
        for member, fields in marks.items():
            stored[member] = merge(known.get(member, {}), fields)

    def forget(self, connector: str, sent_by: Mapping[str, Mapping[str, str]]) -> None:
        stored = self.marks.setdefault(connector, {})
        for member, fields in sent_by.items():
            current = stored.get(member, {})
            stored[member] = {f: mark for f, mark in current.items() if fields.get(f) != mark[1]}


@dataclass
class FakeCallLog:
    calls: dict[tuple[str, str], dict[str, dict[str, list[str]]]] = field(default_factory=dict)

    def record(self, connector: str, call_id: str, carried: Mapping[str, Mapping[str, list[str]]]) -> None:
        self.calls[(connector, call_id)] = {c: {m: list(f) for m, f in ms.items()} for c, ms in carried.items()}

    def lookup(self, connector: str, call_id: str) -> dict[str, dict[str, list[str]]] | None:
        return self.calls.get((connector, call_id))


@dataclass
class FakeOperationLedger:
    """Once-only operations in memory; ``state`` (key -> (state, owner)) can be set to stage a race."""

    state: dict[tuple[str, str, str], tuple[str, str]] = field(default_factory=dict)

    def claim(self, connector: str, message_id: str, operation: str, owner: str) -> OperationClaim:
        current = self.state.get((connector, message_id, operation))
        if current is not None and current[0] == OperationClaim.DONE:
            return OperationClaim.DONE
        if current is not None and current[1] != owner:
            return OperationClaim.BUSY
        self.state[(connector, message_id, operation)] = (OperationClaim.BUSY, owner)
        return OperationClaim.MINE

    def done(self, connector: str, message_id: str, operation: str) -> None:
        self.state[(connector, message_id, operation)] = (OperationClaim.DONE, "")

    def release(self, connector: str, message_id: str, operation: str, owner: str) -> None:
        if self.state.get((connector, message_id, operation)) == (OperationClaim.BUSY, owner):
            del self.state[(connector, message_id, operation)]
