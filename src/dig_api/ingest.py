"""Accepting ES Loyalty events: publish, then record once. No HTTP and no boto3 here.

An event is accepted when it is on the bus and its audit record says so, in one write: the record is
written after the publish, on the condition that no published record of the message stands. If the
bus refuses it, the record says that instead and the client is told to retry; if the record cannot be
written after a publish, the client is told to retry too, and the retry (same eventId, hence same
messageId) publishes again and records it. So an accepted event always has its record, and the bus
may carry a message more than once (racing posts of one event, a retry after a lost answer), as
EventBridge itself may: connectors deliver on messageId, once. Before publishing, the records of the
batch are read: an event already published is answered "duplicate" and not published again.

The synchronous flow keeps the two-step record (begin with a lease, then mark): it holds the message
while the connectors answer, and two requests must not deliver it side by side.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from db.audit import MAX_MESSAGE_ITEM_BYTES, AuditStore, AuditUnavailable, BeginResult, Recorded, message_item_size
from db.records import FileLine, MessageRecord, MessageView, PublishState, iso, utc_now
from dig_api.errors import (
    CARD_NUMBER_RULE,
    ApiError,
    CardNumberRefused,
    ErrorDetail,
    InvalidJson,
    PayloadTooLarge,
    PublishInProgress,
    ServiceUnavailable,
    ValidationFailed,
    validation_details,
)
from dig_contracts.bus import BusDetail, CallbackDetail, message_id_for
from dig_contracts.events import EnvelopeFields, EventType, event_to_json_dict, parse_event
from dig_contracts.pan import card_number_paths_in_json, echoable, may_hold_card_number
from dig_contracts.publisher import MAX_ENTRY_BYTES, EventPublisher, PublishOutcome, detail_entry_size

logger = logging.getLogger(__name__)

EVENT_TAGS = frozenset(t.value for t in EventType)
PUBLISHED_STATES = frozenset({PublishState.PUBLISHED, PublishState.SYNC})
# EventBridge takes entries up to 1 MB; DIG's wrapper (messageId, keys) needs a little of that.
MAX_EVENT_BYTES = 1_000_000
MAX_BATCH_EVENTS = 500
PUBLISH_LEASE_SECONDS = 30
# Deeper JSON is refused before it is parsed: no event schema nests more than 5 levels, and a parser
# or a walk that recursed a thousand levels would fail the request (or a file's chunk) with a 500.
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")


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


def too_deep(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON text nests arrays and objects deeper than ``limit`` (brackets in strings aside)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > limit:
            return True
    return False


def check_nesting(text: str | bytes) -> None:
    if too_deep(text):
        raise InvalidJson(
            f"the JSON nests deeper than {MAX_JSON_DEPTH} levels",
            [ErrorDetail(field="(body)", rule=f"at most {MAX_JSON_DEPTH} levels of arrays and objects")],
        )


def card_paths(raw: str | bytes) -> list[str]:
    """Where a JSON text holds a card number (dig_contracts.pan), numbers read as written. One regex
    pass screens the text; it is parsed again, to name the fields, only when that pass finds a candidate."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if not may_hold_card_number(text):
        return []
    try:
        return card_number_paths_in_json(text)
    except ValueError:
        return []


def card_paths_by_entry(raw_batch: str) -> dict[int, list[str]]:
    """card_paths of a batch body ``{"events": [...]}``, by entry, each path inside its entry."""
    found: dict[int, list[str]] = {}
    for path in card_paths(raw_batch):
        match = re.match(r"^events\[(\d+)\]\.?(.*)$", path)
        if match:
            found.setdefault(int(match.group(1)), []).append(match.group(2))
    return found


def card_details(paths: Sequence[str]) -> list[ErrorDetail]:
    return [ErrorDetail(field=path or "(body)", rule=CARD_NUMBER_RULE) for path in paths]


