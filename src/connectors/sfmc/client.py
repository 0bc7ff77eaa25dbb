"""Salesforce Marketing Cloud's REST API, as this connector calls it: one request builder per endpoint,
the token, and how each answer is read. The kit's transport sends them (timeouts, retries with backoff
honouring Retry-After, the rate limit held across invocations, one audit attempt per call).

Facts and their sources: ../shared/reference/sfmc-api.md. What no public source confirmed is marked
UNVERIFIED here, and only here (the README lists the same):
- the HTTP status and body of a reused messageKey: taken to be a per-recipient ``errorcode`` 109110 in
  the send's answer (``DUPLICATE_MESSAGE_KEY``), read as "sent before";
- that an asynchronous upsert's results list its rows in the order they were sent (``row_errors``);
- that a token's ``expires_in`` is honoured to the second (DIG renews 5 minutes early, as FuelSDK does);
- how many recipients a multi-recipient SMS send takes (``MAX_SMS_RECIPIENTS_PER_CALL``: DIG sends at
  most 100), and that ``to`` is the E.164 number without its ``+`` (Salesforce's sample: "15555551234");
- that an ENS ``EngagementEvents.EmailUnsubscribe`` carries ``info.subscriberKey`` (Salesforce's sample
  has only ``info.to``; its other events carry it): without it, the member is found by the address;
- the answer of ``POST /platform/v1/ens-verify`` beyond its status (any 2xx is taken as verified).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from dig_connector_kit import oauth
from dig_connector_kit.http import REQUEST_TIMEOUT, Request
from dig_connector_kit.ratelimit import RateLimit

LIMITER_KEY = "sfmc-rest"
SEND_EMAIL = "sendEmail"
EMAIL_STATUS = "emailStatus"
SEND_SMS = "sendSms"
SMS_STATUS = "smsStatus"
ENS_VERIFY = "ensVerify"
JOURNEY_EVENT = "journeyEvent"
ROWS_UPSERT = "asyncUpsert"
ASYNC_STATUS = "asyncStatus"
ASYNC_RESULTS = "asyncResults"
MAX_RECIPIENTS_PER_CALL = 500  # 2,000 allowed; Salesforce recommends 500 or fewer with attributes
MAX_SMS_RECIPIENTS_PER_CALL = 100  # UNVERIFIED: Salesforce documents no limit for SMS; DIG stays low
MAX_MESSAGE_KEY_CHARS = 100
MAX_ROWS_PER_UPSERT = 32_000  # the asynchronous API's hard limit per request
MAX_UPSERT_BYTES = 5_000_000  # DIG keeps each request within 5 MB, as Segment does
RESULTS_PAGE = 50
DUPLICATE_MESSAGE_KEY = 109110  # UNVERIFIED as an answer shape: see the module's docstring
RECIPIENTS_HAVE_ERRORS = 109001
TOKEN_MARGIN_SECONDS = 300  # renewed with five minutes of life left, as FuelSDK does
_MESSAGE_KEYS = uuid.UUID("3c7a1f0e-2b9d-4c55-8f5e-9a41d2b7c610")


TokenRefused = oauth.TokenRefused  # the auth service refused the package's credentials: no retry mends it


def normalised_base(url: str) -> str:
    """``rest_instance_url`` as it comes (with or without a scheme, with a trailing slash) as a base."""
    url = url.strip()
    if not url.startswith(("https://", "http://")):
        url = f"https://{url}"
    return url.rstrip("/")


class TokenSource(oauth.ClientCredentialsToken):
    """The OAuth 2.0 client-credentials token of the tenant's installed package (the kit's
    ClientCredentialsToken: kept until five minutes before ``expires_in``, renewed when a call answers
    401); with it, the REST base its answer names. The client secret travels in the JSON body."""

    def __init__(
        self,
        http: httpx.Client,
        auth_base: str,
        credentials: Callable[[], Mapping[str, str]],
        account_id: Callable[[], str | None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            http, credentials, provider="SFMC's auth service", margin_seconds=TOKEN_MARGIN_SECONDS, clock=clock
        )
        self._auth = normalised_base(auth_base)
        self._account_id = account_id
        self._rest: str | None = None

    def rest_base(self) -> str:
        self.token()
        assert self._rest is not None
        return self._rest

    def _request(self, secret: Mapping[str, str]) -> httpx.Response:
        body = {
            "grant_type": "client_credentials",
            "client_id": secret["clientId"],
            "client_secret": secret["clientSecret"],
        }
        account = self._account_id()
        if account:
            body["account_id"] = account  # the business unit (MID)
        return self._http.post(f"{self._auth}/v2/token", json=body, timeout=REQUEST_TIMEOUT)

    def _answered(self, body: Mapping[str, Any]) -> None:
        if not body.get("rest_instance_url"):
            raise httpx.HTTPError("SFMC's auth service gave no rest_instance_url")
        self._rest = normalised_base(str(body["rest_instance_url"]))


def message_key(message_id: str, definition_key: str) -> str:
    """The send's key, from the message and the definition: the same on a retry or a replay, so SFMC
    refuses a second send of it for 72 hours (Salesforce: deduplicate with messageKey)."""
    return f"dig-{uuid.uuid5(_MESSAGE_KEYS, f'{message_id}:{definition_key}')}"


# --- request builders: one per endpoint -----------------------------------------------------------


def send_email(rest: str, definition_key: str, recipients: Sequence[Mapping[str, Any]], limit: RateLimit) -> Request:
    """POST /messaging/v1/email/messages/: one definition, up to 500 recipients, each with its own
    messageKey, contactKey, address and attributes. 202 means queued, per recipient."""
    if not 1 <= len(recipients) <= MAX_RECIPIENTS_PER_CALL:
        raise ValueError(f"1 to {MAX_RECIPIENTS_PER_CALL} recipients a call")
    return Request(
        SEND_EMAIL,
        "POST",
        f"{rest}/messaging/v1/email/messages/",
        {"definitionKey": definition_key, "recipients": list(recipients)},
        LIMITER_KEY,
        limit,
    )


def email_status(rest: str, key: str, limit: RateLimit) -> Request:
    """GET /messaging/v1/email/messages/{messageKey}: what became of a send (up to 3 days old)."""
    return Request(EMAIL_STATUS, "GET", f"{rest}/messaging/v1/email/messages/{key}", {}, LIMITER_KEY, limit)


def send_sms(rest: str, definition_key: str, recipients: Sequence[Mapping[str, Any]], limit: RateLimit) -> Request:
    """POST /messaging/v1/sms/messages/: one SMS definition, each recipient with its own messageKey,
    contactKey, number and attributes; ``resubscribe`` false, so a member who texted STOP is never
    re-subscribed by a send (that is a compliance decision, not DIG's). 202 means queued, per recipient."""
    if not 1 <= len(recipients) <= MAX_SMS_RECIPIENTS_PER_CALL:
        raise ValueError(f"1 to {MAX_SMS_RECIPIENTS_PER_CALL} recipients a call")
    return Request(
        SEND_SMS,
        "POST",
        f"{rest}/messaging/v1/sms/messages/",
        {"definitionKey": definition_key, "recipients": list(recipients), "subscriptions": {"resubscribe": False}},
        LIMITER_KEY,
        limit,
    )


def sms_number(e164: str) -> str:
    """The number as the SMS send takes it (UNVERIFIED: see the module's docstring)."""
    return e164.removeprefix("+")


def sms_status(rest: str, key: str, limit: RateLimit) -> Request:
    """GET /messaging/v1/sms/messages/{messageKey}: SMSSent, SMSQueued or SMSNotSent."""
    return Request(SMS_STATUS, "GET", f"{rest}/messaging/v1/sms/messages/{key}", {}, LIMITER_KEY, limit)


def ens_verify(rest: str, callback_id: str, verification_key: str, limit: RateLimit) -> Request:
    """POST /platform/v1/ens-verify: completes the callback's two-step verification with the single-use
    key ENS posted to the callback URL; until then ENS sends it nothing."""
    return Request(
        ENS_VERIFY,
        "POST",
        f"{rest}/platform/v1/ens-verify",
        {"callbackId": callback_id, "verificationKey": verification_key},
        LIMITER_KEY,
        limit,
    )


def journey_event(
    rest: str, definition_key: str, contact_key: str, data: Mapping[str, str], limit: RateLimit
) -> Request:
    """POST /interaction/v1/events: a contact enters the journeys listening to the event. SFMC has no
    idempotency key for it: sent at most once (the operation ledger), never again after a lost answer."""
    return Request(
        JOURNEY_EVENT,
        "POST",
        f"{rest}/interaction/v1/events",
        {"ContactKey": contact_key, "EventDefinitionKey": definition_key, "Data": dict(data)},
        LIMITER_KEY,
        limit,
        at_most_once=True,
    )


def upsert_rows(rest: str, extension_key: str, items: Sequence[Mapping[str, str]], limit: RateLimit) -> Request:
    """PUT /data/v1/async/dataextensions/key:{key}/rows: insert or update rows (flat objects, every
    primary-key column present), asynchronously: 202 with a requestId whose status is asked for later.
    Upserting the same rows again is harmless: retried like any idempotent write."""
    return Request(
        ROWS_UPSERT,
        "PUT",
        f"{rest}/data/v1/async/dataextensions/key:{extension_key}/rows",
        {"items": list(items)},
        LIMITER_KEY,
        limit,
    )


def async_status(rest: str, request_id: str, limit: RateLimit) -> Request:
    return Request(ASYNC_STATUS, "GET", f"{rest}/data/v1/async/{request_id}/status", {}, LIMITER_KEY, limit)


def async_results(rest: str, request_id: str, page: int, limit: RateLimit) -> Request:
    return Request(
        ASYNC_RESULTS,
        "GET",
        f"{rest}/data/v1/async/{request_id}/results",
        {},
        LIMITER_KEY,
        limit,
        params={"$page": str(page), "$pageSize": str(RESULTS_PAGE)},
    )


# --- answers ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecipientError:
    code: int
    message: str

    @property
    def sent_before(self) -> bool:
        return self.code == DUPLICATE_MESSAGE_KEY

    def describe(self) -> str:
        return f"{self.code} {self.message}".strip()


def recipient_errors(body: Any) -> dict[str, RecipientError]:
    """The recipients a send's 202 refused, by messageKey: ``{"errorcode": 109001, "responses":
    [{"messageKey", "errorcode", "message"}, ...]}``. A recipient with no errorcode was queued."""
    responses = body.get("responses", []) if isinstance(body, dict) else []
    refused = {}
    for item in responses:
        if isinstance(item, dict) and item.get("errorcode") and item.get("messageKey"):
            refused[str(item["messageKey"])] = RecipientError(int(item["errorcode"]), str(item.get("message") or ""))
    return refused


@dataclass(frozen=True)
class SendStatus:
    category: str  # EmailSent, EmailQueued, EmailNotSent; SMSSent, SMSQueued, SMSNotSent
    status_code: str | None = None
    status_message: str | None = None

    @property
    def final(self) -> bool:
        return not self.category.endswith("Queued")

    @property
    def failed(self) -> bool:
        return self.category.endswith("NotSent")


def send_status(body: Any) -> SendStatus:
    """``{"eventCategoryType": "TransactionalSendEvents.EmailNotSent", "info": {"statusCode",
    "statusMessage", ...}}`` (an SMS's the same, SMSNotSent); ValueError when it is not of that shape."""
    if not isinstance(body, dict) or not isinstance(body.get("eventCategoryType"), str):
        raise ValueError("an email status without eventCategoryType")
    info: dict[str, Any] = body["info"] if isinstance(body.get("info"), dict) else {}
    code = info.get("statusCode")
    return SendStatus(
        body["eventCategoryType"].rsplit(".", 1)[-1],
        str(code) if code is not None else None,
        info.get("statusMessage"),
    )


def accepted_request(body: Any) -> str:
    """The requestId of an accepted asynchronous upsert; ValueError, with SFMC's own words, when its
    ``resultMessages`` say it failed early (a data extension that does not exist: CustomObjectNotFound)."""
    if not isinstance(body, dict) or not body.get("requestId"):
        raise ValueError("the upsert's answer has no requestId")
    messages = [m for m in body.get("resultMessages") or [] if isinstance(m, dict)]
    errors = [m for m in messages if str(m.get("resultType", "")).lower() == "error" or m.get("resultCode")]
    if errors:
        first = errors[0]
        raise ValueError(f"{first.get('resultCode', 'error')}: {first.get('message', '')}".strip())
    return str(body["requestId"])


@dataclass(frozen=True)
class AsyncStatus:
    request_status: str  # Pending, Executing, Complete, Error
    result_status: str | None  # OK, Has Errors

    @property
    def done(self) -> bool:
        return self.request_status in ("Complete", "Error")

    @property
    def has_errors(self) -> bool:
        return self.request_status == "Error" or self.result_status == "Has Errors"


def async_status_of(body: Any) -> AsyncStatus | None:
    """``{"status": {"requestStatus", "resultStatus"}}``; None when the job has no status yet (Segment
    saw the object missing before the job is picked up: asked again later)."""
    status = body.get("status") if isinstance(body, dict) else None
    if not isinstance(status, dict) or not status.get("requestStatus"):
        return None
    return AsyncStatus(str(status["requestStatus"]), status.get("resultStatus"))


def row_errors(pages: Sequence[Any]) -> dict[int, str]:
    """The rows an upsert refused, by their position in the request (UNVERIFIED: the results are taken
    to list rows in the order they were sent), with SFMC's code and words."""
    refused: dict[int, str] = {}
    position = 0
    for page in pages:
        for item in page.get("items", []) if isinstance(page, dict) else []:
            if isinstance(item, dict) and str(item.get("status", "")).lower() == "error":
                refused[position] = f"{item.get('errorCode', 'error')}: {item.get('message', '')}".strip()
            position += 1
    return refused


def results_count(page: Any) -> int:
    return int(page.get("count", 0)) if isinstance(page, dict) else 0


@dataclass(frozen=True)
class Unsubscribe:
    """An ENS ``EngagementEvents.EmailUnsubscribe``: who, by which address, when, and its tracking id."""

    composite_id: str
    subscriber_key: str | None
    address: str | None
    at_ms: int


UNSUBSCRIBE_EVENT = "EngagementEvents.EmailUnsubscribe"


def ens_events(body: Any) -> list[dict[str, Any]]:
    """ENS posts a batch, a JSON array of events (one object alone is taken as a batch of one)."""
    events = body if isinstance(body, list) else [body]
    return [e for e in events if isinstance(e, dict)]


def unsubscribe_of(event: Mapping[str, Any]) -> Unsubscribe | None:
    """The unsubscribe an ENS event is, or None (another category, or without the fields it needs)."""
    if event.get("eventCategoryType") != UNSUBSCRIBE_EVENT:
        return None
    info = event.get("info") if isinstance(event.get("info"), dict) else {}
    assert isinstance(info, dict)
    when = info.get("unsubscribeDate") or event.get("timestampUTC")
    composite = event.get("compositeId")
    if not isinstance(when, int | float) or not composite:
        return None
    key, address = info.get("subscriberKey"), info.get("to")
    return Unsubscribe(
        str(composite),
        str(key) if key else None,
        str(address) if address else None,
        int(when),
    )


def fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
