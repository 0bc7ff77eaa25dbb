"""A CataBoom simulator: a test double of the Request Unique URL API and of the prize fulfillment
("writeback") CataBoom posts, built from the documents the reference cites
(../shared/reference/cataboom-tipalti-api.md Part 1) and the samples in ../tests/fixtures/, which the
connector's parsers and this simulator are both tested against. Never imported by Lambda code.

Served under ``/_sim/cataboom``:
  GET  /dplayurl/{campaign}?username&password&AccountID[&k=v]: a unique play link, plain text
  GET  /plays: every play issued ({playId: {campaign, accountid, extra, winlevel, played}})
  POST /play {"playId": "...", "winlevel": "2", "renamed": false}: the member plays; the answer is the
       writeback CataBoom would post for it ({"body": "..."}: post it to DIG, as often as a test likes),
       in the renamed fields a production client saw (playerid, playcode) when ``renamed``
  and the shared surface (GET/DELETE /requests, POST/DELETE /faults: dig_connector_kit.testing.double).

The simulator's own assumptions, where nothing public says (named so): wrong credentials answer 401 in
plain text; an unknown campaign 404; a play is played once (a second ``/play`` answers 409).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from dig_connector_kit.testing.double import Answer, Fault, ProviderSimulator

PLAY_HOST = "https://secure.cataboom.com"  # where the members' links point, as CataBoom's do
DPLAYURL = re.compile(r"^/dplayurl/([A-Za-z0-9_-]{1,64})$")


class CataBoomSimulator(ProviderSimulator):
    secret_query_parameters = frozenset({"username", "password"})

    def __init__(self, campaigns: Mapping[str, Mapping[str, str]], *, seed: int = 7) -> None:
        super().__init__(seed=seed)
        self.campaigns = {slug: dict(entry) for slug, entry in campaigns.items()}
        self.plays: dict[str, dict[str, Any]] = {}

    def call_name(self, method: str, path: str) -> str | None:
        return "requestUniqueUrl" if method == "GET" and DPLAYURL.match(path) else None

    def fault_answer(self, fault: Fault) -> Answer:
        return Answer(fault.status or 503, text="Service Unavailable")

    def serve(self, call: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Answer:
        found = DPLAYURL.match(path)
        assert found is not None
        return self.faulted(call, lambda: self._unique_url(found.group(1), query))

    def _unique_url(self, slug: str, query: str) -> Answer:
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        campaign = self.campaigns.get(slug)
        if campaign is None:
            return Answer(404, text="Campaign not found")
        if (params.get("username"), params.get("password")) != (campaign["username"], campaign["password"]):
            return Answer(401, text="Unauthorized")
        account = params.get("AccountID", "")
        if not account:
            return Answer(400, text="AccountID is required")
        play_id = str(uuid.UUID(int=self._random.getrandbits(128), version=4))
        extra = {k: v for k, v in params.items() if k not in ("username", "password", "AccountID")}
        with self._lock:
            self.plays[play_id] = {"campaign": slug, "accountid": account, "extra": extra, "played": False}
        return Answer(200, text=f"{PLAY_HOST}/dplay/{slug}/{play_id}")

    def control(self, method: str, path: str, body: bytes) -> Answer | None:
        if (method, path) == ("GET", "/plays"):
            with self._lock:
                return Answer(200, json.loads(json.dumps(self.plays)))
        if (method, path) == ("POST", "/play"):
            try:
                spec = json.loads(body)
                return self.play(str(spec["playId"]), str(spec["winlevel"]), renamed=bool(spec.get("renamed")))
            except (ValueError, KeyError, TypeError):
                return Answer(400, {"message": 'POST /play {"playId": "...", "winlevel": "2", "renamed": false}'})
        return None

    def play(self, play_id: str, win_level: str, *, renamed: bool = False) -> Answer:
        with self._lock:
            play = self.plays.get(play_id)
            if play is None:
                return Answer(404, {"message": f"no play {play_id}"})
            if play["played"]:
                return Answer(409, {"message": f"play {play_id} was played already"})
            play |= {"played": True, "winlevel": win_level}
        return Answer(200, {"body": self.writeback(play_id, renamed=renamed).decode()})

    def writeback(self, play_id: str, *, renamed: bool = False, token: str | None = None) -> bytes:
        """The prize fulfillment POST as the v1.3 document shows it (``winlevel`` a string), or with the
        field names a production client found CataBoom sending instead (``playerid``, ``playcode``)."""
        play = self.plays[play_id]
        slug = play["campaign"]
        document = {
            "token": token if token is not None else self.campaigns[slug]["writebackToken"],
            "campaignid": slug,
            ("playerid" if renamed else "accountid"): play["accountid"],
            ("playcode" if renamed else "playid"): play_id,
            "winlevel": play.get("winlevel", "1"),
            "prizelink": f"{PLAY_HOST}/prize/{slug}/{play_id}",
            "prizecode": f"PRZ-{play_id[:8].upper()}",
            "prizepin": "4821",
            "description": f"Win level {play.get('winlevel', '1')}",
        }
        return json.dumps(document).encode()
