"""What a message in a connector's dead-letter queue is, and whether anything still waits on it.

A connector's queue carries three kinds of message, and any of them can end in its dead-letter queue:
an event (a bus event for the connector: its delivery in the audit trail says where it stands), a
provider's callback (results the API received for a call the connector made: the call log says whether
results for that call were kept), and the schedule's periodic check (the next one does its work).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError

from db.audit import DONE
from db.call_log import CallStatus
from db.records import DeliveryRecord
from dig_contracts.bus import CALLBACK_SOURCE, SCHEDULE_SOURCE, BusDetail, CallbackDetail


class Kind(StrEnum):
    EVENT = "event"
    CALLBACK = "callback"
    SCHEDULED_CHECK = "scheduled check"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class DeadLetter:
    sqs_id: str
    kind: Kind
    event: BusDetail | None = None
    callback: CallbackDetail | None = None

    @property
    def shown_id(self) -> str:
        """What the operator looks it up by: the message id, the call id, else the SQS message id."""
        if self.event is not None:
            return self.event.messageId
        if self.callback is not None:
            return f"callback {self.callback.callId}"
        return self.sqs_id


def read_dead_letter(sqs_id: str, body: str) -> DeadLetter:
    try:
        envelope = json.loads(body)
    except ValueError:
        return DeadLetter(sqs_id, Kind.UNREADABLE)
    if not isinstance(envelope, dict):
        return DeadLetter(sqs_id, Kind.UNREADABLE)
    try:
        if envelope.get("source") == CALLBACK_SOURCE:
            return DeadLetter(sqs_id, Kind.CALLBACK, callback=CallbackDetail.model_validate(envelope.get("detail")))
        if envelope.get("source") == SCHEDULE_SOURCE:
            return DeadLetter(sqs_id, Kind.SCHEDULED_CHECK)
        return DeadLetter(sqs_id, Kind.EVENT, event=BusDetail.model_validate(envelope.get("detail")))
    except ValidationError:
        return DeadLetter(sqs_id, Kind.UNREADABLE)


@dataclass(frozen=True)
class Standing:
    """Where a dead letter stands: ``status`` and ``note`` for the table; ``resolved`` when nothing will
    ever need it again (`dig dlq --delete-resolved` deletes it)."""

    status: str
    note: str
    resolved: bool
    delivery: DeliveryRecord | None = None


def standing_of(
    letter: DeadLetter,
    deliveries: Mapping[str, DeliveryRecord],
    call_status: Callable[[str], CallStatus | None],
) -> Standing:
    """``deliveries``: the connector's deliveries of the events, by message id; ``call_status``: a call's
    standing in the call log."""
    if letter.event is not None:
        delivery = deliveries.get(letter.event.messageId)
        if delivery is None:
            return Standing("(no delivery)", "", resolved=False)
        return Standing(delivery.status.value, (delivery.lastError or "")[:100], delivery.status in DONE, delivery)
    if letter.callback is not None:
        call = call_status(letter.callback.callId)
        if call is None:
            # Never recorded (the invocation stopped between the provider's answer and the record; its messages
            # went again in a new call, whose results came on their own), or expired: nothing can apply these.
            return Standing("callback: no such call", "not in the call log (never recorded, or expired)", True)
        if call.results_at:
            return Standing("callback: results kept", call.describe(), resolved=True)
        return Standing("callback: NOT APPLIED", call.describe() + "; see the log line 'callback not applied'", False)
    if letter.kind is Kind.SCHEDULED_CHECK:
        return Standing("scheduled check", "the next check does its work", resolved=True)
    return Standing("(unreadable body)", "neither an event, a callback nor a scheduled check", resolved=False)
