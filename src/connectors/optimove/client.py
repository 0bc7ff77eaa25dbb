"""Optimove's REST APIs: one request builder per endpoint, and the transport that sends them.

Facts and their sources: ../shared/reference/optimove-api.md. Shapes marked (unverified) there
are built in exactly one function below, so that correcting one is a one-line change.

Retry policy, from Optimove's own SDKs: 429, 5xx, timeouts and network errors are retried with
exponential backoff and full jitter, honouring Retry-After, within the invocation's time; any
other 4xx is final. The API key travels in a header and is never logged.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from connectors.optimove.config import RateLimit
from connectors.optimove.mapping import ChannelPreference, MailCall, RealtimeCall
from connectors.optimove.ratelimit import Limiter, RateLimitTimeout
from db.records import Attempt, iso, utc_now
from dig_connector_kit.model import Deadline

MAX_CUSTOMERS_PER_UPDATE = 1000
MAX_ATTRIBUTES_PER_CUSTOMER = 10
MAX_CUSTOMERS_PER_PREFERENCE = 50_000
CUSTOMER_API = "customer-api"
MAIL_API = "transactional-mail"
INSERT_OR_UPDATE = "InsertOrUpdateCustomers"
REALTIME_CALL = "reportEvent"  # the audit trail's name for a real-time event, in either format
REALTIME_TOKEN_HEADER = "X-Realtime-Token"  # noqa: S105 - a header's name; UNVERIFIED (server_side_event)
AUTH_REFUSED, THROTTLED, SERVER_ERROR = "auth-refused", "throttled", "server-error"
READ_TIMEOUT_SECONDS = 20.0
REQUEST_TIMEOUT = httpx.Timeout(connect=3.0, read=READ_TIMEOUT_SECONDS, write=10.0, pool=5.0)


@dataclass(frozen=True)
class Credentials:
    api_key: str
    realtime_token: str | None = None


@dataclass(frozen=True)
class Request:
    call: str  # the endpoint's name, as the audit trail shows it
    method: str
    url: str
    body: dict[str, Any]
    limiter_key: str | None
    limit: RateLimit | None
    headers: dict[str, str] = field(default_factory=dict)
    # A call that Optimove does not deduplicate and whose effect a member sees (a real-time event
    # starts a campaign): retried only when it certainly did not happen, never after a lost answer.
    at_most_once: bool = False
    api_key: bool = True  # the customer and mail APIs take X-API-KEY; the real-time gateway does not
    call_id: str | None = None  # a coalesced call whose results come back later to its callback URL


@dataclass
class CallResult:
    ok: bool
    retryable: bool
    status: str
    error: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    body: Any = None
    note: str | None = None
    retry_after: float | None = None
    answer_lost: bool = False  # the request may have been acted on: sent, and no usable answer came


# --- request builders: one per endpoint ---------------------------------------------------------
# Every shape Optimove does not document in full is marked UNVERIFIED here, and only here; the
# README's "What is not verified" lists the same places.


def update_customer_attributes(
    api_base: str,
    customers: Sequence[tuple[str, Sequence[tuple[str, str]]]],
    limit: RateLimit,
    callback_url: str | None = None,
    call_id: str | None = None,
) -> Request:
    """POST {apiBase}/Customers/UpdateCustomerAttributes: up to 1,000 existing customers, 10
    attributes each. An unknown CustomerID is reported INVALID_CUSTOMER, later, to the callback."""
    if len(customers) > MAX_CUSTOMERS_PER_UPDATE:
        raise ValueError(f"{len(customers)} customers in one call; Optimove takes {MAX_CUSTOMERS_PER_UPDATE}")
    body: dict[str, Any] = {
        "CustomerNewAttributesValuesList": [
            {
                "CustomerID": customer_id,
                "Attributes": [{"RealFieldName": name, "Value": value} for name, value in attributes],
            }
            for customer_id, attributes in customers
        ]
    }
    if callback_url:  # per-customer results come back there, within about a minute
        body["CallbackURL"] = callback_url
    return Request(
        "UpdateCustomerAttributes",
        "POST",
        f"{api_base}/Customers/UpdateCustomerAttributes",
        body,
        CUSTOMER_API,
        limit,
        call_id=call_id if callback_url else None,
    )


def insert_or_update_customers(
    api_base: str,
    customers: Sequence[tuple[str, Sequence[tuple[str, str]]]],
    limit: RateLimit,
    *,
    method: str,
    path: str,
    callback_url: str | None = None,
    call_id: str | None = None,
) -> Request:
    """Optimove's "Insert or update customers": 1 to 1,000 customers, answered 202, results to the
    callback. The body's field names are documented (Customers, CustomerId, Attributes, CallbackUrl);
    UNVERIFIED: the method and path (configuration: customers.upsertMethod / upsertPath), whether
    Attributes may be empty (a registration that maps none sends []), and the callback's shape (read
    like UpdateCustomerAttributes' results)."""
    if not 1 <= len(customers) <= MAX_CUSTOMERS_PER_UPDATE:
        raise ValueError(f"{len(customers)} customers in one call; Optimove takes 1 to {MAX_CUSTOMERS_PER_UPDATE}")
    body: dict[str, Any] = {
        "Customers": [
            {
                "CustomerId": customer_id,
                "Attributes": [{"RealFieldName": name, "Value": value} for name, value in attributes],
            }
            for customer_id, attributes in customers
        ]
    }
    if callback_url:
        body["CallbackUrl"] = callback_url
    return Request(
        INSERT_OR_UPDATE,
        method,
        f"{api_base}{path}",
        body,
        CUSTOMER_API,
        limit,
        call_id=call_id if callback_url else None,
    )


