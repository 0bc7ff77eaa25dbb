"""The Optimove connector's configuration: which loyalty data goes to which Optimove field, which
template each transactional mail uses, and the limits of the Optimove account.

Stored versioned in the configuration table (``dig config push optimove FILE``); validated here,
with every problem reported by its path, before it is stored and again when the connector loads it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors.optimove.feed.config import BatchFeed
from dig_connector_kit.config import ConfigError as ConfigError  # re-exported: the parser raises it
from dig_connector_kit.config import validate_config
from dig_connector_kit.ratelimit import RateLimit
from dig_contracts.currencies import ISO_4217_CURRENCIES
from dig_contracts.events import MAX_OFFERS_ASSIGNED, EventType
from dig_contracts.values import COMMON, value_names

MAX_CUSTOM_ATTRIBUTES = 50  # Optimove's hard limit across the real-time and batch channels
MAX_STRING_LENGTH = 255

OptimoveField = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")]
TagName = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{0,63}$")]
SnakeName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
SourceName = Annotated[str, Field(min_length=1, max_length=64)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AttributeType(StrEnum):
    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"


class Attribute(Strict):
    """An Optimove customer attribute (its RealFieldName) and the type its values convert to."""

    field: OptimoveField
    type: AttributeType = AttributeType.STRING
    maxLength: int = Field(default=MAX_STRING_LENGTH, ge=1, le=MAX_STRING_LENGTH)


class Mail(Strict):
    """A transactional mail: an Optimove template and its personalization tags, each filled from a
    source value of the event (money, numbers and dates formatted for the member's locale)."""

    templateId: int = Field(gt=0)
    tags: dict[TagName, SourceName] = Field(default_factory=dict)


class RealtimeEvent(Strict):
    """A real-time (Track & Trigger) event that starts Optimove's triggered campaigns."""

    name: SnakeName = "registration"
    eventId: int | None = Field(
        default=None, gt=0, description="The event's numeric id in Optimove (the legacy reportEvent format needs it)"
    )
    parameters: dict[SnakeName, SourceName] = Field(default_factory=dict)


class RegistrationMapping(Strict):
    attributes: dict[SourceName, Attribute] = Field(default_factory=dict)
    realtimeEvent: RealtimeEvent | None = None


class OptInMapping(Strict):
    """SetCustomerChannelPreference: Optimove documents CommunicationMode as an integer without
    publishing what each number means, so the tenant's values come from here, never a default."""

    channelId: int = Field(gt=0, description="Optimove's channel id for email (the documented sample uses 15)")
    appId: int = Field(ge=0, description="The AppID Optimove gave the tenant for this channel")
    optInMode: int = Field(ge=0, description="The CommunicationMode integer that means opted in, for this tenant")
    optOutMode: int = Field(ge=0, description="The CommunicationMode integer that means opted out, for this tenant")
    attribute: Attribute | None = None

    @model_validator(mode="after")
    def _distinct_modes(self) -> OptInMapping:
        if self.optInMode == self.optOutMode:
            raise ValueError("optInMode and optOutMode must be different CommunicationMode values")
        return self


class RedemptionMapping(Strict):
    mail: Mail | None = None
    attributes: dict[SourceName, Attribute] = Field(default_factory=dict)


class ProfileUpdateMapping(Strict):
    """Profile and Extended Member Data fields map through the top-level attribute mappings."""


class TierMapping(Strict):
    attributes: dict[SourceName, Attribute] = Field(default_factory=dict)
    mail: Mail | None = None


class PartnerCardMapping(Strict):
    attributes: dict[SourceName, Attribute] = Field(default_factory=dict)
    linkMail: Mail | None = None
    unlinkMail: Mail | None = None


HouseholdChange = Literal["JOINED", "LEFT", "BALANCE_UPDATED"]


class HouseholdMapping(Strict):
    """MEMBER_HOUSEHOLD_CHANGED: household attributes, and the household-balance mail on the changes
    ``mailOn`` names (by default a new balance only)."""

    attributes: dict[SourceName, Attribute] = Field(default_factory=dict)
    mail: Mail | None = None
    mailOn: tuple[HouseholdChange, ...] = Field(default=("BALANCE_UPDATED",), min_length=1)


# What of each assigned offer a slot can carry (OFFERS_ASSIGNED's offers, best first).
OFFER_SOURCES = frozenset({"offerId", "name", "reward", "rewardValue", "validFrom", "validTo"})


class OffersMapping(Strict):
    """OFFERS_ASSIGNED: the member's top offers as numbered attribute slots (slot 1 the best offer;
    a slot with no offer now is cleared), attributes of the whole (``offerCount``, ``topOfferId``...), and
    a real-time event that tells Optimove the offers changed."""

    slots: list[dict[SourceName, Attribute]] = Field(default_factory=list, max_length=MAX_OFFERS_ASSIGNED)
    attributes: dict[SourceName, Attribute] = Field(default_factory=dict)
    realtimeEvent: RealtimeEvent | None = None


class VoucherMapping(Strict):
    attributes: dict[SourceName, Attribute] = Field(default_factory=dict)
    mail: Mail | None = None


class TransferMapping(Strict):
    """POINTS_TRANSFERRED: attributes of the member the envelope names, and a mail to each member
    (each addressed by their own email and written in their own locale, as the contact store knows them)."""

    attributes: dict[SourceName, Attribute] = Field(default_factory=dict)
    senderMail: Mail | None = None
    recipientMail: Mail | None = None


class PurchaseMapping(Strict):
    attributes: dict[SourceName, Attribute] = Field(default_factory=dict)
    mail: Mail | None = None


class GamePlayMapping(Strict):
    """GAME_PLAY_AWARDED: the "you qualified for a game" mail (the play links come back through CataBoom)."""

    attributes: dict[SourceName, Attribute] = Field(default_factory=dict)
    mail: Mail | None = None


class EventMappings(Strict):
    MEMBER_REGISTRATION: RegistrationMapping | None = None
    OPT_IN_EMAIL: OptInMapping | None = None
    REDEMPTION: RedemptionMapping | None = None
    MEMBER_PROFILE_UPDATE: ProfileUpdateMapping | None = None
    MEMBER_TIER: TierMapping | None = None
    PARTNER_CARD_LINK: PartnerCardMapping | None = None
    MEMBER_HOUSEHOLD_CHANGED: HouseholdMapping | None = None
    OFFERS_ASSIGNED: OffersMapping | None = None
    VOUCHER_ISSUED: VoucherMapping | None = None
    POINTS_TRANSFERRED: TransferMapping | None = None
    PURCHASE: PurchaseMapping | None = None
    GAME_PLAY_AWARDED: GamePlayMapping | None = None

    def for_type(self, event_type: EventType | str) -> Any:
        """The mapping of an event type; None for one not configured or not mappable to Optimove."""
        return getattr(self, str(event_type), None)


class RateLimits(Strict):
    customerApi: RateLimit = RateLimit(requests=50, perSeconds=10)
    transactionalMail: RateLimit = RateLimit(requests=10, perSeconds=1)


class CustomerCreation(StrEnum):
    API = "api"  # a registration creates the customer through Optimove's insert-or-update API
    BATCH = "batch"  # the tenant creates customers only through its daily batch load


SQS_MAX_DELAY_SECONDS = 900
DAY_MINUTES = 24 * 60


class Customers(Strict):
    """How customers come to exist in Optimove, and how long an update for one that does not exist
    yet (INVALID_CUSTOMER) is retried before it is recorded FAILED."""

    creation: CustomerCreation = CustomerCreation.API
    # Optimove's insert-or-update call is documented, but its path is not (a third-party connector
    # lists this one): unverified, so it is configuration, used by one request builder.
    upsertMethod: Literal["PUT", "POST"] = "PUT"
    upsertPath: str = Field(default="/customers/InsertOrUpdateCustomers", pattern=r"^/[A-Za-z0-9/_-]+$")
    retryDelaySeconds: int = Field(default=120, ge=1, le=SQS_MAX_DELAY_SECONDS)
    giveUpAfterMinutes: int = Field(default=60, ge=1, le=7 * DAY_MINUTES)

    @model_validator(mode="after")
    def _batch_waits_for_the_daily_load(self) -> Customers:
        if self.creation is CustomerCreation.BATCH and self.giveUpAfterMinutes < DAY_MINUTES:
            raise ValueError(
                "creation 'batch': giveUpAfterMinutes must cover the next daily load (at least 1440 minutes)"
            )
        return self


class RealtimeFormat(StrEnum):
    REPORT_EVENT = "reportEvent"  # legacy: POST {gateway}/reportEvent {tid, cid, eid, context}
    SERVER_SIDE = "serverSide"  # current: the tenant's endpoint, {tenant, timestamp, event, customer, context}


class Realtime(Strict):
    format: RealtimeFormat = RealtimeFormat.REPORT_EVENT
    tenantId: int | None = Field(default=None, gt=0, description="Optimove's tenant id (serverSide format)")


class Unsubscribes(Strict):
    """The return path: OptiMail's unsubscribes, polled (GetUnsubscribers) and sent to ES Loyalty as
    MEMBER_CONSENT_CHANGED (email, opted out). Absent: the tenant does not poll them."""

    brandId: int = Field(gt=0, description="The OptiMail brand whose unsubscribes are read")
    overlapDays: int = Field(default=1, ge=1, le=7, description="Read again this many days before the last read")
    firstRunDays: int = Field(default=30, ge=0, le=365, description="How far back the first poll reads")


# The source values each event type offers to attributes, mail tags and real-time parameters.
COMMON_SOURCES = COMMON
# Each is what dig_contracts.values gives the event type (one list for every connector), for each type
# Optimove takes (EventMappings).
EVENT_SOURCES: dict[EventType, frozenset[str]] = {
    EventType(name): value_names(name) for name in EventMappings.model_fields
}
# Events whose mail is transactional: sent whatever the member's marketing opt-in (a mail about the
# member's own account: points moved, a purchase, a household balance, a game earned).
TRANSACTIONAL_EVENTS = (EventType.REDEMPTION,)


class OptimoveConfig(Strict):
    schemaVersion: Literal[1] = 1
    locale: str = Field(default="en-US", description="Used when an event carries no locale")
    currency: str = Field(default="USD", description="The Optimove instance's currency")
    dateFormat: Literal["short", "medium", "long", "full"] = "long"
    rateLimits: RateLimits = RateLimits()
    customers: Customers = Customers()
    realtime: Realtime = Realtime()
    callbackResultsOverdueMinutes: int = Field(
        default=15, ge=2, le=DAY_MINUTES, description="When results of a call that were not posted back count as lost"
    )
    profileAttributes: dict[SourceName, Attribute] = Field(default_factory=dict)
    extendedDataAttributes: dict[SourceName, Attribute] = Field(default_factory=dict)
    batchAttributes: list[OptimoveField] = Field(
        default_factory=list, description="Optimove fields the daily batch feed fills (counted in the limit of 50)"
    )
    batchFeed: BatchFeed | None = Field(
        default=None, description="The daily batch channel: data sets, format, destination, readiness time"
    )
    events: EventMappings = EventMappings()
    unsubscribes: Unsubscribes | None = None

    @model_validator(mode="after")
    def _business_rules(self) -> OptimoveConfig:
        problems = list(_rule_problems(self))
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def realtime_fields(self) -> set[str]:
        return {attribute.field for _, attribute in self._all_attributes()}

    def _all_attributes(self) -> Iterable[tuple[str, Attribute]]:
        for name, attribute in self.profileAttributes.items():
            yield f"profileAttributes.{name}", attribute
        for name, attribute in self.extendedDataAttributes.items():
            yield f"extendedDataAttributes.{name}", attribute
        for event_type, path, attribute in self._event_attributes():
            yield f"events.{event_type}.{path}", attribute

    def _event_attributes(self) -> Iterable[tuple[EventType, str, Attribute]]:
        for event_type in EventType:
            mapping = self.events.for_type(event_type)
            if mapping is None:
                continue
            for name, attribute in (getattr(mapping, "attributes", None) or {}).items():
                yield event_type, f"attributes.{name}", attribute
            single = getattr(mapping, "attribute", None)
            if single is not None:
                yield event_type, "attribute", single
            for index, slot in enumerate(getattr(mapping, "slots", None) or [], start=1):
                for name, attribute in slot.items():
                    yield event_type, f"slots[{index}].{name}", attribute


def _rule_problems(config: OptimoveConfig) -> Iterable[str]:
    from babel import Locale, UnknownLocaleError

    try:
        Locale.parse(config.locale.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        yield f"locale: '{config.locale}' is not a locale Babel knows (e.g. en-US, fr-CA, de-DE)"
    if config.currency not in ISO_4217_CURRENCIES:
        yield f"currency: '{config.currency}' is not an ISO 4217 currency in current use"

    realtime = config.realtime_fields()
    batch = Counter(config.batchAttributes)
    fed = config.batchFeed.customer_attributes() if config.batchFeed is not None else set()
    custom = realtime | set(batch) | fed
    if len(custom) > MAX_CUSTOM_ATTRIBUTES:
        yield (
            f"{len(custom)} custom attributes are mapped ({len(realtime)} real-time, {len(set(batch) | fed)} batch); "
            f"Optimove allows at most {MAX_CUSTOM_ATTRIBUTES} across the real-time and batch channels"
        )
    for field, count in batch.items():
        if count > 1:
            yield f"batchAttributes: {field} is listed {count} times"
    for field in sorted(realtime & set(batch)):
        yield f"{field}: mapped both in real time and in batchAttributes; the two channels need separate attributes"
    for field in sorted(realtime & fed):
        yield f"{field}: mapped both in real time and in batchFeed; the two channels need separate attributes"

    # Within what one event sends, one Optimove field may have one source only.
    profile = [(f"profileAttributes.{n}", a) for n, a in config.profileAttributes.items()]
    extended = [(f"extendedDataAttributes.{n}", a) for n, a in config.extendedDataAttributes.items()]
    yield from _duplicates("profile and Extended Member Data mappings", profile + extended)
    registration = config.events.MEMBER_REGISTRATION
    if registration is not None:
        own = [(f"events.MEMBER_REGISTRATION.attributes.{n}", a) for n, a in registration.attributes.items()]
        yield from _duplicates("MEMBER_REGISTRATION (its attributes and the profile mappings)", own + profile)
    for event_type in (
        EventType.OPT_IN_EMAIL,
        EventType.REDEMPTION,
        EventType.MEMBER_TIER,
        EventType.PARTNER_CARD_LINK,
        EventType.MEMBER_HOUSEHOLD_CHANGED,
        EventType.OFFERS_ASSIGNED,
        EventType.VOUCHER_ISSUED,
        EventType.POINTS_TRANSFERRED,
        EventType.PURCHASE,
        EventType.GAME_PLAY_AWARDED,
    ):
        own = [(f"events.{e}.{p}", a) for e, p, a in config._event_attributes() if e == event_type]
        yield from _duplicates(str(event_type), own)

    # Sources must exist for their event.
    for owner, path, _ in config._event_attributes():
        source = path.removeprefix("attributes.")
        if path.startswith("attributes.") and source not in _sources(owner):
            yield f"events.{owner}.{path}: {owner} has no value '{source}' ({_known(owner)})"
        if path.startswith("slots[") and path.split(".", 1)[1] not in OFFER_SOURCES:
            known = ", ".join(sorted(OFFER_SOURCES))
            yield f"events.{owner}.{path}: an offer has no value '{path.split('.', 1)[1]}' (known: {known})"

    for event_type, mail_name, mail in configured_mails(config):
        for tag, source in mail.tags.items():
            if source not in _sources(event_type):
                where = f"events.{event_type}.{mail_name}.tags.{tag}"
                yield f"{where}: {event_type} has no value '{source}' ({_known(event_type)})"
    realtime_events = [
        (event_type, event)
        for event_type in EventType
        if (event := getattr(config.events.for_type(event_type), "realtimeEvent", None)) is not None
    ]
    if realtime_events and config.realtime.format is RealtimeFormat.SERVER_SIDE and config.realtime.tenantId is None:
        yield "realtime.tenantId: the serverSide format needs Optimove's tenant id"
    for event_type, realtime_event in realtime_events:
        if config.realtime.format is RealtimeFormat.REPORT_EVENT and realtime_event.eventId is None:
            yield f"events.{event_type}.realtimeEvent.eventId: the reportEvent format needs the numeric event id"
        for parameter, source in realtime_event.parameters.items():
            if source not in _sources(event_type):
                yield (
                    f"events.{event_type}.realtimeEvent.parameters.{parameter}: no value '{source}' "
                    f"({_known(event_type)})"
                )

    for event_type in TRANSACTIONAL_EVENTS:
        mapping = config.events.for_type(event_type)
        if mapping is not None and mapping.mail is None:
            yield f"events.{event_type}: a transactional event needs mail.templateId (the Optimove template to send)"


def _sources(event_type: EventType) -> frozenset[str]:
    return COMMON_SOURCES | EVENT_SOURCES[event_type]


def _known(event_type: EventType) -> str:
    return "known: " + ", ".join(sorted(_sources(event_type)))


def configured_mails(config: OptimoveConfig) -> Iterable[tuple[EventType, str, Mail]]:
    for event_type in EventType:
        mapping = config.events.for_type(event_type)
        if mapping is None:
            continue
        for name in ("mail", "linkMail", "unlinkMail", "senderMail", "recipientMail"):
            mail = getattr(mapping, name, None)
            if mail is not None:
                yield event_type, name, mail


def _duplicates(scope: str, mapped: list[tuple[str, Attribute]]) -> Iterable[str]:
    by_field: dict[str, list[str]] = {}
    for path, attribute in mapped:
        by_field.setdefault(attribute.field, []).append(path)
    for field, paths in by_field.items():
        if len(paths) > 1:
            yield f"Optimove field {field} is mapped twice in {scope}: {', '.join(paths)}"


def parse_config(document: Any) -> OptimoveConfig:
    """Validate a configuration document; ConfigError lists every problem with its path."""
    return validate_config(OptimoveConfig, document)
