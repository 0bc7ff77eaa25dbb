"""The public contract ES Loyalty posts to DIG: an envelope and one schema per event type.

Every model refuses unknown keys, so a misspelt field is an error, not silently dropped data.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dig_contracts.currencies import ISO_4217_CURRENCIES


class EventType(StrEnum):
    MEMBER_REGISTRATION = "MEMBER_REGISTRATION"
    OPT_IN_EMAIL = "OPT_IN_EMAIL"
    REDEMPTION = "REDEMPTION"
    MEMBER_PROFILE_UPDATE = "MEMBER_PROFILE_UPDATE"
    MEMBER_TIER = "MEMBER_TIER"
    PARTNER_CARD_LINK = "PARTNER_CARD_LINK"
    BADGE_AWARD = "BADGE_AWARD"
    OPT_IN_SMS = "OPT_IN_SMS"
    VOUCHER_ISSUED = "VOUCHER_ISSUED"
    PAYOUT_REQUESTED = "PAYOUT_REQUESTED"
    GAME_PLAY_AWARDED = "GAME_PLAY_AWARDED"
    MEMBER_HOUSEHOLD_CHANGED = "MEMBER_HOUSEHOLD_CHANGED"
    OFFERS_ASSIGNED = "OFFERS_ASSIGNED"
    POINTS_TRANSFERRED = "POINTS_TRANSFERRED"
    PURCHASE = "PURCHASE"


def _require_text(value: Any) -> Any:
    """Timestamps arrive as RFC 3339 strings; numbers (epoch seconds) are refused, not guessed at."""
    if not isinstance(value, str | datetime):
        raise ValueError("must be an RFC 3339 timestamp string with an offset")
    return value


Rfc3339 = Annotated[AwareDatetime, BeforeValidator(_require_text)]


def require_number(value: Any) -> Any:
    """A JSON number, as JSON Schema's "integer" reads it: 356 or 356.0, never "356" or true."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a whole number")
    return value


# What the OpenAPI document says "integer" means: an integral JSON number (356.0 included). At most 12
# digits, and a money amount at most 12 digits in all: no number DIG accepts is long enough to be a
# card number (13 to 19 digits), so the schema and the card-number rule never disagree.
MAX_WHOLE_NUMBER = 999_999_999_999
PositiveWholeNumber = Annotated[int, Field(gt=0, le=MAX_WHOLE_NUMBER), BeforeValidator(require_number)]
NonNegativeWholeNumber = Annotated[int, Field(ge=0, le=MAX_WHOLE_NUMBER), BeforeValidator(require_number)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=255)]
Identifier = Annotated[StrictStr, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
# No whitespace or control character: the class is spelt out so that Python's and JSON Schema's (ECMA)
# regular expressions, whose \s differ, accept exactly the same addresses.
_NOT_IN_EMAIL = r"@\s\x00-\x1f\x7f-\x9f\ufeff"
Email = Annotated[
    StrictStr,
    Field(
        max_length=254,
        pattern=rf"^[^{_NOT_IN_EMAIL}]+@[^{_NOT_IN_EMAIL}]+\.[^{_NOT_IN_EMAIL}]+$",
        examples=["ada@example.com"],
    ),
]
# Free-form profile and Extended Member Data values: JSON scalars only, each text at most
# MAX_PROFILE_TEXT_CHARS, at most MAX_PROFILE_FIELDS of them. (An event within every field's limit may
# still be too large to record: the API measures it as stored and refuses it alone, with a 413.)
MAX_PROFILE_TEXT_CHARS = 4096
MAX_PROFILE_FIELDS = 200
ProfileValue = (
    Annotated[StrictStr, Field(max_length=MAX_PROFILE_TEXT_CHARS)] | StrictBool | StrictInt | StrictFloat | None
)
FieldName = Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]
# The schema says what the validator does: keys of FieldName's pattern only (patternProperties alone
# would let any other key through).
Profile = Annotated[
    dict[FieldName, ProfileValue],
    Field(max_length=MAX_PROFILE_FIELDS, json_schema_extra={"additionalProperties": False}),
]
# BCP 47 as used for locales: language, optional script, optional region (fr-CA, zh-Hant-TW, de).
_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|\d{3}))?$")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MemberRegistrationData(StrictModel):
    email: Email
    firstName: Name | None = None
    lastName: Name | None = None
    enrollmentChannel: Literal["WEB", "APP", "POS", "CALL_CENTER"]
    cardType: Literal["DIGITAL", "PHYSICAL"] | None = None
    profile: Profile | None = None