def set_customer_channel_preference(
    api_base: str, preference: ChannelPreference, customer_ids: Sequence[str], limit: RateLimit
) -> Request:
    """POST {apiBase}/Integrations/SetCustomerChannelPreference: CommunicationMode is an integer whose
    meaning Optimove does not publish (the tenant's values come from the configuration)."""
    body = {
        "ChannelID": preference.channel_id,
        "CustomerIDs": list(customer_ids),
        "CommunicationMode": preference.mode,
        "AppID": preference.app_id,
    }
    return Request(
        "SetCustomerChannelPreference",
        "POST",
        f"{api_base}/Integrations/SetCustomerChannelPreference",
        body,
        CUSTOMER_API,
        limit,
    )


def send_transactional_mail(api_base: str, email: str, mail: MailCall, limit: RateLimit) -> Request:
    """POST {apiBase}/TransactionalMail/SendTransactionalMail, one recipient addressed by email.

    UNVERIFIED: the path (inferred from its sibling SendFinalizedTransactionalMail), and the inner
    shape of a recipient's ``Personalizations`` ({"Tag", "Value"} items): the array's name and its
    place are documented, its keys are not. One mail per call: UniqueMessageID is per call, and it is
    what keeps a retry or a replay from mailing the member twice, so mails are never coalesced.
    """
    recipient: dict[str, Any] = {"Email": email}
    if mail.tags:
        recipient["Personalizations"] = [{"Tag": tag, "Value": value} for tag, value in mail.tags.items()]
    body = {"TemplateID": mail.template_id, "UniqueMessageID": mail.unique_message_id, "Recipients": [recipient]}
    return Request(
        "SendTransactionalMail", "POST", f"{api_base}/TransactionalMail/SendTransactionalMail", body, MAIL_API, limit
    )


def report_event(realtime_base: str, token: str, customer_id: str, realtime: RealtimeCall) -> Request:
    """The legacy format: POST {gateway}/reportEvent, the tenant's real-time token in the body."""
    body = {"tid": token, "cid": customer_id, "eid": realtime.event_id, "context": realtime.context}
    return Request(
        REALTIME_CALL, "POST", f"{realtime_base}/reportEvent", body, None, None, at_most_once=True, api_key=False
    )


