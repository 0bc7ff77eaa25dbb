"""An ES Loyalty event's values as SFMC receives them: attributes of a transactional email, a journey
entry's data, data extension columns. Money and dates are written for the member's locale (SFMC does
not localize); ``rewardAmount`` stays a plain decimal for a data extension's decimal column."""

from __future__ import annotations

from typing import Any

from babel import Locale

from dig_connector_kit import formatting
from dig_contracts.events import (
    BadgeAwardEvent,
    EnvelopeFields,
    MemberProfileUpdateEvent,
    MemberRegistrationEvent,
    MemberTierEvent,
    PartnerCardLinkEvent,
    RedemptionEvent,
)


def raw_values(event: EnvelopeFields) -> dict[str, Any]:
    """The values an event offers (config.EVENT_SOURCES), as typed values; absent ones left out."""
    values: dict[str, Any] = {
        "memberId": event.memberId,
        "eventId": event.eventId,
        "programId": event.programId,
        "occurredAt": event.occurredAt,
        "locale": event.locale,
    }
    if isinstance(event, MemberRegistrationEvent):
        data = event.data
        values |= {
            "email": data.email,
            "firstName": data.firstName,
            "lastName": data.lastName,
            "enrollmentChannel": data.enrollmentChannel,
            "cardType": data.cardType,
        }
    elif isinstance(event, RedemptionEvent):
        redemption = event.data
        values |= {
            "email": redemption.email,
            "redemptionId": redemption.redemptionId,
            "pointsRedeemed": redemption.pointsRedeemed,
            "rewardName": redemption.reward.name,
            "rewardValue": redemption.reward.value,
            "rewardAmount": redemption.reward.value.amount,
            "rewardCurrency": redemption.reward.value.currency,
            "pointsBalance": redemption.pointsBalance,
        }
    elif isinstance(event, MemberTierEvent):
        values |= {
            "newTier": event.data.newTier,
            "previousTier": event.data.previousTier,
            "effectiveAt": event.data.effectiveAt,
        }
    elif isinstance(event, PartnerCardLinkEvent):
        link = event.data  # never the card's digits: last4 is not offered
        values |= {
            "linkId": link.linkId,
            "partner": link.partner,
            "cardholderType": link.cardholderType,
            "linkStatus": link.linkStatus,
        }
    elif isinstance(event, BadgeAwardEvent):
        badge = event.data
        values |= {
            "badgeId": badge.badgeId,
            "badgeName": badge.badgeName,
            "awardedAt": badge.awardedAt,
            "pointsAwarded": badge.pointsAwarded,
            "category": badge.category,
        }
    elif isinstance(event, MemberProfileUpdateEvent):
        values |= {f"profile.{k}": v for k, v in event.data.profile.items()}
        values |= {f"extendedData.{k}": v for k, v in (event.data.extendedData or {}).items()}
    return {name: value for name, value in values.items() if value is not None}


def source_values(event: EnvelopeFields, locale: Locale, date_style: str) -> dict[str, str]:
    """Every value as the member reads it (formatting.text), ids and plain amounts as they are."""
    plain = {"memberId", "eventId", "programId", "rewardAmount", "redemptionId", "linkId", "badgeId"}
    return {
        name: str(value) if name in plain else formatting.text(value, locale, date_style)
        for name, value in raw_values(event).items()
    }
