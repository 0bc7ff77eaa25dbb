"""From one loyalty event to the Optimove operations it calls for. Pure: no I/O, no clock.

Each event becomes a ``Plan``: customer attributes to set, an email channel preference, a
real-time event, transactional mails, or the reason it is skipped or refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from babel import Locale

from connectors.optimove.config import Attribute, AttributeType, CustomerCreation, Mail, OptimoveConfig
from dig_connector_kit import formatting
from dig_connector_kit.model import InboundMessage
from dig_connector_kit.ports import MemberContact
from dig_contracts.events import (
    EventType,
    GamePlayAwardedEvent,
    MemberHouseholdChangedEvent,
    MemberProfileUpdateEvent,
    MemberRegistrationEvent,
    MemberTierEvent,
    Money,
    OffersAssignedEvent,
    OptInEmailEvent,
    PartnerCardLinkEvent,
    PointsTransferredEvent,
    PurchaseEvent,
    RedemptionEvent,
    VoucherIssuedEvent,
)
from dig_contracts.pan import find_card_number
from dig_contracts.values import event_values

MAX_UNIQUE_MESSAGE_ID = 254
MAX_PARAMETER_LENGTH = 255


@dataclass(frozen=True)
class ChannelPreference:
    channel_id: int
    app_id: int
    mode: int  # the tenant's CommunicationMode integer for opted in, or for opted out
    opt_in: bool


@dataclass(frozen=True)
class RealtimeCall:
    key: str  # "realtime:<name>", recorded as completed so that a retry does not report it twice
    name: str
    event_id: int | None  # the legacy format's numeric id
    context: dict[str, str | int | float | bool]
    occurred_at: datetime


@dataclass(frozen=True)
class MailCall:
    key: str  # "mail:<templateId>" ("...:recipient" for a transfer's second member)
    template_id: int
    email: str | None  # from the event, else from the member contact store; None: nobody to address
    tags: dict[str, str]
    unique_message_id: str
    member_id: str = ""  # whom it addresses (a points transfer mails both members)


@dataclass
class Plan:
    message_id: str
    member_id: str
    occurred_at: datetime
    attributes: dict[str, str] = field(default_factory=dict)
    channel_preference: ChannelPreference | None = None
    realtime: RealtimeCall | None = None
    mails: list[MailCall] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skip_reason: str | None = None
    errors: list[str] = field(default_factory=list)
    creates_customer: bool = False  # a registration: the customer is created in Optimove first

    @property
    def empty(self) -> bool:
        return not (self.attributes or self.channel_preference or self.realtime or self.mails)


class ConversionError(ValueError):
    pass


def unique_message_id(event_id: str, template_id: int) -> str:
    """Optimove refuses (409) a second mail with the same UniqueMessageID: derive it from the
    event and the template, so that no retry, duplicate or replay can mail a member twice."""
    candidate = f"dig:{template_id}:{event_id}"
    if len(candidate) <= MAX_UNIQUE_MESSAGE_ID:
        return candidate
    return f"dig:{template_id}:sha256:{hashlib.sha256(event_id.encode()).hexdigest()}"


# --- conversions ----------------------------------------------------------------------------


def attribute_value(value: Any, attribute: Attribute, locale: Locale) -> str:
    """A value as Optimove's attribute of ``attribute.type`` takes it (raises ConversionError)."""
    kind = attribute.type
    if kind is AttributeType.STRING:
        if isinstance(value, Money):
            text = formatting.money(value.decimal, value.currency, locale)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, datetime | date):
            text = value.isoformat()
        else:
            text = str(value)
        if len(text) > attribute.maxLength:
            raise ConversionError(f"is {len(text)} characters; {attribute.field} takes at most {attribute.maxLength}")
        return text
    if kind is AttributeType.NUMBER:
        if isinstance(value, bool):
            raise ConversionError(f"is a boolean; {attribute.field} is a number")
        if isinstance(value, Money):
            value = value.decimal
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ConversionError(f"is not a number; {attribute.field} is a number") from None
        if not number.is_finite():
            raise ConversionError(f"is not a finite number; {attribute.field} is a number")
        return format(number.normalize(), "f") if number != number.to_integral() else str(int(number))
    if kind is AttributeType.BOOLEAN:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower()
        raise ConversionError(f"is not true or false; {attribute.field} is a boolean")
    # DATE
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10]).isoformat()
        except ValueError:
            pass
    raise ConversionError(f"is not a date (YYYY-MM-DD); {attribute.field} is a date")


