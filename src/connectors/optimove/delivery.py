"""The Optimove delivery engine: a batch of messages becomes as few Optimove calls as Optimove allows.

Phase 1 sends what describes the member: all attribute updates of the batch, coalesced into calls of
1,000 customers and 10 attributes per customer: InsertOrUpdateCustomers for the members a registration
in the batch creates (so that the customer exists before anything updates it), sent first, then
UpdateCustomerAttributes for the others; and email channel preferences grouped into
SetCustomerChannelPreference calls. Phase 2 sends what acts on it:
real-time events and transactional mails, only for messages whose phase-1 work succeeded, so that a
welcome campaign never runs before the member's attributes were sent.

Ordering: for one member and attribute, the newest ``occurredAt`` in the batch wins, and a value
older than the last one delivered (the watermark) is never sent. Operations with side effects
(a real-time event, a mail) are recorded as completed, so that a retry of the message skips them.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC

from connectors.optimove import client as api
from connectors.optimove.client import Credentials
from connectors.optimove.config import OptimoveConfig, RealtimeFormat
from connectors.optimove.manifest import MANIFEST
from connectors.optimove.mapping import ChannelPreference, Plan, RealtimeCall, plan
from dig_connector_kit.contacts import member_contacts
from dig_connector_kit.http import CallResult, Transport
from dig_connector_kit.model import CallbackReport, Deadline, InboundMessage, LateFailure, Outcome, Result
from dig_connector_kit.ports import (
    CallLog,
    ContactStore,
    Mark,
    MemberContact,
    OperationClaim,
    OperationLedger,
    WatermarkStore,
)
from dig_contracts.bus import CallbackDetail
from dig_contracts.callbacks import DEFAULT_VALIDITY_SECONDS, callback_url
from dig_contracts.events import PointsTransferredEvent
from dig_contracts.files import FileReadyDetail

logger = logging.getLogger(__name__)
NAME = "optimove"
# A mail whose member has no email yet waits once (a hold, not a receive) for the coalescing lane's
# window and a margin: an opt-in in the same batch carries it (dig_contracts.manifest.Lane).
EMAIL_AWAITED = "awaited:email"
EMAIL_WAIT_MARGIN_SECONDS = 5


def email_wait_seconds(coalescing_window_seconds: float | None = None) -> int:
    """The hold: the coalescing lane's window as deployed (the manifest's unless told), and the margin."""
    window = MANIFEST.max_batching_window_seconds if coalescing_window_seconds is None else coalescing_window_seconds
    return math.ceil(window) + EMAIL_WAIT_MARGIN_SECONDS


INVALID_CUSTOMER = "INVALID_CUSTOMER"  # the customer does not exist (yet): a verdict that changes with time


@dataclass(frozen=True)
class Endpoints:
    api_base: str
    realtime_base: str
    # Where Optimove posts UpdateCustomerAttributes results: the DIG API's callback route.
    callback_base: str | None = None
    callback_validity_seconds: int = DEFAULT_VALIDITY_SECONDS


@dataclass
class _Progress:
    """What happened to one message's operations in this invocation."""

    plan: Plan
    inbound: InboundMessage
    outcome: Outcome = field(default_factory=lambda: Outcome(Result.DELIVERED))
    final_errors: list[str] = field(default_factory=list)
    retry_errors: list[str] = field(default_factory=list)
    sent: int = 0
    sent_before: int = 0  # attributes this message delivered on an earlier attempt
    superseded: list[str] = field(default_factory=list)

    def apply(self, result: CallResult, what: str) -> None:
        self.outcome.attempts.extend(result.attempts)
        if result.note:
            self.outcome.notes.append(result.note)
        if result.ok:
            self.sent += 1
        elif result.retryable:
            self.retry_errors.append(f"{what}: {result.error or result.status}")
        else:
            self.final_errors.append(f"{what}: {result.status} {result.error or ''}".strip())

    @property
    def forced(self) -> bool:
        return bool(self.inbound.replay and self.inbound.replay.force)

    @property
    def phase_one_ok(self) -> bool:
        return not self.final_errors and not self.retry_errors


def utc_key(moment: object) -> str:
    from datetime import datetime

    assert isinstance(moment, datetime)
    # isoformat, not strftime: the same text at a third of the cost, twice per message.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


