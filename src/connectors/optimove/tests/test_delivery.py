"""The delivery engine: coalescing into Optimove's batch calls, newest value wins, partial failures,
and never mailing a member twice."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.optimove.delivery import EMAIL_AWAITED, email_wait_seconds
from connectors.optimove.tests.harness import harness, inbound, sample_config_document
from dig_connector_kit import formatting
from dig_connector_kit.model import Result
from dig_contracts.examples import example_event


def profile_update(member: str, event_id: str, occurred: datetime, **profile: Any) -> dict[str, Any]:
    document = example_event(
        "MEMBER_PROFILE_UPDATE", eventId=event_id, memberId=member, occurredAt=occurred.isoformat()
    )
    document["data"] = {"profile": profile}
    return document


T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def sent_attributes(h: Any) -> dict[str, dict[str, str]]:
    """member -> field -> value, as the simulator received them, in call order."""
    values: dict[str, dict[str, str]] = {}
    for call in h.calls("UpdateCustomerAttributes"):
        for customer in call["body"]["CustomerNewAttributesValuesList"]:
            for attribute in customer["Attributes"]:
                values.setdefault(customer["CustomerID"], {})[attribute["RealFieldName"]] = attribute["Value"]
    return values


def test_a_batch_of_updates_for_many_members_becomes_calls_of_1000_customers() -> None:
    h = harness()
    messages = [inbound(profile_update(f"M-{i}", f"e-{i}", T0, city=f"City {i}")) for i in range(2500)]
    outcomes = h.deliver(*messages)
    assert {o.result for o in outcomes.values()} == {Result.DELIVERED}
    calls = h.calls("UpdateCustomerAttributes")
    assert [len(c["body"]["CustomerNewAttributesValuesList"]) for c in calls] == [1000, 1000, 500]
    assert all(c["status"] == 200 for c in calls)
    assert sent_attributes(h)["M-2499"] == {"CITY": "City 2499"}


def test_more_than_10_attributes_for_one_customer_are_split_across_calls() -> None:
    document = {
        "schemaVersion": 1,
        "profileAttributes": {f"f{i}": {"field": f"F{i:02d}"} for i in range(23)},
        "events": {"MEMBER_PROFILE_UPDATE": {}},
    }
    h = harness(document)
    [outcome] = h.deliver(inbound(profile_update("M-1", "e-1", T0, **{f"f{i}": str(i) for i in range(23)}))).values()
    assert outcome.result is Result.DELIVERED
    sizes = [
        len(c["body"]["CustomerNewAttributesValuesList"][0]["Attributes"]) for c in h.calls("UpdateCustomerAttributes")
    ]
    assert sizes == [10, 10, 3]
    assert len(sent_attributes(h)["M-1"]) == 23


def test_within_a_batch_the_later_occurred_at_wins_whatever_the_order() -> None:
    h = harness()
    newer = inbound(profile_update("M-1", "e-new", T0 + timedelta(minutes=5), city="Ottawa"))
    older = inbound(profile_update("M-1", "e-old", T0, city="Toronto", firstName="Ada"))
    outcomes = h.deliver(newer, older)
    assert sent_attributes(h) == {"M-1": {"CITY": "Ottawa", "FIRST_NAME": "Ada"}}
    assert len(h.calls("UpdateCustomerAttributes")) == 1
    assert outcomes[older.message_id].result is Result.DELIVERED  # its FIRST_NAME went
    assert any("CITY (superseded in this batch by" in note for note in outcomes[older.message_id].notes)


def test_an_event_older_than_the_delivered_value_never_overwrites_it() -> None:
    h = harness()
    h.deliver(inbound(profile_update("M-1", "e-new", T0 + timedelta(hours=1), city="Ottawa")))
    outcomes = h.deliver(inbound(profile_update("M-1", "e-late", T0, city="Toronto")))
    [outcome] = outcomes.values()
    assert outcome.result is Result.SKIPPED
    assert "not sent: CITY (a newer value was already delivered)" in outcome.notes
    assert len(h.calls("UpdateCustomerAttributes")) == 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=50),
            st.sampled_from(["city", "firstName"]),
            st.text("abc", min_size=1, max_size=3),
        ),
        min_size=1,
        max_size=12,
    ),
    st.randoms(use_true_random=False),
    st.integers(min_value=1, max_value=4),
)
def test_any_interleaving_of_one_members_updates_yields_the_newest_value_per_attribute(
    updates: list[tuple[int, str, str]], shuffle: Any, batches: int
) -> None:
    """Whatever order SQS hands them over in, and however they are split into batches."""
    h = harness()
    documents = [
        profile_update("M-1", f"e-{i}", T0 + timedelta(minutes=minute), **{name: f"{value}-{i}"})
        for i, (minute, name, value) in enumerate(updates)
    ]
    order = list(range(len(documents)))
    shuffle.shuffle(order)
    size = max(1, len(order) // batches)
    for start in range(0, len(order), size):
        h.deliver(*(inbound(documents[i]) for i in order[start : start + size]))

    expected: dict[str, tuple[int, int, str]] = {}
    for i, (minute, name, value) in enumerate(updates):
        field = {"city": "CITY", "firstName": "FIRST_NAME"}[name]
        current = expected.get(field)
        if current is None or (minute, i) > (current[0], current[1]):
            expected[field] = (minute, i, f"{value}-{i}")
    newest_minute = {f: v[0] for f, v in expected.items()}
    received = sent_attributes(h).get("M-1", {})
    for field, (_minute, _i, value) in expected.items():
        # Ties in occurredAt are not ordered by the contract: any of the tied values may stand.
        tied = {
            f"{v}-{i}"
            for i, (m, n, v) in enumerate(updates)
            if {"city": "CITY", "firstName": "FIRST_NAME"}[n] == field and m == newest_minute[field]
        }
        assert received[field] in tied | {value}


def test_a_failed_call_fails_only_the_members_in_it() -> None:
    h = harness()
    h.simulator.fail(500, rate=1.0, calls=["SetCustomerChannelPreference"])
    opt_in = inbound(example_event("OPT_IN_EMAIL", memberId="M-2"))
    profile = inbound(profile_update("M-1", "e-1", T0, city="Ottawa"))
    outcomes = h.deliver(opt_in, profile)
    assert outcomes[profile.message_id].result is Result.DELIVERED
    assert outcomes[opt_in.message_id].result is Result.RETRY
    assert outcomes[opt_in.message_id].error == "SetCustomerChannelPreference: simulated fault 500"


def test_a_4xx_is_final_with_optimoves_error() -> None:
    h = harness(templates={502: ["NEW_TIER"]})  # template 501 unknown to Optimove
    [outcome] = h.deliver(inbound(example_event("REDEMPTION"))).values()
    assert outcome.result is Result.FAILED
    assert outcome.error == "SendTransactionalMail: 200 Invalid template"


def test_a_welcome_event_is_not_reported_while_the_members_attributes_failed() -> None:
    h = harness()
    h.simulator.fail(503, rate=1.0, calls=["InsertOrUpdateCustomers"])
    [outcome] = h.deliver(inbound(example_event("MEMBER_REGISTRATION"))).values()
    assert outcome.result is Result.RETRY
    assert h.calls("reportEvent") == []


def test_a_retry_does_not_repeat_what_an_earlier_attempt_completed() -> None:
    h = harness()
    document = example_event("MEMBER_REGISTRATION")
    [outcome] = h.deliver(inbound(document, completed=frozenset({"realtime:registration"}))).values()
    assert outcome.result is Result.DELIVERED
    assert h.calls("reportEvent") == []
    assert "realtime:registration already reported on an earlier attempt" in outcome.notes


def test_a_duplicated_delivery_of_a_redemption_sends_one_mail() -> None:
    h = harness()
    document = example_event("REDEMPTION")
    first = h.deliver(inbound(document))
    second = h.deliver(inbound(document, receive_count=2))  # SQS/EventBridge handed it over again
    assert [o.result for o in (*first.values(), *second.values())] == [Result.DELIVERED, Result.DELIVERED]
    assert len(h.simulator.mails) == 1
    assert [c["status"] for c in h.calls("SendTransactionalMail")] == [200, 409]
    [again] = second.values()
    assert "SendTransactionalMail: Optimove already has this UniqueMessageID (409); not sent again" in again.notes


def test_a_redemption_mail_goes_out_whatever_the_marketing_opt_in() -> None:
    h = harness()
    opt_out = example_event("OPT_IN_EMAIL")
    opt_out["data"]["optIn"] = False
    h.deliver(inbound(opt_out))
    config = h.config.events.OPT_IN_EMAIL
    assert config is not None
    assert h.simulator.preferences[("M-100001", 15, config.appId)] == config.optOutMode
    [outcome] = h.deliver(inbound(example_event("REDEMPTION"))).values()
    assert outcome.result is Result.DELIVERED
    assert len(h.simulator.mails) == 1


def test_transactional_mail_keeps_to_10_calls_per_second() -> None:
    h = harness()
    redemptions = [inbound(example_event("REDEMPTION", eventId=f"r-{i}", memberId=f"M-{i}")) for i in range(25)]
    outcomes = h.deliver(*redemptions)
    assert {o.result for o in outcomes.values()} == {Result.DELIVERED}
    assert all(c["status"] in (200, 206) for c in h.calls("SendTransactionalMail"))
    assert sum(h.clock.slept) >= 1.0  # the limiter waited rather than drawing a 429


def test_customer_calls_keep_to_50_per_10_seconds() -> None:
    h = harness()
    for batch in range(60):  # 60 invocations, one call each: more than the window allows
        h.deliver(inbound(profile_update(f"M-{batch}", f"e-{batch}", T0, city="x")))
    statuses = [c["status"] for c in h.calls("UpdateCustomerAttributes")]
    assert statuses == [200] * 60  # the simulator enforces 50 per 10 s: no 429 reached it
    assert len(h.clock.slept) == 1  # the 51st call waited for the window


def test_a_forced_replay_sends_the_mail_again_and_optimove_refuses_the_repeat() -> None:
    from dig_contracts.bus import ReplayTag

    h = harness()
    document = example_event("REDEMPTION")
    first = inbound(document)
    h.deliver(first)
    forced = inbound(document, completed=frozenset({"mail:501"}))
    forced = type(forced)(**{**forced.__dict__, "replay": ReplayTag(runId="run-1", force=True)})
    [outcome] = h.deliver(forced).values()
    assert outcome.result is Result.DELIVERED
    assert [c["status"] for c in h.calls("SendTransactionalMail")] == [200, 409]
    assert len(h.simulator.mails) == 1
    assert len(h.calls("UpdateCustomerAttributes")) == 2  # attributes are sent again too


def test_a_forced_replay_never_reports_a_real_time_event_twice() -> None:
    from dig_contracts.bus import ReplayTag

    h = harness()
    document = example_event("MEMBER_REGISTRATION")
    h.deliver(inbound(document))
    forced = inbound(document, completed=frozenset({"realtime:registration"}))
    forced = type(forced)(**{**forced.__dict__, "replay": ReplayTag(runId="run-1", force=True)})
    [outcome] = h.deliver(forced).values()
    assert outcome.result is Result.DELIVERED
    assert len(h.calls("reportEvent")) == 1
    assert "realtime:registration already reported on an earlier attempt" in outcome.notes


# --- two copies of one message at the same moment (EventBridge and SQS deliver at least once) ---------


def test_a_copy_delivered_while_another_reports_its_welcome_event_waits_and_never_reports_it() -> None:
    h = harness()
    document = example_event("MEMBER_REGISTRATION")
    copy = inbound(document)
    # The other copy, in another invocation, has claimed the real-time event and is calling Optimove.
    h.operations.state[("optimove", copy.message_id, "realtime:registration")] = ("BUSY", "other-invocation")

    [waiting] = h.deliver(copy).values()
    assert waiting.result is Result.RETRY
    assert waiting.error == "reportEvent: another delivery of this message is reporting registration"
    assert h.calls("reportEvent") == []

    h.operations.done("optimove", copy.message_id, "realtime:registration")  # the other copy succeeded
    [retried] = h.deliver(inbound(document, receive_count=2)).values()
    assert retried.result is Result.DELIVERED
    assert "realtime:registration" in retried.completed
    assert "realtime:registration already reported by another delivery of this message" in retried.notes
    assert h.calls("reportEvent") == []  # Optimove's welcome campaign started once, by the other copy


def test_a_welcome_event_optimove_refused_is_released_so_that_a_retry_reports_it() -> None:
    h = harness()
    document = example_event("MEMBER_REGISTRATION")
    h.simulator.fail(503, rate=1.0, calls=["reportEvent"])
    [failed] = h.deliver(inbound(document)).values()
    assert failed.result is Result.RETRY
    assert h.operations.state == {}  # released, not left busy until its lease lapses

    h.simulator.clear_fault()
    [outcome] = h.deliver(inbound(document, receive_count=2)).values()
    assert outcome.result is Result.DELIVERED
    assert [c["status"] for c in h.calls("reportEvent")][-1] == 200
    assert h.operations.state[("optimove", inbound(document).message_id, "realtime:registration")][0] == "DONE"


# --- member contact data: mails to members whose event carries no email ------------------------------


def test_a_tier_mail_goes_to_the_email_the_registration_brought() -> None:
    h = harness()
    h.deliver(inbound(example_event("MEMBER_REGISTRATION", eventId="reg-1", memberId="M-7")))
    tier = example_event("MEMBER_TIER", eventId="tier-1", memberId="M-7")
    tier.pop("locale", None)
    [outcome] = h.deliver(inbound(tier)).values()
    assert outcome.result is Result.DELIVERED, outcome.error
    [mail] = h.calls("SendTransactionalMail")
    [recipient] = mail["body"]["Recipients"]
    assert recipient["Email"] == "ada@example.com"
    registration_locale = example_event("MEMBER_REGISTRATION")["locale"]
    tags = {t["Tag"]: t["Value"] for t in recipient["Personalizations"]}
    babel_locale = formatting.babel_locale(registration_locale)
    assert babel_locale is not None
    expected_day = formatting.day(date(2026, 11, 21), babel_locale, "long")
    assert tags["EFFECTIVE_ON"] == expected_day  # the stored locale, since the tier event has none


def test_the_wait_for_an_email_follows_the_coalescing_window_the_lane_was_given() -> None:
    # The local stack shortens windows (COALESCING_WINDOW_SECONDS_OPTIMOVE): the hold shortens with them.
    h = harness(coalescing_window_seconds=0.5)
    [waited] = h.deliver(inbound(example_event("MEMBER_TIER", eventId="tier-3", memberId="M-9"))).values()
    assert (waited.result, waited.hold_seconds) == (Result.RETRY, 6)
    assert [email_wait_seconds(), email_wait_seconds(0), email_wait_seconds(1.2)] == [25, 5, 7]


def test_a_mail_for_a_member_without_a_known_email_waits_once_then_fails_with_the_reason() -> None:
    h = harness()
    tier = example_event("MEMBER_TIER", eventId="tier-2", memberId="M-8")
    [waited] = h.deliver(inbound(tier)).values()
    # The email may be in the coalescing lane (an opt-in of the same batch): held, not a receive spent.
    assert waited.result is Result.RETRY
    assert waited.hold_seconds == 25  # the manifest's 20 s window and a 5 s margin
    assert waited.completed == {EMAIL_AWAITED}
    [outcome] = h.deliver(inbound(tier, completed=frozenset(waited.completed))).values()
    assert outcome.result is Result.FAILED
    assert outcome.error == (
        "SendTransactionalMail: no email is known for member M-8 (the event carries none, and no earlier event or "
        "memberAccounts extract did); replay it once ES Loyalty has sent one"
    )
    assert h.calls("SendTransactionalMail") == []


def test_a_held_mail_finds_the_email_the_coalescing_lane_learned_meanwhile() -> None:
    h = harness()
    tier = example_event("MEMBER_TIER", eventId="tier-3", memberId="M-9")
    [waited] = h.deliver(inbound(tier)).values()
    assert waited.result is Result.RETRY
    opt_in = example_event("OPT_IN_EMAIL", eventId="optin-9", memberId="M-9")
    h.deliver(inbound(opt_in))  # the coalescing lane's batch
    [outcome] = h.deliver(inbound(tier, completed=frozenset(waited.completed))).values()
    assert outcome.result is Result.DELIVERED, outcome.error
    [mail] = h.calls("SendTransactionalMail")
    assert mail["body"]["Recipients"][0]["Email"] == opt_in["data"]["email"]


# --- lost answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("drop", [False, True])
def test_a_mail_whose_answer_was_lost_is_sent_once_and_counted_delivered(drop: bool) -> None:
    h = harness()
    h.simulator.fail(504, calls=["SendTransactionalMail"], lose_answer=True, drop=drop)
    first = h.deliver(inbound(example_event("REDEMPTION")))
    h.simulator.clear_fault()
    [outcome] = first.values()
    assert len(h.simulator.mails) == 1  # performed although the answer was lost
    assert outcome.result is Result.RETRY  # every try lost its answer, or came back 409 after the first
    second = h.deliver(inbound(example_event("REDEMPTION"), receive_count=2))
    [again] = second.values()
    assert again.result is Result.DELIVERED
    assert len(h.simulator.mails) == 1
    assert [c["status"] for c in h.calls("SendTransactionalMail")][-1] == 409


def test_a_real_time_event_whose_answer_was_lost_is_not_reported_again() -> None:
    h = harness()
    h.simulator.fail(504, calls=["reportEvent"], lose_answer=True)
    [outcome] = h.deliver(inbound(example_event("MEMBER_REGISTRATION"))).values()
    assert outcome.result is Result.FAILED  # final: a retry could start the welcome campaign twice
    assert len(h.calls("reportEvent")) == 1
    assert len(h.simulator.events) == 1  # Optimove did act on it
    assert outcome.error is not None
    assert "the answer was lost (simulated lost answer): Optimove may have acted on it" in outcome.error
    assert h.operations.state == {}  # not recorded done: a replay is the operator's decision


def test_a_real_time_429_is_retried_like_other_calls() -> None:
    h = harness()
    h.simulator.fail(429, calls=["reportEvent"])
    [outcome] = h.deliver(inbound(example_event("MEMBER_REGISTRATION"))).values()
    assert outcome.result is Result.RETRY
    assert len(h.calls("reportEvent")) == 4  # every try, with backoff
    assert h.simulator.events == []


def test_the_server_side_real_time_format() -> None:
    config = sample_config_document()
    config["realtime"] = {"format": "serverSide", "tenantId": 567}
    h = harness(config)
    h.simulator.tenant_id = 567
    [outcome] = h.deliver(inbound(example_event("MEMBER_REGISTRATION"))).values()
    assert outcome.result is Result.DELIVERED, outcome.error
    [call] = h.calls("serverSideEvent")
    assert call["path"] == "/realtime"
    assert call["body"] == {
        "tenant": 567,
        "timestamp": "2026-11-21 14:15:00.000000 UTC",
        "event": "registration",
        "customer": "M-100001",
        "context": call["body"]["context"],
    }


# From year 1000: before it strftime writes three-digit years, which no event carries.
@given(st.datetimes(min_value=datetime(1000, 1, 2), timezones=st.timezones()))
def test_the_watermark_key_of_a_moment_is_its_utc_time_to_the_microsecond(moment: datetime) -> None:
    from connectors.optimove.delivery import utc_key

    assert utc_key(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
