"""Adobe Marketo Engage's REST API: the token, one request builder per endpoint, and how Marketo's
answers are read (errors arrive as HTTP 200 with ``success: false``). The kit's transport sends them.

Facts and sources: ../shared/reference/marketo-api.md (Adobe's docs and three production clients).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from connectors.marketo import manifest
from dig_connector_kit import oauth
from dig_connector_kit.http import REQUEST_TIMEOUT, BodyVerdict, Request
from dig_connector_kit.ratelimit import RateLimit

MAX_RECORDS_PER_CALL = 300  # leads.json, activities/external.json
MAX_LEADS_PER_TRIGGER = 100
LIMITER_KEY = manifest.LIMITER_KEY
RENEW_CODES = frozenset({"601", "602"})  # token invalid / expired: renew and resend
# Timed out, rate, unavailable, system error, subscription unreachable, concurrency, transient. Adobe: a 6xx
# code means the request failed entirely and was not executed, so sending it again is safe.
RETRY_CODES = frozenset({"604", "606", "608", "611", "614", "615", "713"})
# Adobe's documented server-side timeouts (help/rest-api/leads.md, activities.md "Timeouts"): giving up
# sooner would resend a call Marketo may still be doing (a second lead for one key).
SYNC_LEADS_TIMEOUT_SECONDS = 90.0
ADD_CUSTOM_ACTIVITY_TIMEOUT_SECONDS = 90.0
GET_LEADS_BY_FILTER_TIMEOUT_SECONDS = 60.0
MAX_FILTER_VALUES = 300
DAILY_QUOTA = "607"
TOKEN_MARGIN_SECONDS = 60  # a token with less life than this is renewed first


TokenRefused = oauth.TokenRefused  # the identity service refused the client credentials: no retry mends it


class TokenSource(oauth.ClientCredentialsToken):
    """The REST token (the kit's ClientCredentialsToken), cached and renewed before it expires and
    whenever Marketo says 601/602. It travels only in the Authorization header, never in a URL, never in
    a log or an audit record. ``expires_in`` 0 (seen in production by RudderStack): the live token at the
    end of its life, asked for once more."""

    def __init__(
        self,
        http: httpx.Client,
        identity_base: str,
        credentials: Callable[[], Mapping[str, str]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            http, credentials, provider="Marketo's identity service", margin_seconds=TOKEN_MARGIN_SECONDS, clock=clock
        )
        self._identity = identity_base.rstrip("/")

    def _request(self, secret: Mapping[str, str]) -> httpx.Response:
        # The client secret goes in a form body (Adobe also takes query parameters: not in a URL).
        form = {
            "grant_type": "client_credentials",
            "client_id": secret["clientId"],
            "client_secret": secret["clientSecret"],
        }
        return self._http.post(f"{self._identity}/oauth/token", data=form, timeout=REQUEST_TIMEOUT)


def read_body(_request: Request, status: int, body: Any) -> BodyVerdict | None:
    """A 200 with ``success: false`` is Marketo's error answer; codes are strings."""
    if not isinstance(body, dict) or body.get("success") is not False:
        return None
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    codes = [str(e.get("code")) for e in errors]
    text = "; ".join(f"{e.get('code')} {e.get('message', '')}".strip() for e in errors)[:300] or "success false"
    first = codes[0] if codes else str(status)
    if RENEW_CODES & set(codes):
        return BodyVerdict(text, retryable=True, renew=True, status=first)
    if DAILY_QUOTA in codes:
        return BodyVerdict(text, retryable=False, status=DAILY_QUOTA)
    return BodyVerdict(text, retryable=bool(RETRY_CODES & set(codes)), status=first)


# --- request builders: one per endpoint -----------------------------------------------------------


def upsert_leads(
    rest_base: str,
    leads: Sequence[Mapping[str, Any]],
    lookup_field: str,
    limit: RateLimit,
    action: str = "createOrUpdate",
) -> Request:
    """POST {rest}/v1/leads.json (Sync Leads), by the lookup field, up to 300 leads. Never resent by the
    transport after a lost answer: Marketo may still be creating the leads, and a second createOrUpdate
    of one key then makes a second lead. The connector looks them up first (``get_leads``)."""
    if not 1 <= len(leads) <= MAX_RECORDS_PER_CALL:
        raise ValueError(f"{len(leads)} leads in one call; Marketo takes 1 to {MAX_RECORDS_PER_CALL}")
    body = {"action": action, "lookupField": lookup_field, "input": [dict(lead) for lead in leads]}
    return Request(
        "leads.json",
        "POST",
        f"{rest_base}/v1/leads.json",
        body,
        LIMITER_KEY,
        limit,
        at_most_once=action != "updateOnly",  # an update cannot make a second lead: resent freely
        read_timeout_seconds=SYNC_LEADS_TIMEOUT_SECONDS,
    )


def get_leads(rest_base: str, lookup_field: str, values: Sequence[str], limit: RateLimit) -> Request:
    """GET {rest}/v1/leads.json?filterType=&filterValues= (Get Leads by Filter Type): the leads whose
    lookup field holds one of up to 300 values, with their ids. Read-only: retried freely."""
    if not 1 <= len(values) <= MAX_FILTER_VALUES:
        raise ValueError(f"{len(values)} values; a filter takes 1 to {MAX_FILTER_VALUES}")
    params = {"filterType": lookup_field, "filterValues": ",".join(values), "fields": f"id,{lookup_field}"}
    return Request(
        "leads.json (lookup)",
        "GET",
        f"{rest_base}/v1/leads.json",
        {},
        LIMITER_KEY,
        limit,
        params=params,
        read_timeout_seconds=GET_LEADS_BY_FILTER_TIMEOUT_SECONDS,
    )


def found_leads(body: Any, lookup_field: str) -> dict[str, int]:
    """Lead ids by lookup value (lower case) from a Get Leads answer; an empty result is none found."""
    found: dict[str, int] = {}
    for entry in (body or {}).get("result") or []:
        if isinstance(entry, dict) and str(entry.get("id", "")).isdigit() and entry.get(lookup_field) is not None:
            found.setdefault(str(entry[lookup_field]).lower(), int(entry["id"]))
    return found


def add_activities(rest_base: str, activities: Sequence[Mapping[str, Any]], limit: RateLimit) -> Request:
    """POST {rest}/v1/activities/external.json, up to 300. Marketo documents no idempotency key for
    activities: the call is at most once (never sent again after a lost answer)."""
    if not 1 <= len(activities) <= MAX_RECORDS_PER_CALL:
        raise ValueError(f"{len(activities)} activities in one call; Marketo takes 1 to {MAX_RECORDS_PER_CALL}")
    body = {"input": [dict(activity) for activity in activities]}
    return Request(
        "activities/external.json",
        "POST",
        f"{rest_base}/v1/activities/external.json",
        body,
        LIMITER_KEY,
        limit,
        at_most_once=True,
        read_timeout_seconds=ADD_CUSTOM_ACTIVITY_TIMEOUT_SECONDS,
    )


def trigger_campaign(
    rest_base: str, campaign_id: int, lead_ids: Sequence[int], tokens: Mapping[str, str], limit: RateLimit
) -> Request:
    """POST {rest}/v1/campaigns/{id}/trigger.json: up to 100 leads and 100 My Tokens, at most once."""
    if not 1 <= len(lead_ids) <= MAX_LEADS_PER_TRIGGER:
        raise ValueError(f"{len(lead_ids)} leads; a trigger takes 1 to {MAX_LEADS_PER_TRIGGER}")
    body = {
        "input": {
            "leads": [{"id": lead_id} for lead_id in lead_ids],
            "tokens": [{"name": name, "value": value} for name, value in tokens.items()],
        }
    }
    url = f"{rest_base}/v1/campaigns/{campaign_id}/trigger.json"
    return Request("campaigns/trigger.json", "POST", url, body, LIMITER_KEY, limit, at_most_once=True)


@dataclass(frozen=True)
class RecordResult:
    """One input's result, in input order: created / updated / added, or skipped with Marketo's code."""

    status: str
    id: int | None = None
    code: str | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("created", "updated", "added")


def record_results(body: Any) -> list[RecordResult]:
    """The ``result`` list of a leads or activities answer. A skipped item's codes are under
    ``reasons`` (leads) or ``errors`` (the documented activities example): both are read."""
    results = []
    for entry in (body or {}).get("result") or []:
        reasons = entry.get("reasons") or entry.get("errors") or [{}]
        first = reasons[0] if isinstance(reasons[0], dict) else {}
        results.append(
            RecordResult(
                status=str(entry.get("status", "")),
                id=int(entry["id"]) if str(entry.get("id", "")).isdigit() else None,
                code=str(first["code"]) if "code" in first else None,
                message=first.get("message"),
            )
        )
    return results
