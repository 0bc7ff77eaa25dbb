"""The CataBoom connector: the exact Request Unique URL calls it makes for an award, the links it hands
ES Loyalty (once, however often the award comes), the writeback answered in CataBoom's codes and turned
into exactly one points award, the launch token accepted once, and the kit's contract."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors.cataboom import client
from connectors.cataboom.config import ConfigError, parse_config
from connectors.cataboom.local import SECRET
from connectors.cataboom.manifest import MANIFEST
from connectors.cataboom.tests.harness import BASE_URL, harness, sample_config_document
from dig_connector_kit.model import Result
from dig_connector_kit.testing import ConnectorContract, Fault, inbound
from dig_contracts.examples import example_event
from dig_contracts.inbound import GamePlayLinkIssued, PointsAwardRequested

MEMBER_REF = client.member_ref(SECRET["memberRefKey"], "ACME-REWARDS", "M-100001")


def award(award_id: str = "AW-1", plays: int = 3, campaign: str = "scratch-and-win", **data: Any) -> dict[str, Any]:
    event = example_event("GAME_PLAY_AWARDED", eventId=f"evt-{award_id}")
    event["data"] |= {"awardId": award_id, "plays": plays, "campaign": campaign, **data}
    return event


def links(h: Any) -> list[GamePlayLinkIssued]:
    return [e for e in h.emitted.events if isinstance(e, GamePlayLinkIssued)]


def test_an_award_of_three_plays_asks_cataboom_for_three_links_under_an_opaque_account() -> None:
    h = harness()
    message = inbound(award())
    outcome = h.deliver(message)[message.message_id]
    assert outcome.result is Result.DELIVERED
    assert outcome.notes == ["3 of 3 play links issued for award AW-1 (3 new)"]
    calls = h.calls("requestUniqueUrl")
    assert [(c["method"], c["path"]) for c in calls] == [("GET", "/dplayurl/scratch-and-win")] * 3
    queries = [parse_qs(c["query"]) for c in calls]
    assert queries[0] == {
        "username": ["[redacted]"],  # the simulator's log, as every log, never holds the credentials
        "password": ["[redacted]"],
        "AccountID": [MEMBER_REF],
        "ref": ["AW-1-1"],
    }
    assert [q["ref"] for q in queries] == [["AW-1-1"], ["AW-1-2"], ["AW-1-3"]]
    assert "M-100001" not in json.dumps(calls)  # CataBoom never sees the member id
    issued = links(h)
    assert [e.data.play for e in issued] == [1, 2, 3]
    assert len({e.data.url for e in issued}) == 3
    first = issued[0]
    assert first.memberId == "M-100001"
    assert first.data.url == f"https://secure.cataboom.com/dplay/scratch-and-win/{first.data.playId}"
    assert first.data.expiresAt is not None
    assert first.data.expiresAt.isoformat() == "2026-12-31T23:59:59+00:00"
    assert {p["accountid"] for p in h.simulator.plays.values()} == {MEMBER_REF}
    assert h.counts() == {"playsIssued": 3}


def test_the_credentials_travel_in_the_query_and_nowhere_in_the_audit_trail() -> None:
    h = harness()
    message = inbound(award(plays=1))
    outcome = h.deliver(message)[message.message_id]
    password = SECRET["campaigns"]["scratch-and-win"]["password"]
    assert password not in json.dumps([a.model_dump() for a in outcome.attempts])
    assert [a.call for a in outcome.attempts] == ["requestUniqueUrl"]
    assert password not in json.dumps([e.model_dump(mode="json") for e in h.emitted.events])


def test_the_same_award_again_issues_no_new_link_and_tells_the_same_links_under_the_same_ids() -> None:
    h = harness()
    h.deliver(inbound(award()))
    first = links(h)
    h.emitted.events.clear()
    h.simulator.clear_requests()
    outcome = h.deliver(inbound(award()))[inbound(award()).message_id]
    assert h.calls() == []
    assert outcome.notes == ["3 of 3 play links issued for award AW-1 (0 new)"]
    assert [(e.eventId, e.data.url) for e in links(h)] == [(e.eventId, e.data.url) for e in first]


def test_an_outage_midway_keeps_the_links_issued_and_the_retry_asks_only_for_the_rest() -> None:
    h = harness()
    outage = Fault(status=503, calls=frozenset({"requestUniqueUrl"}))
    h.after_call.append(lambda calls: h.simulator.set_fault(outage) if calls == 2 else None)
    message = inbound(award())
    outcome = h.deliver(message)[message.message_id]
    assert outcome.result is Result.RETRY
    assert outcome.error is not None
    assert outcome.error.startswith("requestUniqueUrl for play 3: 503")
    assert [e.data.play for e in links(h)] == [1, 2]  # told at once; the third follows with the retry
    h.after_call.clear()
    h.simulator.set_fault(None)
    h.simulator.clear_requests()
    assert h.deliver(message)[message.message_id].result is Result.DELIVERED
    assert [parse_qs(c["query"])["ref"] for c in h.calls()] == [["AW-1-3"]]
    assert [e.data.play for e in links(h)][2:] == [1, 2, 3]


def test_a_lost_answer_is_tried_again_and_the_unanswered_link_is_never_handed_out() -> None:
    h = harness()
    h.simulator.set_fault(Fault(status=None, lose_answer=True, calls=frozenset({"requestUniqueUrl"}), times=1))
    message = inbound(award(plays=1))
    outcome = h.deliver(message)[message.message_id]
    assert outcome.result is Result.DELIVERED  # the transport's retry asked again
    assert len(h.simulator.plays) == 2  # one link nobody will see, unplayed: it costs nothing
    [link] = links(h)
    assert link.data.playId in h.simulator.plays


def test_credentials_cataboom_refuses_fail_the_award_and_a_campaign_not_configured_fails_at_once() -> None:
    secret = json.loads(json.dumps(SECRET))
    secret["campaigns"]["scratch-and-win"]["password"] = "wrong"
    h = harness(secret=secret)
    message = inbound(award())
    outcome = h.deliver(message)[message.message_id]
    assert (outcome.result, outcome.error) == (Result.FAILED, "requestUniqueUrl for play 1: 401 Unauthorized")
    assert links(h) == []
    unknown = inbound(award(award_id="AW-2", campaign="slot-machine"))
    outcome = h.deliver(unknown)[unknown.message_id]
    assert (outcome.result, outcome.error) == (Result.FAILED, "campaign slot-machine is not in the configuration")


def test_an_award_that_expired_before_it_came_issues_nothing() -> None:
    h = harness()
    message = inbound(award(expiresAt="2026-11-30T00:00:00Z"))
    outcome = h.deliver(message)[message.message_id]
    assert outcome.result is Result.SKIPPED
    assert h.calls() == []


# --- the writeback ----------------------------------------------------------------------------------


def played(h: Any, win_level: str = "2", *, renamed: bool = False, campaign: str = "scratch-and-win") -> bytes:
    """An award of one play delivered, the play played: CataBoom's writeback for it."""
    h.deliver(inbound(award(award_id=f"AW-{len(h.simulator.plays)}", plays=1, campaign=campaign)))
    play_id = list(h.simulator.plays)[-1]
    answer = h.simulator.play(play_id, win_level, renamed=renamed)
    return str(answer.body["body"]).encode()


