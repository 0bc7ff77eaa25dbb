"""The member contact store: per member, the contact data that deliveries need and that not every
event carries (the email a tier-change mail is sent to, the locale its money and dates are written
in), kept from the events that do carry them.

One item per member: pk ``CONTACT#<memberId>``, sk ``CONTACT``, in the audit table (encrypted at
rest with the table's key), expiring a configurable time after the member's last event. Erased by
``dig member forget`` (db.erasure).

Beside it, one item per email: pk ``CONTACTEMAIL#<sha256 of the address, lower-cased>``, sk
``CONTACT``, naming the member last seen with it, with the same expiry: how a provider's notification
keyed by email (an Optimove unsubscribe) finds its member. A lookup is confirmed against the member's
own item, so an address the member changed since, or an erased member, resolves to nobody.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from db.table import Table

CONTACT_SK = "CONTACT"
DEFAULT_RETENTION_DAYS = 400
# An item's expiry is pushed back at most once a day per member: a write per event would cost more
# than the contact data is worth.
REFRESH_AFTER_SECONDS = 86_400


@dataclass(frozen=True)
class MemberContact:
    email: str | None = None
    locale: str | None = None
    seen_at: str = ""  # the newest occurredAt (UTC ISO) the data came from: older events never overwrite it
    expires_at: int = 0
    # The member's mobile number and SMS consent, from OPT_IN_SMS events only, with their own clock: a
    # consent is never overwritten by an older one, whatever newer email or locale DIG has seen.
    mobile: str | None = None
    sms_opt_in: bool | None = None
    sms_seen_at: str = ""
    # Where the email and locale came from: "event <eventId>" or "extract memberAccounts <fileId>".
    source: str = ""

    @property
    def known(self) -> bool:
        """Whether anything is held (an erased or empty contact holds nothing)."""
        return bool(self.email or self.locale or self.mobile)

    @property
    def sms_number(self) -> str | None:
        """Where an SMS may go: the mobile number of a member whose latest SMS consent is a yes."""
        return self.mobile if self.sms_opt_in else None

    def with_sms_consent(self, mobile: str, opt_in: bool, occurred_at: str) -> MemberContact:
        """This contact with an SMS opt-in or opt-out, where it is not older than the consent known."""
        if occurred_at < self.sms_seen_at or (mobile, opt_in) == (self.mobile, self.sms_opt_in):
            return self
        return replace(self, mobile=mobile, sms_opt_in=opt_in, sms_seen_at=occurred_at)

    def merged(self, email: str | None, locale: str | None, occurred_at: str, source: str = "") -> MemberContact:
        """This contact with an event's (or an extract row's) data, where it is not older than what is known."""
        if occurred_at < self.seen_at or not (email or locale):
            return self
        email, locale = email or self.email, locale or self.locale
        if (email, locale) == (self.email, self.locale):
            return self  # nothing new: no write (most events repeat the member's locale)
        return replace(self, email=email, locale=locale, seen_at=occurred_at, source=source or self.source)


def contact_pk(member_id: str) -> str:
    return f"CONTACT#{member_id}"


def email_pk(email: str) -> str:
    return f"CONTACTEMAIL#{hashlib.sha256(email.strip().lower().encode()).hexdigest()}"


class ContactStore(Protocol):
    def get(self, member_ids: Iterable[str]) -> dict[str, MemberContact]: ...

    def keep(self, contacts: Mapping[str, MemberContact], known: Mapping[str, MemberContact]) -> None:
        """Store what changed against ``known`` (what get() returned), and push back the expiry of
        every member listed, whose last event is now."""
        ...

    def forget(self, member_id: str) -> None: ...

    def members_by_email(self, emails: Iterable[str]) -> dict[str, str]:
        """The member each address belongs to (keys lower-cased), where DIG knows it; others absent."""
        ...

    def fill(self, rows: Iterable[ContactRow]) -> FillReport:
        """Contacts from an extract (ES Loyalty's memberAccounts): each row's email and locale where it is
        newer than what is known; a member erased on request is left erased."""
        ...


@dataclass(frozen=True)
class ContactRow:
    member_id: str
    email: str | None
    locale: str | None
    updated_at: str  # UTC, as utc_key writes an event's time: "%Y-%m-%dT%H:%M:%S.%fZ"
    source: str


@dataclass
class FillReport:
    rows: int = 0
    written: int = 0  # newer than what was known
    older: int = 0  # no newer than what was known (an event, or a later extract, said it since)
    erased: int = 0  # the member was forgotten on request: left so


class DynamoContactStore:
    def __init__(self, table: Table, retention_days: int = DEFAULT_RETENTION_DAYS, clock: Any = time.time):
        self._table = table
        self._retention_seconds = retention_days * 86_400
        self._clock = clock

    def get(self, member_ids: Iterable[str]) -> dict[str, MemberContact]:
        return {m: c for m, (c, _) in self._read(member_ids).items() if c is not None}

    def _read(self, member_ids: Iterable[str]) -> dict[str, tuple[MemberContact | None, str | None]]:
        """Each member's contact (None when expired or erased), and when it was erased on request."""
        keys = [{"pk": {"S": contact_pk(m)}, "sk": {"S": CONTACT_SK}} for m in dict.fromkeys(member_ids)]
        found: dict[str, tuple[MemberContact | None, str | None]] = {}
        now = self._clock()
        for item in self._table.batch_get(keys):
            member = item["pk"]["S"].removeprefix("CONTACT#")
            expires_at = int(item["expiresAt"]["N"])
            erased = "email" not in item and "locale" not in item and "mobile" not in item  # erased on request
            if expires_at < now or erased:  # expired, and not yet removed by DynamoDB's TTL; or erased
                found[member] = (None, item["erasedAt"]["S"] if erased and "erasedAt" in item else None)
                continue
            found[member] = (
                MemberContact(
                    email=item["email"]["S"] if "email" in item else None,
                    locale=item["locale"]["S"] if "locale" in item else None,
                    seen_at=item.get("seenAt", {}).get("S", ""),
                    expires_at=expires_at,
                    mobile=item["mobile"]["S"] if "mobile" in item else None,
                    sms_opt_in=item["smsOptIn"]["BOOL"] if "smsOptIn" in item else None,
                    sms_seen_at=item.get("smsSeenAt", {}).get("S", ""),
                    source=item.get("source", {}).get("S", ""),
                ),
                None,
            )
        return found

    def _erased_at(self, member_ids: list[str]) -> dict[str, str]:
        """When each member was forgotten on request (db.erasure's markers, kept 800 days): a row older
        than that is the member's data from before the erasure, and stays erased."""
        from db.feeds import ERASED_PK

        keys = [{"pk": {"S": ERASED_PK}, "sk": {"S": f"MEMBER#{m}"}} for m in member_ids]
        return {
            item["sk"]["S"].removeprefix("MEMBER#"): item["erasedAt"]["S"]
            for item in self._table.batch_get(keys)
            if "erasedAt" in item
        }

    def fill(self, rows: Iterable[ContactRow]) -> FillReport:
        every = list(rows)
        report = FillReport(rows=len(every))
        listed = [r for r in every if r.email or r.locale]  # a row with neither costs no read
        if not listed:
            return report
        members = list(dict.fromkeys(r.member_id for r in listed))
        read = self._read(members)
        known = {m: c for m, (c, _) in read.items() if c is not None}
        erased = self._erased_at(members)
        for member, (_, erased_at) in read.items():  # the contact's own erasure (ContactStore.forget)
            if erased_at is not None:
                erased[member] = max(erased_at, erased.get(member, ""))
        contacts = dict(known)
        for row in sorted(listed, key=lambda r: r.updated_at):
            if row.member_id in erased and row.updated_at <= erased[row.member_id]:
                report.erased += 1
                continue
            before = contacts.get(row.member_id, MemberContact())
            after = before.merged(row.email, row.locale, row.updated_at, row.source)
            if after is before:
                report.older += int(bool(row.email or row.locale))
                continue
            contacts[row.member_id] = after
            report.written += 1
        changed = {m: c for m, c in contacts.items() if c != known.get(m)}
        self.keep(changed, {m: known[m] for m in changed if m in known})
        return report

    def keep(self, contacts: Mapping[str, MemberContact], known: Mapping[str, MemberContact]) -> None:
        now = int(self._clock())
        items = []
        for member, contact in contacts.items():
            before = known.get(member)
            fresh = before is not None and before.expires_at - now > self._retention_seconds - REFRESH_AFTER_SECONDS
            if (before == contact and fresh) or not contact.known:
                continue
            item: dict[str, Any] = {
                "pk": {"S": contact_pk(member)},
                "sk": {"S": CONTACT_SK},
                "seenAt": {"S": contact.seen_at},
                "expiresAt": {"N": str(now + self._retention_seconds)},
            }
            if contact.email:
                item["email"] = {"S": contact.email}
                items.append(
                    {
                        "pk": {"S": email_pk(contact.email)},
                        "sk": {"S": CONTACT_SK},
                        "memberId": {"S": member},
                        "expiresAt": {"N": str(now + self._retention_seconds)},
                    }
                )
            if contact.locale:
                item["locale"] = {"S": contact.locale}
            if contact.source:
                item["source"] = {"S": contact.source[:200]}
            if contact.mobile:
                item |= {
                    "mobile": {"S": contact.mobile},
                    "smsOptIn": {"BOOL": bool(contact.sms_opt_in)},
                    "smsSeenAt": {"S": contact.sms_seen_at},
                }
            items.append(item)
        self._table.batch_put(items)

    def members_by_email(self, emails: Iterable[str]) -> dict[str, str]:
        wanted = {email.strip().lower(): email_pk(email) for email in emails}
        keys = [{"pk": {"S": pk}, "sk": {"S": CONTACT_SK}} for pk in dict.fromkeys(wanted.values())]
        found_items = self._table.batch_get(keys)
        candidates = {item["pk"]["S"]: item["memberId"]["S"] for item in found_items if "memberId" in item}
        contacts = self.get(candidates.values())
        found = {}
        for email, pk in wanted.items():
            member = candidates.get(pk)
            contact = contacts.get(member) if member else None
            if member and contact is not None and (contact.email or "").strip().lower() == email:
                found[email] = member
        return found

    def forget(self, member_id: str) -> None:
        from db.erasure import forget_contact

        forget_contact(self._table, member_id)
