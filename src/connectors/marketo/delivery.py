"""The Marketo delivery engine: a batch of messages becomes as few Marketo calls as Marketo allows.

1. Leads: every member the batch touches is created or updated by the lookup field (``leads.json``,
   300 a call), one entry per lead with the newest value of each field, and never two upserts of one
   lead at once (Adobe warns that close upserts of one key can create duplicate leads): a claim in
   the operation ledger guards each lead while its call is in flight. The answer gives each lead's id.
2. Custom activities (``activities/external.json``, 300 a call) for the messages whose lead is known.
3. Triggered campaigns, one call per message (its My Tokens are its own).

Activities and campaign triggers have no idempotency key at Marketo: each is claimed before it is
sent and recorded done after, so a retry or a replay never sends it again, and a call whose answer
was lost is not resent (the message is FAILED, saying so). 601/602 renew the token and resend
(the kit's transport); 606/615/604/608/713 and 502 are retried; 607 (the daily quota), or DIG's own
share of it counted across invocations (``limits.dailyCalls``), holds every message until the quota
resets; a record Marketo skips is FAILED with its code.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from connectors.marketo import client as api
from connectors.marketo.config import MarketoConfig
from connectors.marketo.mapping import Plan, plan
from connectors.marketo.webhooks import read_unsubscribe
from dig_connector_kit.contacts import member_contacts
from dig_connector_kit.http import QUOTA_SHARE_SPENT, CallResult, Request, Transport
from dig_connector_kit.model import Deadline, InboundMessage, Outcome, Result, WebhookReading
from dig_connector_kit.ports import ContactStore, OperationClaim, OperationLedger
from dig_connector_kit.ratelimit import DailyShare
from dig_contracts.inbound import WebhookReceipt

logger = logging.getLogger(__name__)
NAME = "marketo"
# Adobe: the daily quota "resets daily at 12:00AM CST" (help/rest-api/error-codes.md, 607). Whether that
# is US Central civil time (CDT in summer) or CST all year is not said: both are tried (quota_resets_at).
QUOTA_TIMEZONE = ZoneInfo("America/Chicago")
CST = timezone(timedelta(hours=-6), "CST")
MAX_HOLD_SECONDS = 900  # a held message comes back at least every 15 minutes (SQS's longest delay)


@dataclass
class _Progress:
    plan: Plan
    inbound: InboundMessage
    outcome: Outcome = field(default_factory=lambda: Outcome(Result.DELIVERED))
    lead_id: int | None = None
    final: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)

    def apply(self, result: CallResult, what: str) -> None:
        self.outcome.attempts.extend(result.attempts)
        if result.ok:
            return
        (self.retry if result.retryable else self.final).append(f"{what}: {result.status} {result.error or ''}".strip())

    @property
    def ok(self) -> bool:
        return not self.final and not self.retry


def quota_resets_at(now: datetime) -> datetime:
    """The first instant after ``now`` at which the quota may have reset: the earlier of the next
    midnight US Central civil time and the next midnight CST (UTC-6). In summer the two are an hour
    apart; a 607 between them holds only until the second, never for a day."""

    def next_midnight(zone: tzinfo) -> datetime:
        local = now.astimezone(zone)
        return datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), zone).astimezone(UTC)

    return min(next_midnight(QUOTA_TIMEZONE), next_midnight(CST))


class MarketoConnector:
    name = NAME

    def __init__(
        self,
        config: Callable[[], MarketoConfig],
        transport: Transport,
        rest_base: str,
        operations: OperationLedger,
        contacts: ContactStore | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._config = config
        self._transport = transport
        self._rest = rest_base.rstrip("/")
        self._operations = operations
        self._contacts = contacts
        self._clock = clock
        self._quota_until: datetime | None = None  # this container saw 607: nothing is sent until then

    @property
    def transport(self) -> Transport:
        return self._transport

    def read_webhook(self, receipt: WebhookReceipt) -> WebhookReading:
        """The return path: a trigger campaign's unsubscribe webhook (connectors.marketo.webhooks)."""
        return read_unsubscribe(receipt, self._contacts)

    def deliver(self, messages: Sequence[InboundMessage], deadline: Deadline) -> Mapping[str, Outcome]:
        try:
            config = self._config()
        except Exception as error:  # a bad or missing configuration: nothing can be sent, retry later
            return {m.message_id: Outcome(Result.RETRY, error=f"configuration unavailable: {error}") for m in messages}
        if self._held():
            return {m.message_id: self._hold_outcome() for m in messages}
        contacts = member_contacts(self._contacts, messages)
        outcomes: dict[str, Outcome] = {}
        progress: list[_Progress] = []
        for message in messages:
            planned = plan(message, config, contacts.get(message.event.memberId))
            if planned.errors:
                outcomes[message.message_id] = Outcome(
                    Result.FAILED, error="; ".join(planned.errors), notes=planned.notes
                )
            elif planned.skip_reason:
                outcomes[message.message_id] = Outcome(Result.SKIPPED, notes=[*planned.notes, planned.skip_reason])
            else:
                item = _Progress(planned, message)
                item.outcome.notes.extend(planned.notes)
                progress.append(item)
        invocation = uuid.uuid4().hex
        self._upsert_leads(progress, config, deadline, invocation)
        self._add_activities([p for p in progress if p.ok and p.lead_id], config, deadline, invocation)
        for item in progress:
            if item.ok and item.lead_id and item.plan.campaign_id:
                self._trigger(item, config, deadline, invocation)
        for item in progress:
            outcomes[item.inbound.message_id] = self._conclude(item)
        return outcomes

    # --- the daily quota ------------------------------------------------------------------------

    def _held(self) -> bool:
        if self._quota_until is not None and self._clock() >= self._quota_until:
            self._quota_until = None
        return self._quota_until is not None

    def _hold_outcome(self) -> Outcome:
        assert self._quota_until is not None
        wait = int((self._quota_until - self._clock()).total_seconds())
        return Outcome(
            Result.RETRY,
            error=f"held: Marketo's daily API quota is spent (607) until {self._quota_until.isoformat()}",
            hold_seconds=max(1, min(wait, MAX_HOLD_SECONDS)),
        )

    def _send(self, request: Request, config: MarketoConfig, deadline: Deadline) -> CallResult:
        """One call: at most concurrentCalls in flight across every invocation (the synchronous entry
        point's too), each attempt counted against DIG's share of the day's quota with its rate slot."""
        day = self._clock().astimezone(QUOTA_TIMEZONE).date().isoformat()
        limited = replace(
            request,
            max_in_flight=config.limits.concurrentCalls,
            daily=DailyShare(day, config.limits.dailyCalls),
        )
        result = self._transport.send(limited, deadline)
        if result.status == QUOTA_SHARE_SPENT:  # held as for Marketo's own 607
            result.status = api.DAILY_QUOTA
            result.error = f"DIG's share of the daily quota ({config.limits.dailyCalls} calls) is spent"
        return result

    def _quota_spent(self, result: CallResult) -> bool:
        if result.status == api.DAILY_QUOTA:
            self._quota_until = quota_resets_at(self._clock())
            logger.error("Marketo's daily API quota is spent", extra={"until": self._quota_until.isoformat()})
            return True
        return False

    # --- 1. leads --------------------------------------------------------------------------------

    def _upsert_leads(
        self, progress: list[_Progress], config: MarketoConfig, deadline: Deadline, invocation: str
    ) -> None:
        by_lead: dict[str, list[_Progress]] = {}
        for item in progress:
            assert item.plan.lookup_value is not None
            by_lead.setdefault(item.plan.lookup_value.lower(), []).append(item)
        claimed: list[str] = []
        leads: list[tuple[str, dict[str, Any]]] = []
        for key, items in by_lead.items():
            if self._operations.claim(NAME, _lead_claim(key), "upsert", invocation) is not OperationClaim.MINE:
                for item in items:
                    item.retry.append("leads.json: another delivery is upserting this lead right now")
                continue
            claimed.append(key)
            fields: dict[str, Any] = {}
            for item in sorted(items, key=lambda i: i.plan.occurred_at):  # the newest value of each field wins
                fields |= item.plan.lead
            leads.append((key, fields))
        try:
            for start in range(0, len(leads), api.MAX_RECORDS_PER_CALL):
                chunk = leads[start : start + api.MAX_RECORDS_PER_CALL]
                request = api.upsert_leads(self._rest, [f for _, f in chunk], config.lookupField, config.limits.calls)
                result = self._send(request, config, deadline)
                if self._quota_spent(result):
                    for key, _ in chunk:
                        for item in by_lead[key]:
                            item.outcome = self._hold_outcome()
                            item.retry.append("held")
                    continue
                if result.answer_lost:
                    self._after_lost_upsert(chunk, by_lead, result, config, deadline)
                    continue
                records = api.record_results(result.body) if result.ok else []
                for index, (key, _) in enumerate(chunk):
                    record = records[index] if index < len(records) else None
                    for item in by_lead[key]:
                        item.apply(result, "leads.json")
                        if not result.ok:
                            continue
                        if record is not None and record.ok and record.id is not None:
                            item.lead_id = record.id
                        else:
                            code = f"{record.code} {record.message or ''}".strip() if record else "no result"
                            item.final.append(f"leads.json: Marketo skipped the lead: {code}")
        finally:
            for key in claimed:
                self._operations.release(NAME, _lead_claim(key), "upsert", invocation)

    def _after_lost_upsert(
        self,
        chunk: list[tuple[str, dict[str, Any]]],
        by_lead: dict[str, list[_Progress]],
        lost: CallResult,
        config: MarketoConfig,
        deadline: Deadline,
    ) -> None:
        """An upsert whose answer was lost: Marketo may have made the leads, or be making them still (a
        second createOrUpdate of one key can then make a second lead). Look them up by the lookup field:
        a lead found is updated (``updateOnly`` cannot create one); one not found is sent again later,
        by SQS, when Marketo has finished any first attempt."""
        items = [(key, item) for key, _ in chunk for item in by_lead[key]]
        for _, item in items:
            item.outcome.attempts.extend(lost.attempts)
        values = [str(fields[config.lookupField]) for _, fields in chunk]
        looked = self._send(
            api.get_leads(self._rest, config.lookupField, values, config.limits.calls), config, deadline
        )
        for _, item in items:
            item.outcome.attempts.extend(looked.attempts)
        lost_text = f"leads.json: the answer was lost ({lost.status})"
        if not looked.ok:
            for _, item in items:
                item.retry.append(f"{lost_text}, and looking the lead up failed ({looked.status}); sent again later")
            return
        found = api.found_leads(looked.body, config.lookupField)
        present = [(key, fields) for key, fields in chunk if key in found]
        for key, item in items:
            if key not in found:
                item.retry.append(f"{lost_text} and the lead is not in Marketo yet; sent again later")
        if not present:
            return
        update = api.upsert_leads(
            self._rest, [f for _, f in present], config.lookupField, config.limits.calls, action="updateOnly"
        )
        result = self._send(update, config, deadline)
        records = api.record_results(result.body) if result.ok else []
        for index, (key, _) in enumerate(present):
            record = records[index] if index < len(records) else None
            for item in by_lead[key]:
                item.apply(result, "leads.json (updateOnly)")
                item.outcome.notes.append(
                    f"{lost_text}; the lead was found by {config.lookupField} and updated, not created again"
                )
                if result.ok and record is not None and record.ok and record.id is not None:
                    item.lead_id = record.id
                elif result.ok:
                    code = f"{record.code} {record.message or ''}".strip() if record else "no result"
                    item.final.append(f"leads.json: Marketo skipped the lead: {code}")

    # --- 2. custom activities ----------------------------------------------------------------------

    def _add_activities(
        self, progress: list[_Progress], config: MarketoConfig, deadline: Deadline, invocation: str
    ) -> None:
        todo: list[_Progress] = []
        for item in progress:
            key = item.plan.activity_key
            if item.plan.activity is None or key is None:
                continue
            if key in item.inbound.completed:
                item.outcome.notes.append(f"{key} already added on an earlier attempt")
                continue
            turn = self._operations.claim(NAME, item.inbound.message_id, key, invocation)
            if turn is OperationClaim.DONE:
                item.outcome.notes.append(f"{key} already added by another delivery of this message")
                item.outcome.completed.add(key)
            elif turn is OperationClaim.BUSY:
                item.retry.append(f"activities/external.json: another delivery of this message is adding {key}")
            else:
                todo.append(item)
        for start in range(0, len(todo), api.MAX_RECORDS_PER_CALL):
            chunk = todo[start : start + api.MAX_RECORDS_PER_CALL]
            activities = [{"leadId": item.lead_id, **(item.plan.activity or {})} for item in chunk]
            result = self._send(api.add_activities(self._rest, activities, config.limits.calls), config, deadline)
            held = self._quota_spent(result)
            records = api.record_results(result.body) if result.ok else []
            for index, item in enumerate(chunk):
                key = item.plan.activity_key
                assert key is not None
                record = records[index] if index < len(records) else None
                if held:
                    item.outcome = self._hold_outcome()
                    item.retry.append("held")
                else:
                    item.apply(result, "activities/external.json")
                if result.ok and record is not None and record.ok:
                    self._operations.done(NAME, item.inbound.message_id, key)
                    item.outcome.completed.add(key)
                    continue
                if result.ok:
                    code = f"{record.code} {record.message or ''}".strip() if record else "no result"
                    item.final.append(f"activities/external.json: Marketo skipped the activity: {code}")
                self._operations.release(NAME, item.inbound.message_id, key, invocation)

    # --- 3. triggered campaigns ---------------------------------------------------------------------

    def _trigger(self, item: _Progress, config: MarketoConfig, deadline: Deadline, invocation: str) -> None:
        key = item.plan.campaign_key
        assert key is not None
        assert item.plan.campaign_id is not None
        assert item.lead_id is not None
        if key in item.inbound.completed:
            item.outcome.notes.append(f"{key} already requested on an earlier attempt")
            return
        turn = self._operations.claim(NAME, item.inbound.message_id, key, invocation)
        if turn is OperationClaim.DONE:
            item.outcome.completed.add(key)
            return
        if turn is OperationClaim.BUSY:
            item.retry.append(f"campaigns/trigger.json: another delivery of this message is requesting {key}")
            return
        request = api.trigger_campaign(
            self._rest, item.plan.campaign_id, [item.lead_id], item.plan.tokens, config.limits.calls
        )
        result = self._send(request, config, deadline)
        if self._quota_spent(result):
            item.outcome = self._hold_outcome()
            item.retry.append("held")
        else:
            item.apply(result, "campaigns/trigger.json")
        if result.ok:
            self._operations.done(NAME, item.inbound.message_id, key)
            item.outcome.completed.add(key)
        else:
            self._operations.release(NAME, item.inbound.message_id, key, invocation)

    @staticmethod
    def _conclude(item: _Progress) -> Outcome:
        outcome = item.outcome
        if outcome.hold_seconds:
            return outcome
        if item.final:
            outcome.result, outcome.error = Result.FAILED, "; ".join(item.final + item.retry)
        elif item.retry:
            outcome.result, outcome.error = Result.RETRY, "; ".join(item.retry)
        return outcome


def _lead_claim(lookup_value: str) -> str:
    """The ledger's key for a lead: a hash, so that no email address is stored in a key."""
    return "lead-" + hashlib.sha256(lookup_value.encode()).hexdigest()[:32]
