"""One example event per type: the OpenAPI document shows them, the local demo posts them, and
tests start from them."""

from __future__ import annotations

import copy
from typing import Any

from dig_contracts.events import EventType

_EXAMPLES: dict[EventType, dict[str, Any]] = {
    EventType.MEMBER_REGISTRATION: {
        "eventId": "evt-reg-0001",
        "eventType": "MEMBER_REGISTRATION",
        "occurredAt": "2026-11-21T09:15:00-05:00",
        "memberId": "M-100001",
        "programId": "ACME-REWARDS",
        "locale": "en-CA",
        "data": {
            "email": "ada@example.com",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "enrollmentChannel": "WEB",
            "cardType": "DIGITAL",
            "profile": {"city": "Toronto", "favoriteStore": "Queen St"},
        },
    },
    EventType.OPT_IN_EMAIL: {
        "eventId": "evt-opt-0001",
        "eventType": "OPT_IN_EMAIL",
        "occurredAt": "2026-11-21T09:16:00-05:00",
        "memberId": "M-100001",
        "data": {"email": "ada@example.com", "optIn": True, "source": "profile-page"},
    },
    EventType.REDEMPTION: {
        "eventId": "evt-red-0001",
        "eventType": "REDEMPTION",
        "occurredAt": "2026-11-21T10:02:00-05:00",
        "memberId": "M-100001",
        "locale": "fr-CA",
        "data": {
            "redemptionId": "R-55501",
            "pointsRedeemed": 12500,
            "reward": {"name": "Carte-cadeau", "value": {"amount": "1234.50", "currency": "CAD"}},
            "pointsBalance": 800,
            "email": "ada@example.com",
        },
    },
    EventType.MEMBER_PROFILE_UPDATE: {
        "eventId": "evt-prof-0001",
        "eventType": "MEMBER_PROFILE_UPDATE",
        "occurredAt": "2026-11-21T11:00:00-05:00",
        "memberId": "M-100001",
        "data": {
            "profile": {"firstName": "Ada", "city": "Ottawa", "birthDate": "1990-12-10"},
            "extendedData": {"favoriteStore": "Bank St"},
        },
    },
    EventType.MEMBER_TIER: {
        "eventId": "evt-tier-0001",
        "eventType": "MEMBER_TIER",
        "occurredAt": "2026-11-21T12:00:00-05:00",
        "memberId": "M-100001",
        "data": {"previousTier": "SILVER", "newTier": "GOLD", "effectiveAt": "2026-11-21T12:00:00-05:00"},
    },
    EventType.PARTNER_CARD_LINK: {
        "eventId": "evt-link-0001",
        "eventType": "PARTNER_CARD_LINK",
        "occurredAt": "2026-11-21T13:00:00-05:00",
        "memberId": "M-100001",
        "data": {
            "linkId": "L-9001",
            "partner": "NorthBank",
            "cardholderType": "PRIMARY",
            "linkStatus": "LINKED",
            "last4": "4242",
        },
    },
    EventType.BADGE_AWARD: {
        "eventId": "evt-badge-0001",
        "eventType": "BADGE_AWARD",
        "occurredAt": "2026-11-21T14:00:00-05:00",
        "memberId": "M-100001",
        "locale": "fr-CA",
        "data": {
            "badgeId": "B-GOLD-COFFEE",
            "badgeName": "Coffee Connoisseur",
            "awardedAt": "2026-11-21T14:00:00-05:00",
            "pointsAwarded": 250,
            "category": "dining",
        },
    },
    EventType.OPT_IN_SMS: {
        "eventId": "evt-sms-0001",
        "eventType": "OPT_IN_SMS",
        "occurredAt": "2026-11-21T09:17:00-05:00",
        "memberId": "M-100001",
        "data": {"mobileNumber": "+14165550123", "optIn": True, "source": "app-settings"},
    },
    EventType.VOUCHER_ISSUED: {
        "eventId": "evt-voucher-0001",
        "eventType": "VOUCHER_ISSUED",
        "occurredAt": "2026-11-21T15:00:00-05:00",
        "memberId": "M-100001",
        "locale": "fr-CA",
        "data": {
            "voucherId": "V-70001",
            "name": "10 $ de rabais",
            "codeReference": "ACME-X7K2-PQ9M",
            "value": {"amount": "10.00", "currency": "CAD"},
            "expiresAt": "2026-12-31T23:59:59-05:00",
            "offerId": "OFF-2026-12",
        },
    },
    EventType.GAME_PLAY_AWARDED: {
        "eventId": "evt-game-0001",
        "eventType": "GAME_PLAY_AWARDED",
        "occurredAt": "2026-12-01T10:00:00-05:00",
        "memberId": "M-100001",
        "programId": "ACME-REWARDS",
        "locale": "en-CA",
        "data": {
            "awardId": "AW-2026-0007",
            "campaign": "holiday-spin",
            "plays": 3,
            "expiresAt": "2026-12-31T23:59:59Z",
        },
    },
    EventType.MEMBER_HOUSEHOLD_CHANGED: {
        "eventId": "evt-household-0001",
        "eventType": "MEMBER_HOUSEHOLD_CHANGED",
        "occurredAt": "2026-12-02T09:00:00-05:00",
        "memberId": "M-100001",
        "programId": "ACME-REWARDS",
        "locale": "en-CA",
        "data": {
            "householdId": "HH-5501",
            "role": "MEMBER",
            "change": "JOINED",
            "householdPointsBalance": 12500,
            "effectiveAt": "2026-12-02T09:00:00-05:00",
        },
    },
    EventType.OFFERS_ASSIGNED: {
        "eventId": "evt-offers-0001",
        "eventType": "OFFERS_ASSIGNED",
        "occurredAt": "2026-12-02T06:00:00Z",
        "memberId": "M-100001",
        "programId": "ACME-REWARDS",
        "locale": "en-CA",
        "data": {
            "offers": [
                {
                    "offerId": "OFF-77",
                    "name": "Double points on coffee",
                    "reward": "2x points",
                    "validFrom": "2026-12-02T00:00:00Z",
                    "validTo": "2026-12-15T23:59:59Z",
                },
                {
                    "offerId": "OFF-81",
                    "name": "$5 off a $25 basket",
                    "reward": "$5 off",
                    "rewardValue": {"amount": "5.00", "currency": "CAD"},
                    "validTo": "2026-12-31T23:59:59Z",
                },
            ]
        },
    },
    EventType.POINTS_TRANSFERRED: {
        "eventId": "evt-transfer-0001",
        "eventType": "POINTS_TRANSFERRED",
        "occurredAt": "2026-12-02T12:00:00-05:00",
        "memberId": "M-100001",
        "programId": "ACME-REWARDS",
        "locale": "en-CA",
        "data": {
            "transferId": "TR-9001",
            "fromMemberId": "M-100001",
            "toMemberId": "M-100002",
            "points": 1500,
            "fromPointsBalance": 11000,
            "toPointsBalance": 4200,
        },
    },
    EventType.PURCHASE: {
        "eventId": "evt-purchase-0001",
        "eventType": "PURCHASE",
        "occurredAt": "2026-12-02T13:30:00-05:00",
        "memberId": "M-100001",
        "programId": "ACME-REWARDS",
        "locale": "en-CA",
        "data": {
            "orderId": "ORD-2026-88412",
            "amount": {"amount": "84.20", "currency": "CAD"},
            "pointsEarned": 842,
            "purchasedAt": "2026-12-02T13:29:41-05:00",
            "store": "Ottawa - Bank St",
        },
    },
    EventType.PAYOUT_REQUESTED: {
        "eventId": "evt-payout-0001",
        "eventType": "PAYOUT_REQUESTED",
        "occurredAt": "2026-11-21T16:00:00-05:00",
        "memberId": "M-100001",
        "programId": "ACME-REWARDS",
        "locale": "en-CA",
        "data": {
            "payoutId": "PO-2026-0042",
            "amount": {"amount": "25.00", "currency": "CAD"},
            "method": "DIRECT_DEPOSIT",
            "payee": {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com", "country": "CA"},
        },
    },
}


def example_event(event_type: EventType | str, **overrides: Any) -> dict[str, Any]:
    """A fresh copy of the example for ``event_type``, top-level keys replaced by ``overrides``."""
    event = copy.deepcopy(_EXAMPLES[EventType(event_type)])
    event.update(overrides)
    return event


def all_examples() -> dict[EventType, dict[str, Any]]:
    return {event_type: example_event(event_type) for event_type in EventType}
