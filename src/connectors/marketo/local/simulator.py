"""A Marketo simulator: a test double that enforces what Adobe documents for the calls the connector
makes (../shared/reference/marketo-api.md): the token (client credentials, expiry, 601/602), errors
as HTTP 200 with ``success: false``, 300 records a call, 100 leads and tokens a trigger, activity
types and campaigns that must exist, 100 calls per 20 s (606), 10 at once (615), the daily quota
(607), record-level codes, and faults (an error code, an HTTP status, or a lost answer: the call is
performed and its answer lost). It records every request. Never shipped in a Lambda.

Served under ``/_sim/marketo``: ``/identity/oauth/token``, ``/rest/v1/...``, the shared surface of
dig_connector_kit.testing.double (GET/DELETE /requests, POST/DELETE /faults, where a fault may name a
Marketo error code: {"code": "606"}), and GET /leads /activities /triggers, POST /tokens/expire.
Assumptions of the simulator's own are named where they are made.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from dig_connector_kit.testing.double import Answer, Fault, ProviderSimulator

MAX_RECORDS = 300
MAX_TRIGGER_LEADS = 100
MAX_TOKENS = 100
TOKEN_NAME = re.compile(r"^\{\{my\.[^{}]+\}\}$")
LOOKUP_CALL = "leads.json (lookup)"  # the connector's name for Get Leads by Filter Type
CAMPAIGN_PATH = re.compile(r"^/rest/v1/campaigns/(\d+)/trigger\.json$")


def _error(code: str, message: str) -> Answer:
    return Answer(
        200, {"requestId": uuid.uuid4().hex[:12], "success": False, "errors": [{"code": code, "message": message}]}
    )


def _ok(result: list[dict[str, Any]]) -> Answer:
    return Answer(200, {"requestId": uuid.uuid4().hex[:12], "success": True, "result": result})


class MarketoSimulator(ProviderSimulator):
    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        known_fields: Iterable[str] = ("email", "firstName", "lastName"),
        activity_types: Iterable[int] = (),
        campaigns: Iterable[int] = (),
        token_lifetime: int = 3600,
        calls_per_20s: int = 100,
        daily_quota: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
        seed: int = 11,
    ) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.known_fields = frozenset(known_fields)
        self.activity_types = frozenset(activity_types)
        self.campaigns = frozenset(campaigns)
        self.token_lifetime = token_lifetime
        self.calls_per_20s = calls_per_20s
        self.daily_quota = daily_quota
        super().__init__(clock=clock, seed=seed)
        self._window: deque[float] = deque()
        self.calls_today = 0
        self.tokens: dict[str, float] = {}  # token -> expiry
        self.leads: dict[str, dict[str, Any]] = {}  # lookup value (lower) -> lead, with its "id"
        # Adobe warns that closely timed upserts of one key can create duplicate leads: a createOrUpdate of
        # a key whose first upsert is still in flight (a "slow" fault) makes a second lead, kept here.
        self.duplicate_leads: list[dict[str, Any]] = []
        self._in_flight: dict[str, float] = {}  # key -> when the upsert that made or changed it finishes
        self._slow_until: float | None = None
        self.activities: list[dict[str, Any]] = []
        self.triggers: list[dict[str, Any]] = []

    # --- HTTP -------------------------------------------------------------------------------------

    def call_name(self, method: str, path: str) -> str | None:
        if path == "/identity/oauth/token" and method in ("GET", "POST"):
            return "token"
        if (method, path) == ("GET", "/rest/v1/leads.json"):
            return LOOKUP_CALL
        if method != "POST":
            return None
        if path == "/rest/v1/leads.json":
            return "leads.json"
        if path == "/rest/v1/activities/external.json":
            return "activities/external.json"
        if CAMPAIGN_PATH.match(path):
            return "campaigns/trigger.json"
        return None

    def loggable_body(self, call: str, body: bytes) -> Any:
        return None if call == "token" else super().loggable_body(call, body)  # a token request carries the secret

    def log_extra(self, answer: Answer) -> dict[str, Any]:
        errors = answer.body.get("errors", []) if isinstance(answer.body, dict) else []
        return {"codes": [e["code"] for e in errors]}

    def check_fault(self, fault: Fault) -> None:
        if fault.extra.keys() - {"code"}:
            raise ValueError(f'unknown keys {sorted(fault.extra.keys() - {"code"})}; Marketo\'s own is "code"')

    def fault_answer(self, fault: Fault) -> Answer:
        code = fault.extra.get("code")
        if code:
            return _error(str(code), f"simulated {code}")
        return Answer(fault.status or 502, {"message": "simulated fault"})

    def control(self, method: str, path: str, body: bytes) -> Answer | None:
        with self._lock:
            listings = {
                "/leads": list(self.leads.values()),
                "/activities": list(self.activities),
                "/triggers": list(self.triggers),
            }
        if method == "GET" and path in listings:
            return Answer(200, listings[path])
        if (method, path) == ("POST", "/tokens/expire"):
            with self._lock:
                self.tokens = dict.fromkeys(self.tokens, 0.0)
            return Answer(204)
        return None

    # --- identity -----------------------------------------------------------------------------------

    def _token(self, query: str, headers: dict[str, str], body: bytes) -> Answer:
        form = {k: v[0] for k, v in parse_qs(query).items()}  # the swagger's query parameters
        if body:  # or a form body, as production clients send it
            form |= {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return Answer(
                400, {"error": "invalid_request", "error_description": "grant_type must be client_credentials"}
            )
        if (form.get("client_id"), form.get("client_secret")) != (self.client_id, self.client_secret):
            return Answer(401, {"error": "invalid_client", "error_description": "Bad client credentials"})
        now = self._clock()
        with self._lock:
            for token, expiry in self.tokens.items():  # asking again returns the live token, with its life left
                if expiry - now > 0:
                    return Answer(200, _token_body(token, int(expiry - now)))
            token = uuid.uuid4().hex
            self.tokens[token] = now + self.token_lifetime
        return Answer(200, _token_body(token, self.token_lifetime))

    # --- the REST calls ---------------------------------------------------------------------------

    def serve(self, call: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Answer:
        if call == "token":
            return self._token(query, headers, body)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            return _error("609", "Invalid JSON")
        if "access_token" in parse_qs(query):
            return _error("601", "Access token in a query string: send it in the Authorization header")
        authorization = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        token = authorization.removeprefix("Bearer ").strip()
        with self._lock:
            expiry = self.tokens.get(token)
            if expiry is None:
                return _error("601", "Access token invalid")
            if expiry <= self._clock():
                return _error("602", "Access token expired")
            now = self._clock()
            while self._window and self._window[0] <= now - 20:
                self._window.popleft()
            if len(self._window) >= self.calls_per_20s:
                return _error("606", f"Max rate limit '{self.calls_per_20s}' exceeded with in '20' secs")
            if self.calls_today >= self.daily_quota:
                return _error("607", "Daily quota reached")
            self._window.append(now)
            self.calls_today += 1
        try:
            return self.faulted(call, lambda: self._perform(call, path, parsed, query))
        finally:
            self._slow_until = None

    def slow_call(self, call: str, seconds: float) -> None:
        self._slow_until = self._clock() + seconds

    def _perform(self, call: str, path: str, body: Any, query: str = "") -> Answer:
        if call == LOOKUP_CALL:
            return self._get_leads(query)
        if not isinstance(body, dict):
            return _error("609", "Invalid JSON")
        if call == "leads.json":
            return self._leads(body)
        if call == "activities/external.json":
            return self._activities(body)
        match = CAMPAIGN_PATH.match(path)
        assert match is not None
        return self._trigger(int(match.group(1)), body)

    def _leads(self, body: dict[str, Any]) -> Answer:
        action = body.get("action", "createOrUpdate")
        if action not in ("createOrUpdate", "createOnly", "updateOnly", "createDuplicate"):
            return _error("1003", f"Invalid action {action}")
        lookup = body.get("lookupField", "email")
        if lookup not in self.known_fields:
            return _error("1011", f"Lookup field '{lookup}' not supported")
        records = body.get("input")
        if not isinstance(records, list) or not records:
            return _error("1003", "input must be a non-empty list")
        if len(records) > MAX_RECORDS:
            return _error("1003", f"at most {MAX_RECORDS} records per call")
        result: list[dict[str, Any]] = []
        seen: set[str] = set()
        with self._lock:
            for record in records:
                key = str(record.get(lookup, "")).lower()
                unknown = sorted(set(record) - self.known_fields)
                if not key:
                    result.append(_skipped("1003", f"Value for required field '{lookup}' not specified"))
                elif key in seen:
                    result.append(_skipped("1036", "Duplicate key in the input"))
                elif unknown:
                    result.append(_skipped("1006", f"Field '{unknown[0]}' not found"))
                else:
                    seen.add(key)
                    exists = key in self.leads
                    if action != "updateOnly" and self._clock() < self._in_flight.get(key, 0.0):
                        duplicate = {**record, "id": 1000 + len(self.leads) + len(self.duplicate_leads)}
                        self.duplicate_leads.append(duplicate)
                        result.append({"id": duplicate["id"], "status": "created"})
                        continue
                    if self._slow_until is not None:
                        self._in_flight[key] = self._slow_until
                    if action == "createOnly" and exists:
                        result.append(_skipped("1005", "Lead already exists"))
                    elif action == "updateOnly" and not exists:
                        result.append(_skipped("1004", "Lead not found"))
                    else:
                        lead = self.leads.setdefault(key, {"id": len(self.leads) + 1000})
                        lead.update(record)
                        result.append({"id": lead["id"], "status": "updated" if exists else "created"})
        return _ok(result)

    def _get_leads(self, query: str) -> Answer:
        """Get Leads by Filter Type: the leads whose ``filterType`` field holds one of ``filterValues``
        (up to 300), with the ``fields`` asked for; none found is success with an empty result. A lead
        whose upsert is still in flight is not found yet."""
        form = {k: v[0] for k, v in parse_qs(query).items()}
        field, values = form.get("filterType"), [v for v in form.get("filterValues", "").split(",") if v]
        if not field or not values:
            return _error("1003", "filterType and filterValues are required")
        if len(values) > MAX_RECORDS:
            return _error("1003", f"at most {MAX_RECORDS} filterValues")
        wanted = {v.lower() for v in values}
        fields = [f for f in form.get("fields", f"id,{field}").split(",") if f]
        with self._lock:
            now = self._clock()
            found = [
                {name: lead.get(name) for name in fields if name in lead}
                for key, lead in self.leads.items()
                if str(lead.get(field, "")).lower() in wanted and now >= self._in_flight.get(key, 0.0)
            ]
        return _ok(found)

    def _activities(self, body: dict[str, Any]) -> Answer:
        records = body.get("input")
        if not isinstance(records, list) or not records:
            return _error("1003", "input must be a non-empty list")
        if len(records) > MAX_RECORDS:
            return _error("1003", f"at most {MAX_RECORDS} records per call")
        result: list[dict[str, Any]] = []
        with self._lock:
            ids = {lead["id"] for lead in self.leads.values()}
            for record in records:
                if record.get("leadId") not in ids:
                    result.append({"status": "skipped", "errors": [{"code": "1004", "message": "Lead not found"}]})
                elif record.get("activityTypeId") not in self.activity_types:
                    # The simulator's assumption: an unknown activity type is a skipped record, code 1003.
                    result.append(
                        {"status": "skipped", "errors": [{"code": "1003", "message": "Invalid activityTypeId"}]}
                    )
                elif not all(k in record for k in ("activityDate", "primaryAttributeValue")):
                    result.append({"status": "skipped", "errors": [{"code": "1003", "message": "Missing field"}]})
                else:
                    self.activities.append(record)
                    marketo_id = len(self.activities)
                    result.append({"id": marketo_id, "marketoGUID": str(marketo_id), "status": "added"})
        return _ok(result)

    def _trigger(self, campaign_id: int, body: dict[str, Any]) -> Answer:
        if campaign_id not in self.campaigns:
            return _error("1003", f"Trigger campaign {campaign_id} not found, or not requested by the Web Service API")
        spec = body.get("input")
        if not isinstance(spec, dict) or not isinstance(spec.get("leads"), list) or not spec["leads"]:
            return _error("1003", "input.leads must be a non-empty list")
        tokens = spec.get("tokens", [])
        if len(spec["leads"]) > MAX_TRIGGER_LEADS or len(tokens) > MAX_TOKENS:
            return _error("1003", f"at most {MAX_TRIGGER_LEADS} leads and {MAX_TOKENS} tokens")
        for token in tokens:
            if not (isinstance(token, dict) and TOKEN_NAME.match(str(token.get("name", ""))) and "value" in token):
                return _error("1003", "tokens are {name: '{{my.name}}', value}")
        with self._lock:
            self.triggers.append({"campaignId": campaign_id, **spec})
        return _ok([{"id": campaign_id}])


def _skipped(code: str, message: str) -> dict[str, Any]:
    return {"status": "skipped", "reasons": [{"code": code, "message": message}]}


def _token_body(token: str, expires_in: int) -> dict[str, Any]:
    return {"access_token": token, "token_type": "bearer", "expires_in": expires_in, "scope": "dig@example.com"}