class OptInEmailData(StrictModel):
    email: Email
    optIn: StrictBool
    source: Name | None = None


# E.164: a plus, a country code and at most 15 digits in all (never long enough to be a card number).
MobileNumber = Annotated[
    StrictStr,
    Field(pattern=r"^\+[1-9]\d{6,14}$", description="E.164 mobile number", examples=["+14165550123"]),
]


class OptInSmsData(StrictModel):
    mobileNumber: MobileNumber
    optIn: StrictBool
    source: Name | None = None


class Money(StrictModel):
    amount: Annotated[
        StrictStr,
        Field(
            pattern=r"^-?\d{1,8}(\.\d{1,4})?$",
            description="A decimal string: at most 8 digits before the point and 4 after",
            examples=["25.00"],
        ),
    ]
    currency: Annotated[
        StrictStr,
        Field(
            description="ISO 4217 code",
            examples=["CAD"],
            json_schema_extra={"enum": sorted(ISO_4217_CURRENCIES)},
        ),
    ]

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in ISO_4217_CURRENCIES:
            raise ValueError("must be an ISO 4217 currency code in current use, e.g. USD, CAD, EUR")
        return value

    @property
    def decimal(self) -> Decimal:
        return Decimal(self.amount)


class Reward(StrictModel):
    name: Name
    value: Money


class RedemptionData(StrictModel):
    redemptionId: Identifier
    pointsRedeemed: PositiveWholeNumber
    reward: Reward
    pointsBalance: NonNegativeWholeNumber
    email: Email | None = None


class MemberProfileUpdateData(StrictModel):
    profile: Annotated[Profile, Field(min_length=1)]
    extendedData: Profile | None = Field(default=None, description="Extended Member Data (EMD)")


class MemberTierData(StrictModel):
    previousTier: Name | None = None
    newTier: Name
    effectiveAt: Rfc3339 | None = None


class PartnerCardLinkData(StrictModel):
    linkId: Identifier
    partner: Name
    cardholderType: Name
    linkStatus: Literal["LINKED", "UNLINKED"]
    last4: Annotated[StrictStr, Field(pattern=r"^\d{4}$")] | None = None


class BadgeAwardData(StrictModel):
    badgeId: Identifier
    badgeName: Name
    awardedAt: Rfc3339
    pointsAwarded: NonNegativeWholeNumber | None = None
    category: Name | None = None


class VoucherIssuedData(StrictModel):
    voucherId: Identifier
    name: Name
    codeReference: Identifier = Field(
        description=(
            "What the member is shown or scans to use the voucher, or a reference to it; DIG refuses any "
            "value a payment card number could be, as everywhere"
        )
    )
    value: Money | None = None
    expiresAt: Rfc3339 | None = None
    offerId: Identifier | None = None


