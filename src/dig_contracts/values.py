"""The named values each loyalty event offers to a connector's mappings (attribute and lead fields,
mail tags, activity attributes, real-time parameters, campaign tokens). A connector's configuration
names these; which of them it accepts for which event type is its own rule."""

from __future__ import annotations

import functools
from typing import Any

from dig_contracts.events import (
    BadgeAwardEvent,
    EnvelopeFields,
    EventType,
    GamePlayAwardedEvent,
    MemberHouseholdChangedEvent,
    MemberRegistrationEvent,
    MemberTierEvent,
    OffersAssignedEvent,
    OptInEmailEvent,
    OptInSmsEvent,
    PartnerCardLinkEvent,
    PayoutRequestedEvent,
    PointsTransferredEvent,
    PurchaseEvent,
    RedemptionEvent,
    VoucherIssuedEvent,
    parse_event,
)

COMMON = frozenset({"memberId", "eventId", "programId", "occurredAt"})


def event_values(event: EnvelopeFields) -> dict[str, Any]:
    values: dict[str, Any] = {
        "memberId": event.memberId,
        "eventId": event.eventId,
        "programId": event.programId,
        "occurredAt": event.occurredAt,
    }
    if isinstance(event, MemberRegistrationEvent):
        data = event.data
        values |= {
            "email": data.email,
            "firstName": data.firstName,
            "lastName": data.lastName,
            "enrollmentChannel": data.enrollmentChannel,
            "cardType": data.cardType,
            "registrationDate": event.occurredAt,
        }
    elif isinstance(event, OptInEmailEvent):
        values |= {"email": event.data.email, "optIn": event.data.optIn, "source": event.data.source}
    elif isinstance(event, RedemptionEvent):
        redemption = event.data
        values |= {
            "redemptionId": redemption.redemptionId,
            "pointsRedeemed": redemption.pointsRedeemed,
            "pointsBalance": redemption.pointsBalance,
            "rewardName": redemption.reward.name,
            "rewardValue": redemption.reward.value,
            "rewardAmount": redemption.reward.value.decimal,
            "rewardCurrency": redemption.reward.value.currency,
            "redeemedAt": event.occurredAt,
            "email": redemption.email,
        }
    elif isinstance(event, MemberTierEvent):
        values |= {
            "newTier": event.data.newTier,
            "previousTier": event.data.previousTier,
            "effectiveAt": event.data.effectiveAt or event.occurredAt,
        }
    elif isinstance(event, PartnerCardLinkEvent):
        link = event.data
        values |= {
            "linkId": link.linkId,
            "partner": link.partner,
            "cardholderType": link.cardholderType,
            "linkStatus": link.linkStatus,
            "last4": link.last4,
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
    elif isinstance(event, OptInSmsEvent):
        values |= {"mobileNumber": event.data.mobileNumber, "optIn": event.data.optIn, "source": event.data.source}
    elif isinstance(event, VoucherIssuedEvent):
        voucher = event.data
        values |= {
            "voucherId": voucher.voucherId,
            "voucherName": voucher.name,
            "codeReference": voucher.codeReference,
            "voucherValue": voucher.value,
            "voucherAmount": voucher.value.decimal if voucher.value else None,
            "voucherCurrency": voucher.value.currency if voucher.value else None,
            "voucherExpiresAt": voucher.expiresAt,
            "offerId": voucher.offerId,
            "issuedAt": event.occurredAt,
        }
    elif isinstance(event, PayoutRequestedEvent):
        payout = event.data
        values |= {
            "payoutId": payout.payoutId,
            "payoutValue": payout.amount,
            "payoutAmount": payout.amount.decimal,
            "payoutCurrency": payout.amount.currency,
            "payoutMethod": payout.method,
            "email": payout.payee.email,
            "firstName": payout.payee.firstName,
            "lastName": payout.payee.lastName,
            "country": payout.payee.country,
        }
    elif isinstance(event, MemberHouseholdChangedEvent):
        household = event.data
        values |= {
            "householdId": household.householdId,
            "householdRole": household.role,
            "householdChange": household.change,
            "householdPointsBalance": household.householdPointsBalance,
            "householdChangedAt": household.effectiveAt or event.occurredAt,
        }
    elif isinstance(event, OffersAssignedEvent):
        offers = event.data.offers
        values |= {"offerCount": len(offers)}
        if offers:
            top = offers[0]
            values |= {"topOfferId": top.offerId, "topOfferName": top.name, "topOfferValidTo": top.validTo}
    elif isinstance(event, PointsTransferredEvent):
        transfer = event.data
        values |= {
            "transferId": transfer.transferId,
            "fromMemberId": transfer.fromMemberId,
            "toMemberId": transfer.toMemberId,
            "pointsTransferred": transfer.points,
            "fromPointsBalance": transfer.fromPointsBalance,
            "toPointsBalance": transfer.toPointsBalance,
        }
    elif isinstance(event, PurchaseEvent):
        purchase = event.data
        values |= {
            "orderId": purchase.orderId,
            "purchaseValue": purchase.amount,
            "purchaseAmount": purchase.amount.decimal,
            "purchaseCurrency": purchase.amount.currency,
            "pointsEarned": purchase.pointsEarned,
            "purchasedAt": purchase.purchasedAt,
            "store": purchase.store,
        }
    elif isinstance(event, GamePlayAwardedEvent):
        award = event.data
        values |= {
            "awardId": award.awardId,
            "gameCampaign": award.campaign,
            "gamePlays": award.plays,
            "gamePlaysExpireAt": award.expiresAt,
        }
    return values


@functools.cache
def value_names(event_type: EventType | str) -> frozenset[str]:
    """The names event_values gives an event of ``event_type`` beyond COMMON and ``locale`` (what a
    connector's configuration may map), read off the type's example: one list, here, for every connector.
    A profile update's are its profile's own fields, any name, so none are listed."""
    from dig_contracts.examples import example_event

    kind = EventType(event_type)
    if kind is EventType.MEMBER_PROFILE_UPDATE:
        return frozenset()
    return frozenset(event_values(parse_event(example_event(kind)))) - COMMON - {"locale"}
