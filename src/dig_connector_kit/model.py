"""The connector-facing contract: what a connector receives and what it answers."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from db.records import Attempt
from dig_contracts.bus import CallbackDetail, ReplayTag
from dig_contracts.events import EnvelopeFields
from dig_contracts.files import FileReadyDetail
from dig_contracts.inbound import InboundFields, WebhookAnswer, WebhookCall, WebhookReceipt

if TYPE_CHECKING:
    from dig_contracts.manifest import ConnectorManifest


@dataclass(frozen=True)
class InboundMessage:
    message_id: str
    event: EnvelopeFields | InboundFields
    receive_count: int = 1
    replay: ReplayTag | None = None
    # Operations already completed on an earlier attempt (e.g. "realtime:registration"): a retry
    # must not repeat what has side effects.
    completed: frozenset[str] = frozenset()

    @property
    def event_type(self) -> str:
        return str(getattr(self.event, "eventType", ""))

    @property
    def loyalty_event(self) -> EnvelopeFields:
        """The ES Loyalty event it carries (what every connector but the return path's receives)."""
        if not isinstance(self.event, EnvelopeFields):
            raise TypeError(f"{self.message_id} carries an inbound event, not ES Loyalty's")
        return self.event

    @property
    def inbound_event(self) -> InboundFields:
        """The provider's inbound event it carries (what the connector delivering to ES Loyalty receives)."""
        if not isinstance(self.event, InboundFields):
            raise TypeError(f"{self.message_id} carries an ES Loyalty event, not an inbound one")
        return self.event


class Result(StrEnum):
    DELIVERED = "DELIVERED"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"  # final: retrying cannot help (bad data, bad configuration, a 4xx)
    RETRY = "RETRY"  # transient: worth another attempt while attempts remain


@dataclass
class Outcome:
    result: Result
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    completed: set[str] = field(default_factory=set)
    # A RETRY that must wait (a provider's quota resets later): the runtime puts the message back on
    # the queue after this delay instead of spending one of its receives.
    hold_seconds: int | None = None


class Deadline:
    """The time an invocation has left for provider calls (the rest is kept for the audit)."""

    def __init__(self, seconds: float, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + seconds

    @classmethod
    def from_context(cls, context: Any, reserve_seconds: float = 10.0, default_seconds: float = 60.0) -> Deadline:
        remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
        seconds = remaining_ms() / 1000 if callable(remaining_ms) else default_seconds
        return cls(max(seconds - reserve_seconds, 1.0))

    def remaining(self) -> float:
        return max(self._end - self._clock(), 0.0)

    def allows(self, seconds: float) -> bool:
        return self.remaining() > seconds


@dataclass(frozen=True)
class LateFailure:
    """A provider's later report that a message it had accepted failed (a callback result).

    ``retry_in_seconds``: a verdict that may change with time (the customer did not exist yet): the
    runtime sends the message again after that delay, for up to ``give_up_after_seconds`` from the
    first such report, and only then records it FAILED."""

    message_id: str
    error: str
    retry_in_seconds: int | None = None
    give_up_after_seconds: int | None = None


@dataclass
class CallbackReport:
    """What a provider's callback said: the messages it failed, or that it could not be read."""

    failures: list[LateFailure] = field(default_factory=list)
    unreadable: bool = False


class Connector(Protocol):
    name: str

    def deliver(self, messages: Sequence[InboundMessage], deadline: Deadline) -> Mapping[str, Outcome]:
        """Deliver each message; one Outcome per message_id."""
        ...


@runtime_checkable
class TakesCallbacks(Protocol):
    """A connector whose provider reports results later, to a callback (manifest: ``callbacks=True``)."""

    def handle_callback(self, detail: CallbackDetail) -> CallbackReport: ...

    def overdue_results(self) -> int:
        """Record calls whose results are overdue (on the scheduled check); how many were found."""
        ...


@runtime_checkable
class PollsResults(Protocol):
    """A connector that asks the provider for late results (a status URL per accepted call; SFMC's
    asynchronous writes) on the scheduled check (manifest: ``polled_results=True``). It reports the
    messages that failed after all, as a callback does; the runtime records them FAILED (replayable)
    or sends them again, as ``LateFailure`` says."""

    def poll_results(self, deadline: Deadline) -> CallbackReport: ...


@dataclass
class WebhookReading:
    """What a provider's webhook said: the inbound events it makes, and what could not be turned into
    one (an email DIG knows no member for), counted and said, never guessed."""

    events: list[InboundFields] = field(default_factory=list)
    unmatched: int = 0
    notes: list[str] = field(default_factory=list)


@runtime_checkable
class ReceivesWebhooks(Protocol):
    """A connector whose provider notifies DIG (manifest: ``webhooks``): each verified webhook arrives
    once or more, as the DIG API kept it; the events it reads are emitted by the runtime (their ids make
    a second copy one event). Raising sends the receipt back to the queue."""

    def read_webhook(self, receipt: WebhookReceipt) -> WebhookReading: ...


@dataclass
class WebhookReply:
    """A connector's answer to a webhook it answers itself: what the provider is told, and the inbound
    events it makes, emitted by the runtime before the answer goes (a failed emit answers 503 instead)."""

    answer: WebhookAnswer
    reading: WebhookReading = field(default_factory=WebhookReading)


@runtime_checkable
class AnswersWebhooks(Protocol):
    """A connector whose provider wants its own answer to a webhook (manifest: a webhook source with
    verification ``connector``; CataBoom's writeback codes): the request arrives unverified through the
    synchronous entry point, and the connector verifies it with its own secrets, acts and answers.
    Raising answers 503 (the provider sends it again)."""

    def answer_webhook(self, call: WebhookCall) -> WebhookReply: ...


@runtime_checkable
class ReadsFiles(Protocol):
    """A connector that consumes validated extract files (manifest: ``extracts``): each FILE_READY
    arrives once or more (deduplicate on ``fileId``); raising sends it back to the queue."""

    def handle_file_ready(self, detail: FileReadyDetail) -> None: ...


class CapabilityMismatch(TypeError):
    """A connector and its manifest disagree about what it can do: found when the connector is built."""


def check_capabilities(manifest: ConnectorManifest, connector: object) -> None:
    """Raise CapabilityMismatch naming each capability the manifest declares and the connector does not
    implement (a misspelt method), or the connector implements and the manifest does not declare."""
    declared = {
        "callbacks": (manifest.callbacks, TakesCallbacks),
        "polled_results": (manifest.polled_results, PollsResults),
        "extracts": (bool(manifest.extracts), ReadsFiles),
        "webhooks": (bool(manifest.received_webhooks), ReceivesWebhooks),
        "webhooks answered by the connector": (bool(manifest.answered_webhooks), AnswersWebhooks),
    }
    problems = []
    for key, (wanted, capability) in declared.items():
        methods = ", ".join(
            sorted(m for m in vars(capability) if not m.startswith("_") and callable(vars(capability)[m]))
        )
        has = isinstance(connector, capability)
        if wanted and not has:
            problems.append(f"the manifest declares {key} but {type(connector).__name__} lacks {methods}")
        elif has and not wanted:
            problems.append(f"{type(connector).__name__} implements {methods} but the manifest does not declare {key}")
    if problems:
        raise CapabilityMismatch(f"{manifest.name}: " + "; ".join(problems))