def test_a_won_play_is_one_points_award_with_the_configured_points_however_often_cataboom_posts_it() -> None:
    h = harness()
    body = played(h, "2")
    first = h.post("writeback", body)
    again = h.post("writeback", body, receipt="req-2")
    for reply in (first, again):
        assert (reply.answer.status, json.loads(reply.answer.body)) == (200, {"code": 0, "message": "success"})
    [event] = first.reading.events
    assert isinstance(event, PointsAwardRequested)
    play_id = json.loads(body)["playid"]
    assert event.data.model_dump() == {
        "points": 100,
        "reason": "Scratch and win: win level 2",
        "reference": f"cataboom:scratch-and-win:{play_id}",
    }
    assert (event.memberId, event.programId) == ("M-100001", "ACME-REWARDS")
    assert [e.eventId for e in again.reading.events] == [event.eventId]  # the bus and audit see one event
    kept = json.loads(first.answer.keep or "{}")
    assert kept == {
        "campaignid": "scratch-and-win",
        "accountid": MEMBER_REF,
        "playid": play_id,
        "winlevel": "2",
        "description": "Win level 2",
    }  # no token, no prize code or PIN
    assert h.counts() == {"playsIssued": 1, "playsWon": 1, "pointsAwarded": 100, "writebacksRepeated": 1}


