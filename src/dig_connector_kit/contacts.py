"""Each member's contact data for a batch: what the member contact store holds (db.contacts),
updated by the newer events of the batch, and stored again before anything is sent, so that a later
mail finds it. Any connector that addresses members by email or SMS uses it; an SMS consent comes
from OPT_IN_SMS events alone, so a connector that sends SMS must list that type in its manifest."""

from __future__ import annotations

from collections.abc import Sequence

from db.contacts import ContactStore, MemberContact
from dig_connector_kit.model import InboundMessage
from dig_contracts.events import EnvelopeFields, OptInSmsEvent


def utc_key(event: EnvelopeFields) -> str:
    from datetime import UTC

    return event.occurredAt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_contact(event: EnvelopeFields) -> tuple[str | None, str | None]:
    """The contact data an event carries: an email (registration, opt-in, redemption) and a locale."""
    email = getattr(getattr(event, "data", None), "email", None)
    return (email if isinstance(email, str) else None), event.locale


def member_contacts(store: ContactStore | None, messages: Sequence[InboundMessage]) -> dict[str, MemberContact]:
    if store is None:
        return {}
    events = [m.event for m in messages if isinstance(m.event, EnvelopeFields)]
    known = store.get({event.memberId for event in events})
    contacts = dict(known)
    for event in sorted(events, key=utc_key):
        email, locale = event_contact(event)
        contact = contacts.get(event.memberId, MemberContact()).merged(
            email, locale, utc_key(event), f"event {event.eventId}"
        )
        if isinstance(event, OptInSmsEvent):
            contact = contact.with_sms_consent(event.data.mobileNumber, event.data.optIn, utc_key(event))
        contacts[event.memberId] = contact
    store.keep(contacts, known)
    return contacts
