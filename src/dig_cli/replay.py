"""Replay: put messages from the audit trail back on one connector's own queue.

No other connector receives anything, ES Loyalty sends nothing again (the payload is in the audit
trail), and each message is claimed before it is enqueued (db.replay), so that a run interrupted
and run again with the same filter sends nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from db.audit import DynamoAuditStore
from db.queries import AuditQueries, MessageRow, Window
from db.records import DeliveryRecord, DeliveryStatus, iso, utc_now
from db.replay import Claim, ReplayStore, RunRecord
from dig_contracts.bus import BusDetail, ReplayTag, eventbridge_event

ORPHAN_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class ReplayFilter:
    connector: str
    message_ids: tuple[str, ...] = ()
    status: DeliveryStatus = DeliveryStatus.FAILED
    event_type: str | None = None
    member: str | None = None
    window: Window | None = None
    # The window as the operator wrote it (e.g. ("24h", None)): the same command names the same run.
    window_text: tuple[str, str | None] = ("24h", None)

    def describe(self) -> dict[str, Any]:
        if self.message_ids:
            return {"connector": self.connector, "messageIds": sorted(self.message_ids)}
        return {
            "connector": self.connector,
            "status": self.status.value,
            "eventType": self.event_type,
            "member": self.member,
            "since": self.window_text[0],
            "until": self.window_text[1],
        }


@dataclass
class Candidate:
    message_id: str
    event_type: str
    member_id: str
    status: DeliveryStatus | None  # None: the connector never recorded the message


@dataclass
class Summary:
    run_id: str
    replayed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    failed_to_enqueue: int = 0
    adopted: int = 0  # messages an interrupted run had claimed but not enqueued

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    @property
    def counts(self) -> dict[str, int]:
        return {
            "replayed": self.replayed,
            "skipped": sum(self.skipped.values()),
            "failedToEnqueue": self.failed_to_enqueue,
        }


def candidates(store: DynamoAuditStore, wanted: ReplayFilter) -> Iterator[Candidate]:
    queries = AuditQueries(store)
    if wanted.message_ids:
        deliveries = store.get_deliveries(wanted.connector, wanted.message_ids)
        for message_id in dict.fromkeys(wanted.message_ids):
            delivery = deliveries.get(message_id)
            if delivery is not None:
                yield Candidate(message_id, delivery.eventType, delivery.memberId, delivery.status)
                continue
            view = store.get_message(message_id)
            if view is not None:
                yield Candidate(message_id, view.message.eventType, view.message.memberId, None)
        return
    assert wanted.window is not None
    if wanted.member:
        rows: Iterable[MessageRow] = queries.with_deliveries(
            queries.messages_by_member(wanted.member, wanted.window), wanted.connector
        )
        for row in rows:
            delivery = row.delivery
            wanted_type = wanted.event_type in (None, row.event_type)
            if delivery is not None and delivery.status is wanted.status and wanted_type:
                yield Candidate(row.message_id, row.event_type, row.member_id, delivery.status)
        return
    for delivery in queries.deliveries_by_status(wanted.connector, wanted.status, wanted.window, newest_first=False):
        if wanted.event_type in (None, delivery.eventType):
            yield Candidate(delivery.messageId, delivery.eventType, delivery.memberId, delivery.status)


def run_id_for(wanted: ReplayFilter, force: bool, replays: ReplayStore) -> str:
    """The same filter resumes its run until that run completes; then a new run begins."""
    digest = hashlib.sha256(json.dumps({**wanted.describe(), "force": force}, sort_keys=True).encode()).hexdigest()[:12]
    base = f"run-{digest}"
    for attempt in range(1, 1000):
        run_id = base if attempt == 1 else f"{base}-{attempt}"
        existing = replays.get_run(run_id)
        if existing is None or existing.state != "COMPLETED":
            return run_id
    raise RuntimeError("too many completed runs with this filter")


class Replayer:
    def __init__(
        self,
        store: DynamoAuditStore,
        sqs: Any,
        queue_url: str,
        region: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._replays = ReplayStore(store.table)
        self._sqs = sqs
        self._queue_url = queue_url
        self._region = region
        self._sleep = sleep
        self._clock = clock

    def run(
        self,
        wanted: ReplayFilter,
        found: list[Candidate],
        *,
        force: bool,
        operator: str,
        rate: float,
        progress: Callable[[int], None] = lambda _: None,
    ) -> Summary:
        run_id = run_id_for(wanted, force, self._replays)
        run = self._replays.get_run(run_id) or RunRecord(
            runId=run_id,
            connector=wanted.connector,
            filter=wanted.describe(),
            force=force,
            startedBy=operator,
            startedAt=iso(utc_now()),
        )
        self._replays.put_run(run)
        summary = Summary(run_id=run_id)
        enqueued = set(self._replays.run_messages(run_id))
        adopted = {c.message_id: c for c in self._orphans(wanted, run_id, enqueued)}
        summary.adopted = len(adopted)
        todo = [c for c in found if c.message_id not in enqueued and c.message_id not in adopted]
        pending: list[tuple[Candidate, dict[str, Any]]] = []
        started = self._clock()
        for index, candidate in enumerate([*todo, *adopted.values()], 1):
            view = self._store.get_message(candidate.message_id)
            if view is None or view.message.erasedAt:
                summary.skip("payload no longer in the audit trail" if view is None else "payload erased on request")
                progress(1)
                continue
            if candidate.message_id not in adopted:  # (an adopted orphan is claimed already)
                claim = self._replays.claim(
                    wanted.connector, candidate.message_id, run_id, force=force, exists=candidate.status is not None
                )
                if claim is not Claim.CLAIMED:
                    summary.skip(claim.value)
                    progress(1)
                    continue
            detail = BusDetail(
                messageId=candidate.message_id, event=view.message.envelope, replay=ReplayTag(runId=run_id, force=force)
            )
            pending.append((candidate, eventbridge_event(detail, region=self._region)))
            if len(pending) == 10:
                self._send(wanted.connector, run_id, pending, summary, progress)
                pending = []
            if rate > 0:  # keep to --rate messages per second
                ahead = index / rate - (self._clock() - started)
                if ahead > 0:
                    self._sleep(ahead)
        if pending:
            self._send(wanted.connector, run_id, pending, summary, progress)
        run.counts = {key: run.counts.get(key, 0) + value for key, value in summary.counts.items()}
        run.state = "COMPLETED"
        self._replays.put_run(run)
        return summary

    def left_over(self, wanted: ReplayFilter, force: bool) -> int:
        """How many messages an interrupted run of this filter claimed and never enqueued: the same
        command, run again, completes them even when the filter selects nothing new (they are PENDING)."""
        run_id = run_id_for(wanted, force, self._replays)
        return len(self._orphans(wanted, run_id, set(self._replays.run_messages(run_id))))

    def _orphans(self, wanted: ReplayFilter, run_id: str, enqueued: set[str]) -> list[Candidate]:
        """Deliveries a replay claimed but never enqueued, because it was interrupted in between:
        this run's, or those of any run that never completed, once the claim is five minutes old
        (a replay in progress enqueues what it claims within seconds)."""
        queries = AuditQueries(self._store)
        now = utc_now()
        stale = iso(now - ORPHAN_AFTER)
        runs: dict[str, tuple[bool, set[str]]] = {run_id: (False, enqueued)}
        adopted: list[Candidate] = []
        recent = Window(now - timedelta(days=2), now)
        for delivery in queries.deliveries_by_status(wanted.connector, DeliveryStatus.PENDING, recent):
            claimer = delivery.replayRunId
            if claimer is None or (wanted.message_ids and delivery.messageId not in wanted.message_ids):
                continue
            if claimer not in runs:
                run = self._replays.get_run(claimer)
                completed = run is not None and run.state == "COMPLETED"
                runs[claimer] = (completed, set() if completed else set(self._replays.run_messages(claimer)))
            completed, sent = runs[claimer]
            claimed_at = self._claim_time(delivery.messageId, wanted.connector)
            if completed or delivery.messageId in sent or (claimer != run_id and claimed_at > stale):
                continue
            adopted.append(Candidate(delivery.messageId, delivery.eventType, delivery.memberId, delivery.status))
        return adopted

    def _claim_time(self, message_id: str, connector: str) -> str:
        item = self._store.client.get_item(
            TableName=self._store.table_name,
            Key={"pk": {"S": f"MSG#{message_id}"}, "sk": {"S": f"DELIVERY#{connector}"}},
            ProjectionExpression="gsiStatusSk",
        ).get("Item", {})
        return str(item.get("gsiStatusSk", {}).get("S", "")).split("#")[0]

    def _send(
        self,
        connector: str,
        run_id: str,
        batch: list[tuple[Candidate, dict[str, Any]]],
        summary: Summary,
        progress: Callable[[int], None],
    ) -> None:
        entries = [
            {"Id": str(i), "MessageBody": json.dumps(body, separators=(",", ":"))} for i, (_, body) in enumerate(batch)
        ]
        try:
            answer = self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
            failed = {int(f["Id"]) for f in answer.get("Failed", [])}
        except Exception:  # the whole call failed: every claim is released
            failed = set(range(len(batch)))
        sent: list[str] = []
        for index, (candidate, _) in enumerate(batch):
            if index in failed:
                self._replays.release(connector, candidate.message_id, run_id)
                summary.failed_to_enqueue += 1
            else:
                sent.append(candidate.message_id)
                summary.replayed += 1
        self._replays.record_enqueued(run_id, sent)
        progress(len(batch))


STRANDED = "the queue gave up on it (it is in the dead-letter queue) before the connector could record its end"


def fail_stranded(store: DynamoAuditStore, connector: str, detail: BusDetail, previous: DeliveryRecord | None) -> bool:
    """Record FAILED, and so replayable, a message found in the connector's dead-letter queue whose
    delivery reads PENDING outside any replay, or was never recorded: the function timed out or
    crashed on its last receive. False when there is nothing to do or the delivery changed meanwhile."""
    if previous is not None and (previous.status is not DeliveryStatus.PENDING or previous.replayRunId):
        return False
    last_error = previous.lastError if previous else None
    failed = DeliveryRecord(
        messageId=detail.messageId,
        connector=connector,
        status=DeliveryStatus.FAILED,
        eventType=str(detail.event.get("eventType", "")),
        memberId=str(detail.event.get("memberId", "")),
        updatedAt=iso(utc_now()),
        attempts=previous.attempts if previous else [],
        attemptCount=previous.attemptCount if previous else 0,
        lastError=f"{STRANDED}; last recorded error: {last_error}" if last_error else STRANDED,
        notes=previous.notes if previous else [],
        completed=previous.completed if previous else [],
    )
    return store.put_delivery_if_unchanged(failed, previous)


def run_status(store: DynamoAuditStore, run_id: str) -> tuple[RunRecord | None, dict[str, int]]:
    """A run, and the delivery status now of each message it enqueued."""
    replays = ReplayStore(store.table)
    run = replays.get_run(run_id)
    if run is None:
        return None, {}
    ids = replays.run_messages(run_id)
    deliveries = store.get_deliveries(run.connector, ids)
    counts = {status.value: 0 for status in DeliveryStatus}
    for message_id in ids:
        delivery = deliveries.get(message_id)
        counts[(delivery.status if delivery else DeliveryStatus.PENDING).value] += 1
    return run, counts
