"""The SQS-fed connector runtime, the same for every connector.

One invocation: parse the batch, drop what this connector already delivered (SQS and EventBridge
both deliver at least once), hand the rest to the connector, record each outcome on the audit
trail and report the records to retry through ``batchItemFailures``.

A transient failure stays PENDING and goes back to the queue; on the receive that exhausts the
queue's maxReceiveCount it is recorded FAILED, the moment SQS moves it to the dead-letter queue.
A final failure is recorded FAILED at once and not retried: replay it once the cause is fixed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from db.audit import DONE, MAX_ATTEMPTS_KEPT, AuditStore
from db.counters import DELIVERED_COUNT, SKIPPED_COUNT, Counters
from db.records import DeliveryRecord, DeliveryStatus, iso, parse_iso, utc_now
from dig_connector_kit.inbound import InboundEmitter
from dig_connector_kit.model import (
    AnswersWebhooks,
    CallbackReport,
    Connector,
    Deadline,
    InboundMessage,
    LateFailure,
    Outcome,
    PollsResults,
    ReadsFiles,
    ReceivesWebhooks,
    Result,
    TakesCallbacks,
)
from dig_connector_kit.requeue import Requeue
from dig_contracts.bus import CALLBACK_SOURCE, SCHEDULE_SOURCE, BusDetail, CallbackDetail
from dig_contracts.files import FILES_SOURCE, FileReadyDetail
from dig_contracts.inbound import (
    INBOUND_RECEIVED_SOURCE,
    WebhookAnswer,
    WebhookCall,
    WebhookReceipt,
    parse_any_event,
)
from dig_contracts.pan import mask_card_numbers

logger = logging.getLogger(__name__)


@dataclass
class BatchReport:
    """What an invocation did, for metrics and tests."""

    failures: list[str] = field(default_factory=list)  # SQS messageIds to retry
    statuses: dict[str, DeliveryStatus] = field(default_factory=dict)  # DIG messageId -> status
    records: dict[str, DeliveryRecord] = field(default_factory=dict)  # what this invocation recorded
    duplicates: int = 0
    unreadable: int = 0
    callbacks_unreadable: int = 0
    results_unreadable: int = 0  # polled results the connector could not read
    results_overdue: int = 0
    requeued: int = 0
    late_failures: int = 0  # messages a provider's callback failed after it had accepted them
    attempts: int = 0  # provider calls recorded on deliveries
    replayed: int = 0  # messages an operator's replay sent
    held: int = 0  # messages sent back to wait (a provider's quota)
    files_ready: int = 0  # FILE_READY events handled
    webhooks: int = 0  # providers' webhooks read
    inbound_emitted: int = 0  # inbound events put on the bus (the return path)
    inbound_unmatched: int = 0  # what a webhook said that matched no member

    def response(self) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": record_id} for record_id in self.failures]}


@dataclass(frozen=True)
class Received:
    record_id: str
    receive_count: int
    detail: BusDetail
    archive_replay: str | None = None  # the name of the EventBridge archive replay that sent it again


def read_callback(body: Any) -> CallbackDetail | None:
    """The callback a record's body carries, or None when it carries something else."""
    if not isinstance(body, dict) or body.get("source") != CALLBACK_SOURCE:
        return None
    return CallbackDetail.model_validate(body["detail"])


def is_scheduled_check(body: Any) -> bool:
    """The schedule's periodic record (look for provider results that never came)."""
    return isinstance(body, dict) and body.get("source") == SCHEDULE_SOURCE


def read_file_ready(body: Any) -> FileReadyDetail | None:
    """The FILE_READY a record's body carries (an extract the connector's manifest maps), else None."""
    if not isinstance(body, dict) or body.get("source") != FILES_SOURCE:
        return None
    return FileReadyDetail.model_validate(body["detail"])


def read_webhook_receipt(body: Any) -> WebhookReceipt | None:
    """The provider's webhook a record's body carries (verified and kept by the DIG API), else None."""
    if not isinstance(body, dict) or body.get("source") != INBOUND_RECEIVED_SOURCE:
        return None
    return WebhookReceipt.model_validate(body["detail"])


def read_record(record: Mapping[str, Any], body: Any) -> Received:
    """An SQS record whose body is the EventBridge event a rule (or a replay) put there."""
    detail = BusDetail.model_validate(body["detail"])
    receive_count = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
    replay_name = body.get("replay-name")  # EventBridge marks the events an archive replay re-sends
    return Received(
        record_id=record["messageId"],
        receive_count=receive_count,
        detail=detail,
        archive_replay=str(replay_name) if replay_name else None,
    )


