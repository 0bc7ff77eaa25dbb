"""The Marketo connector's configuration: which member data goes to which lead field, which custom
activity type and which campaign each loyalty event becomes, and the instance's limits.

Stored versioned in the configuration table (``dig config push marketo FILE``), validated here."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors.marketo.manifest import DAILY_CALLS
from dig_connector_kit.config import ConfigError as ConfigError  # re-exported: the parser raises it
from dig_connector_kit.config import validate_config
from dig_connector_kit.ratelimit import RateLimit
from dig_contracts.currencies import ISO_4217_CURRENCIES
from dig_contracts.events import EventType

ApiName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,79}$")]  # a Marketo REST API field name
TokenName = Annotated[str, Field(pattern=r"^\{\{my\.[A-Za-z0-9_ .-]{1,60}\}\}$")]
SourceName = Annotated[str, Field(min_length=1, max_length=64)]
MAX_SECONDARY_ATTRIBUTES = 20
MAX_TOKENS = 100

# The values each event type offers to lead fields, activity attributes and campaign tokens.
COMMON_SOURCES = frozenset({"memberId", "eventId", "programId", "occurredAt"})
EVENT_SOURCES: dict[EventType, frozenset[str]] = {
    EventType.MEMBER_REGISTRATION: frozenset(
        {"email", "firstName", "lastName", "enrollmentChannel", "cardType", "registrationDate"}
    ),
    EventType.BADGE_AWARD: frozenset({"badgeId", "badgeName", "awardedAt", "pointsAwarded", "category"}),
    EventType.REDEMPTION: frozenset(
        {"redemptionId", "pointsRedeemed", "pointsBalance", "rewardName", "rewardValue", "redeemedAt", "email"}
    ),
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Activity(Strict):
    """A custom activity on the lead: its type's numeric id in the instance, the primary attribute and
    the secondary attributes (apiName -> source value)."""

    activityTypeId: int = Field(gt=0)
    primaryAttribute: SourceName
    attributes: dict[ApiName, SourceName] = Field(default_factory=dict, max_length=MAX_SECONDARY_ATTRIBUTES)


class Campaign(Strict):
    """A triggered campaign (an email): active, with a "Campaign is Requested" trigger from the Web
    Service API; My Tokens filled from the event, money and dates written for the member's locale."""

    campaignId: int = Field(gt=0)
    tokens: dict[TokenName, SourceName] = Field(default_factory=dict, max_length=MAX_TOKENS)


class EventMapping(Strict):
    activity: Activity | None = None
    campaign: Campaign | None = None


class Limits(Strict):
    """The instance's limits are shared by every integration; DIG takes half of each by default."""

    calls: RateLimit = RateLimit(requests=50, perSeconds=20)  # of the instance's 100 per 20 s
    # Of the instance's quota: 50,000 a day unless more was bought from Adobe (the Admin > Web Services page).
    dailyCalls: int = Field(default=DAILY_CALLS, ge=1, le=10_000_000)
    # Of the instance's 10 concurrent calls: every call waits for a place (dig_connector_kit.concurrency),
    # whichever invocation makes it, the queue's or the synchronous entry point's.
    concurrentCalls: int = Field(default=5, ge=1, le=10)


class MarketoConfig(Strict):
    schemaVersion: Literal[1] = 1
    lookupField: ApiName = "email"
    locale: str = Field(default="en-US", description="Used when neither the event nor the member's record has one")
    dateFormat: Literal["short", "medium", "long", "full"] = "long"
    limits: Limits = Limits()
    # Lead fields a registration sets: REST API name -> source value.
    leadFields: dict[ApiName, SourceName] = Field(default_factory=lambda: {"email": "email"})
    events: dict[EventType, EventMapping] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _rules(self) -> MarketoConfig:
        problems = list(_problems(self))
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def for_type(self, event_type: EventType | str) -> EventMapping | None:
        return self.events.get(EventType(event_type))


def _sources(event_type: EventType) -> frozenset[str]:
    return COMMON_SOURCES | EVENT_SOURCES.get(event_type, frozenset())


def _problems(config: MarketoConfig) -> Any:
    from babel import Locale, UnknownLocaleError

    try:
        Locale.parse(config.locale.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        yield f"locale: '{config.locale}' is not a locale Babel knows (e.g. en-US, fr-CA, de-DE)"
    if config.lookupField not in config.leadFields:
        yield f"leadFields: the lookup field {config.lookupField} must be mapped (it is how Marketo finds the lead)"
    for api_name, source in config.leadFields.items():
        if source not in _sources(EventType.MEMBER_REGISTRATION):
            yield f"leadFields.{api_name}: MEMBER_REGISTRATION has no value '{source}'"
    for event_type, mapping in config.events.items():
        if event_type not in EVENT_SOURCES:
            yield f"events.{event_type}: the Marketo connector maps {', '.join(EVENT_SOURCES)} only"
            continue
        known = _sources(event_type)
        named: list[tuple[str, str]] = []
        if mapping.activity is not None:
            named.append(("activity.primaryAttribute", mapping.activity.primaryAttribute))
            named += [(f"activity.attributes.{k}", v) for k, v in mapping.activity.attributes.items()]
        if mapping.campaign is not None:
            named += [(f"campaign.tokens.{k}", v) for k, v in mapping.campaign.tokens.items()]
        for where, source in named:
            if source not in known:
                listed = ", ".join(sorted(known))
                yield f"events.{event_type}.{where}: {event_type} has no value '{source}' (known: {listed})"
    _ = ISO_4217_CURRENCIES  # money is written in the currency each event carries


def parse_config(document: Any) -> MarketoConfig:
    """Validate a configuration document; ConfigError lists every problem with its path."""
    return validate_config(MarketoConfig, document)
