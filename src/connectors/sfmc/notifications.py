"""The return path from SFMC: its Event Notification Service (ENS) posts each email unsubscribe to DIG's
``POST /v1/inbound/sfmc/ens``, signed (``x-sfmc-ens-signature``: base64 HMAC-SHA256 of the body with the
callback's signature key, checked by the DIG API before anything is kept); DIG sends ES Loyalty a
MEMBER_CONSENT_CHANGED (dig_contracts.inbound) through the ``esloyalty`` connector.

ENS delivers at least once and in batches: each unsubscribe's id comes from its ``compositeId`` and
time, so a batch sent again is the same events. The member is the event's ``subscriberKey`` when DIG
knows a member by that id (DIG sends each member's id as the contactKey), else the member DIG last saw
with the address; one DIG knows no member for is counted, not guessed. Before the first notification,
ENS posts the callback's single-use verification key, unsigned; the connector completes it
(``POST /platform/v1/ens-verify``) only for the callback its configuration names.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from connectors.sfmc import client as api
from dig_connector_kit.model import WebhookReading
from dig_connector_kit.ports import ContactStore
from dig_contracts.inbound import (
    Channel,
    Consent,
    ConsentReason,
    MemberConsentChanged,
    MemberConsentChangedData,
    Origin,
    WebhookReceipt,
    inbound_event_id,
)

CONNECTOR = "sfmc"
SOURCE = "ens"


def read_unsubscribes(receipt: WebhookReceipt, contacts: ContactStore | None) -> WebhookReading:
    unsubscribes = [u for e in api.ens_events(json.loads(receipt.body)) if (u := api.unsubscribe_of(e))]
    reading = WebhookReading()
    if not unsubscribes:
        reading.notes.append("no EngagementEvents.EmailUnsubscribe in the notification: nothing for ES Loyalty")
        return reading
    keys = {u.subscriber_key for u in unsubscribes if u.subscriber_key}
    known = set(contacts.get(keys)) if contacts is not None and keys else set()
    addresses = [u.address for u in unsubscribes if u.address and u.subscriber_key not in known]
    by_address = contacts.members_by_email(addresses) if contacts is not None and addresses else {}
    for unsubscribe in unsubscribes:
        member = unsubscribe.subscriber_key if unsubscribe.subscriber_key in known else None
        if member is None and unsubscribe.address:
            member = by_address.get(unsubscribe.address.strip().lower())
        if member is None:
            reading.unmatched += 1
            reading.notes.append(f"ENS {unsubscribe.composite_id}: no member DIG knows")
            continue
        reading.events.append(
            MemberConsentChanged(
                eventId=inbound_event_id(CONNECTOR, "unsubscribe", unsubscribe.composite_id, str(unsubscribe.at_ms)),
                occurredAt=datetime.fromtimestamp(unsubscribe.at_ms / 1000, UTC),
                memberId=member,
                origin=Origin(
                    connector=CONNECTOR,
                    source=receipt.source,
                    providerReference=f"ENS {unsubscribe.composite_id}",
                    receiptId=receipt.receiptId,
                ),
                data=MemberConsentChangedData(
                    channel=Channel.EMAIL, consent=Consent.OPTED_OUT, reason=ConsentReason.UNSUBSCRIBE
                ),
            )
        )
    return reading