# What a provider is told when its webhook could not be answered now: send it again.
UNAVAILABLE = WebhookAnswer(status=503, body='{"message":"not processed; send it again"}')


class ConnectorRuntime:
    def __init__(
        self,
        connector: Connector,
        audit: AuditStore,
        *,
        max_receive_count: int,
        clock: Callable[[], datetime] = utc_now,
        requeue: Requeue | None = None,
        emitter: InboundEmitter | None = None,
        counters: Counters | None = None,
    ) -> None:
        self.connector = connector
        self.audit = audit
        self._counters = counters
        self._emitter = emitter
        self.max_receive_count = max_receive_count
        self._clock = clock
        self._requeue = requeue

    def handle_sqs_batch(self, event: Mapping[str, Any], deadline: Deadline) -> BatchReport:
        report = BatchReport()
        received: list[Received] = []
        for record in event.get("Records", []):
            try:
                body = json.loads(record["body"])  # once: a thousand records a batch
                if is_scheduled_check(body):
                    self._check_results(record, deadline, report)
                    continue
                callback = read_callback(body)
                if callback is not None:
                    self._apply_callback(callback, record, report)
                    continue
                file_ready = read_file_ready(body)
                if file_ready is not None:
                    self._file_ready(file_ready, record, report)
                    continue
                receipt = read_webhook_receipt(body)
                if receipt is not None:
                    self._webhook(receipt, record, report)
                    continue
                received.append(read_record(record, body))
            except (ValueError, KeyError, TypeError, ValidationError):
                # No messageId to audit it under. It goes back to the queue, and after
                # maxReceiveCount to the dead-letter queue, where the DLQ alarm finds it.
                logger.error("unreadable record", extra={"sqsMessageId": record.get("messageId")})
                report.unreadable += 1
                report.failures.append(record.get("messageId", ""))
        return self.process(received, deadline, report)

    def process(
        self,
        received: list[Received],
        deadline: Deadline,
        report: BatchReport | None = None,
        *,
        synchronous: bool = False,
    ) -> BatchReport:
        """Deliver what was received: from SQS, or one message from the synchronous flow, where a
        transient failure is final at once because the caller is waiting for the answer."""
        report = report or BatchReport()
        by_message: dict[str, list[Received]] = {}
        for item in received:
            by_message.setdefault(item.detail.messageId, []).append(item)
        report.duplicates = len(received) - len(by_message)

        # Eventually consistent, at half the price: what this reads was written by an earlier receive, which
        # came back a visibility timeout ago at the least; a copy delivered at this very moment is settled by
        # the operations ledger's and save_deliveries' conditional writes, not by this read.
        existing = self.audit.get_deliveries(self.connector.name, by_message, consistent=False)
        inbound: list[InboundMessage] = []
        invalid: dict[str, Outcome] = self._erased_since_archived(by_message, existing)
        for message_id, copies in by_message.items():
            previous = existing.get(message_id)
            if previous is not None and previous.status in (DeliveryStatus.DELIVERED, DeliveryStatus.SKIPPED):
                report.statuses[message_id] = previous.status  # already done: acknowledge, do nothing
                continue
            if message_id in invalid:
                continue
            first = copies[0]
            try:
                loyalty_event = parse_any_event(first.detail.event)
            except ValidationError as error:
                fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) for e in error.errors(include_input=False))
                invalid[message_id] = Outcome(Result.FAILED, error=f"event does not match its schema: {fields}")
                continue
            inbound.append(
                InboundMessage(
                    message_id=message_id,
                    event=loyalty_event,
                    receive_count=max(c.receive_count for c in copies),
                    replay=first.detail.replay,
                    completed=frozenset(previous.completed if previous else ()),
                )
            )

        outcomes: dict[str, Outcome] = dict(invalid)
        if inbound:
            outcomes.update(self._deliver(inbound, deadline))
        report.replayed += sum(1 for message in inbound if message.replay is not None)
        report.attempts += sum(len(outcome.attempts) for outcome in outcomes.values())

        records: list[DeliveryRecord] = []
        details = {m: c[0].detail for m, c in by_message.items()}
        now = iso(self._clock())  # one timestamp for the batch's records: they are recorded together
        for message_id, outcome in outcomes.items():
            copies = by_message[message_id]
            receive_count = max(c.receive_count for c in copies)
            status = self._status(outcome, receive_count, synchronous)
            records.append(
                self._record(
                    details[message_id], existing.get(message_id), outcome, status, receive_count, synchronous, now
                )
            )
            report.statuses[message_id] = status
            report.records[message_id] = records[-1]
            # Transient failures go back to the queue, the last one too: SQS then moves it to the
            # dead-letter queue, where the DLQ alarm sees it. A final failure is not retried. A held
            # one is sent again later, as a new message: waiting for a quota spends no receive.
            if outcome.result is Result.RETRY and not synchronous:
                if (
                    outcome.hold_seconds
                    and status is DeliveryStatus.PENDING
                    and self._hold(details[message_id], outcome)
                ):
                    report.held += 1
                else:
                    report.failures.extend(c.record_id for c in copies)
        standing_records = self.audit.save_deliveries(records)
        for message_id, standing in standing_records.items():
            # Another copy of this message completed it meanwhile: that stands, and nothing is retried.
            report.statuses[message_id] = standing.status
            report.records[message_id] = standing
            retried = {c.record_id for c in by_message[message_id]}
            report.failures = [f for f in report.failures if f not in retried]
        self._count_done([r for r in records if r.messageId not in standing_records])
        return report

    def _count_done(self, written: list[DeliveryRecord]) -> None:
        """Delivered and skipped deliveries leave the status index (db.audit): their day's count is kept
        here instead, one write an invocation, for ``dig status`` and ``dig audit counts``."""
        if self._counters is None or not written:
            return
        counts = {
            DELIVERED_COUNT: sum(1 for r in written if r.status is DeliveryStatus.DELIVERED),
            SKIPPED_COUNT: sum(1 for r in written if r.status is DeliveryStatus.SKIPPED),
        }
        try:
            self._counters.add(self.connector.name, counts, self._clock())
        except Exception:  # a count is not worth a redelivery: the records stand
            logger.exception("delivery counts not kept")

    def _erased_since_archived(
        self, by_message: Mapping[str, list[Received]], existing: Mapping[str, DeliveryRecord]
    ) -> dict[str, Outcome]:
        """Events EventBridge's archive sends again carry the payload as it was published: a member
        erased since must not be sent again, nor a message the audit trail no longer holds (its
        record expired: it could not be audited or replayed). Both SKIPPED, saying why."""
        archived = [
            m
            for m, copies in by_message.items()
            if copies[0].archive_replay and (m not in existing or existing[m].status not in DONE)
        ]
        if not archived:
            return {}
        records = self.audit.find_messages(archived)
        skipped: dict[str, Outcome] = {}
        for message_id in archived:
            record = records.get(message_id)
            if record is None:
                skipped[message_id] = Outcome(
                    Result.SKIPPED, error="sent again by an archive replay, but no longer in the audit trail: not sent"
                )
            elif record.erasedAt:
                skipped[message_id] = Outcome(
                    Result.SKIPPED, error=f"sent again by an archive replay; the member was erased at {record.erasedAt}"
                )
        return skipped

    def _deliver(self, inbound: list[InboundMessage], deadline: Deadline) -> dict[str, Outcome]:
        """The connector's outcomes, with every message accounted for: a connector that raises, or
        that forgets a message, must not make SQS drop accepted messages without an audit record.
        Such messages are retried, and recorded FAILED (replayable) once the queue gives up."""
        try:
            outcomes = dict(self.connector.deliver(inbound, deadline))
        except Exception as error:
            logger.exception("the connector raised; every message of the batch is retried")
            text = mask_card_numbers(f"the connector raised {type(error).__name__}: {error}")[:500]
            return {message.message_id: Outcome(Result.RETRY, error=text) for message in inbound}
        for message in inbound:
            if message.message_id not in outcomes:
                logger.error("no outcome from the connector", extra={"messageId": message.message_id})
                outcomes[message.message_id] = Outcome(Result.RETRY, error="the connector reported no outcome for it")
        return {message.message_id: outcomes[message.message_id] for message in inbound}

    def _file_ready(self, detail: FileReadyDetail, record: Mapping[str, Any], report: BatchReport) -> None:
        if not isinstance(self.connector, ReadsFiles):  # a rule that should not exist (check_capabilities): DLQ
            logger.error("FILE_READY for a connector that reads no files", extra={"fileId": detail.fileId})
            report.failures.append(record["messageId"])
            return
        try:
            self.connector.handle_file_ready(detail)
        except Exception:
            logger.exception("FILE_READY not handled; it goes back to the queue", extra={"fileId": detail.fileId})
            report.failures.append(record["messageId"])
            return
        report.files_ready += 1

    def answer_webhook(self, call: WebhookCall) -> WebhookAnswer:
        """A webhook the connector answers itself (AnswersWebhooks): its inbound events emitted first, so
        an answer that says "done" is never sent for what the bus did not take; anything failing answers
        503, and the provider's next copy is the same events (their ids are the provider's)."""
        if not isinstance(self.connector, AnswersWebhooks) or self._emitter is None:
            logger.error("answered webhook for a connector that answers none", extra={"source": call.source})
            return UNAVAILABLE
        try:
            reply = self.connector.answer_webhook(call)
            emitted = self._emitter.emit(reply.reading.events) if reply.reading.events else None
        except Exception:
            logger.exception("webhook not answered", extra={"source": call.source, "receiptId": call.receiptId})
            return UNAVAILABLE
        logger.info(
            "webhook answered",
            extra={
                "source": call.source,
                "receiptId": call.receiptId,
                "status": reply.answer.status,
                "emitted": len(emitted.emitted) if emitted else 0,
                "duplicates": len(emitted.duplicates) if emitted else 0,
            },
        )
        return reply.answer

    def _webhook(self, receipt: WebhookReceipt, record: Mapping[str, Any], report: BatchReport) -> None:
        """A provider's webhook: the inbound events the connector reads from it, emitted. Anything that
        fails sends the receipt back to the queue (and after maxReceiveCount to the dead-letter queue):
        emitting again is harmless, the events' ids being the provider's."""
        if not isinstance(self.connector, ReceivesWebhooks) or self._emitter is None:
            logger.error("webhook for a connector that takes none", extra={"receiptId": receipt.receiptId})
            report.failures.append(record["messageId"])
            return
        try:
            reading = self.connector.read_webhook(receipt)
            emitted = self._emitter.emit(reading.events)
        except Exception:
            logger.exception("webhook not read; it goes back to the queue", extra={"receiptId": receipt.receiptId})
            report.failures.append(record["messageId"])
            return
        report.webhooks += 1
        report.inbound_emitted += len(emitted.emitted)
        report.inbound_unmatched += reading.unmatched
        logger.info(
            "webhook read",
            extra={
                "source": receipt.source,
                "receiptId": receipt.receiptId,
                "emitted": len(emitted.emitted),
                "duplicates": len(emitted.duplicates),
                "unmatched": reading.unmatched,
            },
        )

    def _apply_callback(self, detail: CallbackDetail, record: Mapping[str, Any], report: BatchReport) -> None:
        """A provider's late results: the messages it rejected after all become FAILED (replayable), or,
        for a verdict that may change with time, are sent again later until the connector gives up."""
        if not isinstance(self.connector, TakesCallbacks):
            logger.error("callback for a connector that takes none", extra={"connector": detail.connector})
            return
        try:
            outcome = self.connector.handle_callback(detail)
            report.callbacks_unreadable += int(outcome.unreadable)
            self._apply_late_failures(outcome, f"the provider's callback {detail.callId}", report)
        except Exception:  # back to the queue, and after maxReceiveCount to the dead-letter queue
            logger.exception("callback not applied", extra={"callId": detail.callId})
            report.failures.append(record["messageId"])

    def _apply_late_failures(self, outcome: CallbackReport, reported_by: str, report: BatchReport) -> None:
        existing = self.audit.get_deliveries(self.connector.name, [f.message_id for f in outcome.failures])
        updated, again = [], []
        for failure in outcome.failures:
            previous = existing.get(failure.message_id)
            if previous is None:
                continue
            record_after = self._late_failure(previous, failure, reported_by)
            if record_after.status is DeliveryStatus.PENDING:
                again.append((record_after, failure.retry_in_seconds or 0))
            else:
                updated.append(record_after)
            report.statuses[failure.message_id] = record_after.status
            report.late_failures += 1
        # Sent again first: a message is only recorded PENDING once it is on its way back.
        for previous_record, delay in again:
            if self._send_again(previous_record.messageId, delay):
                updated.append(previous_record)
                report.requeued += 1
            else:
                failed = previous_record.model_copy(
                    update={
                        "status": DeliveryStatus.FAILED,
                        "lastError": f"{previous_record.lastError}; it could not be sent again automatically",
                    }
                )
                updated.append(failed)
                report.statuses[failed.messageId] = DeliveryStatus.FAILED
        self.audit.save_deliveries(updated, replace_done=True)  # the provider's verdict stands

    def _late_failure(self, previous: DeliveryRecord, failure: LateFailure, reported_by: str) -> DeliveryRecord:
        now = self._clock()
        retry_until = previous.retryUntil
        if failure.retry_in_seconds is not None and failure.give_up_after_seconds is not None:
            retry_until = retry_until or iso(now + timedelta(seconds=failure.give_up_after_seconds))
            if now < parse_iso(retry_until):
                return previous.model_copy(
                    update={
                        "status": DeliveryStatus.PENDING,
                        "lastError": failure.error,
                        "updatedAt": iso(now),
                        "retryUntil": retry_until,
                        "notes": [
                            *previous.notes,
                            f"reported by {reported_by}; sent again in "
                            f"{failure.retry_in_seconds} s, retried until {retry_until}",
                        ],
                    }
                )
        error = failure.error
        if retry_until is not None and failure.retry_in_seconds is not None:
            error = f"{error}; still so after retrying until {retry_until}"
        return previous.model_copy(
            update={
                "status": DeliveryStatus.FAILED,
                "lastError": error,
                "updatedAt": iso(now),
                "retryUntil": retry_until,
                "notes": [*previous.notes, f"reported failed by {reported_by}"],
            }
        )

    def _send_again(self, message_id: str, delay_seconds: int) -> bool:
        """The message back on this connector's queue, from its payload in the audit trail."""
        if self._requeue is None:
            return False
        view = self.audit.get_message(message_id)
        if view is None or view.message.erasedAt:
            return False
        self._requeue.send([BusDetail(messageId=message_id, event=view.message.envelope)], delay_seconds)
        return True

    def _hold(self, detail: BusDetail, outcome: Outcome) -> bool:
        if self._requeue is None or not outcome.hold_seconds:
            return False
        self._requeue.send([BusDetail(messageId=detail.messageId, event=detail.event)], outcome.hold_seconds)
        return True

    def _check_results(self, record: Mapping[str, Any], deadline: Deadline, report: BatchReport) -> None:
        """The scheduled check: calls whose pushed results are overdue, and the results to poll for."""
        if isinstance(self.connector, TakesCallbacks):
            report.results_overdue += self.connector.overdue_results()
        if isinstance(self.connector, PollsResults):
            try:
                polled = self.connector.poll_results(deadline)
                report.results_unreadable += int(polled.unreadable)
                self._apply_late_failures(polled, "the provider's results, polled", report)
            except Exception:  # back to the queue: the next receive polls again
                logger.exception("polled results not applied")
                report.failures.append(record["messageId"])

    def _status(self, outcome: Outcome, receive_count: int, synchronous: bool) -> DeliveryStatus:
        if outcome.result is Result.RETRY:
            exhausted = synchronous or receive_count >= self.max_receive_count
            return DeliveryStatus.FAILED if exhausted else DeliveryStatus.PENDING
        return DeliveryStatus(outcome.result.value)

    def _record(
        self,
        detail: BusDetail,
        previous: DeliveryRecord | None,
        outcome: Outcome,
        status: DeliveryStatus,
        receive_count: int,
        synchronous: bool,
        now: str,
    ) -> DeliveryRecord:
        attempts = [*(previous.attempts if previous else []), *outcome.attempts][-MAX_ATTEMPTS_KEPT:]
        error = outcome.error
        if status is DeliveryStatus.FAILED and outcome.result is Result.RETRY:
            spent = "synchronous flow, not retried" if synchronous else f"retries spent after {receive_count} receives"
            error = f"{spent}: {error}"
        return DeliveryRecord(
            messageId=detail.messageId,
            connector=self.connector.name,
            status=status,
            eventType=str(detail.event.get("eventType", "")),
            memberId=str(detail.event.get("memberId", "")),
            updatedAt=now,
            attempts=attempts,
            attemptCount=(previous.attemptCount if previous else 0) + len(outcome.attempts),
            lastError=error if status is not DeliveryStatus.DELIVERED else None,
            notes=list(outcome.notes),
            completed=sorted({*(previous.completed if previous else ()), *outcome.completed}),
            retryUntil=previous.retryUntil if previous else None,
            replayRunId=detail.replay.runId if detail.replay else (previous.replayRunId if previous else None),
        )
