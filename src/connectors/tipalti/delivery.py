"""The Tipalti delivery engine: each PAYOUT_REQUESTED paid once, or refused, or held, and said so.

For a batch of payouts:
1. Each is checked against its program's rules (methods, currencies, the maximum): one outside them is
   FAILED at once with the reason, nothing sent, and ES Loyalty told (``FAILED``, final).
2. Each payment is looked up by its refCode first (client.payment_ref, from the payout id alone): after
   a lost answer, a timeout, a retry, a replay or a second copy of the message, a payment Tipalti
   already holds is never sent again; it is DELIVERED, "already submitted".
3. The member's payee is found by its refCode (client.payee_ref), created when there is none. One not
   payable yet (onboarding unfinished) is invited once (Tipalti mails the member the link: the
   invitation's answer holds none, so ``onboardingUrl`` stays empty), ES Loyalty is told
   ``PAYEE_NOT_READY``, and the payout is held: back on the queue every
   ``holdMinutes``, until ``payeeReadyWithinHours`` after the request, then FAILED (final).
4. The rest go in payment batches (up to 250 instructions), sent at most once per attempt: a lost answer
   or a 5xx is a RETRY, whose lookup (2) finds what Tipalti took. Tipalti's refusal of a refCode used
   before refuses its batch: RETRY, and the lookup sorts the batch out. Each line's result is read:
   refused lines FAILED with Tipalti's alerts (``REJECTED``, final), the others ``SUBMITTED``.

Later statuses come from Tipalti's webhooks (``read_webhook``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from connectors.tipalti import client as api
from connectors.tipalti.config import TipaltiConfig
from connectors.tipalti.payouts import Payout, PayoutBook
from dig_connector_kit.http import CallResult, Request, Transport
from dig_connector_kit.inbound import Emitter
from dig_connector_kit.model import Deadline, InboundMessage, Outcome, Result, WebhookReading
from dig_connector_kit.ports import OperationClaim, OperationLedger
from dig_contracts.events import PayoutRequestedEvent
from dig_contracts.inbound import (
    FINAL_PAYOUT_STATUSES,
    InboundFields,
    Origin,
    PayoutStatus,
    PayoutStatusChanged,
    PayoutStatusChangedData,
    WebhookReceipt,
    inbound_event_id,
)

NAME = "tipalti"
INVITE_OP = "invite"
# Tipalti's payment status -> ES Loyalty's (its own word kept beside it).
STATUSES = {
    "SUBMITTED": PayoutStatus.SUBMITTED,
    "PENDING_PAYER_FUNDS": PayoutStatus.SUBMITTED,
    "SCHEDULED": PayoutStatus.SUBMITTED,
    "FRAUD_REVIEW": PayoutStatus.SUBMITTED,
    "PAID": PayoutStatus.PAID,
    "CLEARED": PayoutStatus.CLEARED,
    "REJECTED": PayoutStatus.REJECTED,
    "DEFERRED": PayoutStatus.DEFERRED,
    "DEFERRED_INTERNAL": PayoutStatus.DEFERRED,
    "CANCELED": PayoutStatus.CANCELLED,
}
# A webhook's type, where its eventData carries no paymentStatus.
WEBHOOK_TYPES = {
    "paymentSubmitted": "SUBMITTED",
    "paymentCompleted": "PAID",
    "paymentError": "REJECTED",
    "paymentDeferred": "DEFERRED",
    "paymentCanceled": "CANCELED",
}


@dataclass
class _Payout:
    message: InboundMessage
    event: PayoutRequestedEvent
    payee_ref: str
    payment_ref: str
    outcome: Outcome = field(default_factory=lambda: Outcome(Result.DELIVERED))
    payee_id: str | None = None


class TipaltiConnector:
    name = NAME

    def __init__(
        self,
        config: Callable[[], TipaltiConfig],
        transport: Transport,
        base_url: str,
        *,
        payouts: PayoutBook,
        operations: OperationLedger,
        emitter: Callable[[], Emitter],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._transport = transport
        self._base = base_url.rstrip("/")
        self._payouts = payouts
        self._operations = operations
        self._emitter = emitter
        self._clock = clock

    # --- delivery -------------------------------------------------------------------------------

    def deliver(self, messages: Sequence[InboundMessage], deadline: Deadline) -> Mapping[str, Outcome]:
        try:
            config = self._config()
        except Exception as error:  # a bad or missing configuration: nothing can be paid, retry later
            return {m.message_id: Outcome(Result.RETRY, error=f"configuration unavailable: {error}") for m in messages}
        outcomes: dict[str, Outcome] = {}
        statuses: list[InboundFields] = []
        pending: list[_Payout] = []
        for message in messages:
            event = message.loyalty_event
            if not isinstance(event, PayoutRequestedEvent):
                outcomes[message.message_id] = Outcome(Result.SKIPPED, notes=[f"{message.event_type} is not a payout"])
                continue
            data = event.data
            item = _Payout(message, event, api.payee_ref(event.memberId), api.payment_ref(data.payoutId))
            # Recorded first, refused or not: the daily report counts every payout requested.
            self._payouts.keep(
                Payout(
                    item.payment_ref,
                    data.payoutId,
                    event.memberId,
                    event.programId,
                    amount=data.amount.amount,
                    currency=data.amount.currency,
                    day=event.occurredAt.astimezone(UTC).date().isoformat(),
                )
            )
            rules = config.rules_for(event.programId)
            refusal = (
                rules.refusal(data.method, data.amount.decimal, data.amount.currency)
                if rules is not None
                else f"no payout rules for program {event.programId} and no default"
            )
            if refusal is not None:
                outcomes[message.message_id] = Outcome(Result.FAILED, error=f"not sent to Tipalti: {refusal}")
                statuses.append(self._status(event, PayoutStatus.FAILED, refusal))
                continue
            pending.append(item)
        unpaid = self._already_paid(pending, config, deadline, statuses)
        payable = self._payees(unpaid, config, deadline, statuses)
        self._pay(payable, config, deadline, statuses)
        outcomes.update({item.message.message_id: item.outcome for item in pending})
        if statuses:
            self._emitter().emit(statuses)
        return outcomes

    def _send(self, request: Request, deadline: Deadline, items: Sequence[_Payout]) -> CallResult:
        result = self._transport.send(request, deadline)
        for item in items:
            item.outcome.attempts.extend(result.attempts)
        return result

    def _already_paid(
        self, pending: list[_Payout], config: TipaltiConfig, deadline: Deadline, statuses: list[InboundFields]
    ) -> list[_Payout]:
        """The payouts Tipalti holds no payment for; the others DELIVERED as they are."""
        unpaid = []
        for item in pending:
            result = self._send(api.find_payment(self._base, item.payment_ref, config.limits), deadline, [item])
            if not result.ok:
                _fail(item, f"{api.FIND_PAYMENT}: {result.status} {result.error or ''}", result.retryable)
                continue
            found = api.first_item(result.body)
            if found is None:
                unpaid.append(item)
                continue
            status = str(found.get("status") or "SUBMITTED").upper()
            item.outcome.notes.append(
                f"already submitted to Tipalti (refCode {item.payment_ref}, {status}): not sent again"
            )
            statuses.append(self._status(item.event, STATUSES.get(status, PayoutStatus.SUBMITTED), None, status))
        return unpaid

    def _payees(
        self, pending: list[_Payout], config: TipaltiConfig, deadline: Deadline, statuses: list[InboundFields]
    ) -> list[_Payout]:
        """The payouts whose payee is payable, with its id; the others held, refused or retried."""
        by_payee: dict[str, list[_Payout]] = {}
        for item in pending:
            by_payee.setdefault(item.payee_ref, []).append(item)
        payable = []
        for ref, items in by_payee.items():
            state = self._payee(ref, items, config, deadline)
            if state is None:
                continue
            if state.payable:
                for item in items:
                    item.payee_id = state.payee_id
                payable.extend(items)
                continue
            self._invite(state.payee_id, items[0], config, deadline)
            for item in items:
                self._hold(item, config, state.status, statuses)
        return payable

    def _payee(
        self, ref: str, items: list[_Payout], config: TipaltiConfig, deadline: Deadline
    ) -> api.PayeeState | None:
        found = self._send(api.find_payee(self._base, ref, config.limits), deadline, items)
        if not found.ok:
            for item in items:
                _fail(item, f"{api.FIND_PAYEE}: {found.status} {found.error or ''}", found.retryable)
            return None
        existing = api.first_item(found.body)
        if existing is None:
            payee = items[0].event.data.payee
            request = api.create_payee(self._base, ref, payee.model_dump(), config.entityType, config.limits)
            created = self._send(request, deadline, items)
            if not created.ok:  # a lost answer: the next attempt's lookup finds the payee if it was made
                retry = created.retryable or created.answer_lost
                for item in items:
                    _fail(item, f"{api.CREATE_PAYEE}: {created.status} {created.error or ''}", retry)
                return None
            existing = created.body if isinstance(created.body, dict) else {}
        try:
            return api.payee_state(existing)
        except ValueError as error:
            for item in items:
                _fail(item, f"Tipalti's payee answer: {error}", True)
            return None

    def _invite(self, payee_id: str, item: _Payout, config: TipaltiConfig, deadline: Deadline) -> None:
        """Tipalti's onboarding invitation, once per payout (the operation ledger)."""
        owner = item.message.message_id
        if self._operations.claim(NAME, owner, INVITE_OP, owner) is not OperationClaim.MINE:
            return
        result = self._send(api.invite_payee(self._base, payee_id, config.limits), deadline, [item])
        if result.ok:
            self._operations.done(NAME, owner, INVITE_OP)
            item.outcome.notes.append("Tipalti invited the payee to finish onboarding")
        else:
            self._operations.release(NAME, owner, INVITE_OP, owner)

    def _hold(self, item: _Payout, config: TipaltiConfig, status: str, statuses: list[InboundFields]) -> None:
        waited_hours = (self._clock() - item.event.occurredAt.timestamp()) / 3600
        if waited_hours >= config.payeeReadyWithinHours:
            reason = f"the payee was still not payable {config.payeeReadyWithinHours} hours after the request"
            item.outcome.result, item.outcome.error = Result.FAILED, reason
            statuses.append(self._status(item.event, PayoutStatus.FAILED, reason))
            return
        reason = f"the payee is not payable yet (Tipalti: {status or 'not payable'}): held"
        item.outcome.result, item.outcome.error = Result.RETRY, reason
        item.outcome.hold_seconds = config.holdMinutes * 60
        statuses.append(
            self._status(item.event, PayoutStatus.PAYEE_NOT_READY, "the member's Tipalti onboarding is not finished")
        )

    def _pay(
        self, payable: list[_Payout], config: TipaltiConfig, deadline: Deadline, statuses: list[InboundFields]
    ) -> None:
        for start in range(0, len(payable), api.MAX_INSTRUCTIONS_PER_BATCH):
            chunk = payable[start : start + api.MAX_INSTRUCTIONS_PER_BATCH]
            instructions = [
                api.instruction(
                    item.payee_id or "",
                    item.event.data.amount.decimal,
                    item.event.data.amount.currency,
                    item.payment_ref,
                )
                for item in chunk
            ]
            result = self._send(api.create_batch(self._base, instructions, config.limits), deadline, chunk)
            if not result.ok:
                if api.duplicate_ref(result.error):
                    reason = "Tipalti refused a refCode it holds already: the next attempt looks each payment up"
                    for item in chunk:
                        _fail(item, reason, True)
                    continue
                # A lost answer or a 5xx: not resent by the transport (at most once), but safe to try again
                # on the next attempt, whose lookup by refCode finds whatever Tipalti took.
                retry = result.retryable or result.answer_lost
                for item in chunk:
                    _fail(item, f"{api.CREATE_BATCH}: {result.status} {result.error or ''}", retry)
                continue
            try:
                batch = api.batch_id(result.body)
            except ValueError as error:
                for item in chunk:
                    _fail(item, f"{api.CREATE_BATCH}: {error}; the next attempt looks each payment up", True)
                continue
            answer = self._send(api.batch_instructions(self._base, batch, config.limits), deadline, chunk)
            read = api.lines(answer.body) if answer.ok else {}
            for item in chunk:
                line = read.get(item.payment_ref)
                if line is not None and line.refused:
                    reason = f"Tipalti refused the payment: {line.alerts or line.status}"
                    item.outcome.result, item.outcome.error = Result.FAILED, reason
                    statuses.append(self._status(item.event, PayoutStatus.REJECTED, reason, line.status.upper()))
                    continue
                item.outcome.notes.append(f"submitted in Tipalti batch {batch} (refCode {item.payment_ref})")
                statuses.append(self._status(item.event, PayoutStatus.SUBMITTED, None, "SUBMITTED"))

    def _status(
        self, event: PayoutRequestedEvent, status: PayoutStatus, reason: str | None, provider_status: str | None = None
    ) -> PayoutStatusChanged:
        final = status in FINAL_PAYOUT_STATUSES
        if status is not PayoutStatus.PAYEE_NOT_READY:
            self._payouts.set_status(api.payment_ref(event.data.payoutId), status.value, final)
        when = datetime.fromtimestamp(self._clock(), UTC)
        return status_event(
            event.data.payoutId, event.memberId, event.programId, status, reason, provider_status, when, "delivery"
        )

    # --- the return path (manifest: webhooks) ------------------------------------------------------

    def read_webhook(self, receipt: WebhookReceipt) -> WebhookReading:
        """Tipalti's webhook (``tipalti-signature`` verified by the DIG API): a payment's new status to ES
        Loyalty as PAYOUT_STATUS_CHANGED, its id from the payout and the status, so the same status
        notified twice is one event."""
        document = json.loads(receipt.body)
        kind = str(document.get("type") or "") if isinstance(document, dict) else ""
        data = document.get("eventData") if isinstance(document, dict) else None
        if kind not in WEBHOOK_TYPES or not isinstance(data, dict):
            return WebhookReading(notes=[f"Tipalti webhook {kind or '(no type)'}: nothing for ES Loyalty"])
        ref = str(data.get("refCode") or "")
        payout = self._payouts.get(ref) if ref else None
        if payout is None:
            return WebhookReading(
                unmatched=1, notes=[f"Tipalti {kind}: refCode {ref or '(none)'} is no payout DIG sent"]
            )
        provider_status = str(data.get("paymentStatus") or WEBHOOK_TYPES[kind]).upper()
        status = STATUSES.get(provider_status, PayoutStatus.SUBMITTED)
        if payout.final and status.value != payout.status:
            return WebhookReading(
                notes=[f"{kind} for payout {payout.payout_id}, already final ({payout.status}): ignored"]
            )
        final = status in FINAL_PAYOUT_STATUSES
        self._payouts.set_status(ref, status.value, final)
        reasons = [str(data.get("errorDescription") or "")] + [
            str(r.get("reasonDescription") or "") for r in data.get("deferredReasons") or [] if isinstance(r, dict)
        ]
        reason = "; ".join(r for r in reasons if r) or None
        event = status_event(
            payout.payout_id,
            payout.member_id,
            payout.program_id,
            status,
            reason,
            provider_status,
            receipt.receivedAt,
            receipt.source,
            receipt.receiptId,
        )
        return WebhookReading(events=[event])


def status_event(
    payout_id: str,
    member_id: str,
    program_id: str | None,
    status: PayoutStatus,
    reason: str | None,
    provider_status: str | None,
    occurred_at: datetime,
    source: str,
    receipt_id: str | None = None,
) -> PayoutStatusChanged:
    """ES Loyalty's PAYOUT_STATUS_CHANGED; its id from the payout and the status alone, so a status told
    by the delivery, a webhook and the reconciliation is one event."""
    return PayoutStatusChanged(
        eventId=inbound_event_id(NAME, "payout-status", payout_id, status.value),
        occurredAt=occurred_at,
        memberId=member_id,
        programId=program_id,
        origin=Origin(
            connector=NAME,
            source=source,
            providerReference=f"refCode {api.payment_ref(payout_id)}",
            receiptId=receipt_id,
        ),
        data=PayoutStatusChangedData(
            payoutId=payout_id,
            status=status,
            final=status in FINAL_PAYOUT_STATUSES,
            reason=reason[:1000] if reason else None,
            providerStatus=provider_status,
        ),
    )


def _fail(item: _Payout, error: str, retryable: bool) -> None:
    item.outcome.result = Result.RETRY if retryable else Result.FAILED
    item.outcome.error = error.strip()