def check_card_numbers(raw: str | bytes) -> None:
    """Refuse an event holding a card number, naming each field that holds one."""
    paths = card_paths(raw)
    if paths:
        raise CardNumberRefused("the event holds what looks like a payment card number", card_details(paths))


def validate_event(document: Any, found_card_paths: Sequence[str] | None = None) -> EnvelopeFields:
    """Validate a decoded JSON document as an event, reporting every violated field (422).
    ``found_card_paths``: where its JSON text holds card numbers, when the caller had the text."""
    if found_card_paths is None:
        found_card_paths = card_paths(json.dumps(document, ensure_ascii=False)) if isinstance(document, dict) else []
    try:
        event = parse_event(document)
    except ValidationError as error:
        details = validation_details(
            error.errors(include_input=False), event_tags=EVENT_TAGS, document=document, card_paths=found_card_paths
        )
        raise ValidationFailed("the event does not match its schema", details) from None
    if found_card_paths:
        raise CardNumberRefused("the event holds what looks like a payment card number", card_details(found_card_paths))
    assert isinstance(event, EnvelopeFields)
    return event


def check_storable(record: MessageRecord, detail: BusDetail) -> None:
    """An event the audit table or the bus could not hold is refused on its own, naming the limit
    it passes, measured as each is written (the record compressed, the entry as UTF-8 JSON)."""
    stored = message_item_size(record)
    if stored > MAX_MESSAGE_ITEM_BYTES:
        raise PayloadTooLarge(
            f"the event takes {stored} bytes as recorded in the audit trail, compressed; at most "
            f"{MAX_MESSAGE_ITEM_BYTES} fit (DynamoDB's 400 KB item)",
            [ErrorDetail(field="(event)", rule=f"at most {MAX_MESSAGE_ITEM_BYTES} bytes as stored")],
        )
    entry = detail_entry_size(detail)
    if entry > MAX_ENTRY_BYTES:
        raise PayloadTooLarge(
            f"the event takes {entry} bytes on the event bus; at most {MAX_ENTRY_BYTES} fit (EventBridge's 1 MB entry)",
            [ErrorDetail(field="(event)", rule=f"at most {MAX_ENTRY_BYTES} bytes on the bus")],
        )


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

    def admit(self, body: str | bytes) -> int:
        """What is checked of a single event's body as received, whatever route took it: card numbers
        (refused, naming each field that holds one) and size. Its size in bytes."""
        check_card_numbers(body)
        size_bytes = len(body.encode()) if isinstance(body, str) else len(body)
        check_event_size(size_bytes)
        return size_bytes

    def ingest(self, event: EnvelopeFields, body: str | bytes, caller: Caller) -> Accepted:
        """One event, validated by the route, with the body it came in."""
        size_bytes = self.admit(body)
        (result,) = self._accept([(0, event, size_bytes, None)], caller).values()
        if result.error is not None:
            raise result.error
        assert result.message_id is not None
        return Accepted(result.status, result.message_id)

    # --- a batch ---------------------------------------------------------------------------

    def ingest_body_batch(self, documents: Sequence[Any], body: str, caller: Caller) -> list[BatchEntryResult]:
        """The batch route's entries, with the body they came in: each entry's size as compact JSON,
        and its card numbers found in one pass over the body."""
        sizes = [len(json.dumps(d, separators=(",", ":"), ensure_ascii=False).encode()) for d in documents]
        return self.ingest_batch(documents, sizes, caller, found_card_paths=card_paths_by_entry(body))

    def ingest_batch(
        self,
        documents: Sequence[Any],
        sizes: Sequence[int],
        caller: Caller,
        origins: Sequence[FileLine] | None = None,
        found_card_paths: Mapping[int, Sequence[str]] | None = None,
    ) -> list[BatchEntryResult]:
        """Each entry on its own: a bad entry rejects only itself. Entries the bus keeps refusing
        are rejected with a retryable error, never reported accepted. ``origins``: each entry's file
        and line (the batch-file flow); a line this file already got accepted, in an earlier run of
        it, is reported accepted again, not duplicate. ``found_card_paths``: where each entry's JSON
        text holds card numbers, when the caller scanned the text (card_paths_by_entry)."""
        results: dict[int, BatchEntryResult] = {}
        valid: list[tuple[int, EnvelopeFields]] = []
        first_of: dict[str, int] = {}  # eventId -> the entry that carries it in this batch
        repeats: dict[int, int] = {}
        for index, (document, size) in enumerate(zip(documents, sizes, strict=True)):
            # Never echoed when it could be a card number (or is not an id at all).
            event_id = echoable(document.get("eventId") if isinstance(document, dict) else None)
            try:
                check_event_size(size)
                event = validate_event(
                    document, found_card_paths.get(index, ()) if found_card_paths is not None else None
                )
            except ApiError as error:
                results[index] = BatchEntryResult(index, event_id, IngestStatus.REJECTED, error=error)
                continue
            if event.eventId in first_of:
                repeats[index] = first_of[event.eventId]
                continue
            first_of[event.eventId] = index
            valid.append((index, event))

        results.update(
            self._accept(
                [(index, event, sizes[index], origins[index] if origins else None) for index, event in valid], caller
            )
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

    def _accept(
        self, entries: Sequence[tuple[int, EnvelopeFields, int, FileLine | None]], caller: Caller
    ) -> dict[int, BatchEntryResult]:
        """Publish what is new, then record it: each entry's result, by its index."""
        results: dict[int, BatchEntryResult] = {}
        records: dict[int, MessageRecord] = {}
        for index, event, size, origin in entries:
            record = self._record(event, size, caller, origin)
            try:
                check_storable(record, BusDetail(messageId=record.messageId, event=record.envelope))
            except ApiError as error:
                results[index] = BatchEntryResult(index, echoable(record.eventId), IngestStatus.REJECTED, error=error)
                continue
            records[index] = record
        if not records:
            return results
        try:
            existing = self._audit.find_messages(r.messageId for r in records.values())
        except AuditUnavailable as error:
            logger.error("audit table unavailable", extra={"error": str(error)})
            unavailable = ServiceUnavailable(
                "the audit trail cannot be read right now; nothing was accepted, retry later"
            )
            results.update(
                {
                    i: BatchEntryResult(i, r.eventId, IngestStatus.REJECTED, error=unavailable)
                    for i, r in records.items()
                }
            )
            return results

        to_publish: list[tuple[int, MessageRecord]] = []
        for index, record in records.items():
            found = existing.get(record.messageId)
            if found is None:
                to_publish.append((index, record))
            elif not found.erasedAt and found.publishState in (PublishState.FAILED, PublishState.PENDING):
                # Refused by the bus before, or held by a synchronous delivery (the condition decides).
                to_publish.append((index, record.model_copy(update={"publishAttempts": found.publishAttempts + 1})))
            else:
                results[index] = self._already(index, record, found)

        outcomes = self._publisher.publish(
            [BusDetail(messageId=record.messageId, event=record.envelope) for _, record in to_publish]
        )
        now = iso(self._clock())
        written: list[MessageRecord] = []
        for (_, record), publish in zip(to_publish, outcomes, strict=True):
            if publish.ok:
                written.append(record.model_copy(update={"publishState": PublishState.PUBLISHED, "publishedAt": now}))
            else:
                refusal = f"{publish.error_code}: {publish.error_message}"
                logger.error("publish failed", extra={"messageId": record.messageId, "error": refusal})
                written.append(
                    record.model_copy(update={"publishState": PublishState.FAILED, "publishError": refusal[:1000]})
                )
        absent = {r.messageId for r in written if r.messageId not in existing}
        recorded = self._audit.record_messages(written, owner=caller.request_id, absent=absent) if written else {}

        for (index, record), publish in zip(to_publish, outcomes, strict=True):
            results[index] = self._result(index, record, publish, recorded[record.messageId])
        return results

    def _result(
        self, index: int, record: MessageRecord, publish: PublishOutcome, outcome: Recorded
    ) -> BatchEntryResult:
        """One published (or refused) event's answer, from what recording it did."""
        if outcome.standing is not None and outcome.standing.publishState in PUBLISHED_STATES:
            return self._already(index, record, outcome.standing)  # recorded meanwhile
        if publish.ok and outcome.written:
            return BatchEntryResult(index, record.eventId, IngestStatus.ACCEPTED, message_id=record.messageId)
        error: ApiError
        if not publish.ok:
            error = ServiceUnavailable(
                f"the event bus did not take the event ({publish.error_code}); "
                "it is recorded, retry it with the same eventId"
            )
        elif outcome.unavailable:
            logger.error("published but not recorded", extra={"messageId": record.messageId})
            error = ServiceUnavailable(
                "the audit trail cannot be written right now; nothing was accepted, retry it with the same eventId"
            )
        else:  # a synchronous delivery of the same event holds it right now
            error = PublishInProgress(
                "another request is delivering this eventId right now; retry shortly for its outcome"
            )
        return BatchEntryResult(index, record.eventId, IngestStatus.REJECTED, message_id=record.messageId, error=error)

    @staticmethod
    def _already(index: int, record: MessageRecord, found: MessageRecord) -> BatchEntryResult:
        """An event recorded before: a duplicate, unless it is the same file line again (a chunk run
        again), which is reported accepted as it was the first time."""
        again = record.origin is not None and record.origin == found.origin
        status = IngestStatus.ACCEPTED if again else IngestStatus.DUPLICATE
        return BatchEntryResult(index, record.eventId, status, message_id=found.messageId)

    def _record(self, event: EnvelopeFields, size_bytes: int, caller: Caller, origin: FileLine | None) -> MessageRecord:
        envelope = event_to_json_dict(event)
        return MessageRecord(
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

    # --- provider callbacks ------------------------------------------------------------------

    def accept_callback(self, detail: CallbackDetail) -> None:
        outcome = self._publisher.publish_callback(detail)
        if not outcome.ok:
            logger.error("callback not published", extra={"connector": detail.connector, "callId": detail.callId})
            raise ServiceUnavailable("the event bus did not take the callback; send it again")

    # --- reading ---------------------------------------------------------------------------

    def message(self, message_id: str) -> MessageView | None:
        try:
            return self._audit.get_message(message_id)
        except AuditUnavailable as error:
            logger.error("audit table unavailable", extra={"error": str(error)})
            raise ServiceUnavailable("the audit trail cannot be read right now") from None

    def message_for_event(self, event_id: str) -> MessageView | None:
        return self.message(message_id_for(event_id))

    # --- steps -----------------------------------------------------------------------------

    def begin(self, event: EnvelopeFields, body: str | bytes, caller: Caller) -> BeginResult:
        """Record the message (or find it): the first step of the synchronous flow."""
        return self._begin(event, self.admit(body), caller)

    def mark_delivered_synchronously(self, message_id: str) -> None:
        self._mark_published(message_id, PublishState.SYNC)

    def _begin(self, event: EnvelopeFields, size_bytes: int, caller: Caller) -> BeginResult:
        record = self._record(event, size_bytes, caller, None)
        check_storable(record, BusDetail(messageId=record.messageId, event=record.envelope))
        try:
            return self._audit.begin_message(record, owner=caller.request_id, lease_seconds=self._lease_seconds)
        except AuditUnavailable as error:
            logger.error("audit table unavailable", extra={"error": str(error)})
            raise ServiceUnavailable(
                "the audit trail cannot be written right now; nothing was accepted, retry later"
            ) from None

    def _mark_published(self, message_id: str, state: PublishState) -> None:
        try:
            self._audit.mark_published(message_id, state)
        except AuditUnavailable as error:
            # Delivered: the record still reads PENDING, and its lease lapses; a retry of the event
            # delivers it again through the bus, which connectors absorb (they deduplicate on messageId).
            logger.error("delivered but not marked", extra={"messageId": message_id, "error": str(error)})
