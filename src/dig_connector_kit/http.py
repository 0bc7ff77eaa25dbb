"""The HTTP transport every connector uses: timeouts, retries with exponential backoff and full
jitter honouring Retry-After, the provider's rate limit held across invocations, one ``Attempt`` per
call for the audit trail, and hooks for what differs between providers: how a request is
authorized (``authorize``, ``renew``), and how a 2xx body says it failed (``read_body``).

Retry policy: 429, 408, 5xx, timeouts and network errors are retried within the invocation's time;
any other 4xx is final. A request marked ``at_most_once`` (a provider call with a side effect a
member sees and no idempotency key) is retried only when it certainly did not happen.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from db.records import Attempt, iso, utc_now
from dig_connector_kit.concurrency import ConcurrencyGate, NoPlaceInTime
from dig_connector_kit.model import Deadline
from dig_connector_kit.ratelimit import DailyShare, Limiter, QuotaSpent, RateLimit, RateLimitTimeout

AUTH_REFUSED, THROTTLED, SERVER_ERROR = "auth-refused", "throttled", "server-error"
READ_TIMEOUT_SECONDS = 20.0
QUOTA_SHARE_SPENT = "quota share spent"  # a CallResult's status: the request's ``daily`` share, nothing sent
REQUEST_TIMEOUT = httpx.Timeout(connect=3.0, read=READ_TIMEOUT_SECONDS, write=10.0, pool=5.0)
# A call is only started with at least this much of the invocation left; its read timeout is cut to
# what is left, so that the synchronous flow (about 20 s in all) can make several calls.
MIN_CALL_SECONDS = 6.0


def request_timeout(deadline: Deadline, read_seconds: float | None = None) -> httpx.Timeout:
    """The call's timeouts: its read timeout (the provider's own for the endpoint when it documents one
    longer than ours, else READ_TIMEOUT_SECONDS), cut to what the invocation has left."""
    read = max(1.0, min(read_seconds or READ_TIMEOUT_SECONDS, deadline.remaining() - 1.0))
    return httpx.Timeout(connect=3.0, read=read, write=min(10.0, read), pool=min(5.0, read))


MAX_RENEWALS = 2  # credentials renewed and the call resent at once, per call
MAX_TEXT_ANSWER_CHARS = 4096


class _QueryRedacted(logging.Filter):
    """httpx logs each request's full URL at INFO ("HTTP Request: GET <url> ..."): a provider that takes
    its credentials in the query string (CataBoom) would put them in a log line when INFO is on. The
    URL's query is dropped from that record (X-Ray's httpx patch drops it from traces already)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) > 1 and isinstance(record.args[1], httpx.URL):
            record.args = (record.args[0], record.args[1].copy_with(query=None), *record.args[2:])
        return True


logging.getLogger("httpx").addFilter(_QueryRedacted())


@dataclass(frozen=True)
class Request:
    call: str  # the endpoint's name, as the audit trail shows it
    method: str
    url: str
    body: dict[str, Any]
    limiter_key: str | None
    limit: RateLimit | None
    headers: dict[str, str] = field(default_factory=dict)
    # A call the provider does not deduplicate and whose effect a member sees (a real-time event
    # starts a campaign): retried only when it certainly did not happen, never after a lost answer.
    at_most_once: bool = False
    authenticated: bool = True  # whether ``authorize`` adds the provider's credentials
    call_id: str | None = None  # a coalesced call whose results come back later to its callback URL
    params: dict[str, str] | None = None  # query parameters
    # The provider's documented server-side timeout for this endpoint (Marketo: 90 s for Sync Leads):
    # giving up before it answers would resend what it may still be doing.
    read_timeout_seconds: float | None = None
    # The provider's limit on calls in flight at once for ``limiter_key`` (Marketo's 10 per instance, of
    # which DIG takes its share), held across invocations through the transport's gate.
    max_in_flight: int | None = None
    # The body as exact bytes, instead of ``body`` as JSON: what ``authorize`` signs is what is sent.
    content: bytes | None = None
    # The provider's daily quota, of which DIG may spend this share on ``limiter_key`` (Marketo's
    # ``limits.dailyCalls``): every attempt is counted with its rate slot; a spent share sends nothing.
    daily: DailyShare | None = None


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
    text: str | None = None  # a 2xx answer that is not JSON, as text (CataBoom's plain-text play link)
    renew: bool = False  # the provider said the credentials expired


@dataclass(frozen=True)
class BodyVerdict:
    """What a 2xx body says when it says the call failed (providers that answer errors with 200)."""

    error: str
    retryable: bool = False
    renew: bool = False  # the credentials expired: renew them and resend at once
    retry_after: float | None = None
    status: str | None = None  # what the audit trail shows instead of the HTTP status (e.g. "606")


