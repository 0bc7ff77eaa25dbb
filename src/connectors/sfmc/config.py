"""The SFMC connector's configuration: which ES Loyalty events send which transactional email, enter
which journey and write which data extension rows, with which values. Stored versioned in the
configuration table (``dig config push sfmc FILE``), validated here."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dig_connector_kit.config import ConfigError as ConfigError  # re-exported: the parser raises it
from dig_connector_kit.config import validate_config
from dig_connector_kit.formatting import babel_locale
from dig_connector_kit.ratelimit import RateLimit
from dig_contracts.events import EventType

Key = Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]
AttributeName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_ ]{0,63}$")]
# SFMC's data extensions: Salesforce recommends at most 50 columns in a call (a row's columns here).
MAX_DATA_EXTENSION_COLUMNS = 50
COMMON_SOURCES = frozenset({"memberId", "eventId", "programId", "occurredAt", "locale", "email"})
# The values each event type offers (mapping.source_values): money and dates written for the locale.
EVENT_SOURCES: dict[EventType, frozenset[str]] = {
    EventType.MEMBER_REGISTRATION: frozenset({"firstName", "lastName", "enrollmentChannel", "cardType"}),
    EventType.REDEMPTION: frozenset(
        {
            "redemptionId",
            "pointsRedeemed",
            "rewardName",
            "rewardValue",
            "rewardAmount",
            "rewardCurrency",
            "pointsBalance",
        }
    ),
    EventType.MEMBER_TIER: frozenset({"newTier", "previousTier", "effectiveAt"}),
    EventType.PARTNER_CARD_LINK: frozenset({"linkId", "partner", "cardholderType", "linkStatus"}),
    EventType.BADGE_AWARD: frozenset({"badgeId", "badgeName", "awardedAt", "pointsAwarded", "category"}),
    EventType.OPT_IN_SMS: frozenset({"mobileNumber", "optIn", "source"}),
    EventType.VOUCHER_ISSUED: frozenset(
        {
            "voucherId",
            "voucherName",
            "codeReference",
            "voucherValue",
            "voucherAmount",
            "voucherCurrency",
            "voucherExpiresAt",
            "offerId",
            "issuedAt",
        }
    ),
    # A profile update offers its profile's and Extended Member Data's fields as profile.<name> and
    # extendedData.<name>: any name (mapping.source_values), checked against the event when it comes.
    EventType.MEMBER_PROFILE_UPDATE: frozenset(),
}
PROFILE_PREFIXES = ("profile.", "extendedData.")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Email(Strict):
    """A transactional send definition (created in SFMC once per use case, never per send)."""

    definitionKey: Key
    attributes: dict[AttributeName, str] = Field(default_factory=dict, max_length=50)


class Sms(Strict):
    """A transactional SMS send definition (its message and short code live in SFMC): sent only to a
    member whose latest OPT_IN_SMS is a yes (the member contact store)."""

    definitionKey: Key
    attributes: dict[AttributeName, str] = Field(default_factory=dict, max_length=50)


class Journey(Strict):
    """A Journey Builder API entry event: fired at most once per ES Loyalty event."""

    eventDefinitionKey: Key
    data: dict[AttributeName, str] = Field(default_factory=dict, max_length=50)


class EventMapping(Strict):
    email: Email | None = None
    sms: Sms | None = None
    journey: Journey | None = None
    dataExtensions: list[str] = Field(default_factory=list, description="Names of dataExtensions written from it")


class DataExtension(Strict):
    """A data extension rows are upserted into (asynchronously): its external key, its primary key
    columns and every column DIG writes, each from an event value."""

    key: Key
    primaryKey: list[AttributeName] = Field(min_length=1)
    columns: dict[AttributeName, str] = Field(min_length=1, max_length=MAX_DATA_EXTENSION_COLUMNS)


class EventNotifications(Strict):
    """SFMC's Event Notification Service callback DIG's ``POST /v1/inbound/sfmc/ens`` is registered as:
    its id, so that only its verification is completed (an unsubscribe comes back signed with the
    signature key kept in the ``ens`` webhook's secret)."""

    callbackId: str = Field(min_length=1, max_length=128)


class SfmcConfig(Strict):
    schemaVersion: Literal[1] = 1
    accountId: str | None = Field(default=None, pattern=r"^\d{1,12}$", description="The business unit's MID")
    locale: str = Field(default="en-US", description="Used when the event carries no locale")
    dateFormat: Literal["short", "medium", "long", "full"] = "long"
    limits: RateLimit = RateLimit(requests=50, perSeconds=10)  # SFMC publishes none: DIG's own pace
    statusCheckSeconds: int = Field(default=300, ge=60, le=86_400, description="When a send's status is asked for")
    events: dict[EventType, EventMapping] = Field(min_length=1)
    dataExtensions: dict[str, DataExtension] = Field(default_factory=dict)
    eventNotifications: EventNotifications | None = None

    @model_validator(mode="after")
    def _business_rules(self) -> SfmcConfig:
        problems = list(_problems(self))
        if problems:
            raise ValueError("\n".join(problems))
        return self


def offered(event_type: EventType, source: str) -> bool:
    if source in COMMON_SOURCES or source in EVENT_SOURCES.get(event_type, frozenset()):
        return True
    return event_type is EventType.MEMBER_PROFILE_UPDATE and source.startswith(PROFILE_PREFIXES)


def _problems(config: SfmcConfig) -> Any:
    if babel_locale(config.locale) is None:
        yield f"locale: {config.locale} is not a locale Babel knows"
    for name, extension in config.dataExtensions.items():
        missing = [column for column in extension.primaryKey if column not in extension.columns]
        if missing:
            yield f"dataExtensions.{name}.primaryKey: {', '.join(missing)} must be among its columns"
            return
    for event_type, mapping in config.events.items():
        if event_type not in EVENT_SOURCES:
            yield f"events.{event_type}: the connector does not deliver {event_type}"
            continue
        uses = [
            *((f"email.attributes.{a}", s) for a, s in (mapping.email.attributes.items() if mapping.email else [])),
            *((f"sms.attributes.{a}", s) for a, s in (mapping.sms.attributes.items() if mapping.sms else [])),
            *((f"journey.data.{a}", s) for a, s in (mapping.journey.data.items() if mapping.journey else [])),
        ]
        for name in mapping.dataExtensions:
            found = config.dataExtensions.get(name)
            if found is None:
                yield f"events.{event_type}.dataExtensions: {name} is not among dataExtensions"
                continue
            extension = found
            # Its primary key from every event that writes it (an upsert needs the whole key); any other
            # column is written by the events that offer its value, and left as it is by the others.
            uses += [(f"dataExtensions.{name}.primaryKey {c}", extension.columns[c]) for c in extension.primaryKey]
        for path, source in uses:
            if not offered(event_type, source):
                yield f"events.{event_type}: {path}: {event_type} offers no value {source!r}"
    for name, extension in config.dataExtensions.items():
        writers = [t for t, m in config.events.items() if name in m.dataExtensions and t in EVENT_SOURCES]
        for column, source in extension.columns.items():
            if writers and not any(offered(t, source) for t in writers):
                yield f"dataExtensions.{name}.columns.{column}: no event writing it offers {source!r}"


def parse_config(document: Any) -> SfmcConfig:
    """Validate a configuration document; ConfigError lists every problem with its path."""
    return validate_config(SfmcConfig, document)
