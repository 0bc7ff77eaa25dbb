"""Small hand-written fakes for the ports, so that logic is tested without mocks or AWS."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from db.call_log import CallStatus
from db.contacts import MemberContact
from db.operations import OperationClaim
from db.watermarks import Mark, merge
from dig_api.publisher import PUBLISHED, PublishOutcome
from dig_connector_kit.testing import InMemoryAuditStore
from dig_contracts.bus import BusDetail, CallbackDetail
from dig_contracts.files import FileReadyDetail

FakeAuditStore = InMemoryAuditStore  # the kit's, which connector authors' tests use too


@dataclass
class FakePublisher:
    """PutEvents in memory; ``refuse`` names eventIds the bus rejects."""

    published: list[BusDetail] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    calls: int = 0

    callbacks: list[CallbackDetail] = field(default_factory=list)
    files_ready: list[FileReadyDetail] = field(default_factory=list)

    def publish_callback(self, detail: CallbackDetail) -> PublishOutcome:
        self.callbacks.append(detail)
        return PUBLISHED

    def publish_file_ready(self, detail: FileReadyDetail) -> PublishOutcome:
        self.files_ready.append(detail)
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
    due: dict[tuple[str, str], float] = field(default_factory=dict)
    results: dict[tuple[str, str], tuple[Any, bool]] = field(default_factory=dict)
    receipts: dict[tuple[str, str], str] = field(default_factory=dict)
    overdue: set[tuple[str, str]] = field(default_factory=set)
    now: float = 0.0

    def record(
        self, connector: str, call_id: str, carried: Mapping[str, Mapping[str, list[str]]], *, due_in_seconds: int
    ) -> None:
        self.calls[(connector, call_id)] = {c: {m: list(f) for m, f in ms.items()} for c, ms in carried.items()}
        self.due[(connector, call_id)] = self.now + due_in_seconds

    def lookup(self, connector: str, call_id: str) -> dict[str, dict[str, list[str]]] | None:
        return self.calls.get((connector, call_id))

    def keep_results(
        self, connector: str, call_id: str, payload: Any, *, readable: bool, receipt: str | None = None
    ) -> bool:
        if receipt is not None:
            if self.receipts.get((connector, call_id), receipt) != receipt:
                return False
            self.receipts[(connector, call_id)] = receipt
        self.results[(connector, call_id)] = (payload, readable)
        return True

    def flag_overdue(self, connector: str) -> list[str]:
        late = [
            key
            for key, due in self.due.items()
            if key[0] == connector and due < self.now and key not in self.results and key not in self.overdue
        ]
        self.overdue.update(late)
        return [call_id for _, call_id in late]

    def status(self, connector: str, call_id: str) -> CallStatus | None:
        return None


@dataclass
class FakeContactStore:
    contacts: dict[str, MemberContact] = field(default_factory=dict)
    writes: int = 0

    def get(self, member_ids: Iterable[str]) -> dict[str, MemberContact]:
        return {m: self.contacts[m] for m in member_ids if m in self.contacts}

    def keep(self, contacts: Mapping[str, MemberContact], known: Mapping[str, MemberContact]) -> None:
        for member, contact in contacts.items():
            if (contact.email or contact.locale) and known.get(member) != contact:
                self.contacts[member] = contact
                self.writes += 1

    def forget(self, member_id: str) -> None:
        self.contacts.pop(member_id, None)


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
        if current is not None and current[1] != owner:
            return OperationClaim.BUSY
        self.state[(connector, message_id, operation)] = (OperationClaim.BUSY, owner)
        return OperationClaim.MINE

    def done(self, connector: str, message_id: str, operation: str) -> None:
        self.state[(connector, message_id, operation)] = (OperationClaim.DONE, "")

    def release(self, connector: str, message_id: str, operation: str, owner: str) -> None:
        if self.state.get((connector, message_id, operation)) == (OperationClaim.BUSY, owner):
            del self.state[(connector, message_id, operation)]
