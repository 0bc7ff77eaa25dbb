"""The member contact store, the call log and erasure, against DynamoDB (moto, in process); and the
contract test that the fakes the connector tests use behave like them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from db.audit import DynamoAuditStore
from db.call_log import DynamoCallLog
from db.contacts import ContactRow, DynamoContactStore, MemberContact
from db.erasure import forget_member
from db.feeds import DynamoFeedStore
from db.records import MessageRecord, PublishState
from db.watermarks import DynamoWatermarkStore
from dig_connector_kit.testing import FakeCallLog, FakeContactStore
from tests.aws import AUDIT, create_tables


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store() -> Iterator[DynamoAuditStore]:
    with mock_aws():
        yield DynamoAuditStore(create_tables(), AUDIT)


@pytest.mark.parametrize("kind", ["dynamo", "fake"])
def test_contacts_keep_the_newest_data_and_forget_on_request(kind: str, store: DynamoAuditStore) -> None:
    contacts: Any = DynamoContactStore(store.table, retention_days=30) if kind == "dynamo" else FakeContactStore()
    assert contacts.get(["M-1"]) == {}
    first = MemberContact().merged("ada@example.com", "fr-CA", "2026-11-21T10:00:00.000000Z")
    contacts.keep({"M-1": first, "M-2": MemberContact()}, {})
    [(member, stored)] = contacts.get(["M-1", "M-2"]).items()
    assert (member, stored.email, stored.locale) == ("M-1", "ada@example.com", "fr-CA")
    older = stored.merged("old@example.com", None, "2026-11-20T10:00:00.000000Z")
    assert older == stored  # an older event never overwrites newer contact data
    newer = stored.merged("new@example.com", None, "2026-11-22T10:00:00.000000Z")
    contacts.keep({"M-1": newer}, {"M-1": stored})
    assert (contacts.get(["M-1"])["M-1"].email, contacts.get(["M-1"])["M-1"].locale) == ("new@example.com", "fr-CA")
    # A provider's notification keyed by email finds the member, whatever the case; an address the
    # member left behind finds nobody.
    assert contacts.members_by_email(["New@Example.com", "ada@example.com", "x@y.z"]) == {"new@example.com": "M-1"}
    contacts.forget("M-1")
    assert contacts.get(["M-1"]) == {}
    assert contacts.members_by_email(["new@example.com"]) == {}


@pytest.mark.parametrize("kind", ["dynamo", "fake"])
def test_an_extract_fills_contacts_where_newer_and_never_brings_back_an_erased_member(
    kind: str, store: DynamoAuditStore
) -> None:
    contacts: Any = DynamoContactStore(store.table, retention_days=30) if kind == "dynamo" else FakeContactStore()
    event = MemberContact().merged("event@example.com", "en-CA", "2026-12-01T10:00:00.000000Z", "event evt-1")
    contacts.keep({"M-1": event, "M-3": event}, {})
    contacts.forget("M-3")
    rows = [
        ContactRow("M-1", "extract@example.com", "fr-CA", "2026-12-01T05:00:00.000000Z", "extract memberAccounts f1"),
        ContactRow("M-2", "grace@example.com", "de-DE", "2026-12-01T05:00:00.000000Z", "extract memberAccounts f1"),
        ContactRow("M-3", "back@example.com", None, "2026-12-02T05:00:00.000000Z", "extract memberAccounts f1"),
        ContactRow("M-4", None, None, "2026-12-02T05:00:00.000000Z", "extract memberAccounts f1"),
    ]
    report = contacts.fill(rows)
    assert (report.rows, report.written, report.older, report.erased) == (4, 1, 1, 1)
    found = contacts.get(["M-1", "M-2", "M-3", "M-4"])
    assert (found["M-1"].email, found["M-1"].source) == ("event@example.com", "event evt-1")  # the event is newer
    assert (found["M-2"].email, found["M-2"].locale, found["M-2"].source) == (
        "grace@example.com",
        "de-DE",
        "extract memberAccounts f1",
    )
    assert set(found) == {"M-1", "M-2"}  # M-3 stays erased; M-4 had nothing
    assert contacts.members_by_email(["grace@example.com"]) == {"grace@example.com": "M-2"}
    later = ContactRow("M-1", "moved@example.com", None, "2026-12-03T05:00:00.000000Z", "extract memberAccounts f2")
    assert contacts.fill([later]).written == 1
    assert contacts.get(["M-1"])["M-1"].email == "moved@example.com"


@pytest.mark.parametrize("kind", ["dynamo", "fake"])
def test_an_sms_consent_is_kept_on_its_own_clock_and_erased_with_the_member(kind: str, store: DynamoAuditStore) -> None:
    contacts: Any = DynamoContactStore(store.table, retention_days=30) if kind == "dynamo" else FakeContactStore()
    opted_in = MemberContact().with_sms_consent("+14165550123", True, "2026-11-21T10:00:00.000000Z")
    contacts.keep({"M-1": opted_in}, {})
    stored = contacts.get(["M-1"])["M-1"]
    assert (stored.mobile, stored.sms_opt_in, stored.sms_number, stored.email) == (
        "+14165550123",
        True,
        "+14165550123",
        None,
    )
    # A newer email does not make an older opt-out win over the opt-in; a newer opt-out does.
    with_email = stored.merged("ada@example.com", None, "2026-11-23T10:00:00.000000Z")
    assert with_email.with_sms_consent("+14165550123", False, "2026-11-20T10:00:00.000000Z") == with_email
    opted_out = with_email.with_sms_consent("+14165550123", False, "2026-11-22T10:00:00.000000Z")
    contacts.keep({"M-1": opted_out}, {"M-1": stored})
    again = contacts.get(["M-1"])["M-1"]
    assert (again.email, again.mobile, again.sms_opt_in, again.sms_number) == (
        "ada@example.com",
        "+14165550123",
        False,
        None,
    )
    contacts.forget("M-1")
    assert contacts.get(["M-1"]) == {}
    if kind == "dynamo":
        item = store.client.get_item(TableName=AUDIT, Key={"pk": {"S": "CONTACT#M-1"}, "sk": {"S": "CONTACT"}})["Item"]
        assert not {"email", "mobile", "smsOptIn", "smsSeenAt", "locale"} & set(item)


def test_contact_data_expires_after_the_retention_and_is_refreshed_by_later_events(store: DynamoAuditStore) -> None:
    clock = Clock()
    contacts = DynamoContactStore(store.table, retention_days=30, clock=clock)
    contacts.keep({"M-1": MemberContact(email="a@b.c", seen_at="t1")}, {})
    known = contacts.get(["M-1"])
    clock.now += 2 * 86_400  # two days on: an event for the member pushes the expiry back
    contacts.keep(known, known)
    refreshed = contacts.get(["M-1"])["M-1"]
    assert refreshed.expires_at == int(clock.now) + 30 * 86_400
    clock.now += 31 * 86_400
    assert contacts.get(["M-1"]) == {}  # expired, whether or not DynamoDB's TTL has removed it yet


@pytest.mark.parametrize("kind", ["dynamo", "fake"])
def test_call_log_results_and_overdue_calls(kind: str, store: DynamoAuditStore) -> None:
    clock = Clock()
    log: Any = DynamoCallLog(store.table, clock=clock) if kind == "dynamo" else FakeCallLog(now=clock.now)
    log.record("optimove", "c1", {"M-1": {"m1": ["CITY"]}}, due_in_seconds=600)
    log.record("optimove", "c2", {"M-2": {"m2": ["CITY"]}}, due_in_seconds=600)
    assert log.lookup("optimove", "c1") == {"M-1": {"m1": ["CITY"]}}
    assert log.flag_overdue("optimove") == []
    log.keep_results("optimove", "c1", {"isSuccess": True, "errors": []}, readable=True)
    clock.now += 601
    if kind == "fake":
        log.now = clock.now
    assert log.flag_overdue("optimove") == ["c2"]  # c1's results came
    assert log.flag_overdue("optimove") == []  # flagged once
    # Recorded again (a polled result still pending: SFMC's queued send), it is awaited again.
    log.record("optimove", "c2", {"M-2": {"m2": ["CITY"]}}, due_in_seconds=60)
    clock.now += 61
    if kind == "fake":
        log.now = clock.now
    assert log.flag_overdue("optimove") == ["c2"]
    if kind == "dynamo":
        assert log.status("optimove", "c1").describe().startswith("results received")
        assert log.status("optimove", "c2").describe().startswith("results OVERDUE")


def test_forgetting_a_member_erases_payloads_contacts_and_delivery_state(store: DynamoAuditStore) -> None:
    for index, member in enumerate(["M-1", "M-1", "M-2"]):
        record = MessageRecord(
            messageId=f"msg-{index}",
            eventId=f"e-{index}",
            eventType="MEMBER_REGISTRATION",
            memberId=member,
            occurredAt="2026-11-21T10:00:00Z",
            receivedAt=f"2026-11-21T10:00:0{index}.000Z",
            sizeBytes=10,
            envelope={"memberId": member, "data": {"email": "ada@example.com"}},
        )
        store.begin_message(record, owner="t", lease_seconds=60)
        store.mark_published(record.messageId, PublishState.PUBLISHED)
    DynamoContactStore(store.table).keep({"M-1": MemberContact(email="ada@example.com", seen_at="t")}, {})
    assert DynamoContactStore(store.table).members_by_email(["ada@example.com"]) == {"ada@example.com": "M-1"}
    DynamoWatermarkStore(store.table).advance("optimove", {"M-1": {"CITY": ("t", "msg-0")}}, {})

    report = forget_member(store, "M-1", ["optimove", "marketo"])
    assert (sorted(report.messages), report.contact, report.connectors) == (["msg-0", "msg-1"], True, ["optimove"])
    for message_id in ("msg-0", "msg-1"):
        view = store.get_message(message_id)
        assert view is not None
        assert view.message.envelope == {}
        assert view.message.erasedAt is not None
        assert "ada@example.com" not in str(store.client.get_item(TableName=AUDIT, Key=_key(message_id)))
    other = store.get_message("msg-2")
    assert other is not None
    assert other.message.envelope["data"] == {"email": "ada@example.com"}  # another member's stays
    assert DynamoContactStore(store.table).get(["M-1"]) == {}
    # The email lookup no longer names the member (a provider's unsubscribe for it finds nobody).
    from db.contacts import email_pk

    lookup = store.client.get_item(
        TableName=AUDIT, Key={"pk": {"S": email_pk("ada@example.com")}, "sk": {"S": "CONTACT"}}
    )
    assert "memberId" not in lookup["Item"]
    assert DynamoContactStore(store.table).members_by_email(["ada@example.com"]) == {}
    assert DynamoWatermarkStore(store.table).get("optimove", ["M-1"]) == {"M-1": {}}  # no marks left
    # Remembered for the daily feeds, which never send the member again.
    assert DynamoFeedStore(store.table, "optimove").forgotten() == {"M-1"}


def _key(message_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"MSG#{message_id}"}, "sk": {"S": "MESSAGE"}}


def test_an_event_that_repeats_what_is_known_writes_nothing(store: DynamoAuditStore) -> None:
    known = MemberContact(email="a@b.c", locale="fr-CA", seen_at="2026-11-21T10:00:00.000000Z")
    assert known.merged("a@b.c", "fr-CA", "2026-11-22T10:00:00.000000Z") is known
    assert known.merged(None, "en-CA", "2026-11-22T10:00:00.000000Z").locale == "en-CA"


def test_a_calls_carried_messages_are_stored_compressed_and_older_uncompressed_ones_still_read(
    store: DynamoAuditStore,
) -> None:
    import json

    log = DynamoCallLog(store.table)
    carried = {f"M-{i:04d}": {f"{i:032x}": ["FIRST_NAME", "CITY", "TIER"]} for i in range(1000)}
    log.record("optimove", "c1", carried, due_in_seconds=600)
    key = {"pk": {"S": "CALL#optimove#c1"}, "sk": {"S": "CALL"}}
    item = store.client.get_item(TableName=AUDIT, Key=key)["Item"]
    assert "doc" not in item
    # Written to the table and its status index alike: a third of the JSON's size or less.
    assert len(item["docZ"]["B"]) * 3 < len(json.dumps(carried, separators=(",", ":")))
    assert log.lookup("optimove", "c1") == carried
    older = {**key, "sk": {"S": "CALL"}, "doc": {"S": json.dumps({"M-1": {"m1": ["CITY"]}})}}
    store.client.put_item(TableName=AUDIT, Item={**older, "pk": {"S": "CALL#optimove#c0"}})
    assert log.lookup("optimove", "c0") == {"M-1": {"m1": ["CITY"]}}


@pytest.mark.parametrize("kind", ["dynamo", "fake"])
def test_a_poll_cursor_moves_forward_only(kind: str, store: DynamoAuditStore) -> None:
    from db.cursors import DynamoPollCursors
    from dig_connector_kit.testing import FakePollCursors

    cursors: Any = DynamoPollCursors(store.table) if kind == "dynamo" else FakePollCursors()
    assert cursors.read("optimove", "unsubscribes") is None
    cursors.advance("optimove", "unsubscribes", "2026-12-06")
    cursors.advance("optimove", "unsubscribes", "2026-12-01")  # a late run never moves it back
    assert cursors.read("optimove", "unsubscribes") == "2026-12-06"
    assert cursors.read("marketo", "unsubscribes") is None
