"""Accepting ES Loyalty events: record, publish, mark published. No HTTP and no boto3 here.

The order is what makes "accepted" true: the audit record is written before the event goes on the
bus, and marked published after. If publishing fails the record says so and the client is told to
retry; the retry (same eventId, hence same messageId) completes the publish instead of answering
"duplicate". Two requests racing with one event cannot both publish: a conditional write gives
one of them the publish lease.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from db.audit import AuditStore, AuditUnavailable, BeginOutcome, BeginResult
from db.records import FileLine, MessageRecord, MessageView, PublishState, iso, utc_now
from dig_api.errors import (
    ApiError,
    CardNumberRefused,
    ErrorDetail,
    PayloadTooLarge,
    PublishInProgress,
    ServiceUnavailable,
    ValidationFailed,
    card_number_details,
    validation_details,
)
from dig_api.publisher import EventPublisher
from dig_contracts.bus import BusDetail, CallbackDetail, message_id_for
from dig_contracts.events import EnvelopeFields, EventType, event_to_json_dict, parse_event
from dig_contracts.pan import may_hold_card_number

logger = logging.getLogger(__name__)

EVENT_TAGS = frozenset(t.value for t in EventType)
# EventBridge takes entries up to 1 MB; DIG's wrapper (messageId, keys) needs a little of that.
MAX_EVENT_BYTES = 1_000_000
MAX_BATCH_EVENTS = 500
PUBLISH_LEASE_SECONDS = 30


@dataclass(frozen=True)
class Caller:
    """Who sent the request, for the audit record."""

    request_id: str
    client_id: str | None = None
    source_ip: str | None = None


class IngestStatus(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Accepted:
    status: IngestStatus
    message_id: str


@dataclass(frozen=True)
class BatchEntryResult:
    index: int
    event_id: str | None
    status: IngestStatus
    message_id: str | None = None
    error: ApiError | None = None


def check_event_size(size_bytes: int) -> None:
    if size_bytes > MAX_EVENT_BYTES:
        raise PayloadTooLarge(f"an event may be at most {MAX_EVENT_BYTES} bytes; this one is {size_bytes}")


def check_card_numbers(raw: str, document: Any) -> None:
    """Refuse an event holding a card number. One regex pass over the raw body screens it; the
    document is walked, to name the fields, only when that pass finds a candidate."""
    if not may_hold_card_number(raw):
        return
    details = card_number_details(document)
    if details:
        raise CardNumberRefused("the event holds what looks like a payment card number", details)


def validate_event(document: Any) -> EnvelopeFields:
    """Validate a decoded JSON document as an event, reporting every violated field (422)."""
    try:
        event = parse_event(document)
    except ValidationError as error:
        details = validation_details(error.errors(include_input=False), event_tags=EVENT_TAGS)
        details += card_number_details(document)
        raise ValidationFailed("the event does not match its schema", details) from None
    if may_hold_card_number(json.dumps(document, ensure_ascii=False)):
        details = card_number_details(document)
        if details:
            raise CardNumberRefused("the event holds what looks like a payment card number", details)
    assert isinstance(event, EnvelopeFields)
    return event


class IngestService:
    def __init__(
        self,
        audit: AuditStore,
        publisher: EventPublisher,
        *,
        clock: Callable[[], datetime] = utc_now,
        lease_seconds: int = PUBLISH_LEASE_SECONDS,
        parallelism: int = 16,
    ) -> None:
        self._audit = audit
        self._publisher = publisher
        self._clock = clock
        self._lease_seconds = lease_seconds
        self._parallelism = parallelism

    @property
    def audit(self) -> AuditStore:
        return self._audit

    @property
    def publisher(self) -> EventPublisher:
        return self._publisher

    # --- one event ------------------------------------------------------------------------

    def ingest(self, event: EnvelopeFields, size_bytes: int, caller: Caller) -> Accepted:
        check_event_size(size_bytes)
        begun = self._begin(event, size_bytes, caller)
        if begun.outcome is BeginOutcome.DUPLICATE:
            return Accepted(IngestStatus.DUPLICATE, begun.record.messageId)
        if begun.outcome is BeginOutcome.IN_PROGRESS:
            raise PublishInProgress(
                "another request is publishing this eventId right now; retry shortly for its outcome",
                headers={"Retry-After": "1"},
            )
        record = begun.record
        (outcome,) = self._publisher.publish([BusDetail(messageId=record.messageId, event=record.envelope)])
        if not outcome.ok:
            self._record_publish_failure(record.messageId, f"{outcome.error_code}: {outcome.error_message}")
            raise ServiceUnavailable(
                "the event bus did not take the event; it is recorded, retry with the same eventId",
                headers={"Retry-After": str(ServiceUnavailable.retry_after)},
            )
        self._mark_published(record.messageId, begun=begun)
        return Accepted(IngestStatus.ACCEPTED, record.messageId)

    # --- a batch ---------------------------------------------------------------------------

    def ingest_batch(
        self,
        documents: Sequence[Any],
        sizes: Sequence[int],
        caller: Caller,
        origins: Sequence[FileLine] | None = None,
    ) -> list[BatchEntryResult]:
        """Each entry on its own: a bad entry rejects only itself. Entries the bus keeps refusing
        are rejected with a retryable error, never reported accepted. ``origins``: each entry's file
        and line (the batch-file flow); a line this file already got accepted, in an earlier run of
        it, is reported accepted again, not duplicate."""
        results: dict[int, BatchEntryResult] = {}
        valid: list[tuple[int, EnvelopeFields]] = []
        first_of: dict[str, int] = {}  # eventId -> the entry that carries it in this batch
        repeats: dict[int, int] = {}
        for index, (document, size) in enumerate(zip(documents, sizes, strict=True)):
            raw_id = document.get("eventId") if isinstance(document, dict) else None
            event_id = raw_id if isinstance(raw_id, str) else None
            try:
                check_event_size(size)
                event = validate_event(document)
            except ApiError as error:
                results[index] = BatchEntryResult(index, event_id, IngestStatus.REJECTED, error=error)
                continue
            if event.eventId in first_of:
                repeats[index] = first_of[event.eventId]
                continue
            first_of[event.eventId] = index
            valid.append((index, event))

        def begin(item: tuple[int, EnvelopeFields]) -> tuple[int, EnvelopeFields, BeginResult | ApiError]:
            index, event = item
            try:
                return index, event, self._begin(event, sizes[index], caller, origins[index] if origins else None)
            except ServiceUnavailable as error:
                return index, event, error

        with ThreadPoolExecutor(max_workers=self._parallelism) as pool:
            begun = list(pool.map(begin, valid))

        to_publish: list[tuple[int, MessageRecord]] = []
        begun_by_index: dict[int, BeginResult] = {}
        for index, event, begin_outcome in begun:
            outcome = begin_outcome
            if isinstance(outcome, ApiError):
                results[index] = BatchEntryResult(index, event.eventId, IngestStatus.REJECTED, error=outcome)
            elif outcome.outcome is BeginOutcome.DUPLICATE:
                again = origins is not None and origins[index] == outcome.record.origin
                results[index] = BatchEntryResult(
                    index,
                    event.eventId,
                    IngestStatus.ACCEPTED if again else IngestStatus.DUPLICATE,
                    message_id=outcome.record.messageId,
                )
            elif outcome.outcome is BeginOutcome.IN_PROGRESS:
                results[index] = BatchEntryResult(
                    index,
                    event.eventId,
                    IngestStatus.REJECTED,
                    message_id=outcome.record.messageId,
                    error=PublishInProgress("another request is publishing this eventId right now; retry shortly"),
                )
            else:
                to_publish.append((index, outcome.record))
                begun_by_index[index] = outcome

        published_outcomes = self._publisher.publish(
            [BusDetail(messageId=record.messageId, event=record.envelope) for _, record in to_publish]
        )
        published = [(i, r) for (i, r), o in zip(to_publish, published_outcomes, strict=True) if o.ok]
        with ThreadPoolExecutor(max_workers=self._parallelism) as pool:
            list(
                pool.map(lambda item: self._mark_published(item[1].messageId, begun=begun_by_index[item[0]]), published)
            )
        for (index, record), publish in zip(to_publish, published_outcomes, strict=True):
            if publish.ok:
                results[index] = BatchEntryResult(
                    index, record.eventId, IngestStatus.ACCEPTED, message_id=record.messageId
                )
                continue
            self._record_publish_failure(record.messageId, f"{publish.error_code}: {publish.error_message}")
            results[index] = BatchEntryResult(
                index,
                record.eventId,
                IngestStatus.REJECTED,
                message_id=record.messageId,
                error=ServiceUnavailable(
                    f"the event bus did not take the event ({publish.error_code}); "
                    "it is recorded, retry it with the same eventId"
                ),
            )
        for index, first in repeats.items():
            original = results[first]
            if original.status is IngestStatus.REJECTED:
                results[index] = BatchEntryResult(index, original.event_id, IngestStatus.REJECTED, error=original.error)
            else:
                results[index] = BatchEntryResult(
                    index, original.event_id, IngestStatus.DUPLICATE, message_id=original.message_id
                )
        return [results[index] for index in range(len(documents))]

    # --- provider callbacks ------------------------------------------------------------------

    def accept_callback(self, detail: CallbackDetail) -> None:
        outcome = self._publisher.publish_callback(detail)
        if not outcome.ok:
            logger.error("callback not published", extra={"connector": detail.connector, "callId": detail.callId})
            raise ServiceUnavailable(
                "the event bus did not take the callback; send it again", headers={"Retry-After": "5"}
            )

    # --- reading ---------------------------------------------------------------------------

    def message(self, message_id: str) -> MessageView | None:
        try:
            return self._audit.get_message(message_id)
        except AuditUnavailable as error:
            logger.error("audit table unavailable", extra={"error": str(error)})
            raise ServiceUnavailable("the audit trail cannot be read right now", headers={"Retry-After": "5"}) from None

    def message_for_event(self, event_id: str) -> MessageView | None:
        return self.message(message_id_for(event_id))

    # --- steps -----------------------------------------------------------------------------

    def begin(self, event: EnvelopeFields, size_bytes: int, caller: Caller) -> BeginResult:
        """Record the message (or find it): the first step of every flow."""
        check_event_size(size_bytes)
        return self._begin(event, size_bytes, caller)

    def mark_delivered_synchronously(self, message_id: str) -> None:
        self._mark_published(message_id, PublishState.SYNC)

    def _begin(
        self, event: EnvelopeFields, size_bytes: int, caller: Caller, origin: FileLine | None = None
    ) -> BeginResult:
        envelope = event_to_json_dict(event)
        record = MessageRecord(
            messageId=message_id_for(event.eventId),
            eventId=event.eventId,
            eventType=envelope["eventType"],
            memberId=event.memberId,
            programId=event.programId,
            occurredAt=envelope["occurredAt"],
            receivedAt=iso(self._clock()),
            client=caller.client_id,
            sourceIp=caller.source_ip,
            sizeBytes=size_bytes,
            envelope=envelope,
            fileId=origin.file_id if origin else None,
            fileLine=origin.line if origin else None,
        )
        try:
            return self._audit.begin_message(record, owner=caller.request_id, lease_seconds=self._lease_seconds)
        except AuditUnavailable as error:
            logger.error("audit table unavailable", extra={"error": str(error)})
            raise ServiceUnavailable(
                "the audit trail cannot be written right now; nothing was accepted, retry later",
                headers={"Retry-After": "5"},
            ) from None

    def _mark_published(
        self, message_id: str, state: PublishState = PublishState.PUBLISHED, *, begun: BeginResult | None = None
    ) -> None:
        try:
            self._audit.mark_published(message_id, state, begun)
        except AuditUnavailable as error:
            # The event is on the bus: it is accepted. The record still reads PENDING, so a retry
            # would publish it again, which connectors absorb (they deduplicate on messageId).
            logger.error("published but not marked published", extra={"messageId": message_id, "error": str(error)})

    def _record_publish_failure(self, message_id: str, error: str) -> None:
        logger.error("publish failed", extra={"messageId": message_id, "error": error})
        try:
            self._audit.mark_publish_failed(message_id, error)
        except Exception as failure:  # the lease expires on its own; a retry takes the publish over
            logger.error("could not record the publish failure", extra={"messageId": message_id, "error": str(failure)})


def batch_too_large(count: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"a batch may hold at most {MAX_BATCH_EVENTS} events; this one holds {count}",
        [ErrorDetail(field="events", rule=f"at most {MAX_BATCH_EVENTS} items")],
    )
