"""An ES Loyalty event's values as SFMC receives them: attributes of a transactional email, a journey
entry's data, data extension columns. Money and dates are written for the member's locale (SFMC does
not localize); ``rewardAmount`` stays a plain decimal for a data extension's decimal column."""

from __future__ import annotations

from typing import Any

from babel import Locale

from dig_connector_kit import formatting
from dig_contracts.events import EnvelopeFields, MemberProfileUpdateEvent
from dig_contracts.values import event_values


def raw_values(event: EnvelopeFields) -> dict[str, Any]:
    """The values an event offers (config.EVENT_SOURCES; DIG's shared ``event_values``, with the locale
    and a profile update's fields as ``profile.<name>`` and ``extendedData.<name>``), as typed values;
    absent ones left out."""
    values = {**event_values(event), "locale": event.locale}
    if isinstance(event, MemberProfileUpdateEvent):
        values |= {f"profile.{k}": v for k, v in event.data.profile.items()}
        values |= {f"extendedData.{k}": v for k, v in (event.data.extendedData or {}).items()}
    return {name: value for name, value in values.items() if value is not None}


def source_values(event: EnvelopeFields, locale: Locale, date_style: str) -> dict[str, str]:
    """Every value as the member reads it (formatting.text), ids and plain amounts as they are."""
    plain = {
        "memberId",
        "eventId",
        "programId",
        "rewardAmount",
        "redemptionId",
        "linkId",
        "badgeId",
        "voucherId",
        "voucherAmount",
        "codeReference",
        "offerId",
        "mobileNumber",
    }
    return {
        name: str(value) if name in plain else formatting.text(value, locale, date_style)
        for name, value in raw_values(event).items()
    }