def server_side_event(realtime_base: str, token: str, tenant: int, customer_id: str, realtime: RealtimeCall) -> Request:
    """The current server-side format, to the tenant's endpoint (the realtime base URL Optimove gives
    at onboarding): {tenant, timestamp, event, customer, context}. UNVERIFIED: how the real-time
    token travels (sent here as the header X-Realtime-Token)."""
    moment = realtime.occurred_at.astimezone(UTC)
    body = {
        "tenant": tenant,
        "timestamp": moment.strftime("%Y-%m-%d %H:%M:%S.%f UTC"),
        "event": realtime.name,
        "customer": customer_id,
        "context": realtime.context,
    }
    return Request(
        REALTIME_CALL,
        "POST",
        realtime_base,
        body,
        None,
        None,
        headers={REALTIME_TOKEN_HEADER: token},
        at_most_once=True,
        api_key=False,
    )


@dataclass(frozen=True)
class CustomerError:
    customer_id: str
    code: str
    field: str | None = None


@dataclass(frozen=True)
class UpdateResults:
    is_success: bool
    request_id: str | None
    errors: list[CustomerError]


def parse_update_results(payload: Any) -> UpdateResults | None:
    """The results Optimove posts to a call's callback URL, as documented:
    ``{"isSuccess": false, "requestId": "...", "errors": [{"error", "customerId", "realFieldName"}]}``,
    one entry per rejected customer and field, no list of successes. None: not that shape."""
    if not isinstance(payload, dict) or not isinstance(payload.get("isSuccess"), bool):
        return None
    entries = payload.get("errors") or []
    if not isinstance(entries, list):
        return None
    errors = []
    for entry in entries:
        if not isinstance(entry, dict) or not entry.get("customerId") or not entry.get("error"):
            return None
        field = entry.get("realFieldName")
        errors.append(CustomerError(str(entry["customerId"]), str(entry["error"]), str(field) if field else None))
    request_id = payload.get("requestId")
    return UpdateResults(payload["isSuccess"], str(request_id) if request_id else None, errors)


# --- transport ----------------------------------------------------------------------------------


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("Error", "error", "message", "Message"):
            if body.get(key):
                return str(body[key])[:300]
    return str(body)[:300]