def test_the_renamed_fields_a_production_client_saw_are_taken_alike() -> None:
    h = harness()
    reply = h.post("writeback", played(h, "1", renamed=True))
    assert reply.answer.status == 200
    assert [e.data.points for e in reply.reading.events] == [500]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"token": "not-the-token"}, 401, 1000),
        ({"campaignid": "slot-machine"}, 404, 1100),
        ({"accountid": "m-nobody-dig-knows"}, 404, 1200),
        ({"winlevel": "7"}, 403, 1300),
    ],
)
def test_a_writeback_refused_is_answered_in_cataboooms_code_and_nothing_is_kept_or_awarded(
    change: dict[str, str], status: int, code: int
) -> None:
    h = harness()
    body = json.loads(played(h)) | change
    reply = h.post("writeback", json.dumps(body))
    assert reply.answer.status == status
    assert json.loads(reply.answer.body)["code"] == code
    assert reply.answer.keep is None
    assert reply.reading.events == []
    assert h.counts() == {"playsIssued": 1, "writebacksRefused": 1}


def test_a_loss_is_answered_success_and_awards_nothing() -> None:
    h = harness()
    reply = h.post("writeback", played(h, "0"))
    assert (reply.answer.status, json.loads(reply.answer.body)["code"]) == (200, 0)
    assert reply.reading.events == []
    assert h.counts()["playsLost"] == 1


@pytest.mark.parametrize("body", ["not json", "[1]", '{"token": "x", "campaignid": "scratch-and-win"}'])
def test_a_body_that_is_no_writeback_is_refused_400_naming_what_is_missing(body: str) -> None:
    reply = harness().post("writeback", body)
    assert reply.answer.status == 400
    assert reply.answer.keep is None


# --- signed launches --------------------------------------------------------------------------------


def launch_token(h: Any) -> str:
    h.deliver(inbound(award(plays=1, campaign="holiday-spin")))
    [link] = links(h)
    query = parse_qs(urlsplit(link.data.url).query)
    return query["t"][0]


def test_a_signed_launch_is_accepted_once_and_answers_the_member_reference_never_the_member() -> None:
    h = harness()
    token = launch_token(h)
    first = h.post("launch", json.dumps({"token": token}))
    assert first.answer.status == 200
    assert json.loads(first.answer.body) == {
        "code": 0,
        "accountid": MEMBER_REF,
        "campaignid": "holiday-spin",
        "awardid": "AW-1",
    }
    again = h.post("launch", "", t=token)  # the query's t= alike
    assert (again.answer.status, json.loads(again.answer.body)) == (
        401,
        {"code": 1000, "message": "the launch token was used already"},
    )
    assert h.counts() == {"playsIssued": 1, "launchesAccepted": 1, "launchesRefused": 1}


def test_a_launch_token_is_refused_after_its_minutes_and_when_not_dig_signed() -> None:
    h = harness()
    token = launch_token(h)
    h.wall[0] += 15 * 60
    expired = h.post("launch", json.dumps({"token": token}))
    assert json.loads(expired.answer.body) == {"code": 1000, "message": "the launch token has expired"}
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    h.wall[0] -= 15 * 60
    assert h.post("launch", json.dumps({"token": forged})).answer.status == 401
    assert h.post("launch", "{}").answer.status == 401


def test_links_of_a_campaign_without_signed_launches_carry_no_token() -> None:
    h = harness()
    h.deliver(inbound(award(plays=1)))
    assert "?" not in links(h)[0].data.url


# --- configuration and the kit's contract ----------------------------------------------------------


def test_the_sample_configuration_is_valid_and_a_win_level_outside_cataboom_s_is_refused() -> None:
    assert parse_config(sample_config_document()).campaigns["holiday-spin"].winLevels["1"] == 1000
    document = sample_config_document()
    document["campaigns"]["holiday-spin"]["winLevels"]["0"] = 5
    with pytest.raises(ConfigError, match="win levels"):
        parse_config(document)


def test_the_kit_contract() -> None:
    ConnectorContract(
        make_connector=lambda: harness().connector,
        events=[award(), award(award_id="AW-2", plays=1, campaign="holiday-spin")],
        manifest=MANIFEST,
    ).check()


def test_the_manifest_answers_both_webhooks_itself_and_reaches_cataboom_at_its_setting() -> None:
    assert [(w.name, w.verification) for w in MANIFEST.webhooks] == [
        ("writeback", "connector"),
        ("launch", "connector"),
    ]
    assert MANIFEST.webhook_pattern() is None
    assert BASE_URL.startswith("https://")
