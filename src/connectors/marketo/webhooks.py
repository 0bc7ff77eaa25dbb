"""The return path from Marketo: a trigger campaign's webhook (Unsubscribes from Email, or Data Value
Changes on Unsubscribed) tells DIG a lead's email consent changed; DIG sends ES Loyalty a
MEMBER_CONSENT_CHANGED (dig_contracts.inbound) through the ``esloyalty`` connector.

Marketo signs nothing: the webhook carries a secret header (Webhooks > Set Custom Header), which the DIG
API compares in constant time before anything is kept (manifest: ``webhooks``). Marketo waits at most 30
seconds and writes response mappings only on a 2xx: DIG answers 202 at once and reads the body later.
The payload template DIG expects (README, "The return path"), JSON or form-encoded::

    {"leadId": {{lead.Id}}, "memberId": {{lead.<the member id field>}}, "email": {{lead.Email Address}},
     "unsubscribed": {{lead.Unsubscribed}}}

``memberId`` names the member when the instance keeps ES Loyalty's id on the lead; otherwise the email is
resolved through the member contact store, and an address DIG knows no member for is counted, not guessed.
Marketo offers no timestamp token: the event's time is when DIG received it, and its id (from the lead,
the new value and that day) makes a webhook sent twice one event (../shared/reference/return-path.md).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

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

CONNECTOR = "marketo"
SOURCE = "unsubscribes"
TRUE, FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no"})


def payload(receipt: WebhookReceipt) -> dict[str, Any]:
    """The webhook's fields, whichever token encoding the webhook was given (JSON, or Form/URL)."""
    text = receipt.body.strip()
    if text.startswith("{"):
        document = json.loads(text)
        if not isinstance(document, dict):
            raise ValueError("the webhook's JSON is not an object")
        return document
    return {key: values[-1] for key, values in parse_qs(text).items()}


def read_unsubscribe(receipt: WebhookReceipt, contacts: ContactStore | None) -> WebhookReading:
    fields = payload(receipt)
    lead = str(fields.get("leadId") or "").strip()
    flag = str(fields.get("unsubscribed", "")).strip().lower()
    if not lead or flag not in TRUE | FALSE:
        return WebhookReading(notes=["the webhook names no lead or no Unsubscribed value: check its payload template"])
    member = str(fields.get("memberId") or "").strip()
    email = str(fields.get("email") or "").strip()
    if not member and email and contacts is not None:
        member = contacts.members_by_email([email]).get(email.lower(), "")
    if not member:
        return WebhookReading(unmatched=1, notes=[f"lead {lead}: no member DIG knows"])
    opted_out = flag in TRUE
    day = receipt.receivedAt.date().isoformat()
    event = MemberConsentChanged(
        eventId=inbound_event_id(CONNECTOR, "unsubscribe", lead, flag, day),
        occurredAt=receipt.receivedAt,
        memberId=member,
        origin=Origin(
            connector=CONNECTOR, source=receipt.source, providerReference=f"lead {lead}", receiptId=receipt.receiptId
        ),
        data=MemberConsentChangedData(
            channel=Channel.EMAIL,
            consent=Consent.OPTED_OUT if opted_out else Consent.OPTED_IN,
            reason=ConsentReason.UNSUBSCRIBE if opted_out else ConsentReason.RESUBSCRIBE,
        ),
    )
    return WebhookReading(events=[event])
