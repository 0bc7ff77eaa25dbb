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
    email: str | None = None
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


def plan(message: InboundMessage, config: MarketoConfig, known: MemberContact | None = None) -> Plan:
    event = message.event
    known = known or MemberContact()
    result = Plan(message.message_id, event.memberId, event.occurredAt.astimezone(UTC).isoformat())
    mapping = config.for_type(message.event_type)
    if mapping is None:
        result.skip_reason = f"no Marketo mapping is configured for {message.event_type}"
        return result
    values = event_values(event)
    email = values.get("email") or known.email
    if not email:
        result.errors.append(
            f"no email is known for member {event.memberId} (Marketo finds leads by {config.lookupField}); "
            "replay it once ES Loyalty has sent one"
        )
        return result
    result.email = str(email)
    if message.event_type == EventType.MEMBER_REGISTRATION:
        for api_name, source in config.leadFields.items():
            if values.get(source) is not None:
                result.lead[api_name] = field_value(values[source])
        unmapped = sorted(k for k in ("firstName", "lastName") if values.get(k) and k not in config.leadFields.values())
        if unmapped:
            result.notes.append(f"not mapped to a lead field: {', '.join(unmapped)}")
    result.lead[config.lookupField] = result.email
    if mapping.activity is not None:
        activity = mapping.activity
        result.activity = {
            "activityDate": event.occurredAt.isoformat(),
            "activityTypeId": activity.activityTypeId,
            "primaryAttributeValue": str(field_value(values.get(activity.primaryAttribute, ""))),
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
