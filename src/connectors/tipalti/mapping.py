"""An ES Loyalty event as the Tipalti event its configuration maps it to."""

from __future__ import annotations

from typing import Any

from connectors.tipalti.config import EventMapping
from dig_connector_kit.model import InboundMessage
from dig_contracts.events import EnvelopeFields, MemberRegistrationEvent, MemberTierEvent


def source_values(event: EnvelopeFields) -> dict[str, str]:
    """The values an event offers to attributes (config.EVENT_SOURCES), absent ones left out."""
    values: dict[str, Any] = {
        "memberId": event.memberId,
        "eventId": event.eventId,
        "programId": event.programId,
        "occurredAt": event.occurredAt.isoformat(),
        "locale": event.locale,
    }
    if isinstance(event, MemberRegistrationEvent):
        values |= {
            "email": event.data.email,
            "firstName": event.data.firstName,
            "lastName": event.data.lastName,
            "enrollmentChannel": event.data.enrollmentChannel,
        }
    elif isinstance(event, MemberTierEvent):
        values |= {"newTier": event.data.newTier, "previousTier": event.data.previousTier}
    return {name: str(value) for name, value in values.items() if value is not None}


def tipalti_event(message: InboundMessage, mapping: EventMapping) -> dict[str, Any]:
    """The event the provider receives. ``id`` is DIG's messageId: the same message sent twice (a retry,
    a replay) carries the same id, which the provider deduplicates on (client.py: PLACEHOLDER)."""
    values = source_values(message.loyalty_event)
    return {
        "id": message.message_id,
        "name": mapping.eventName,
        "memberId": message.loyalty_event.memberId,
        "occurredAt": values["occurredAt"],
        "attributes": {
            attribute: values[source] for attribute, source in mapping.attributes.items() if source in values
        },
    }
