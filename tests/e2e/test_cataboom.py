"""CataBoom through `dig local` (the shared stack): an award of three plays yields three distinct play
links at the ES Loyalty double; two plays won, each writeback posted twice as CataBoom posts it, make
exactly two POINTS_AWARD_REQUESTED with the configured points; a writeback with a wrong token is refused
in CataBoom's code and awards nothing; a signed launch is accepted once, refused the second time and
after its expiry; `dig status` and `dig audit counts` show the counts; and once the member is forgotten,
a writeback for their account is CataBoom's unknown account."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt

from connectors.cataboom.local import SECRET
from dig_contracts.examples import example_event
from tests.e2e.conftest import LocalStackProcess, delivery

DIG = str(Path(sys.executable).parent / "dig")
WRITEBACK = "/v1/inbound/cataboom/writeback"
LAUNCH = "/v1/inbound/cataboom/launch"


def received(stack: LocalStackProcess, event_type: str, award: str) -> list[dict[str, Any]]:
    bodies = [json.loads(r["body"]) for r in stack.http.get("/_sim/esloyalty/received").json()]
    return [b for b in bodies if b["eventType"] == event_type and award in json.dumps(b)]


def provider_post(stack: LocalStackProcess, path: str, body: bytes | str) -> Any:
    """As CataBoom posts: no DIG credentials."""
    return httpx.post(f"{stack.url}{path}", content=body, headers={"Content-Type": "application/json"}, timeout=30)


def dig_run(stack: LocalStackProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """`dig` against this stack by its URL: other local stacks (the own-stack e2e group's) may be running."""
    return subprocess.run(
        [DIG, *args, "--local", "--local-url", stack.url], capture_output=True, text=True, timeout=120
    )


def dig_json(stack: LocalStackProcess, *args: str) -> Any:
    return dig_run(stack, *args, "--json").stdout


def test_three_plays_three_links_two_wins_two_awards_once_each(local_stack: LocalStackProcess) -> None:
    stack = local_stack
    run = uuid.uuid4().hex[:8]
    award = f"AW-{run}"
    event = example_event("GAME_PLAY_AWARDED", eventId=f"evt-{run}", memberId=f"M-{run}")
    event["data"] |= {"awardId": award, "campaign": "holiday-spin", "plays": 3}
    answer = stack.post_event(event)
    assert answer.status_code == 202, answer.text
    record = stack.wait_for_final(answer.json()["messageId"])
    assert delivery(record, "cataboom")["status"] == "DELIVERED"

    links = stack.wait_until(
        lambda: (found := received(stack, "GAME_PLAY_LINK_ISSUED", award)) and len(found) >= 3 and found,
        "three play links at the ES Loyalty double",
    )
    assert sorted(link["data"]["play"] for link in links) == [1, 2, 3]
    assert len({link["data"]["url"] for link in links}) == 3
    assert {link["memberId"] for link in links} == {f"M-{run}"}
    by_play = {link["data"]["play"]: link["data"] for link in links}

    # A writeback with a wrong token: CataBoom's 1000, nothing kept, nothing awarded.
    third = stack.http.post("/_sim/cataboom/play", json={"playId": by_play[3]["playId"], "winlevel": "1"})
    forged = json.loads(third.json()["body"]) | {"token": "not-the-campaigns-token"}
    refused = provider_post(stack, WRITEBACK, json.dumps(forged))
    assert (refused.status_code, refused.json()) == (401, {"code": 1000, "message": "invalid token"})

    # Two plays won; each writeback posted twice (the second time in the renamed fields).
    points = {}
    for play, level in ((1, "2"), (2, "1")):
        won = stack.http.post("/_sim/cataboom/play", json={"playId": by_play[play]["playId"], "winlevel": level})
        body = won.json()["body"]
        for attempt in range(2):
            reply = provider_post(stack, WRITEBACK, body)
            assert (reply.status_code, reply.json()) == (200, {"code": 0, "message": "success"}), attempt
        points[f"cataboom:holiday-spin:{by_play[play]['playId']}"] = {"2": 250, "1": 1000}[level]

    awards = stack.wait_until(
        lambda: (found := received(stack, "POINTS_AWARD_REQUESTED", f"M-{run}")) and len(found) >= 2 and found,
        "two points awards at the ES Loyalty double",
    )
    # Both awards' messages final: a duplicate, had one been made, would be beside them by now.
    for award_event in awards:
        stack.wait_for_final(stack.http.get(f"/v1/events/{award_event['eventId']}").json()["messageId"])
    awards = received(stack, "POINTS_AWARD_REQUESTED", f"M-{run}")
    assert {a["data"]["reference"]: a["data"]["points"] for a in awards} == points
    assert len(awards) == 2

    # The signed launch of play 3: accepted once, then refused; a token past its expiry refused.
    token = parse_qs(urlsplit(by_play[3]["url"]).query)["t"][0]
    first = provider_post(stack, LAUNCH, json.dumps({"token": token}))
    assert first.status_code == 200
    assert first.json()["code"] == 0
    assert first.json()["awardid"] == award
    again = provider_post(stack, LAUNCH, json.dumps({"token": token}))
    assert (again.status_code, again.json()["code"]) == (401, 1000)
    claims = jwt.decode(token, options={"verify_signature": False})
    now = int(time.time())
    expired = jwt.encode(
        claims | {"jti": uuid.uuid4().hex, "iat": now - 1200, "exp": now - 300}, SECRET["launchKey"], algorithm="HS256"
    )
    late = provider_post(stack, LAUNCH, json.dumps({"token": expired}))
    assert (late.status_code, late.json()) == (401, {"code": 1000, "message": "the launch token has expired"})

    # The operator's view: today's counts (other tests may add to them: at least ours).
    [counts] = [json.loads(line) for line in dig_json(stack, "audit", "counts", "--connector", "cataboom").splitlines()]
    assert counts["playsIssued"] >= 3
    assert counts["playsWon"] >= 2
    assert counts["writebacksRefused"] >= 1
    assert counts["writebacksRepeated"] >= 2
    assert counts["launchesAccepted"] >= 1
    status = json.loads(dig_json(stack, "status"))
    [cataboom] = [c for c in status["connectors"] if c["name"] == "cataboom"]
    assert cataboom["today"]["playsWon"] >= 2

    # An erasure request: the member's account forgets whose it is, so a writeback for play 3 awards nothing.
    forgot = dig_run(stack, "member", "forget", f"M-{run}", "--yes")
    assert forgot.returncode == 0, forgot.stderr
    assert "connectors' own items erased: cataboom 2 item(s)" in " ".join(forgot.stdout.split())
    late_win = provider_post(stack, WRITEBACK, third.json()["body"])
    assert (late_win.status_code, late_win.json()["code"]) == (404, 1200)