ReadBody = Callable[["Request", int, Any], "BodyVerdict | None"]


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
        authorize: Callable[[Request], dict[str, str]],
        limiter: Limiter,
        *,
        read_body: ReadBody | None = None,
        renew: Callable[[], None] | None = None,
        max_tries: int = 4,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        provider: str = "the provider",
        gate: ConcurrencyGate | None = None,
        renew_on: frozenset[int] = frozenset(),
    ) -> None:
        self._http = http
        # HTTP statuses that mean the credentials expired (Salesforce's 401): ``renew`` and resend at once.
        self._renew_on = renew_on
        self._gate = gate
        self._provider = provider  # named in the audit trail's text
        self._authorize = authorize
        self._read_body = read_body
        self._renew = renew
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
        if not deadline.allows(MIN_CALL_SECONDS):
            result.error = "not sent: the invocation has no time left for another call"
            return result
        attempt, renewals = 0, 0
        while attempt < self._max_tries:
            attempt += 1
            gated = self._gate is not None and bool(request.max_in_flight) and bool(request.limiter_key)
            limited = bool(request.limiter_key) and (request.limit is not None or request.daily is not None)
            if limited and not gated:  # a gated call takes its slot and its count with its place
                try:
                    self._limiter.acquire(
                        str(request.limiter_key),
                        request.limit,
                        max(deadline.remaining() - 5, 0),
                        daily=request.daily,
                    )
                except RateLimitTimeout as error:
                    result.error = f"rate limit: {error}"
                    return result
                except QuotaSpent as error:
                    return self._quota_spent(result, error)
            timeout = request_timeout(deadline, request.read_timeout_seconds)
            try:
                with self._in_flight(request, timeout, deadline):
                    result = self._once(request, attempts, conflict_means_done, timeout)
            except NoPlaceInTime as error:
                result.error = f"concurrency limit: {error}"
                return result
            except RateLimitTimeout as error:
                result.error = f"rate limit: {error}"
                return result
            except QuotaSpent as error:
                return self._quota_spent(result, error)
            if result.renew and self._renew is not None and renewals < MAX_RENEWALS:
                renewals += 1
                attempt -= 1  # a renewal does not count as a try
                self._renew()
                continue
            if request.at_most_once and result.answer_lost:
                result.retryable = False
                result.error = (
                    f"the answer was lost ({result.error or result.status}): {self._provider} may have acted on it, "
                    "and it does not deduplicate this call, so it is not sent again automatically"
                )
                return result
            if result.ok or not result.retryable:
                return result
            if attempt == self._max_tries:
                break
            wait = self._backoff_base * 2 ** (attempt - 1) * self._rng.random()
            wait = min(wait, self._backoff_cap)
            if result.retry_after is not None:
                wait = max(wait, result.retry_after)
            if not deadline.allows(wait + MIN_CALL_SECONDS):
                break
            self._sleep(wait)
        return result

    def _in_flight(self, request: Request, timeout: httpx.Timeout, deadline: Deadline) -> Any:
        """A place among the provider's calls in flight, for as long as this one can take, and its slot
        under the request's rate limit with it (one write where the gate and the limiter took two)."""
        if self._gate is None or not request.max_in_flight or not request.limiter_key:
            return contextlib.nullcontext()
        lease = (timeout.read or READ_TIMEOUT_SECONDS) + (timeout.connect or 0) + (timeout.write or 0)
        budget = max(deadline.remaining() - MIN_CALL_SECONDS, 0.0)
        return self._gate.hold(
            request.limiter_key, request.max_in_flight, lease, budget, rate=request.limit, daily=request.daily
        )

    def _quota_spent(self, result: CallResult, error: QuotaSpent) -> CallResult:
        result.retryable = False
        result.status = QUOTA_SHARE_SPENT
        result.error = f"DIG's share of {self._provider}'s daily quota ({error.share.calls} calls) is spent"
        return result

    def _once(
        self, request: Request, attempts: list[Attempt], conflict_means_done: bool, timeout: httpx.Timeout
    ) -> CallResult:
        headers = {"Content-Type": "application/json", **request.headers}
        if request.authenticated:
            headers.update(self._authorize(request))
        started = self._monotonic()
        at = iso(utc_now())
        self.calls_made += 1
        try:
            response = self._http.request(
                request.method,
                request.url,
                json=request.body if request.method != "GET" and request.content is None else None,
                content=request.content,
                params=request.params,
                headers=headers,
                timeout=timeout,
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
            verdict = self._read_body(request, status, body) if self._read_body is not None else None
            if verdict is not None:
                result = self._record(
                    attempts,
                    request,
                    at,
                    started,
                    verdict.status or str(status),
                    verdict.error,
                    retryable=verdict.retryable,
                    request_id=request_id,
                )
                result.renew, result.retry_after, result.body = verdict.renew, verdict.retry_after, body
                return result
            result = self._record(
                attempts, request, at, started, str(status), None, retryable=False, ok=True, request_id=request_id
            )
            result.body = body
            if body is None and response.content:
                result.text = response.text[:MAX_TEXT_ANSWER_CHARS]
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
        if status in self._renew_on:
            result = self._record(attempts, request, at, started, str(status), error_text(response), retryable=False)
            result.renew = True
            return result
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