tag_value = formatting.text  # a personalization tag value, formatted for the member's locale


def parameter_value(value: Any) -> str | int | float | bool:
    """A real-time event parameter: a string up to 255 characters, a number or a real boolean."""
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Money):
        return float(value.decimal)
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value)
    if len(text) > MAX_PARAMETER_LENGTH:
        raise ConversionError(f"is {len(text)} characters; real-time parameters take at most {MAX_PARAMETER_LENGTH}")
    return text


# --- the plan -------------------------------------------------------------------------------


# Event types whose one ``mail`` goes to the member the envelope names.
MAILED_TO_MEMBER = (
    RedemptionEvent,
    MemberTierEvent,
    MemberHouseholdChangedEvent,
    VoucherIssuedEvent,
    PurchaseEvent,
    GamePlayAwardedEvent,
)


def plan(
    message: InboundMessage,
    config: OptimoveConfig,
    known: MemberContact | None = None,
    others: Mapping[str, MemberContact] | None = None,
) -> Plan:
    """``known``: what the member contact store holds for the member (an email and a locale the
    event itself may not carry); ``others``: for the other members an event names (a transfer's)."""
    event = message.loyalty_event
    event_type = EventType(message.event_type)
    result = Plan(message.message_id, event.memberId, event.occurredAt)
    mapping = config.events.for_type(event_type)
    if mapping is None:
        result.skip_reason = f"no Optimove mapping is configured for {event_type}"
        return result
    known = known or MemberContact()
    locale, locale_note = formatting.resolve_locale(event.locale or known.locale, config.locale)
    if locale_note:
        result.notes.append(locale_note)
    values = event_values(event)

    def set_attributes(mapped: dict[str, Attribute], supplied: dict[str, Any], prefix: str) -> None:
        unmapped = sorted(name for name in supplied if name not in mapped)
        if unmapped:
            result.notes.append(f"unmapped {prefix} fields not sent: {', '.join(unmapped)}")
        for name, attribute in mapped.items():
            if name not in supplied:
                continue
            value = supplied[name]
            if value is None:
                result.notes.append(f"{prefix}.{name} is null: {attribute.field} not sent")
                continue
            try:
                result.attributes[attribute.field] = attribute_value(value, attribute, locale)
            except ConversionError as error:
                result.errors.append(f"{prefix}.{name} {error}")

    if isinstance(event, MemberProfileUpdateEvent):
        set_attributes(config.profileAttributes, dict(event.data.profile), "data.profile")
        if event.data.extendedData:
            set_attributes(config.extendedDataAttributes, dict(event.data.extendedData), "data.extendedData")
    elif isinstance(event, MemberRegistrationEvent):
        result.creates_customer = config.customers.creation is CustomerCreation.API
        set_attributes(mapping.attributes, {k: v for k, v in values.items() if k in mapping.attributes}, "event")
        if event.data.profile:
            set_attributes(config.profileAttributes, dict(event.data.profile), "data.profile")
    elif isinstance(event, OffersAssignedEvent):
        own = mapping.attributes
        set_attributes(own, {k: v for k, v in values.items() if k in own and v is not None}, "event")
        offers = event.data.offers
        for index, slot in enumerate(mapping.slots):
            offer = offers[index] if index < len(offers) else None
            for name, attribute in slot.items():
                value = getattr(offer, name, None) if offer is not None else None
                if value is None:
                    result.attributes[attribute.field] = (
                        ""  # a slot with no offer now is cleared (UNVERIFIED: "" clears)
                    )
                    continue
                try:
                    result.attributes[attribute.field] = attribute_value(value, attribute, locale)
                except ConversionError as error:
                    result.errors.append(f"data.offers[{index}].{name} {error}")
        if len(offers) > len(mapping.slots):
            result.notes.append(f"{len(offers)} offers: the first {len(mapping.slots)} sent (the configured slots)")
    elif isinstance(event, OptInEmailEvent):
        mode = mapping.optInMode if event.data.optIn else mapping.optOutMode
        result.channel_preference = ChannelPreference(mapping.channelId, mapping.appId, mode, event.data.optIn)
        if mapping.attribute is not None:
            set_attributes({"optIn": mapping.attribute}, {"optIn": event.data.optIn}, "data")
    else:
        own = mapping.attributes
        set_attributes(own, {k: v for k, v in values.items() if k in own and v is not None}, "event")

    realtime_event = getattr(mapping, "realtimeEvent", None)
    if realtime_event is not None:
        context: dict[str, str | int | float | bool] = {}
        for parameter, source in realtime_event.parameters.items():
            if values.get(source) is None:
                continue
            try:
                context[parameter] = parameter_value(values[source])
            except ConversionError as error:
                result.errors.append(f"realtime parameter {parameter} {error}")
        result.realtime = RealtimeCall(
            f"realtime:{realtime_event.name}", realtime_event.name, realtime_event.eventId, context, event.occurredAt
        )

    # (the mail, whom it addresses, what tells it from another mail of the same event)
    mails: list[tuple[Mail, str, str]] = []
    if isinstance(event, MAILED_TO_MEMBER) and mapping.mail is not None:
        if not isinstance(event, MemberHouseholdChangedEvent) or event.data.change in mapping.mailOn:
            mails.append((mapping.mail, event.memberId, ""))
    elif isinstance(event, PartnerCardLinkEvent):
        mail = mapping.linkMail if event.data.linkStatus == "LINKED" else mapping.unlinkMail
        if mail is not None:
            mails.append((mail, event.memberId, ""))
    elif isinstance(event, PointsTransferredEvent):
        if mapping.senderMail is not None:
            mails.append((mapping.senderMail, event.data.fromMemberId, ":sender"))
        if mapping.recipientMail is not None:
            mails.append((mapping.recipientMail, event.data.toMemberId, ":recipient"))
    for mail, member, part in mails:
        if member == event.memberId:
            contact, mail_locale = known, locale
            given = values.get("email")
            email = given if isinstance(given, str) and given else known.email
        else:  # the other member of a transfer: their own address and language
            contact = (others or {}).get(member) or MemberContact()
            mail_locale, _ = formatting.resolve_locale(contact.locale, config.locale)
            email = contact.email
        tags = {tag: tag_value(values.get(source), mail_locale, config.dateFormat) for tag, source in mail.tags.items()}
        result.mails.append(
            MailCall(
                key=f"mail:{mail.templateId}{part if part == ':recipient' else ''}",
                template_id=mail.templateId,
                email=email,
                tags=tags,
                unique_message_id=unique_message_id(
                    event.eventId + (part if part == ":recipient" else ""), mail.templateId
                ),
                member_id=member,
            )
        )

    _refuse_card_numbers(result)
    if not result.errors and result.empty and result.skip_reason is None:
        result.skip_reason = "nothing mapped to send"
    return result


def _refuse_card_numbers(result: Plan) -> None:
    """The second guard behind the API: nothing that looks like a card number leaves for Optimove."""
    outbound: list[tuple[str, Any]] = [(f"attribute {k}", v) for k, v in result.attributes.items()]
    if result.realtime is not None:
        outbound += [(f"realtime parameter {k}", v) for k, v in result.realtime.context.items()]
    for mail in result.mails:
        outbound += [(f"mail tag {k}", v) for k, v in mail.tags.items()]
        outbound.append(("mail recipient", mail.email))
    refused = [name for name, value in outbound if isinstance(value, str | int) and find_card_number(str(value))]
    if refused:
        result.errors.append(f"refused to send what looks like a card number in: {', '.join(refused)}")
        result.attributes.clear()
        result.realtime = None
        result.mails.clear()
        result.channel_preference = None
