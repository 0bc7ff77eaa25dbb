"""Emitting inbound events (dig_contracts.inbound): a connector's reading of a provider's webhook or
poll, put on the bus for the connector that delivers to ES Loyalty, and recorded in the audit trail
as messages like ES Loyalty's own, so that status, audit and replay treat them alike.

As the DIG API does with ES Loyalty's events (dig_api.ingest): publish, then record once. An event
whose record says it was published is not published again (the same unsubscribe polled twice, the
same webhook sent twice); one the bus refused raises ``InboundNotPublished``, so the caller's input
(the webhook's receipt, the poll) is tried again and nothing accepted is lost. That logic is kept
here rather than shared with dig_api.ingest: the API's version answers HTTP clients (leases for the
synchronous flow, per-entry errors), which an emitter has none of.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from db.audit import AuditStore
from db.records import MessageRecord, PublishState, iso, utc_now
from dig_contracts.bus import BusDetail, message_id_for
from dig_contracts.inbound import InboundFields
from dig_contracts.publisher import EventPublisher

logger = logging.getLogger(__name__)


class InboundNotPublished(RuntimeError):
    """The bus (or the audit table) did not take some of the events: try the input again."""


@dataclass
class EmitReport:
    emitted: list[str] = field(default_factory=list)  # message ids put on the bus now
    duplicates: list[str] = field(default_factory=list)  # emitted before: nothing sent

    def merge(self, other: EmitReport) -> None:
        self.emitted.extend(other.emitted)
        self.duplicates.extend(other.duplicates)


class Emitter(Protocol):
    """What puts a connector's inbound events on the bus: InboundEmitter (Kit.inbound), or a test's
    dig_connector_kit.testing.EmittedEvents."""

    def emit(self, events: Sequence[InboundFields]) -> EmitReport: ...


class InboundEmitter:
    def __init__(
        self,
        connector: str,
        audit: AuditStore,
        publisher: EventPublisher,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._connector = connector
        self._audit = audit
        self._publisher = publisher
        self._clock = clock

    def emit(self, events: Sequence[InboundFields]) -> EmitReport:
        report = EmitReport()
        records = {record.messageId: record for record in map(self._record, events)}  # one per event id
        if not records:
            return report
        existing = self._audit.find_messages(records)
        fresh: list[MessageRecord] = []
        for message_id, record in records.items():
            found = existing.get(message_id)
            if found is not None and found.publishState is PublishState.PUBLISHED:
                report.duplicates.append(message_id)
            else:
                fresh.append(record)
        if not fresh:
            return report
        outcomes = self._publisher.publish([BusDetail(messageId=r.messageId, event=r.envelope) for r in fresh])
        now = iso(self._clock())
        published = [
            record.model_copy(update={"publishState": PublishState.PUBLISHED, "publishedAt": now})
            for record, outcome in zip(fresh, outcomes, strict=True)
            if outcome.ok
        ]
        recorded = self._audit.record_messages(
            published, owner=self._connector, absent={r.messageId for r in published if r.messageId not in existing}
        )
        for record in published:
            answer = recorded[record.messageId]
            if answer.written:
                report.emitted.append(record.messageId)
            elif answer.standing is not None and answer.standing.publishState is PublishState.PUBLISHED:
                report.duplicates.append(record.messageId)  # a racing copy of the same input recorded it
        missing = len(fresh) - len(report.emitted) - sum(1 for r in fresh if r.messageId in report.duplicates)
        if missing:
            logger.error("inbound events not emitted", extra={"connector": self._connector, "count": missing})
            raise InboundNotPublished(f"{missing} of {len(fresh)} inbound events were not taken by the bus or audit")
        return report

    def _record(self, event: InboundFields) -> MessageRecord:
        envelope = event.model_dump(mode="json", exclude_none=True)
        return MessageRecord(
            messageId=message_id_for(event.eventId),
            eventId=event.eventId,
            eventType=envelope["eventType"],
            memberId=event.memberId,
            programId=event.programId,
            occurredAt=envelope["occurredAt"],
            receivedAt=iso(self._clock()),
            client=f"{event.origin.connector}/{event.origin.source}",
            sizeBytes=len(json.dumps(envelope, separators=(",", ":")).encode()),
            envelope=envelope,
        )
