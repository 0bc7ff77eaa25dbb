"""Each member's contact data for a batch: what the member contact store holds (db.contacts),
updated by the newer events of the batch, and stored again before anything is sent, so that a later
mail finds it. Any connector that addresses members by email uses it."""

from __future__ import annotations

from collections.abc import Sequence

from db.contacts import ContactStore, MemberContact
from dig_connector_kit.model import InboundMessage
from dig_contracts.events import EnvelopeFields


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
    known = store.get({m.event.memberId for m in messages})
    contacts = dict(known)
    for message in sorted(messages, key=lambda m: utc_key(m.event)):
        member = message.event.memberId
        email, locale = event_contact(message.event)
        contacts[member] = contacts.get(member, MemberContact()).merged(email, locale, utc_key(message.event))
    store.keep(contacts, known)
    return contacts