class Transport:
    def __init__(
        self,
        http: httpx.Client,
        credentials: Callable[[], Credentials],
        limiter: Limiter,
        *,
        max_tries: int = 4,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._http = http
        self._credentials = credentials
        self._limiter = limiter
        self._max_tries = max_tries
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._sleep = sleep
        self._monotonic = monotonic
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.calls_made = 0
        self.outcomes: Counter[str] = Counter()  # calls by answer: for the invocation's metrics

    def take_outcomes(self) -> Counter[str]:
        """The calls made since the last take, by answer: ok, throttled, server error, auth refused, ..."""
        taken, self.outcomes = self.outcomes, Counter()
        return taken

    def send(self, request: Request, deadline: Deadline, *, conflict_means_done: bool = False) -> CallResult:
        attempts: list[Attempt] = []
        result = CallResult(ok=False, retryable=True, status="not sent", attempts=attempts)
        if not deadline.allows(READ_TIMEOUT_SECONDS + 1):
            result.error = "not sent: the invocation has no time left for another call"
            return result
        for attempt in range(self._max_tries):
            if request.limiter_key and request.limit:
                try:
                    self._limiter.acquire(request.limiter_key, request.limit, max(deadline.remaining() - 5, 0))
                except RateLimitTimeout as error:
                    result.error = f"rate limit: {error}"
                    return result
            result = self._once(request, attempts, conflict_means_done)
            if request.at_most_once and result.answer_lost:
                result.retryable = False
                result.error = (
                    f"the answer was lost ({result.error or result.status}): Optimove may have acted on it, "
                    "and it does not deduplicate this call, so it is not sent again automatically"
                )
                return result
            if result.ok or not result.retryable:
                return result
            if attempt + 1 == self._max_tries:
                break
            wait = self._backoff_base * 2**attempt * self._rng.random()
            wait = min(wait, self._backoff_cap)
            if result.retry_after is not None:
                wait = max(wait, result.retry_after)
            if not deadline.allows(wait + READ_TIMEOUT_SECONDS + 1):
                break
            self._sleep(wait)
        return result

    def _once(self, request: Request, attempts: list[Attempt], conflict_means_done: bool) -> CallResult:
        headers = {"Content-Type": "application/json", **request.headers}
        if request.api_key:
            headers["X-API-KEY"] = self._credentials().api_key
        started = self._monotonic()
        at = iso(utc_now())
        self.calls_made += 1
        try:
            response = self._http.request(
                request.method, request.url, json=request.body, headers=headers, timeout=REQUEST_TIMEOUT
            )
        except (httpx.ConnectTimeout, httpx.ConnectError, httpx.PoolTimeout) as error:  # never sent
            return self._record(attempts, request, at, started, "network", type(error).__name__, retryable=True)
        except httpx.TimeoutException:
            result = self._record(
                attempts, request, at, started, "timeout", "no answer within the timeout", retryable=True
            )
            result.answer_lost = True
            return result
        except httpx.TransportError as error:
            result = self._record(attempts, request, at, started, "network", type(error).__name__, retryable=True)
            result.answer_lost = True
            return result
        status = response.status_code
        request_id = response.headers.get("x-request-id") or response.headers.get("x-amzn-requestid")
        if 200 <= status < 300:
            body = _json_or_none(response)
            if isinstance(body, dict) and body.get("IsSuccess") is False:
                # Optimove answers some refusals ("Invalid template") with a 2xx and IsSuccess false.
                return self._record(attempts, request, at, started, str(status), error_text(response), retryable=False)
            result = self._record(
                attempts, request, at, started, str(status), None, retryable=False, ok=True, request_id=request_id
            )
            result.body = body
            if status == 206:
                result.note = f"{request.call} answered 206: {error_text(response)}"
            return result
        if status == 409 and conflict_means_done:
            result = self._record(
                attempts, request, at, started, "409", None, retryable=False, ok=True, request_id=request_id
            )
            result.note = f"{request.call}: Optimove already has this UniqueMessageID (409); not sent again"
            return result
        retryable = status == 429 or status == 408 or status >= 500
        result = self._record(
            attempts,
            request,
            at,
            started,
            str(status),
            error_text(response),
            retryable=retryable,
            request_id=request_id,
        )
        if retryable:
            result.retry_after = retry_after_seconds(response)
            # 429 and 503 say the request was not served; any other 5xx may come after it was acted on.
            result.answer_lost = status >= 500 and status != 503
        return result

    def _record(
        self,
        attempts: list[Attempt],
        request: Request,
        at: str,
        started: float,
        status: str,
        error: str | None,
        *,
        retryable: bool,
        ok: bool = False,
        request_id: str | None = None,
    ) -> CallResult:
        self.outcomes[answer_class(status)] += 1
        attempts.append(
            Attempt(
                at=at,
                call=request.call,
                status=status,
                latencyMs=int((self._monotonic() - started) * 1000),
                error=error,
                requestId=request_id,
                callId=request.call_id,
            )
        )
        return CallResult(ok=ok, retryable=retryable, status=status, error=error, attempts=attempts)


def answer_class(status: str) -> str:
    """What the dashboard and alarms count a provider's answer as."""
    if status in ("401", "403"):
        return AUTH_REFUSED
    if status == "429":
        return THROTTLED
    if (status.isdigit() and int(status) >= 500) or status in ("timeout", "network"):
        return SERVER_ERROR
    return "ok" if (status.isdigit() and int(status) < 400) or status == "409" else "refused"


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
