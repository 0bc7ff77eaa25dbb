"""The SFMC delivery engine. A batch of messages becomes, per configured operation:

- transactional email: one call per send definition, up to 500 recipients, each with its own
  messageKey (client.message_key: the same on every retry and replay, so SFMC never sends twice; a
  "key already used" answer means sent). A recipient SFMC refuses inside its 202 fails that message
  only, with SFMC's code. Each queued send is logged (the kit's call log) and its status asked for
  later (``poll_results``): EmailNotSent (Unsubscribed, Held, a bounce) reaches the audit trail as FAILED.
- transactional SMS: the same, through the SMS definitions, only to a member whose latest OPT_IN_SMS is
  a yes (the member contact store); any other member's SMS is skipped, saying why.
- journey entry: one call per message, at most once (the operation ledger): SFMC has no idempotency key.
- data extension rows: the batch's rows coalesced per data extension and primary key (the newest event's
  value of each column; a column an older message would set after a newer one was delivered is left out,
  the kit's watermarks), upserted asynchronously; the request's status and per-row errors asked for later.

A message's outcome is its operations' together: FAILED when one failed for good (replay it once the
cause is fixed: the operations it completed are not repeated), RETRY when one may succeed later.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from connectors.sfmc import client as api
from connectors.sfmc.config import EventMapping, SfmcConfig
from connectors.sfmc.mapping import source_values
from connectors.sfmc.notifications import read_unsubscribes
from dig_connector_kit import formatting
from dig_connector_kit.contacts import member_contacts
from dig_connector_kit.http import CallResult, Request, Transport
from dig_connector_kit.model import (
    CallbackReport,
    Deadline,
    InboundMessage,
    LateFailure,
    Outcome,
    Result,
    WebhookReading,
)
from dig_connector_kit.ports import (
    CallLog,
    ContactStore,
    Mark,
    MemberContact,
    OperationClaim,
    OperationLedger,
    WatermarkStore,
)
from dig_connector_kit.ratelimit import RateLimit
from dig_contracts.events import EventType
from dig_contracts.inbound import WebhookReceipt

NAME = "sfmc"
EMAIL_OP = "email"
SMS_OP = "sms"
JOURNEY_OP = "journey"
EMAIL_CALL_PREFIX = "email-"
SMS_CALL_PREFIX = "sms-"
ROWS_CALL_PREFIX = "rows-"
ASYNC_RECHECK_SECONDS = 60


@dataclass(frozen=True)
class _Channel:
    """A transactional channel of the Transactional Messaging API: email or SMS, the same rules."""

    operation: str
    label: str
    call_prefix: str
    call_name: str
    per_call: int
    send: Callable[[str, str, Sequence[Mapping[str, Any]], RateLimit], Request]
    status: Callable[[str, str, RateLimit], Request]
    definition: Callable[[EventMapping], Any]


EMAIL = _Channel(
    EMAIL_OP, "email", EMAIL_CALL_PREFIX, api.SEND_EMAIL, api.MAX_RECIPIENTS_PER_CALL,
    api.send_email, api.email_status, lambda mapping: mapping.email,
)  # fmt: skip
SMS = _Channel(
    SMS_OP, "SMS", SMS_CALL_PREFIX, api.SEND_SMS, api.MAX_SMS_RECIPIENTS_PER_CALL,
    api.send_sms, api.sms_status, lambda mapping: mapping.sms,
)  # fmt: skip


@dataclass
class _Progress:
    message: InboundMessage
    values: dict[str, str]
    contact: MemberContact | None = None
    planned: int = 0  # operations the configuration maps for the event
    outcome: Outcome = field(default_factory=lambda: Outcome(Result.DELIVERED))
    failed: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def result(self) -> Outcome:
        if self.failed:
            self.outcome.result, self.outcome.error = Result.FAILED, "; ".join(self.failed)
        elif self.retry:
            self.outcome.result, self.outcome.error = Result.RETRY, "; ".join(self.retry)
        elif len(self.skipped) >= self.planned:  # nothing of it was for SFMC to do
            self.outcome.result = Result.SKIPPED
        self.outcome.notes.extend(self.skipped)
        return self.outcome


class SfmcConnector:
    name = NAME

    def __init__(
        self,
        config: Callable[[], SfmcConfig],
        transport: Transport,
        rest_base: Callable[[], str],
        *,
        operations: OperationLedger,
        call_log: CallLog,
        watermarks: WatermarkStore,
        contacts: ContactStore | None = None,
    ) -> None:
        self._config = config
        self._transport = transport
        self._rest = rest_base
        self._operations = operations
        self._call_log = call_log
        self._watermarks = watermarks
        self._contacts = contacts

    # --- the return path (manifest: webhooks) ------------------------------------------------------

    def read_webhook(self, receipt: WebhookReceipt) -> WebhookReading:
        """ENS: email unsubscribes to ES Loyalty (connectors.sfmc.notifications); its callback's
        verification completed with SFMC."""
        if receipt.handshake:
            return self._verify_callback(receipt)
        return read_unsubscribes(receipt, self._contacts)

    def _verify_callback(self, receipt: WebhookReceipt) -> WebhookReading:
        handshake = json.loads(receipt.body)
        callback = handshake["callbackId"]
        configured = self._config().eventNotifications
        if configured is None or configured.callbackId != callback:
            # Anyone can post this shape: only the callback DIG was registered as is verified.
            return WebhookReading(notes=[f"ENS verification for callback {callback}, not the configured one: ignored"])
        request = api.ens_verify(self._rest(), callback, handshake["verificationKey"], self._config().limits)
        result = self._transport.send(request, Deadline(60))
        if result.ok:
            return WebhookReading(notes=[f"ENS callback {callback} verified"])
        if result.retryable:
            raise RuntimeError(f"{api.ENS_VERIFY}: {result.status} {result.error or ''}; tried again from the queue")
        return WebhookReading(notes=[f"SFMC refused the ENS verification of {callback}: {result.status}"])

    # --- delivery -------------------------------------------------------------------------------

    def deliver(self, messages: Sequence[InboundMessage], deadline: Deadline) -> Mapping[str, Outcome]:
        try:
            config = self._config()
        except Exception as error:  # a bad or missing configuration: nothing can be sent, retry later
            return {m.message_id: Outcome(Result.RETRY, error=f"configuration unavailable: {error}") for m in messages}
        contacts = member_contacts(self._contacts, messages)
        outcomes: dict[str, Outcome] = {}
        progress: list[_Progress] = []
        for message in messages:
            mapping = config.events.get(EventType(message.event_type))
            if mapping is None:
                outcomes[message.message_id] = Outcome(
                    Result.SKIPPED, notes=[f"{message.event_type} is not mapped in the configuration"]
                )
                continue
            event = message.loyalty_event
            known = contacts.get(event.memberId)
            locale, note = formatting.resolve_locale(event.locale or (known.locale if known else None), config.locale)
            values = source_values(event, locale, config.dateFormat)
            if "email" not in values and known is not None and known.email:
                values["email"] = known.email  # the address an earlier event brought
            planned = sum(x is not None for x in (mapping.email, mapping.sms, mapping.journey))
            item = _Progress(message, values, known, planned + len(mapping.dataExtensions))
            if not item.planned:
                item.skipped.append(f"{message.event_type} maps no email, SMS, journey or data extension")
            if note:
                item.outcome.notes.append(note)
            progress.append(item)
        if not progress:
            return outcomes
        try:
            rest = self._rest()  # the token's answer names the REST base
        except api.TokenRefused as error:
            return outcomes | {i.message.message_id: Outcome(Result.FAILED, error=str(error)) for i in progress}
        except Exception as error:  # the auth service unreachable: retry later
            return outcomes | {
                i.message.message_id: Outcome(Result.RETRY, error=f"no token: {error}") for i in progress
            }
        self._transactional(EMAIL, progress, config, rest, deadline)
        self._transactional(SMS, progress, config, rest, deadline)
        self._journeys(progress, config, rest, deadline)
        self._rows(progress, config, rest, deadline)
        outcomes.update({item.message.message_id: item.result() for item in progress})
        return outcomes

    def _send(self, request: Any, deadline: Deadline, items: Sequence[_Progress]) -> CallResult:
        result = self._transport.send(request, deadline)
        for item in items:
            item.outcome.attempts.extend(result.attempts)
        return result

    def _transactional(
        self, channel: _Channel, progress: list[_Progress], config: SfmcConfig, rest: str, deadline: Deadline
    ) -> None:
        by_definition: dict[str, list[tuple[_Progress, dict[str, Any]]]] = {}
        for item in progress:
            mapping = channel.definition(config.events[EventType(item.message.event_type)])
            if mapping is None:
                continue
            if channel.operation in item.message.completed:
                item.outcome.notes.append(f"the {channel.label} was queued on an earlier attempt")
                continue
            address = self._address(channel, item)
            if address is None:
                continue
            key = api.message_key(
                item.message.message_id,
                mapping.definitionKey if channel is EMAIL else f"{channel.operation}:{mapping.definitionKey}",
            )
            recipient: dict[str, Any] = {
                "contactKey": item.message.loyalty_event.memberId,
                "to": address,
                "messageKey": key,
                "attributes": {a: item.values[s] for a, s in mapping.attributes.items() if s in item.values},
            }
            by_definition.setdefault(mapping.definitionKey, []).append((item, recipient))
        for definition, entries in by_definition.items():
            for start in range(0, len(entries), channel.per_call):
                chunk = entries[start : start + channel.per_call]
                items = [item for item, _ in chunk]
                request = channel.send(rest, definition, [r for _, r in chunk], config.limits)
                result = self._send(request, deadline, items)
                if not result.ok:
                    error = f"{channel.call_name}: {result.status} {result.error or ''}".strip()
                    for item in items:
                        # A resend carries the same messageKeys: SFMC refuses what it queued before.
                        (item.retry if result.retryable else item.failed).append(error)
                    continue
                refused = api.recipient_errors(result.body)
                queued: dict[str, dict[str, list[str]]] = {}
                for item, recipient in chunk:
                    refusal = refused.get(recipient["messageKey"])
                    if refusal is not None and not refusal.sent_before:
                        item.failed.append(f"SFMC refused the {channel.label} recipient: {refusal.describe()}")
                        continue
                    if refusal is not None:
                        item.outcome.notes.append(
                            f"{definition}: SFMC had queued this messageKey before; not sent again"
                        )
                    item.outcome.completed.add(channel.operation)
                    member = recipient["contactKey"]
                    queued.setdefault(member, {})[item.message.message_id] = [recipient["messageKey"]]
                if queued:
                    call_id = f"{channel.call_prefix}{uuid.uuid4().hex}"
                    self._call_log.record(NAME, call_id, queued, due_in_seconds=config.statusCheckSeconds)

    @staticmethod
    def _address(channel: _Channel, item: _Progress) -> str | None:
        """Where the message goes, or None with the reason recorded: a mail without an address fails
        (replayable once ES Loyalty sends one); an SMS without consent is skipped (nothing to mend)."""
        if channel is EMAIL:
            address = item.values.get("email")
            if not address:
                item.failed.append("no email is known for the member: no event of theirs has carried one")
            return address or None
        contact = item.contact
        if contact is None or contact.mobile is None:
            item.skipped.append("SMS not sent: no SMS consent is known to DIG for the member (no OPT_IN_SMS)")
            return None
        if contact.sms_number is None:
            item.skipped.append(f"SMS not sent: the member opted out of SMS ({contact.sms_seen_at})")
            return None
        return api.sms_number(contact.sms_number)

    def _journeys(self, progress: list[_Progress], config: SfmcConfig, rest: str, deadline: Deadline) -> None:
        invocation = uuid.uuid4().hex
        for item in progress:
            mapping = config.events[EventType(item.message.event_type)].journey
            if mapping is None or item.failed:
                continue
            key = f"{JOURNEY_OP}:{mapping.eventDefinitionKey}"
            if key in item.message.completed:
                continue
            turn = self._operations.claim(NAME, item.message.message_id, key, invocation)
            if turn is OperationClaim.DONE:
                item.outcome.completed.add(key)
                continue
            if turn is OperationClaim.BUSY:
                item.retry.append(f"{key}: another delivery of this message is entering the journey right now")
                continue
            data = {name: item.values[source] for name, source in mapping.data.items() if source in item.values}
            request = api.journey_event(
                rest, mapping.eventDefinitionKey, item.message.loyalty_event.memberId, data, config.limits
            )
            result = self._send(request, deadline, [item])
            if result.ok:
                self._operations.done(NAME, item.message.message_id, key)
                item.outcome.completed.add(key)
                continue
            self._operations.release(NAME, item.message.message_id, key, invocation)
            error = f"{api.JOURNEY_EVENT}: {result.status} {result.error or ''}".strip()
            (item.retry if result.retryable else item.failed).append(error)

    def _rows(self, progress: list[_Progress], config: SfmcConfig, rest: str, deadline: Deadline) -> None:
        # (data extension, primary key values) -> the row, and which message set each of its columns.
        rows: dict[tuple[str, tuple[str, ...]], dict[str, tuple[str, Mark]]] = {}
        writers: dict[tuple[str, tuple[str, ...]], list[_Progress]] = {}
        members = {item.message.loyalty_event.memberId for item in progress}
        known = self._watermarks.get(NAME, members)
        for item in sorted(progress, key=lambda i: _utc(i.message)):
            mapping = config.events[EventType(item.message.event_type)]
            for name in mapping.dataExtensions:
                if f"rows:{name}" in item.message.completed:
                    continue
                extension = config.dataExtensions[name]
                missing = [c for c in extension.primaryKey if extension.columns[c] not in item.values]
                if missing:
                    item.failed.append(f"{name}: the event has no value for the primary key {', '.join(missing)}")
                    continue
                key = (name, tuple(item.values[extension.columns[c]] for c in extension.primaryKey))
                mark = (_utc(item.message), item.message.message_id)
                delivered = known.get(item.message.loyalty_event.memberId, {})
                row = rows.setdefault(key, {})
                for column, source in extension.columns.items():
                    if source not in item.values:
                        continue
                    field_name = f"{name}.{column}"
                    newer = field_name in delivered and delivered[field_name][0] > mark[0]
                    if newer and column not in extension.primaryKey:
                        item.outcome.notes.append(f"{field_name}: a newer value was delivered; not sent")
                        continue
                    row[column] = (item.values[source], mark)
                writers.setdefault(key, []).append(item)
        by_extension: dict[str, list[tuple[str, ...]]] = {}
        for name, pk in rows:
            by_extension.setdefault(name, []).append(pk)
        for name, keys in by_extension.items():
            extension = config.dataExtensions[name]
            for chunk in _upsert_chunks([rows[(name, k)] for k in keys], keys):
                items = [{column: value for column, (value, _) in rows[(name, k)].items()} for k in chunk]
                involved = list({id(i): i for k in chunk for i in writers[(name, k)]}.values())
                result = self._send(api.upsert_rows(rest, extension.key, items, config.limits), deadline, involved)
                request_id = None
                if result.ok:
                    try:
                        request_id = api.accepted_request(result.body)
                    except ValueError as error:
                        for item in involved:
                            item.failed.append(f"{api.ROWS_UPSERT} {extension.key}: {error}")
                        continue
                else:
                    error_text = f"{api.ROWS_UPSERT}: {result.status} {result.error or ''}".strip()
                    for item in involved:
                        (item.retry if result.retryable else item.failed).append(error_text)
                    continue
                carried: dict[str, dict[str, list[str]]] = {}
                advanced: dict[str, dict[str, Mark]] = {}
                for position, k in enumerate(chunk):
                    row_key = f"{position}|{'|'.join(k)}"
                    for column, (_, mark) in rows[(name, k)].items():
                        carried.setdefault(row_key, {}).setdefault(mark[1], []).append(column)
                    for item in writers[(name, k)]:
                        member = item.message.loyalty_event.memberId
                        for column, (_, mark) in rows[(name, k)].items():
                            if mark[1] == item.message.message_id:
                                advanced.setdefault(member, {})[f"{name}.{column}"] = mark
                        item.outcome.completed.add(f"rows:{name}")
                self._call_log.record(
                    NAME, f"{ROWS_CALL_PREFIX}{request_id}", carried, due_in_seconds=ASYNC_RECHECK_SECONDS
                )
                self._watermarks.advance(NAME, advanced, known)

    # --- late results (manifest: polled_results) --------------------------------------------------

    def poll_results(self, deadline: Deadline) -> CallbackReport:
        """The sends and upserts whose results are due: what SFMC did with each. A send not sent
        (Unsubscribed, Held, a bounce), or a row refused, fails its message; one still in progress is
        asked for again later."""
        config = self._config()
        rest = self._rest()
        report = CallbackReport()
        for call_id in self._call_log.flag_overdue(NAME):
            if not deadline.allows(10):
                break
            carried = self._call_log.lookup(NAME, call_id)
            if carried is None:
                continue
            if call_id.startswith(EMAIL_CALL_PREFIX):
                self._send_results(EMAIL, call_id, carried, config, rest, deadline, report)
            elif call_id.startswith(SMS_CALL_PREFIX):
                self._send_results(SMS, call_id, carried, config, rest, deadline, report)
            elif call_id.startswith(ROWS_CALL_PREFIX):
                self._row_results(call_id, carried, config, rest, deadline, report)
        return report

    def _send_results(
        self,
        channel: _Channel,
        call_id: str,
        carried: dict[str, dict[str, list[str]]],
        config: SfmcConfig,
        rest: str,
        deadline: Deadline,
        report: CallbackReport,
    ) -> None:
        pending: dict[str, dict[str, list[str]]] = {}
        seen: dict[str, str] = {}
        for member, sent in carried.items():
            for message_id, keys in sent.items():
                for key in keys:
                    result = self._transport.send(channel.status(rest, key, config.limits), deadline)
                    try:
                        status = api.send_status(result.body) if result.ok else None
                    except ValueError:
                        status = None
                        report.unreadable = True
                    if status is None or not status.final:
                        pending.setdefault(member, {})[message_id] = [key]
                        continue
                    seen[key] = status.category
                    if status.failed:
                        why = f"{status.status_code or ''} {status.status_message or ''}".strip() or "no reason given"
                        report.failures.append(LateFailure(message_id, f"SFMC did not send the {channel.label}: {why}"))
        if pending:
            self._call_log.record(NAME, call_id, pending, due_in_seconds=config.statusCheckSeconds)
        else:
            self._call_log.keep_results(NAME, call_id, seen, readable=not report.unreadable)

    def _row_results(
        self,
        call_id: str,
        carried: dict[str, dict[str, list[str]]],
        config: SfmcConfig,
        rest: str,
        deadline: Deadline,
        report: CallbackReport,
    ) -> None:
        request_id = call_id.removeprefix(ROWS_CALL_PREFIX)
        answer = self._transport.send(api.async_status(rest, request_id, config.limits), deadline)
        status = api.async_status_of(answer.body) if answer.ok else None
        if status is None or not status.done:
            self._call_log.record(NAME, call_id, carried, due_in_seconds=ASYNC_RECHECK_SECONDS)
            return
        if not status.has_errors:
            self._call_log.keep_results(NAME, call_id, {"status": status.request_status}, readable=True)
            return
        pages: list[Any] = []
        page = 1
        while True:
            result = self._transport.send(api.async_results(rest, request_id, page, config.limits), deadline)
            if not result.ok:
                self._call_log.record(NAME, call_id, carried, due_in_seconds=ASYNC_RECHECK_SECONDS)
                return
            pages.append(result.body)
            if page * api.RESULTS_PAGE >= api.results_count(result.body):
                break
            page += 1
        refused = api.row_errors(pages)
        rows = list(carried.items())
        for position, error in refused.items():
            if position >= len(rows):
                continue
            for message_id in rows[position][1]:
                report.failures.append(LateFailure(message_id, f"SFMC refused the data extension row: {error}"))
        self._call_log.keep_results(NAME, call_id, json.dumps(pages)[:50_000], readable=True)


def _utc(message: InboundMessage) -> str:
    return message.loyalty_event.occurredAt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _upsert_chunks(
    rows: Sequence[Mapping[str, tuple[str, Mark]]], keys: Sequence[tuple[str, ...]]
) -> list[list[tuple[str, ...]]]:
    """The rows' keys in requests within SFMC's 32,000 rows and DIG's 5 MB."""
    chunks: list[list[tuple[str, ...]]] = [[]]
    size = 0
    for row, key in zip(rows, keys, strict=True):
        length = len(json.dumps({c: v for c, (v, _) in row.items()}))
        if chunks[-1] and (len(chunks[-1]) >= api.MAX_ROWS_PER_UPSERT or size + length > api.MAX_UPSERT_BYTES):
            chunks.append([])
            size = 0
        chunks[-1].append(key)
        size += length
    return [c for c in chunks if c]
