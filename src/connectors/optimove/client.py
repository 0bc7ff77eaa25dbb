"""Optimove's REST APIs: one request builder per endpoint, how Optimove is authorized, and how its
answers are read. The kit's transport (dig_connector_kit.http) sends them.

Facts and their sources: ../shared/reference/optimove-api.md. Shapes marked (unverified) there
are built in exactly one function below, so that correcting one is a one-line change.

Retry policy, from Optimove's own SDKs (the kit's): 429, 5xx, timeouts and network errors are
retried; any other 4xx is final. The API key travels in a header and is never logged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from connectors.optimove.mapping import ChannelPreference, MailCall, RealtimeCall
from dig_connector_kit.http import BodyVerdict, Request
from dig_connector_kit.ratelimit import RateLimit

MAX_CUSTOMERS_PER_UPDATE = 1000
MAX_ATTRIBUTES_PER_CUSTOMER = 10
MAX_CUSTOMERS_PER_PREFERENCE = 50_000
CUSTOMER_API = "customer-api"
MAIL_API = "transactional-mail"
INSERT_OR_UPDATE = "InsertOrUpdateCustomers"
REALTIME_CALL = "reportEvent"  # the audit trail's name for a real-time event, in either format
REALTIME_TOKEN_HEADER = "X-Realtime-Token"  # noqa: S105 - a header's name; UNVERIFIED (server_side_event)


@dataclass(frozen=True)
class Credentials:
    api_key: str
    realtime_token: str | None = None


def authorize(credentials: Callable[[], Credentials]) -> Callable[[Request], dict[str, str]]:
    """The customer and mail APIs take the key in X-API-KEY (the real-time calls carry their token)."""
    return lambda _request: {"X-API-KEY": credentials().api_key}


def read_body(_request: Request, _status: int, body: Any) -> BodyVerdict | None:
    """Optimove answers some refusals ("Invalid template") with a 2xx and IsSuccess false."""
    if isinstance(body, dict) and body.get("IsSuccess") is False:
        return BodyVerdict(str(body.get("Error") or body.get("error") or "IsSuccess false")[:300])
    return None


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
        REALTIME_CALL, "POST", f"{realtime_base}/reportEvent", body, None, None, at_most_once=True, authenticated=False
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
        authenticated=False,
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


# --- the return path --------------------------------------------------------------------------

UNSUBSCRIBERS_CALL = "GetUnsubscribers"
UNSUBSCRIBERS_PAGE_ROWS = 10_000  # Optimove's page; the next one is asked for with $skip


@dataclass(frozen=True)
class Unsubscriber:
    email: str
    unsubscribed_time: str  # "yyyy-MM-dd HH:mm:ss", UTC, as Optimove writes it


def get_unsubscribers(api_base: str, brand_id: int, start: str, end: str, skip: int, limit: RateLimit) -> Request:
    """GET {apiBase}/optimail/GetUnsubscribers?BrandID=&StartDate=&EndDate=[&$skip=]: OptiMail's
    unsubscribes of a brand between two UTC dates, inclusive, 10,000 a page."""
    params = {"BrandID": str(brand_id), "StartDate": start, "EndDate": end}
    if skip:
        params["$skip"] = str(skip)
    return Request(
        UNSUBSCRIBERS_CALL,
        "GET",
        f"{api_base}/optimail/GetUnsubscribers",
        {},
        CUSTOMER_API,
        limit,
        params=params,
    )


def unsubscribers(body: Any) -> list[Unsubscriber]:
    """The documented answer ``[{"Email": ..., "UnsubscribedTime": "2020-03-16 08:00:00"}]``; ValueError
    when it is not of that shape (the poll then fails and reads the same dates again next time)."""
    if not isinstance(body, list):
        raise ValueError("GetUnsubscribers did not answer a list")
    rows = []
    for index, row in enumerate(body):
        email = row.get("Email") if isinstance(row, dict) else None
        at = row.get("UnsubscribedTime") if isinstance(row, dict) else None
        if not (isinstance(email, str) and email and isinstance(at, str) and len(at) == 19):
            raise ValueError(f"GetUnsubscribers row {index} is not {{Email, UnsubscribedTime}}")
        rows.append(Unsubscriber(email, at))
    return rows
