"""In-memory fakes of the ports (dig_connector_kit.ports), for a connector's tests and DIG's own.
tests/unit/test_member_data.py runs the same checks against each fake and its DynamoDB adapter."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from db.audit import DONE, BeginOutcome, BeginResult, Recorded
from db.call_log import CallNotRecorded, CallStatus
from db.contacts import ContactRow, FillReport, MemberContact
from db.operations import OperationClaim
from db.records import DeliveryRecord, MessageRecord, MessageView, PublishState, iso, utc_now
from db.watermarks import Mark, merge
from dig_connector_kit.inbound import EmitReport
from dig_contracts.bus import BusDetail, CallbackDetail, message_id_for
from dig_contracts.files import FileReadyDetail
from dig_contracts.inbound import InboundFields, WebhookReceipt
from dig_contracts.publisher import PUBLISHED, PublishOutcome


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

    def get_deliveries(
        self, connector: str, message_ids: Iterable[str], *, consistent: bool = True
    ) -> dict[str, DeliveryRecord]:
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
    due: dict[tuple[str, str], float] = field(default_factory=dict)
    results: dict[tuple[str, str], tuple[Any, bool]] = field(default_factory=dict)
    receipts: dict[tuple[str, str], str] = field(default_factory=dict)
    overdue: set[tuple[str, str]] = field(default_factory=set)
    now: float = 0.0
    # When each call was made, its results kept, and it was flagged overdue (status()).
    times: dict[tuple[str, str, str], float] = field(default_factory=dict)

    def record(
        self, connector: str, call_id: str, carried: Mapping[str, Mapping[str, list[str]]], *, due_in_seconds: int
    ) -> None:
        self.calls[(connector, call_id)] = {c: {m: list(f) for m, f in ms.items()} for c, ms in carried.items()}
        self.due[(connector, call_id)] = self.now + due_in_seconds
        self.times[(connector, call_id, "called")] = self.now
        self.overdue.discard((connector, call_id))  # recorded again: awaited again (a result still pending)

    def lookup(self, connector: str, call_id: str) -> dict[str, dict[str, list[str]]] | None:
        return self.calls.get((connector, call_id))

    def keep_results(
        self, connector: str, call_id: str, payload: Any, *, readable: bool, receipt: str | None = None
    ) -> bool:
        if (connector, call_id) not in self.calls:
            raise CallNotRecorded(f"{connector} call {call_id} is not in the call log")
        if receipt is not None:
            if self.receipts.get((connector, call_id), receipt) != receipt:
                return False
            self.receipts[(connector, call_id)] = receipt
        self.results[(connector, call_id)] = (payload, readable)
        self.times[(connector, call_id, "results")] = self.now
        return True

    def flag_overdue(self, connector: str) -> list[str]:
        late = [
            key
            for key, due in self.due.items()
            if key[0] == connector and due < self.now and key not in self.results and key not in self.overdue
        ]
        self.overdue.update(late)
        self.times.update({(*key, "overdue"): self.now for key in late})
        return [call_id for _, call_id in late]

    def status(self, connector: str, call_id: str) -> CallStatus | None:
        key = (connector, call_id)
        if key not in self.calls:
            return None

        def at(what: str) -> str | None:
            when = self.times.get((*key, what))
            return None if when is None else iso(datetime.fromtimestamp(when, UTC))

        kept = self.results.get(key)
        return CallStatus(
            call_id=call_id,
            called_at=at("called"),
            due_at=iso(datetime.fromtimestamp(self.due[key], UTC)),
            results_at=at("results"),
            readable=kept[1] if kept else None,
            overdue_at=at("overdue") if key in self.overdue else None,
        )


@dataclass
class FakeContactStore:
    contacts: dict[str, MemberContact] = field(default_factory=dict)
    writes: int = 0
    erased: dict[str, str] = field(default_factory=dict)  # member -> when forgotten (UTC ISO)

    def get(self, member_ids: Iterable[str]) -> dict[str, MemberContact]:
        return {m: self.contacts[m] for m in member_ids if m in self.contacts}

    def keep(self, contacts: Mapping[str, MemberContact], known: Mapping[str, MemberContact]) -> None:
        for member, contact in contacts.items():
            if contact.known and known.get(member) != contact:
                self.contacts[member] = contact
                self.writes += 1

    def forget(self, member_id: str) -> None:
        self.contacts.pop(member_id, None)
        self.erased[member_id] = iso(utc_now())

    def fill(self, rows: Iterable[ContactRow]) -> FillReport:
        listed = sorted(rows, key=lambda r: r.updated_at)
        report = FillReport(rows=len(listed))
        for row in listed:
            if row.member_id in self.erased and row.updated_at <= self.erased[row.member_id]:
                report.erased += 1
                continue
            before = self.contacts.get(row.member_id, MemberContact())
            after = before.merged(row.email, row.locale, row.updated_at, row.source)
            if after is before:
                report.older += int(bool(row.email or row.locale))
                continue
            self.contacts[row.member_id] = after
            self.writes += 1
            report.written += 1
        return report

    def members_by_email(self, emails: Iterable[str]) -> dict[str, str]:
        wanted = {email.strip().lower() for email in emails}
        return {
            (c.email or "").lower(): member for member, c in self.contacts.items() if (c.email or "").lower() in wanted
        }


@dataclass
class FakeRequeue:
    sent: list[tuple[BusDetail, int]] = field(default_factory=list)

    def send(self, details: Sequence[BusDetail], delay_seconds: int) -> None:
        self.sent.extend((detail, delay_seconds) for detail in details)


@dataclass
class FakeOperationLedger:
    """Once-only operations in memory; ``state`` (key -> (state, owner)) can be set to stage a race."""

    state: dict[tuple[str, str, str], tuple[str, str]] = field(default_factory=dict)

    def claim(self, connector: str, message_id: str, operation: str, owner: str) -> OperationClaim:
        current = self.state.get((connector, message_id, operation))
        if current is not None and current[0] == OperationClaim.DONE:
            return OperationClaim.DONE
        if current is not None:  # held, by another copy or by this owner already (as DynamoDB answers)
            return OperationClaim.BUSY
        self.state[(connector, message_id, operation)] = (OperationClaim.BUSY, owner)
        return OperationClaim.MINE

    def done(self, connector: str, message_id: str, operation: str) -> None:
        self.state[(connector, message_id, operation)] = (OperationClaim.DONE, "")

    def release(self, connector: str, message_id: str, operation: str, owner: str) -> None:
        if self.state.get((connector, message_id, operation)) == (OperationClaim.BUSY, owner):
            del self.state[(connector, message_id, operation)]


@dataclass
class FakePublisher:
    """PutEvents in memory; ``refuse`` names eventIds the bus rejects."""

    published: list[BusDetail] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    calls: int = 0

    callbacks: list[CallbackDetail] = field(default_factory=list)
    files_ready: list[FileReadyDetail] = field(default_factory=list)
    receipts: list[WebhookReceipt] = field(default_factory=list)

    def publish_callback(self, detail: CallbackDetail) -> PublishOutcome:
        self.callbacks.append(detail)
        return PUBLISHED

    def publish_file_ready(self, detail: FileReadyDetail) -> PublishOutcome:
        self.files_ready.append(detail)
        return PUBLISHED

    def publish_webhook_receipt(self, receipt: WebhookReceipt) -> PublishOutcome:
        self.receipts.append(receipt)
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
class FakePollCursors:
    positions: dict[tuple[str, str], str] = field(default_factory=dict)

    def read(self, connector: str, job: str) -> str | None:
        return self.positions.get((connector, job))

    def advance(self, connector: str, job: str, position: str) -> None:
        current = self.positions.get((connector, job))
        if current is None or current <= position:
            self.positions[(connector, job)] = position


@dataclass
class EmittedEvents:
    """The inbound events a connector emits while it delivers (what the kit's InboundEmitter would put on
    the bus), kept in a list for a test to read."""

    events: list[InboundFields] = field(default_factory=list)

    def emit(self, events: Sequence[InboundFields]) -> EmitReport:
        self.events.extend(events)
        return EmitReport(emitted=[message_id_for(e.eventId) for e in events])
