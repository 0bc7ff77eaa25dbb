"""From one loyalty event to the Marketo operations it calls for. Pure: no I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from connectors.marketo.config import MarketoConfig
from dig_connector_kit import formatting
from dig_connector_kit.model import InboundMessage
from dig_connector_kit.ports import MemberContact
from dig_contracts.events import (
    EventType,
    Money,
)
from dig_contracts.pan import find_card_number
from dig_contracts.values import event_values


@dataclass
class Plan:
    message_id: str
    member_id: str
    occurred_at: str  # UTC ISO: the newest occurredAt wins a lead field
    lookup_value: str | None = None  # the value of the configuration's lookupField: how Marketo finds the lead
    lead: dict[str, Any] = field(default_factory=dict)  # lead fields, the lookup field among them
    activity: dict[str, Any] | None = None  # without its leadId, known once the lead is upserted
    activity_key: str | None = None  # "activity:<typeId>": done once, never again
    campaign_id: int | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    skip_reason: str | None = None
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def campaign_key(self) -> str | None:
        return f"campaign:{self.campaign_id}" if self.campaign_id else None


def field_value(value: Any) -> str | int | float | bool:
    """A lead field or activity attribute: Marketo takes strings, numbers and booleans."""
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Money):
        return float(value.decimal)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def ascii_email(address: str) -> str:
    """An address Marketo can take: its domain in IDNA (punycode) when only the domain is not ASCII.
    Adobe: "only ASCII characters are supported in the email address field" (help/rest-api/leads.md)."""
    local, at, domain = address.rpartition("@")
    if not at or address.isascii() or not local.isascii():
        return address
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return address


def plan(message: InboundMessage, config: MarketoConfig, known: MemberContact | None = None) -> Plan:
    event = message.loyalty_event
    known = known or MemberContact()
    result = Plan(message.message_id, event.memberId, event.occurredAt.astimezone(UTC).isoformat())
    mapping = config.for_type(message.event_type)
    if mapping is None:
        result.skip_reason = f"no Marketo mapping is configured for {message.event_type}"
        return result
    values = event_values(event)
    if known.email and values.get("email") is None:
        values = {**values, "email": known.email}  # the member's email from an earlier event
    lookup_source = config.leadFields[config.lookupField]
    lookup = values.get(lookup_source)
    if lookup is None or lookup == "":
        result.errors.append(
            f"no {lookup_source} is known for member {event.memberId} (Marketo finds leads by "
            f"{config.lookupField}); replay it once ES Loyalty has sent one"
        )
        return result
    fields = {config.lookupField: lookup_source}
    if message.event_type == EventType.MEMBER_REGISTRATION:
        fields = dict(config.leadFields)
        unmapped = sorted(k for k in ("firstName", "lastName") if values.get(k) and k not in config.leadFields.values())
        if unmapped:
            result.notes.append(f"not mapped to a lead field: {', '.join(unmapped)}")
    for api_name, source in fields.items():
        if values.get(source) is None:
            continue
        value = field_value(values[source])
        if source == "email":
            value = ascii_email(str(value))
            if not value.isascii():
                result.errors.append(f"{api_name}: Marketo takes email addresses in ASCII only, and this one is not")
                return result
        result.lead[api_name] = value
    result.lookup_value = str(result.lead[config.lookupField])
    if mapping.activity is not None and values.get(mapping.activity.primaryAttribute) is None:
        result.errors.append(
            f"the activity's primary attribute {mapping.activity.primaryAttribute} has no value in this event: "
            "Marketo requires one (map a value every event carries)"
        )
        return result
    if mapping.activity is not None:
        activity = mapping.activity
        result.activity = {
            "activityDate": event.occurredAt.isoformat(),
            "activityTypeId": activity.activityTypeId,
            "primaryAttributeValue": str(field_value(values[activity.primaryAttribute])),
            "attributes": [
                {"apiName": api_name, "value": field_value(values[source])}
                for api_name, source in activity.attributes.items()
                if values.get(source) is not None
            ],
        }
        result.activity_key = f"activity:{activity.activityTypeId}"
    if mapping.campaign is not None:
        locale, note = formatting.resolve_locale(event.locale or known.locale, config.locale)
        if note:
            result.notes.append(note)
        result.campaign_id = mapping.campaign.campaignId
        result.tokens = {
            name: formatting.text(values.get(source), locale, config.dateFormat)
            for name, source in mapping.campaign.tokens.items()
        }
    _refuse_card_numbers(result)
    return result


def _refuse_card_numbers(result: Plan) -> None:
    """The second guard behind the API: nothing that looks like a card number leaves for Marketo."""
    outbound = [str(v) for v in result.lead.values()] + list(result.tokens.values())
    if result.activity is not None:
        outbound += [result.activity["primaryAttributeValue"]] + [
            str(a["value"]) for a in result.activity["attributes"]
        ]
    if any(find_card_number(value) for value in outbound):
        result.errors.append("refused to send what looks like a card number")
        result.lead, result.activity, result.tokens, result.campaign_id = {}, None, {}, None