class Payee(StrictModel):
    """Who is paid: name, email and country only. Bank, card and tax details never pass through DIG:
    the member enters them in the payment provider's own onboarding."""

    firstName: Name
    lastName: Name
    email: Email
    country: Annotated[StrictStr, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2", examples=["CA"])]


class PositiveMoney(Money):
    """Money above zero, said in the schema itself (a digit other than 0), so the OpenAPI document
    refuses exactly what DIG refuses. Its look-ahead needs Python's regular expressions (pydantic's
    default engine has none; JSON Schema's ECMA ones do)."""

    model_config = ConfigDict(regex_engine="python-re")

    amount: Annotated[
        StrictStr,
        Field(
            pattern=r"^(?=[0-9.]*[1-9])\d{1,8}(\.\d{1,4})?$",
            description="A decimal string above zero: at most 8 digits before the point and 4 after",
            examples=["25.00"],
        ),
    ]


class PayoutRequestedData(StrictModel):
    payoutId: Identifier = Field(description="ES Loyalty's redemption or payout id: one payment, ever, per id")
    amount: PositiveMoney
    method: Literal["CASH", "PREPAID_CARD", "DIRECT_DEPOSIT"]
    payee: Payee


MAX_PLAYS_PER_AWARD = 20
# A game's key at the game provider (CataBoom's campaign slug): it is a URL path segment there.
GameKey = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", examples=["holiday-spin"])]


class GamePlayAwardedData(StrictModel):
    awardId: Identifier = Field(description="ES Loyalty's award: its plays are issued once, however often it is sent")
    campaign: GameKey = Field(description="The game (CataBoom's campaign slug) the plays are for")
    plays: Annotated[int, Field(ge=1, le=MAX_PLAYS_PER_AWARD, description="How many plays: one link each")]
    expiresAt: Rfc3339 | None = Field(default=None, description="When the plays lapse, when they do")


class MemberHouseholdChangedData(StrictModel):
    householdId: Identifier
    role: Literal["HEAD", "MEMBER"] = Field(description="The member's role in the household")
    change: Literal["JOINED", "LEFT", "BALANCE_UPDATED"]
    householdPointsBalance: NonNegativeWholeNumber | None = Field(
        default=None, description="The household's pooled points after the change"
    )
    effectiveAt: Rfc3339 | None = None


MAX_OFFERS_ASSIGNED = 20


class AssignedOffer(StrictModel):
    offerId: Identifier
    name: Name
    reward: Name = Field(description="What the offer gives, as the member reads it (e.g. 'Double points')")
    rewardValue: Money | None = None
    validFrom: Rfc3339 | None = None
    validTo: Rfc3339 | None = None


class OffersAssignedData(StrictModel):
    offers: Annotated[list[AssignedOffer], Field(max_length=MAX_OFFERS_ASSIGNED)] = Field(
        description=f"The member's current personalized offers, best first (at most {MAX_OFFERS_ASSIGNED}); "
        "an empty list: the member has none now"
    )


# Rules between fields, which JSON Schema cannot say: the OpenAPI document states them in words, and
# the contract test (tests/e2e/schemathesis_checks.py) accepts a 422 that names one of them.
TRANSFER_BETWEEN_TWO = "a transfer is between two members: fromMemberId and toMemberId are the same"
TRANSFER_PARTY = "the envelope's memberId must be fromMemberId or toMemberId"
CROSS_FIELD_RULES = (TRANSFER_BETWEEN_TWO, TRANSFER_PARTY)


class PointsTransferredData(StrictModel):
    transferId: Identifier
    fromMemberId: Identifier = Field(description="Who gave the points (the envelope's member is one of the two)")
    toMemberId: Identifier
    points: PositiveWholeNumber
    fromPointsBalance: NonNegativeWholeNumber | None = None
    toPointsBalance: NonNegativeWholeNumber | None = None

    @model_validator(mode="after")
    def _two_members(self) -> PointsTransferredData:
        if self.fromMemberId == self.toMemberId:
            raise ValueError(TRANSFER_BETWEEN_TWO)
        return self


class PurchaseData(StrictModel):
    orderId: Identifier
    amount: Money
    pointsEarned: NonNegativeWholeNumber
    purchasedAt: Rfc3339
    store: Name | None = Field(default=None, description="Where: a store's name or the online channel")


class EnvelopeFields(StrictModel):
    eventId: Identifier = Field(description="Unique id of the event in ES Loyalty; DIG deduplicates on it")
    occurredAt: Rfc3339
    memberId: Identifier
    programId: Identifier | None = None
    locale: (
        Annotated[StrictStr, Field(max_length=35, examples=["fr-CA"], json_schema_extra={"pattern": _LOCALE.pattern})]
        | None
    ) = Field(default=None, description="BCP 47 tag of the member's locale, e.g. fr-CA")

    def __repr_args__(self) -> Any:
        # An event's repr names it and nothing of the member: libraries log reprs at debug level.
        yield "eventId", self.eventId
        yield "eventType", str(getattr(self, "eventType", ""))

    @field_validator("locale")
    @classmethod
    def _bcp47(cls, value: str | None) -> str | None:
        if value is not None and not _LOCALE.match(value):
            raise ValueError("must be a BCP 47 language tag such as en-US, fr-CA or de")
        return value


class MemberRegistrationEvent(EnvelopeFields):
    eventType: Literal[EventType.MEMBER_REGISTRATION]
    data: MemberRegistrationData


class OptInEmailEvent(EnvelopeFields):
    eventType: Literal[EventType.OPT_IN_EMAIL]
    data: OptInEmailData


class RedemptionEvent(EnvelopeFields):
    eventType: Literal[EventType.REDEMPTION]
    data: RedemptionData


class MemberProfileUpdateEvent(EnvelopeFields):
    eventType: Literal[EventType.MEMBER_PROFILE_UPDATE]
    data: MemberProfileUpdateData


class MemberTierEvent(EnvelopeFields):
    eventType: Literal[EventType.MEMBER_TIER]
    data: MemberTierData


class PartnerCardLinkEvent(EnvelopeFields):
    eventType: Literal[EventType.PARTNER_CARD_LINK]
    data: PartnerCardLinkData


class BadgeAwardEvent(EnvelopeFields):
    eventType: Literal[EventType.BADGE_AWARD]
    data: BadgeAwardData


class OptInSmsEvent(EnvelopeFields):
    eventType: Literal[EventType.OPT_IN_SMS]
    data: OptInSmsData


class VoucherIssuedEvent(EnvelopeFields):
    eventType: Literal[EventType.VOUCHER_ISSUED]
    data: VoucherIssuedData


class PayoutRequestedEvent(EnvelopeFields):
    eventType: Literal[EventType.PAYOUT_REQUESTED]
    data: PayoutRequestedData


class GamePlayAwardedEvent(EnvelopeFields):
    eventType: Literal[EventType.GAME_PLAY_AWARDED]
    data: GamePlayAwardedData


class MemberHouseholdChangedEvent(EnvelopeFields):
    eventType: Literal[EventType.MEMBER_HOUSEHOLD_CHANGED]
    data: MemberHouseholdChangedData


class OffersAssignedEvent(EnvelopeFields):
    eventType: Literal[EventType.OFFERS_ASSIGNED]
    data: OffersAssignedData


class PointsTransferredEvent(EnvelopeFields):
    """The envelope's memberId is one of the two members (fromMemberId or toMemberId), and they differ."""

    eventType: Literal[EventType.POINTS_TRANSFERRED]
    data: PointsTransferredData

    @field_validator("data")
    @classmethod
    def _member_is_a_party(cls, data: PointsTransferredData, info: ValidationInfo) -> PointsTransferredData:
        member = info.data.get("memberId")
        if member is not None and member not in (data.fromMemberId, data.toMemberId):
            raise ValueError(TRANSFER_PARTY)
        return data


class PurchaseEvent(EnvelopeFields):
    eventType: Literal[EventType.PURCHASE]
    data: PurchaseData


LoyaltyEvent = Annotated[
    MemberRegistrationEvent
    | OptInEmailEvent
    | RedemptionEvent
    | MemberProfileUpdateEvent
    | MemberTierEvent
    | PartnerCardLinkEvent
    | BadgeAwardEvent
    | OptInSmsEvent
    | VoucherIssuedEvent
    | PayoutRequestedEvent
    | GamePlayAwardedEvent
    | MemberHouseholdChangedEvent
    | OffersAssignedEvent
    | PointsTransferredEvent
    | PurchaseEvent,
    Field(discriminator="eventType"),
]
EVENT_MODELS: dict[EventType, type[EnvelopeFields]] = {
    EventType.MEMBER_REGISTRATION: MemberRegistrationEvent,
    EventType.OPT_IN_EMAIL: OptInEmailEvent,
    EventType.REDEMPTION: RedemptionEvent,
    EventType.MEMBER_PROFILE_UPDATE: MemberProfileUpdateEvent,
    EventType.MEMBER_TIER: MemberTierEvent,
    EventType.PARTNER_CARD_LINK: PartnerCardLinkEvent,
    EventType.BADGE_AWARD: BadgeAwardEvent,
    EventType.OPT_IN_SMS: OptInSmsEvent,
    EventType.VOUCHER_ISSUED: VoucherIssuedEvent,
    EventType.PAYOUT_REQUESTED: PayoutRequestedEvent,
    EventType.GAME_PLAY_AWARDED: GamePlayAwardedEvent,
    EventType.MEMBER_HOUSEHOLD_CHANGED: MemberHouseholdChangedEvent,
    EventType.OFFERS_ASSIGNED: OffersAssignedEvent,
    EventType.POINTS_TRANSFERRED: PointsTransferredEvent,
    EventType.PURCHASE: PurchaseEvent,
}
loyalty_event_adapter: TypeAdapter[Any] = TypeAdapter(LoyaltyEvent)


def parse_event(payload: Any) -> Any:
    """Validate a decoded JSON object as a LoyaltyEvent (raises pydantic.ValidationError)."""
    return loyalty_event_adapter.validate_python(payload)


def event_to_json_dict(event: EnvelopeFields) -> dict[str, Any]:
    return event.model_dump(mode="json", exclude_none=True)
