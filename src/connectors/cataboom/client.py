"""CataBoom ("Catapult"), as this connector speaks to it: the Request Unique URL call, the play link it
answers, DIG's opaque member reference, the prize fulfillment ("writeback") CataBoom posts and the
answer CataBoom expects. The kit's transport sends the request (timeouts, retries, the rate limit).

Facts and their sources: ../shared/reference/cataboom-tipalti-api.md Part 1 (CataBoom's URL deployment
and Prize Fulfillment API v1.3 documents, and a production client's code). What no public source
confirmed is marked UNVERIFIED here, and only here (the README lists the same):
- extra query parameters on ``dplayurl`` (DIG adds ``ref`` = award and play number) being passed
  through to the play and ignored otherwise ("&k=v..." in the deployment document, no semantics given);
- that ``dplayurl`` answers a refusal of its credentials with 401/403 (the documents show only success);
- that a writeback is sent again when its answer is not ``code`` 0 or no answer comes (no retry policy
  is documented): DIG answers 503 when it could not act, so that a retrying CataBoom would try again;
- the authentication webhook's request (``{"token": "<JWT>"}``, or ``?t=``) and answer: ES Loyalty's
  guide describes the flow, but its details are not public.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dig_connector_kit.http import Request
from dig_connector_kit.ratelimit import RateLimit

REQUEST_PLAY_URL = "requestUniqueUrl"
LIMITER_KEY = "cataboom-play"
# The play link ``dplayurl`` answers in plain text: https://secure.cataboom.com/dplay/{slug}/{uuid}.
PLAY_LINK = re.compile(r"^https://[^\s/?#]+/dplay/(?P<slug>[A-Za-z0-9_-]{1,64})/(?P<play>[A-Za-z0-9-]{1,64})/?$")
# Query parameters that carry the campaign's credentials: kept out of every log line and record.
CREDENTIAL_PARAMETERS = frozenset({"username", "password"})

# The writeback's answer codes, with their HTTP status (Prize Fulfillment API v1.3).
OK, BAD_TOKEN, UNKNOWN_CAMPAIGN, UNKNOWN_ACCOUNT, BAD_WIN_LEVEL = 0, 1000, 1100, 1200, 1300
HTTP_STATUS = {OK: 200, BAD_TOKEN: 401, UNKNOWN_CAMPAIGN: 404, UNKNOWN_ACCOUNT: 404, BAD_WIN_LEVEL: 403}
# Fields a production client found CataBoom sending under new names, the documented name first.
ALIASES = {"accountid": ("accountid", "playerid"), "playid": ("playid", "playcode")}
REQUIRED = ("token", "campaignid", "accountid", "playid", "winlevel")
# What of a writeback the audit trail keeps: never the token, nor the prize's code or PIN (the member's).
KEPT_FIELDS = ("campaignid", "accountid", "playid", "winlevel", "description")


@dataclass(frozen=True)
class CampaignCredentials:
    username: str
    password: str
    writeback_token: str


def campaign_credentials(secret: Mapping[str, Any], campaign: str) -> CampaignCredentials | None:
    entry = (secret.get("campaigns") or {}).get(campaign)
    if not isinstance(entry, Mapping):
        return None
    return CampaignCredentials(str(entry["username"]), str(entry["password"]), str(entry["writebackToken"]))


def member_ref(key: str, program_id: str | None, member_id: str) -> str:
    """The member's AccountID at CataBoom: an HMAC of the member (keyed by the secret's ``memberRefKey``),
    so CataBoom never holds ES Loyalty's member id or email, and the same member is the same account
    (CataBoom's Play Control counts plays by it)."""
    digest = hmac.new(key.encode(), f"{program_id or ''}\x1f{member_id}".encode(), hashlib.sha256).hexdigest()
    return "m" + digest[:39]


def request_play_url(
    base: str, campaign: str, credentials: CampaignCredentials, account: str, award_id: str, play: int, limit: RateLimit
) -> Request:
    """``GET {base}/dplayurl/{campaign}?username&password&AccountID[&k=v]``: one unique play link, in plain
    text. Server to server only: the credentials travel in the query string (CREDENTIAL_PARAMETERS), which
    no Attempt, log line (dig_connector_kit.http's httpx filter) or trace (X-Ray drops queries) keeps.
    A retry after a lost answer makes a second link nobody is given: unplayed, it costs nothing."""
    params = {
        "username": credentials.username,
        "password": credentials.password,
        "AccountID": account,
        "ref": f"{award_id}-{play}",  # UNVERIFIED: passed through (see the module's docstring)
    }
    return Request(
        REQUEST_PLAY_URL,
        "GET",
        f"{base}/dplayurl/{campaign}",
        {},
        LIMITER_KEY,
        limit,
        headers={"Accept": "text/plain"},
        params=params,
    )


@dataclass(frozen=True)
class PlayLink:
    url: str
    play_id: str


def read_play_link(text: str | None, campaign: str) -> PlayLink:
    """The plain-text answer: the link, its last path segment the play's id (as a production client
    stores it). Anything else (an HTML error page with 200) is not a link."""
    link = (text or "").strip()
    found = PLAY_LINK.match(link)
    if found is None:
        raise ValueError(f"CataBoom's answer is not a play link: {link[:80]!r}")
    if found.group("slug") != campaign:
        raise ValueError(f"CataBoom's play link is for campaign {found.group('slug')!r}, not {campaign!r}")
    return PlayLink(link.rstrip("/"), found.group("play"))


# --- the writeback ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Writeback:
    token: str
    campaign: str
    account: str
    play: str
    win_level: str
    description: str | None

    def kept(self) -> str:
        """What the audit trail keeps of it (KEPT_FIELDS: no token, no prize code or PIN)."""
        document = {
            "campaignid": self.campaign,
            "accountid": self.account,
            "playid": self.play,
            "winlevel": self.win_level,
            "description": self.description,
        }
        return json.dumps({k: v for k, v in document.items() if v is not None}, separators=(",", ":"))


class NotAWriteback(ValueError):
    """The body is not a writeback: not a JSON object, or a required field missing or empty."""


def _field(document: Mapping[str, Any], name: str) -> str:
    for spelling in ALIASES.get(name, (name,)):
        value = document.get(spelling)
        if value is not None and str(value).strip():
            return str(value).strip()
    raise NotAWriteback(f"the writeback has no {' or '.join(ALIASES.get(name, (name,)))}")


def read_writeback(body: str) -> Writeback:
    """CataBoom's POST: ``{"token","campaignid","accountid","playid","winlevel",...}``, accepting the renamed
    ``playerid`` and ``playcode``; ``winlevel`` a string ("0" a loss), a number taken as its text."""
    try:
        document = json.loads(body)
    except ValueError:
        raise NotAWriteback("the writeback is not JSON") from None
    if not isinstance(document, dict):
        raise NotAWriteback("the writeback is not a JSON object")
    token, campaign, account, play, level = (_field(document, name) for name in REQUIRED)
    description = document.get("description")
    return Writeback(
        token, campaign, account, play, level, str(description)[:200] if description not in (None, "") else None
    )


def answer_body(code: int, message: str) -> str:
    """CataBoom's documented answer: ``{"code": 0, "message": "..."}``."""
    return json.dumps({"code": code, "message": message}, separators=(",", ":"))


def same_token(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