class OptimoveConnector:
    name = NAME

    def __init__(
        self,
        config: Callable[[], OptimoveConfig],
        transport: Transport,
        watermarks: WatermarkStore,
        endpoints: Endpoints,
        credentials: Callable[[], Credentials],
        operations: OperationLedger,
        call_log: CallLog | None = None,
        callback_key: Callable[[], str | None] = lambda: None,
        contacts: ContactStore | None = None,
        record_extract: Callable[[FileReadyDetail], object] | None = None,
        coalescing_window_seconds: float | None = None,
    ) -> None:
        self._record_extract = record_extract
        self._email_wait_seconds = email_wait_seconds(coalescing_window_seconds)
        self._config = config
        self._transport = transport
        self._watermarks = watermarks
        self._endpoints = endpoints
        self._credentials = credentials
        self._operations = operations
        self._call_log = call_log
        self._callback_key = callback_key
        self._contacts = contacts

    @property
    def transport(self) -> Transport:
        return self._transport

    def handle_file_ready(self, detail: FileReadyDetail) -> None:
        """An extract arrived: recorded for the day of the batch channel it feeds (the feed job builds
        the day's files from it; connectors.optimove.feed)."""
        if self._record_extract is not None:
            self._record_extract(detail)

    def _other_members(
        self, messages: Sequence[InboundMessage], contacts: Mapping[str, MemberContact]
    ) -> dict[str, MemberContact]:
        """The contacts of members an event names besides its own (a points transfer's other member)."""
        wanted = {
            member
            for m in messages
            if isinstance(m.event, PointsTransferredEvent)
            for member in (m.event.data.fromMemberId, m.event.data.toMemberId)
        }
        missing = wanted - set(contacts)
        found = dict(self._contacts.get(missing)) if missing and self._contacts is not None else {}
        return {**{m: contacts[m] for m in wanted & set(contacts)}, **found}

    def deliver(self, messages: Sequence[InboundMessage], deadline: Deadline) -> Mapping[str, Outcome]:
        try:
            config = self._config()
        except Exception as error:  # a bad or missing configuration: nothing can be sent, retry later
            logger.error("configuration unavailable", extra={"error": str(error)})
            return {m.message_id: Outcome(Result.RETRY, error=f"configuration unavailable: {error}") for m in messages}

        progress: dict[str, _Progress] = {}
        outcomes: dict[str, Outcome] = {}
        contacts = member_contacts(self._contacts, messages)
        others = self._other_members(messages, contacts)
        for message in messages:
            planned = plan(message, config, contacts.get(message.event.memberId), others)
            if planned.errors:
                outcomes[message.message_id] = Outcome(
                    Result.FAILED, error="; ".join(planned.errors), notes=planned.notes
                )
            elif planned.skip_reason:
                outcomes[message.message_id] = Outcome(
                    Result.SKIPPED, error=None, notes=[*planned.notes, planned.skip_reason]
                )
            else:
                item = _Progress(planned, message)
                item.outcome.notes.extend(planned.notes)
                progress[message.message_id] = item

        self._send_attributes(progress, config, deadline)
        self._send_channel_preferences(progress, config, deadline)
        invocation = uuid.uuid4().hex  # who holds a claimed operation (db.operations)
        for item in progress.values():
            if item.phase_one_ok:
                self._send_actions(item, config, deadline, invocation)

        for message_id, item in progress.items():
            outcomes[message_id] = self._conclude(item)
        return outcomes

    # --- phase 1: attributes --------------------------------------------------------------

    def _send_attributes(self, progress: dict[str, _Progress], config: OptimoveConfig, deadline: Deadline) -> None:
        with_attributes = [p for p in progress.values() if p.plan.attributes]
        creating = {p.plan.member_id: p for p in progress.values() if p.plan.creates_customer}
        if not with_attributes and not creating:
            return
        marks = self._watermarks.get(NAME, {p.plan.member_id for p in with_attributes})
        # member -> field -> (occurredAt key, order in batch, progress, value)
        winners: dict[str, dict[str, tuple[str, int, _Progress, str]]] = defaultdict(dict)
        for order, item in enumerate(with_attributes):
            occurred = utc_key(item.plan.occurred_at)
            member = item.plan.member_id
            for field_name, value in item.plan.attributes.items():
                mark = marks.get(member, {}).get(field_name)
                if mark is not None and mark[1] == item.inbound.message_id and not item.forced:
                    item.sent_before += 1  # this very message delivered it on an earlier attempt
                    continue
                if mark is not None and occurred < mark[0]:
                    item.superseded.append(f"{field_name} (a newer value was already delivered)")
                    continue
                current = winners[member].get(field_name)
                if current is None or (occurred, order) >= (current[0], current[1]):
                    if current is not None:
                        current[2].superseded.append(
                            f"{field_name} (superseded in this batch by {item.inbound.message_id})"
                        )
                    winners[member][field_name] = (occurred, order, item, value)
                else:
                    item.superseded.append(
                        f"{field_name} (superseded in this batch by {current[2].inbound.message_id})"
                    )

        # Each member's attributes in chunks of 10; round r carries every member's r-th chunk.
        rounds: list[list[tuple[str, list[tuple[str, str]], set[int]]]] = []
        by_id = {id(p): p for p in with_attributes}
        for member, fields in winners.items():
            ordered = sorted(fields.items())
            for index in range(0, len(ordered), api.MAX_ATTRIBUTES_PER_CUSTOMER):
                chunk = ordered[index : index + api.MAX_ATTRIBUTES_PER_CUSTOMER]
                round_index = index // api.MAX_ATTRIBUTES_PER_CUSTOMER
                while len(rounds) <= round_index:
                    rounds.append([])
                rounds[round_index].append(
                    (member, [(name, winner[3]) for name, winner in chunk], {id(winner[2]) for _, winner in chunk})
                )

        # A registration's member is created with its first round of attributes, or alone if none is left.
        by_id |= {id(p): p for p in creating.values()}
        if creating and not rounds:
            rounds.append([])
        in_first = {member: owners for member, _, owners in rounds[0]} if rounds else {}
        for member, item in creating.items():
            if member in in_first:
                in_first[member].add(id(item))
            else:
                rounds[0].append((member, [], {id(item)}))

        delivered: dict[str, dict[str, Mark]] = defaultdict(dict)
        for customers in rounds:
            new = [c for c in customers if c[0] in creating]
            existing = [c for c in customers if c[0] not in creating]
            for group, creates in ((new, True), (existing, False)):
                for start in range(0, len(group), api.MAX_CUSTOMERS_PER_UPDATE):
                    call = group[start : start + api.MAX_CUSTOMERS_PER_UPDATE]
                    self._send_customers(call, creates, winners, by_id, delivered, config, deadline)
        if delivered:
            self._watermarks.advance(NAME, delivered, marks)

    def _send_customers(
        self,
        call: list[tuple[str, list[tuple[str, str]], set[int]]],
        creates: bool,
        winners: dict[str, dict[str, tuple[str, int, _Progress, str]]],
        by_id: dict[int, _Progress],
        delivered: dict[str, dict[str, Mark]],
        config: OptimoveConfig,
        deadline: Deadline,
    ) -> None:
        """One InsertOrUpdateCustomers (``creates``) or UpdateCustomerAttributes call."""
        call_id, callback = self._callback()
        customers = [(member, attrs) for member, attrs, _ in call]
        limit = config.rateLimits.customerApi
        if creates:
            request = api.insert_or_update_customers(
                self._endpoints.api_base,
                customers,
                limit,
                method=config.customers.upsertMethod,
                path=config.customers.upsertPath,
                callback_url=callback,
                call_id=call_id,
            )
        else:
            request = api.update_customer_attributes(
                self._endpoints.api_base, customers, limit, callback_url=callback, call_id=call_id
            )
        result = self._transport.send(request, deadline)
        if result.ok and callback and self._call_log is not None:
            self._call_log.record(
                NAME, call_id, self._carried(call, winners), due_in_seconds=config.callbackResultsOverdueMinutes * 60
            )
        involved: set[int] = set().union(*(owners for _, _, owners in call))
        for owner in involved:
            by_id[owner].apply(result, request.call)
        if result.ok:
            for member, attrs, _ in call:
                for name, _value in attrs:
                    winner = winners[member][name]
                    delivered[member][name] = (winner[0], winner[2].inbound.message_id)

    def _callback(self) -> tuple[str, str | None]:
        call_id = uuid.uuid4().hex
        key = self._callback_key() if self._endpoints.callback_base else None
        if not key or not self._endpoints.callback_base:
            return call_id, None
        return call_id, callback_url(
            self._endpoints.callback_base,
            key,
            NAME,
            call_id,
            validity_seconds=self._endpoints.callback_validity_seconds,
        )

    @staticmethod
    def _carried(
        call: list[tuple[str, list[tuple[str, str]], set[int]]],
        winners: dict[str, dict[str, tuple[str, int, _Progress, str]]],
    ) -> dict[str, dict[str, list[str]]]:
        """customer -> message -> fields this call carried for it."""
        carried: dict[str, dict[str, list[str]]] = {}
        for member, attributes, _ in call:
            for name, _value in attributes:
                message_id = winners[member][name][2].inbound.message_id
                carried.setdefault(member, {}).setdefault(message_id, []).append(name)
        return carried

    # --- callbacks: Optimove's per-customer results, a minute later --------------------------------

    def handle_callback(self, detail: CallbackDetail) -> CallbackReport:
        results = api.parse_update_results(detail.payload)
        if self._call_log is not None and not self._call_log.keep_results(
            NAME, detail.callId, detail.payload, readable=results is not None, receipt=detail.receiptId
        ):
            logger.warning(
                "results for this call were applied before; this post is ignored", extra={"callId": detail.callId}
            )
            return CallbackReport()
        if results is None:
            logger.error("unreadable callback results, kept with the call's log", extra={"callId": detail.callId})
            return CallbackReport(unreadable=True)
        if not results.errors:
            return CallbackReport()
        carried = self._call_log.lookup(NAME, detail.callId) if self._call_log else None
        if carried is None:
            logger.warning("results for an unknown or expired call", extra={"callId": detail.callId})
            return CallbackReport()
        failures: dict[str, list[str]] = {}
        only_unknown_customer: dict[str, bool] = {}
        forget: dict[str, dict[str, str]] = {}
        for error in results.errors:
            for message_id, fields in carried.get(error.customer_id, {}).items():
                if error.field and fields and error.field not in fields:
                    continue
                what = f"{error.code} for {error.field}" if error.field else error.code
                failures.setdefault(message_id, []).append(what)
                unknown = error.code == INVALID_CUSTOMER
                only_unknown_customer[message_id] = only_unknown_customer.get(message_id, True) and unknown
                for name in [error.field] if error.field else fields:
                    forget.setdefault(error.customer_id, {})[name] = message_id
        if forget:
            self._watermarks.forget(NAME, forget)
        retry = self._config().customers if any(only_unknown_customer.values()) else None
        report = CallbackReport()
        for message_id, codes in failures.items():
            text = f"Optimove rejected it after accepting the call {detail.callId}: {', '.join(codes)}"
            if retry is not None and only_unknown_customer[message_id]:
                report.failures.append(
                    LateFailure(
                        message_id,
                        text + " (the customer does not exist in Optimove yet)",
                        retry_in_seconds=retry.retryDelaySeconds,
                        give_up_after_seconds=retry.giveUpAfterMinutes * 60,
                    )
                )
            else:
                report.failures.append(LateFailure(message_id, text))
        return report

    def overdue_results(self) -> int:
        """Flag the calls whose results did not come back in time (a scheduled check)."""
        if self._call_log is None:
            return 0
        overdue = self._call_log.flag_overdue(NAME)
        if overdue:
            logger.error("results of calls overdue", extra={"callIds": overdue[:50], "count": len(overdue)})
        return len(overdue)

    # --- phase 1: email channel preference ------------------------------------------------------

    def _send_channel_preferences(
        self, progress: dict[str, _Progress], config: OptimoveConfig, deadline: Deadline
    ) -> None:
        newest: dict[tuple[str, int, int], tuple[str, _Progress]] = {}
        for item in progress.values():
            preference = item.plan.channel_preference
            if preference is None:
                continue
            key = (item.plan.member_id, preference.channel_id, preference.app_id)
            occurred = utc_key(item.plan.occurred_at)
            current = newest.get(key)
            if current is None or occurred >= current[0]:
                if current is not None:
                    current[1].superseded.append("email preference (superseded in this batch)")
                newest[key] = (occurred, item)
            else:
                item.superseded.append("email preference (superseded in this batch)")
        groups: dict[ChannelPreference, list[_Progress]] = defaultdict(list)
        for _, item in newest.values():
            assert item.plan.channel_preference is not None
            groups[item.plan.channel_preference].append(item)
        for preference, items in groups.items():
            for start in range(0, len(items), api.MAX_CUSTOMERS_PER_PREFERENCE):
                chunk = items[start : start + api.MAX_CUSTOMERS_PER_PREFERENCE]
                request = api.set_customer_channel_preference(
                    self._endpoints.api_base,
                    preference,
                    [i.plan.member_id for i in chunk],
                    config.rateLimits.customerApi,
                )
                result = self._transport.send(request, deadline)
                for item in chunk:
                    item.apply(result, "SetCustomerChannelPreference")

    # --- phase 2: real-time events and transactional mail ----------------------------------------

    def _send_actions(self, item: _Progress, config: OptimoveConfig, deadline: Deadline, invocation: str) -> None:
        done = item.inbound.completed
        realtime = item.plan.realtime
        if realtime is not None:
            if realtime.key in done:
                # Never again, even when forced: nothing at Optimove deduplicates a real-time event,
                # and a second one would start its campaign (a welcome mail) a second time.
                item.outcome.notes.append(f"{realtime.key} already reported on an earlier attempt")
            else:
                self._report_once(item, realtime, config, deadline, invocation)
        for mail in item.plan.mails:
            # A forced replay sends a mail again: its UniqueMessageID lets Optimove refuse the repeat.
            if mail.key in done and not item.forced:
                item.outcome.notes.append(f"{mail.key} already sent on an earlier attempt")
                continue
            if not mail.email and EMAIL_AWAITED not in done and not item.forced:
                # The email may be on its way in the coalescing lane (an opt-in of the same batch, which
                # waits for the batching window): wait for it once, then fail as below.
                item.retry_errors.append(
                    f"SendTransactionalMail: no email is known yet for member {mail.member_id or item.plan.member_id}; "
                    f"waiting {self._email_wait_seconds} s once for an event that carries one"
                )
                item.outcome.completed.add(EMAIL_AWAITED)
                item.outcome.hold_seconds = self._email_wait_seconds
                continue
            if not mail.email:
                item.final_errors.append(
                    f"SendTransactionalMail: no email is known for member {mail.member_id or item.plan.member_id} "
                    "(the event carries none, and no earlier event or memberAccounts extract did); replay it once "
                    "ES Loyalty has sent one"
                )
                continue
            request = api.send_transactional_mail(
                self._endpoints.api_base, mail.email, mail, config.rateLimits.transactionalMail
            )
            result = self._transport.send(request, deadline, conflict_means_done=True)
            item.apply(result, "SendTransactionalMail")
            if result.ok:
                item.outcome.completed.add(mail.key)

    def _report_once(
        self, item: _Progress, realtime: RealtimeCall, config: OptimoveConfig, deadline: Deadline, invocation: str
    ) -> None:
        """The real-time event, by one copy of the message only, when copies are delivered at the same
        time; a lost answer is not retried (the transport's at-most-once rule)."""
        token = self._credentials().realtime_token
        if not token:
            item.final_errors.append("reportEvent: the Optimove secret has no realtimeToken")
            return
        if config.realtime.format is RealtimeFormat.SERVER_SIDE:
            assert config.realtime.tenantId is not None  # validated with the configuration
            request = api.server_side_event(
                self._endpoints.realtime_base, token, config.realtime.tenantId, item.plan.member_id, realtime
            )
        else:
            request = api.report_event(self._endpoints.realtime_base, token, item.plan.member_id, realtime)
        message_id = item.inbound.message_id
        turn = self._operations.claim(NAME, message_id, realtime.key, invocation)
        if turn is OperationClaim.DONE:
            item.outcome.notes.append(f"{realtime.key} already reported by another delivery of this message")
            item.outcome.completed.add(realtime.key)
            return
        if turn is OperationClaim.BUSY:
            item.retry_errors.append(f"reportEvent: another delivery of this message is reporting {realtime.name}")
            return
        result = self._transport.send(request, deadline)
        item.apply(result, "reportEvent")
        if result.ok:
            self._operations.done(NAME, message_id, realtime.key)
            item.outcome.completed.add(realtime.key)
        else:
            self._operations.release(NAME, message_id, realtime.key, invocation)

    # --- the outcome ----------------------------------------------------------------------------

    @staticmethod
    def _conclude(item: _Progress) -> Outcome:
        outcome = item.outcome
        if item.superseded:
            outcome.notes.append("not sent: " + ", ".join(item.superseded))
        if item.final_errors:
            outcome.result = Result.FAILED
            outcome.error = "; ".join(item.final_errors + item.retry_errors)
        elif item.retry_errors:
            outcome.result = Result.RETRY
            outcome.error = "; ".join(item.retry_errors)
        elif item.sent == 0 and item.sent_before == 0 and not outcome.completed and not item.inbound.completed:
            outcome.result = Result.SKIPPED
            if not item.superseded:
                outcome.notes.append("nothing left to send")
        return outcome
