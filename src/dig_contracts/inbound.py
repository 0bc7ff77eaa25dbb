"""The return path: what providers tell DIG, turned into a small, versioned set of inbound events
that DIG delivers to ES Loyalty (the ``esloyalty`` connector) like every outbound message.

A connector receives a provider's notification (a webhook the DIG API verified, or a feed its
scheduled job polled) and turns it into inbound events. Each one's ``eventId`` is derived from the
provider's own identifiers (``inbound_event_id``): the same notification twice is one event, one
audit record, one delivery. They go on the bus with ``Source`` = ``INBOUND_SOURCE`` and
``DetailType`` = the event type, in the same ``BusDetail`` as outbound messages, so audit, status,
replay and the dead-letter machinery treat them alike.

A webhook the DIG API accepted reaches its connector first as ``INBOUND_RECEIVED.<connector>``
(source ``INBOUND_RECEIVED_SOURCE``): the body as received, kept, and the source it came to.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from dig_contracts.events import (
    MAX_PLAYS_PER_AWARD,
    EventType,
    GameKey,
    Identifier,
    Rfc3339,
    StrictModel,
    parse_event,
)

INBOUND_SOURCE = "dig.inbound"
INBOUND_RECEIVED_SOURCE = "dig.inbound.received"
# The body of a webhook as the API keeps it: an EventBridge entry holds 1 MB, a DynamoDB item 400 KB.
MAX_WEBHOOK_BODY_BYTES = 256 * 1024


class InboundEventType(StrEnum):
    MEMBER_CONSENT_CHANGED = "MEMBER_CONSENT_CHANGED"
    POINTS_AWARD_REQUESTED = "POINTS_AWARD_REQUESTED"
    PAYOUT_STATUS_CHANGED = "PAYOUT_STATUS_CHANGED"
    GAME_PLAY_LINK_ISSUED = "GAME_PLAY_LINK_ISSUED"


INBOUND_TYPES = frozenset(t.value for t in InboundEventType)


def inbound_received_detail_type(connector: str) -> str:
    return f"INBOUND_RECEIVED.{connector}"


def inbound_event_id(connector: str, kind: str, *provider_ids: str) -> str:
    """The inbound event's id from the provider's own identifiers (an email and its unsubscribe time,
    a prize's transaction id): stable across a poll run again or a webhook sent twice. Hashed, so
    that no email or provider secret is an id in a log line."""
    text = "\x1f".join((connector, kind, *provider_ids))
    return f"in-{connector}-{hashlib.sha256(text.encode()).hexdigest()[:40]}"


class Origin(StrictModel):
    """Where an inbound event came from: the connector, its source (a webhook or a poll job), and
    the provider's reference an operator can look up there (never a secret, never an email)."""

    connector: Identifier
    source: Identifier
    providerReference: Annotated[str, Field(max_length=256)]
    receiptId: Identifier | None = Field(default=None, description="The webhook request that carried it")


class Channel(StrEnum):
    EMAIL = "EMAIL"
    SMS = "SMS"
    PUSH = "PUSH"


class Consent(StrEnum):
    OPTED_IN = "OPTED_IN"
    OPTED_OUT = "OPTED_OUT"


class ConsentReason(StrEnum):
    UNSUBSCRIBE = "UNSUBSCRIBE"
    RESUBSCRIBE = "RESUBSCRIBE"
    HARD_BOUNCE = "HARD_BOUNCE"
    SPAM_COMPLAINT = "SPAM_COMPLAINT"


class MemberConsentChangedData(StrictModel):
    channel: Channel
    consent: Consent
    reason: ConsentReason


class PointsAwardRequestedData(StrictModel):
    points: Annotated[int, Field(gt=0, le=100_000_000)]
    reason: Annotated[str, Field(min_length=1, max_length=255)]
    reference: Identifier = Field(description="ES Loyalty credits points once per reference")


class PayoutStatus(StrEnum):
    PAYEE_NOT_READY = "PAYEE_NOT_READY"  # the member has not finished the provider's onboarding: held
    SUBMITTED = "SUBMITTED"
    PAID = "PAID"
    CLEARED = "CLEARED"  # final: the money reached the member
    DEFERRED = "DEFERRED"  # final at the provider: not paid; ES Loyalty may re-request or restore points
    REJECTED = "REJECTED"  # final
    CANCELLED = "CANCELLED"  # final
    FAILED = "FAILED"  # final: DIG could not pay it (refused before sending, or given up)


FINAL_PAYOUT_STATUSES = frozenset(
    {PayoutStatus.CLEARED, PayoutStatus.DEFERRED, PayoutStatus.REJECTED, PayoutStatus.CANCELLED, PayoutStatus.FAILED}
)


class PayoutStatusChangedData(StrictModel):
    payoutId: Identifier
    status: PayoutStatus
    final: bool = Field(default=False, description="No later status will follow for this payout")
    reason: Annotated[str, Field(max_length=1000)] | None = None
    providerStatus: Annotated[str, Field(max_length=64)] | None = Field(
        default=None, description="The provider's own word for it (Tipalti: Paid, Cleared, Deferred...)"
    )
    onboardingUrl: Annotated[str, Field(max_length=2000, pattern=r"^https://")] | None = Field(
        default=None, description="Where the member finishes the provider's onboarding (PAYEE_NOT_READY)"
    )


class GamePlayLinkIssuedData(StrictModel):
    awardId: Identifier = Field(description="ES Loyalty's award (GAME_PLAY_AWARDED) the play belongs to")
    campaign: GameKey
    play: Annotated[int, Field(ge=1, le=MAX_PLAYS_PER_AWARD, description="Which of the award's plays: 1, 2, ...")]
    playId: Identifier = Field(description="The game provider's id of the play (the link's last path segment)")
    url: Annotated[str, Field(max_length=2000, pattern=r"^https://")] = Field(
        description="The member's one-time play link: hand it to that member only"
    )
    expiresAt: Rfc3339 | None = None


class InboundFields(StrictModel):
    eventId: Identifier = Field(description="Derived from the provider's identifiers: the same notification, one id")
    schemaVersion: Literal["1"] = "1"
    occurredAt: Rfc3339 = Field(description="When it happened at the provider")
    memberId: Identifier
    programId: Identifier | None = None
    origin: Origin

    def __repr_args__(self) -> Any:
        yield "eventId", self.eventId
        yield "eventType", str(getattr(self, "eventType", ""))


class MemberConsentChanged(InboundFields):
    eventType: Literal[InboundEventType.MEMBER_CONSENT_CHANGED] = InboundEventType.MEMBER_CONSENT_CHANGED
    data: MemberConsentChangedData


class PointsAwardRequested(InboundFields):
    eventType: Literal[InboundEventType.POINTS_AWARD_REQUESTED] = InboundEventType.POINTS_AWARD_REQUESTED
    data: PointsAwardRequestedData


class PayoutStatusChanged(InboundFields):
    eventType: Literal[InboundEventType.PAYOUT_STATUS_CHANGED] = InboundEventType.PAYOUT_STATUS_CHANGED
    data: PayoutStatusChangedData


class GamePlayLinkIssued(InboundFields):
    eventType: Literal[InboundEventType.GAME_PLAY_LINK_ISSUED] = InboundEventType.GAME_PLAY_LINK_ISSUED
    data: GamePlayLinkIssuedData


InboundEvent = Annotated[
    MemberConsentChanged | PointsAwardRequested | PayoutStatusChanged | GamePlayLinkIssued,
    Field(discriminator="eventType"),
]
_INBOUND = TypeAdapter(InboundEvent)


def parse_inbound(document: Any) -> InboundFields:
    event = _INBOUND.validate_python(document)
    assert isinstance(event, InboundFields)
    return event


def parse_any_event(document: Any) -> Any:
    """An outbound (ES Loyalty) or inbound (provider) event, by its type: what a connector's queue carries."""
    if isinstance(document, dict) and document.get("eventType") in INBOUND_TYPES:
        return parse_inbound(document)
    return parse_event(document)


def is_inbound_type(event_type: str | EventType | InboundEventType) -> bool:
    return str(event_type) in INBOUND_TYPES


class WebhookReceipt(BaseModel):
    """A provider's webhook, verified by the DIG API and kept: what its connector receives
    (detail-type ``INBOUND_RECEIVED.<connector>``) to turn into inbound events."""

    model_config = ConfigDict(frozen=True)

    connector: str
    source: str
    receiptId: str
    receivedAt: datetime
    body: str = Field(description="The body as received (UTF-8), card numbers masked")
    contentType: str | None = None
    # An unsigned subscription handshake (manifest WebhookSource.handshake_keys), not a notification:
    # the connector completes it with the provider and emits nothing from it.
    handshake: bool = False


class WebhookCall(BaseModel):
    """A webhook the DIG API hands, unverified and unkept, to the connector that answers it (manifest
    WebhookSource verification ``connector``), through its synchronous entry point as ``{"webhook": ...}``.
    The body is as received: the connector verifies it (its token may be in it)."""

    model_config = ConfigDict(frozen=True)

    connector: str
    source: str
    receiptId: str
    receivedAt: datetime
    body: str
    contentType: str | None = None
    query: dict[str, str] = Field(default_factory=dict)


class WebhookAnswer(BaseModel):
    """The connector's answer to a ``WebhookCall``: what the API sends the provider (the provider's own
    shape and status), and what of the body the audit trail keeps (``keep``: the body without its
    secrets; None when the request was refused and nothing of it is kept)."""

    model_config = ConfigDict(frozen=True)

    status: Annotated[int, Field(ge=200, le=599)]
    body: str
    contentType: str = "application/json"
    keep: str | None = None


def example_inbound(event_type: str, **overrides: Any) -> dict[str, Any]:
    """A valid inbound event of each type, as documentation and tests use them."""
    data: dict[str, dict[str, Any]] = {
        InboundEventType.MEMBER_CONSENT_CHANGED: {"channel": "EMAIL", "consent": "OPTED_OUT", "reason": "UNSUBSCRIBE"},
        InboundEventType.POINTS_AWARD_REQUESTED: {
            "points": 250,
            "reason": "Spin the wheel: 2nd prize",
            "reference": "cb-tx-8812",
        },
        InboundEventType.PAYOUT_STATUS_CHANGED: {"payoutId": "PO-2026-0042", "status": "PAID"},
        InboundEventType.GAME_PLAY_LINK_ISSUED: {
            "awardId": "AW-2026-0007",
            "campaign": "holiday-spin",
            "play": 1,
            "playId": "4b1f0c9e-2d7a-4e55-9a51-0c3b8f2d6e11",
            "url": "https://secure.cataboom.com/dplay/holiday-spin/4b1f0c9e-2d7a-4e55-9a51-0c3b8f2d6e11",
            "expiresAt": "2026-12-31T23:59:59Z",
        },
    }
    document: dict[str, Any] = {
        "eventId": inbound_event_id("optimove", event_type, "example"),
        "eventType": event_type,
        "schemaVersion": "1",
        "occurredAt": "2026-12-01T08:00:00Z",
        "memberId": "M-1001",
        "origin": {
            "connector": "optimove",
            "source": "unsubscribes",
            "providerReference": "brand 7, 2026-12-01 08:00:00",
        },
        "data": data[InboundEventType(event_type)],
    }
    return {**document, **overrides}
