"""An Optimove simulator: a test double that enforces what Optimove documents for the endpoints the
connector calls (../shared/reference/optimove-api.md, its "Corrections" first), and no more: request
shapes and types, per-call limits, rate limits per API key, authentication, which customers exist,
and the documented answers (the callback results, the 409 of a repeated mail). It records every
request. Documented samples live in ../tests/fixtures/, and the simulator is tested against
them, as the connector's parsers are, so that the two cannot agree on something Optimove does not do.

It is never imported by Lambda code (the build leaves the connector's ``local`` package out): the
connector reaches it only through its configured base URLs.

Served under ``/_sim/optimove`` by the local gateway:
  POST /api/Customers/UpdateCustomerAttributes        PUT  /api/customers/InsertOrUpdateCustomers
  POST /api/Integrations/SetCustomerChannelPreference POST /api/TransactionalMail/SendTransactionalMail
  POST /realtime/reportEvent (legacy)                 POST /realtime (server-side format)
  GET  /requests    every request: method, path, body, status answered (DELETE clears the log)
  POST /faults      {"status": 500, "rate": 0.3, "calls": ["SendTransactionalMail"], "mode": "fail"};
                    mode "lose-answer": the call is performed, then answered ``status`` (504 by default),
                    or with the connection dropped when "drop": true. DELETE clears
  GET  /mails       the transactional mails actually sent (one per UniqueMessageID)
  GET  /customers   the customers that exist; POST {"customers": ["M-1"]} makes them exist
  POST /rejections  {"customers": ["M-1"], "error": "INVALID_VALUE"}: their updates are reported so; DELETE clears
  GET  /callbacks   the results it posted to callback URLs, and the status each got
  GET  /preferences the channel preferences set
  GET  /api/optimail/GetUnsubscribers?BrandID=&StartDate=&EndDate=[&$skip=]: the documented paged answer
  POST /unsubscribers {"emails": [...], "brandId": 7, "time": "yyyy-MM-dd HH:mm:ss"}: members unsubscribe
                    in an OptiMail mail (brandId and time optional: every brand, now); GET lists them
  GET  /snowflake/<TABLE>  the shared Snowflake table's rows, in all and by DIG_FEED_DAY (fakesnow:
                    connectors.optimove.local.snowflake), when batchFeed.snowflake is configured; POST with
                    {"keyPrefix": "..."}: only the rows whose DIG_KEY starts so

Assumptions of the simulator's own (not Optimove's documented behaviour) are named where they are made.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from typing import Any

from dig_connector_kit.testing.double import Answer, Fault, ProviderSimulator

MAX_CUSTOMERS_PER_UPDATE = 1000
MAX_ATTRIBUTES_PER_CUSTOMER = 10
MAX_CUSTOMERS_PER_PREFERENCE = 50_000
MAX_RECIPIENTS_PER_MAIL = 200
MAX_PERSONALIZATION_BYTES = 50_000
MAX_UNIQUE_MESSAGE_ID = 254
MAX_PARAMETER_LENGTH = 255
UNSUBSCRIBERS_PAGE_ROWS = 10_000
UNSUBSCRIBED_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9_]*$")
SERVER_SIDE_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6} UTC$")
REPEATED_MAIL = "Request for this UniqueMessageID has succeeded before"  # Optimove's documented text
INVALID_TEMPLATE = "Invalid template"
REALTIME_TOKEN_HEADER = "x-realtime-token"  # noqa: S105 - the connector's unverified choice, mirrored
# The simulator's assumption: Optimove's real-time limit is "dynamic, per customer" and not published.
REALTIME_PER_CUSTOMER = (5, 10.0)

CALLS = {
    ("POST", "/api/Customers/UpdateCustomerAttributes"): "UpdateCustomerAttributes",
    ("PUT", "/api/customers/InsertOrUpdateCustomers"): "InsertOrUpdateCustomers",
    ("POST", "/api/Integrations/SetCustomerChannelPreference"): "SetCustomerChannelPreference",
    ("GET", "/api/optimail/GetUnsubscribers"): "GetUnsubscribers",
    ("POST", "/api/TransactionalMail/SendTransactionalMail"): "SendTransactionalMail",
    ("POST", "/realtime/reportEvent"): "reportEvent",
    ("POST", "/realtime"): "serverSideEvent",
}
REALTIME_CALLS = frozenset({"reportEvent", "serverSideEvent"})


class BadRequest(Exception):
    pass


class SlidingWindow:
    def __init__(self, requests: int, seconds: float, clock: Callable[[], float]) -> None:
        self.requests, self.seconds, self._clock = requests, seconds, clock
        self._stamps: deque[float] = deque()

    def allow(self) -> bool:
        now = self._clock()
        while self._stamps and self._stamps[0] <= now - self.seconds:
            self._stamps.popleft()
        if len(self._stamps) >= self.requests:
            return False
        self._stamps.append(now)
        return True


class OptimoveSimulator(ProviderSimulator):
    secret_headers = frozenset({REALTIME_TOKEN_HEADER})

    def __init__(
        self,
        *,
        api_key: str,
        realtime_token: str,
        customer_limit: tuple[int, float] = (50, 10.0),
        mail_limit: tuple[int, float] = (10, 1.0),
        templates: Mapping[int, Iterable[str]] | None = None,
        known_fields: Iterable[str] | None = None,
        customers: Iterable[str] = (),
        tenant_id: int | None = None,
        batch_feed: Any = None,
        callback_sender: Callable[[str, dict[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        seed: int = 7,
    ) -> None:
        self.api_key = api_key
        self.realtime_token = realtime_token
        super().__init__(clock=clock, seed=seed)
        self.tenant_id = tenant_id
        self._customer_window = SlidingWindow(*customer_limit, clock)
        self._mail_window = SlidingWindow(*mail_limit, clock)
        self._realtime_windows: dict[str, SlidingWindow] = defaultdict(
            lambda: SlidingWindow(*REALTIME_PER_CUSTOMER, clock)
        )
        self.templates = {int(k): frozenset(v) for k, v in (templates or {}).items()}
        self.mails: dict[str, dict[str, Any]] = {}
        self.customers: dict[str, dict[str, str]] = {c: {} for c in customers}
        self.loads: list[dict[str, Any]] = []  # the batch loader's reports, a day each
        self._loader = None
        self.batch_feed = batch_feed
        if batch_feed is not None:
            from connectors.optimove.local.batch_loader import BatchLoader

            self._loader = BatchLoader(batch_feed, self._customers_from_batch)
            self._feed_bucket = batch_feed.destination.bucket
        self.preferences: dict[tuple[str, int, int], int] = {}
        self.events: list[dict[str, Any]] = []
        self.known_fields = frozenset(known_fields) if known_fields is not None else None
        self.rejections: dict[str, str] = {}  # customer -> error code its updates are reported with
        self.callbacks: list[dict[str, Any]] = []
        # OptiMail's unsubscribe list: {"Email", "UnsubscribedTime", "BrandID" (None: every brand)}.
        self.unsubscribers: list[dict[str, Any]] = []
        self._callback_sender = callback_sender or self._post_later

    # --- control ---------------------------------------------------------------------------

    def fail(
        self,
        status: int,
        rate: float = 1.0,
        calls: Iterable[str] | None = None,
        *,
        lose_answer: bool = False,
        drop: bool = False,
    ) -> None:
        self.set_fault(Fault(status, rate, frozenset(calls) if calls else None, lose_answer, drop))

    def clear_fault(self) -> None:
        self.set_fault(None)

    def _customers_from_batch(self, customers: dict[str, dict[str, str]]) -> int:
        with self._lock:
            created = sum(1 for c in customers if c not in self.customers)
            for customer, attributes in customers.items():
                self.customers.setdefault(customer, {}).update(attributes)
        return created

    def load_batch_day(self, day: str) -> dict[str, Any]:
        """Optimove's daily load of ``day`` from its bucket (the local stack's S3)."""
        import boto3

        if self._loader is None:
            raise ValueError("no batchFeed in the configuration the simulator was made with")
        report = asdict(self._loader.load(boto3.client("s3"), self._feed_bucket, day))
        with self._lock:
            self.loads.append(report)
        return report

    def add_customers(self, customers: Iterable[str]) -> None:
        with self._lock:
            for customer in customers:
                self.customers.setdefault(str(customer), {})

    # --- HTTP ------------------------------------------------------------------------------

    def call_name(self, method: str, path: str) -> str | None:
        return CALLS.get((method, path))

    def control(self, method: str, path: str, body: bytes) -> Answer | None:
        def document() -> Any:
            return json.loads(body or b"{}")

        snowflake = self.batch_feed.snowflake if self.batch_feed is not None else None
        if method in ("GET", "POST") and path.startswith("/snowflake/") and snowflake is not None:
            from connectors.optimove.local.snowflake import counts

            prefix = str(document().get("keyPrefix", "")) if method == "POST" else ""
            return Answer(200, counts(snowflake.database, snowflake.schema_, path.removeprefix("/snowflake/"), prefix))

        with self._lock:
            listings: dict[str, list[Any]] = {
                "/mails": list(self.mails.values()),
                "/callbacks": list(self.callbacks),
                "/customers": sorted(self.customers),
                "/unsubscribers": list(self.unsubscribers),
                "/batch/loads": list(self.loads),
                "/preferences": [
                    {"customerId": c, "channelId": ch, "appId": app, "communicationMode": mode}
                    for (c, ch, app), mode in self.preferences.items()
                ],
            }
        if method == "GET" and path in listings:
            return Answer(200, list(listings[path]))
        try:
            if (method, path) == ("POST", "/batch/load"):
                return Answer(200, self.load_batch_day(str(document()["day"])))
            elif (method, path) == ("POST", "/customers"):
                self.add_customers(document()["customers"])
            elif (method, path) == ("POST", "/rejections"):
                spec = document()
                with self._lock:
                    for customer in spec["customers"]:
                        self.rejections[str(customer)] = str(spec.get("error", "INVALID_VALUE"))
            elif (method, path) == ("POST", "/unsubscribers"):
                spec = document()
                self.unsubscribe(spec["emails"], brand_id=spec.get("brandId"), at=spec.get("time"))
            elif (method, path) == ("DELETE", "/rejections"):
                with self._lock:
                    self.rejections.clear()
            else:
                return None
        except (ValueError, KeyError, TypeError):
            return Answer(
                400, {"message": f"unexpected body for {method} {path}; see connectors.optimove.local.simulator"}
            )
        return Answer(204)

    def unsubscribe(self, emails: Iterable[str], *, brand_id: int | None = None, at: str | None = None) -> None:
        moment = at or time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        if not UNSUBSCRIBED_TIME.match(moment):
            raise ValueError("time: yyyy-MM-dd HH:mm:ss")
        with self._lock:
            for email in emails:
                self.unsubscribers.append({"Email": str(email), "UnsubscribedTime": moment, "BrandID": brand_id})

    def _unsubscribers_page(self, query: str) -> Answer:
        """GetUnsubscribers as documented: BrandID required; StartDate/EndDate UTC, inclusive (none: the
        whole list); 10,000 rows a page, the next with $skip. Ordered by time: the simulator's choice."""
        from urllib.parse import parse_qs

        params = {k: v[-1] for k, v in parse_qs(query).items()}
        if not params.get("BrandID", "").isdigit():
            return Answer(400, {"message": "BrandID is required"})
        for name in ("StartDate", "EndDate"):
            if name in params and not re.match(r"^\d{4}-\d{2}-\d{2}$", params[name]):
                return Answer(400, {"message": f"{name}: YYYY-MM-DD"})
        brand = int(params["BrandID"])
        start, end = params.get("StartDate", "0000-00-00"), params.get("EndDate", "9999-99-99")
        skip = int(params.get("$skip", "0") or 0)
        with self._lock:
            rows = sorted(
                (
                    {"Email": u["Email"], "UnsubscribedTime": u["UnsubscribedTime"]}
                    for u in self.unsubscribers
                    if u["BrandID"] in (None, brand) and start <= u["UnsubscribedTime"][:10] <= end
                ),
                key=lambda row: row["UnsubscribedTime"],
            )
        return Answer(200, rows[skip : skip + UNSUBSCRIBERS_PAGE_ROWS])

    def serve(self, call: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Answer:
        if call == "GetUnsubscribers":
            if {k.lower(): v for k, v in headers.items()}.get("x-api-key") != self.api_key:
                return Answer(401, {"message": "Unauthorized: invalid or missing X-API-KEY"})
            with self._lock:
                allowed = self._customer_window.allow()  # the general limit: 50 requests per 10 s
            if not allowed:
                return Answer(429, {"message": "Too many requests"})
            return self.faulted(call, lambda: self._unsubscribers_page(query))
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            return Answer(400, {"message": "the body is not JSON"})
        lowered = {k.lower(): v for k, v in headers.items()}
        if call not in REALTIME_CALLS and lowered.get("x-api-key") != self.api_key:
            return Answer(401, {"message": "Unauthorized: invalid or missing X-API-KEY"})
        if call == "serverSideEvent" and lowered.get(REALTIME_TOKEN_HEADER) != self.realtime_token:
            return Answer(401, {"message": "invalid real-time token"})
        return self.faulted(call, lambda: self._limited(call, parsed))

    def _limited(self, call: str, body: Any) -> Answer:
        with self._lock:
            if call == "SendTransactionalMail":
                if not self._mail_window.allow():
                    return Answer(429, {"message": "Too many requests: 10 transactional mail calls per second"})
            elif call not in REALTIME_CALLS and not self._customer_window.allow():
                return Answer(429, {"message": "Too many requests: 50 requests per 10 seconds per API key"})
        try:
            answer: Answer = getattr(self, f"_{call}")(body)
        except BadRequest as error:
            return Answer(400, {"IsSuccess": False, "Error": str(error)})
        return answer

    # --- customers -------------------------------------------------------------------------

    def _UpdateCustomerAttributes(self, body: Any) -> Answer:
        _require(isinstance(body, dict), "the body must be a JSON object")
        _only(body, {"CustomerNewAttributesValuesList", "CallbackURL"})
        customers = body.get("CustomerNewAttributesValuesList")
        _require(
            isinstance(customers, list) and bool(customers), "CustomerNewAttributesValuesList must be a non-empty list"
        )
        _require(len(customers) <= MAX_CUSTOMERS_PER_UPDATE, f"at most {MAX_CUSTOMERS_PER_UPDATE} customers per call")
        for index, customer in enumerate(customers):
            where = f"CustomerNewAttributesValuesList[{index}]"
            _require(isinstance(customer, dict), f"{where} must be an object")
            _only(customer, {"CustomerID", "Attributes"}, where)
            _require(isinstance(customer.get("CustomerID"), str) and customer["CustomerID"], f"{where}.CustomerID")
            _attributes(customer.get("Attributes"), where, allow_empty=False)
        callback = body.get("CallbackURL")
        _require(callback is None or (isinstance(callback, str) and callback.startswith("http")), "CallbackURL")
        errors = self._apply(customers, "CustomerID", create=False)
        if callback:
            self._callback_sender(callback, _results(errors))
        return Answer(200, {"IsSuccess": True, "Data": None})

    def _InsertOrUpdateCustomers(self, body: Any) -> Answer:
        _require(isinstance(body, dict), "the body must be a JSON object")
        _only(body, {"Customers", "CallbackUrl"})
        customers = body.get("Customers")
        _require(
            isinstance(customers, list) and 1 <= len(customers) <= MAX_CUSTOMERS_PER_UPDATE, "Customers: 1 to 1,000"
        )
        for index, customer in enumerate(customers):
            where = f"Customers[{index}]"
            _require(isinstance(customer, dict), f"{where} must be an object")
            _only(customer, {"CustomerId", "Attributes"}, where)
            _require(isinstance(customer.get("CustomerId"), str) and customer["CustomerId"], f"{where}.CustomerId")
            # The simulator's assumption: an empty Attributes list creates the customer alone.
            _attributes(customer.get("Attributes", []), where, allow_empty=True)
        callback = body.get("CallbackUrl")
        _require(callback is None or (isinstance(callback, str) and callback.startswith("http")), "CallbackUrl")
        errors = self._apply(customers, "CustomerId", create=True)
        if callback:
            self._callback_sender(callback, _results(errors))
        return Answer(202, None)

    def _apply(self, customers: list[dict[str, Any]], id_key: str, *, create: bool) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = []
        with self._lock:
            for customer in customers:
                customer_id = customer[id_key]
                attributes = customer.get("Attributes", [])
                if customer_id not in self.customers and not create:
                    errors += [_error("INVALID_CUSTOMER", customer_id, a["RealFieldName"]) for a in attributes]
                    continue
                stored = self.customers.setdefault(customer_id, {})
                for attribute in attributes:
                    name = attribute["RealFieldName"]
                    if self.known_fields is not None and name not in self.known_fields:
                        errors.append(_error("INVALID_FIELD", customer_id, name))
                    elif customer_id in self.rejections:
                        errors.append(_error(self.rejections[customer_id], customer_id, name))
                    else:
                        stored[name] = attribute["Value"]
        return errors

    def _post_later(self, url: str, results: dict[str, Any]) -> None:
        """Results arrive after the call's answer, as Optimove sends them (within about a minute)."""

        def post() -> None:
            import httpx

            time.sleep(0.3)
            status: int | str
            try:
                status = httpx.post(url, json=results, timeout=10).status_code
            except httpx.HTTPError as error:
                status = type(error).__name__
            with self._lock:
                self.callbacks.append({"url": url.split("?")[0], "results": results, "status": status})

        threading.Thread(target=post, name="optimove-callback", daemon=True).start()

    # --- preferences and mail ---------------------------------------------------------------

    def _SetCustomerChannelPreference(self, body: Any) -> Answer:
        _require(isinstance(body, dict), "the body must be a JSON object")
        _only(body, {"ChannelID", "CustomerIDs", "CommunicationMode", "AppID"})
        _require(_integer(body.get("ChannelID")), "ChannelID must be an integer")
        _require(_integer(body.get("CommunicationMode")), "CommunicationMode must be an integer (int32)")
        _require(_integer(body.get("AppID")), "AppID must be an integer")
        ids = body.get("CustomerIDs")
        _require(
            isinstance(ids, list) and bool(ids) and all(isinstance(i, str) and i for i in ids),
            "CustomerIDs must be a non-empty list of ids",
        )
        _require(len(ids) <= MAX_CUSTOMERS_PER_PREFERENCE, f"at most {MAX_CUSTOMERS_PER_PREFERENCE} CustomerIDs")
        with self._lock:
            for customer_id in ids:
                self.preferences[(customer_id, body["ChannelID"], body["AppID"])] = body["CommunicationMode"]
        return Answer(200)

    def _SendTransactionalMail(self, body: Any) -> Answer:
        _require(isinstance(body, dict), "the body must be a JSON object")
        _only(body, {"TemplateID", "UniqueMessageID", "ScheduleTime", "Recipients"})
        template = body.get("TemplateID")
        _require(_integer(template) and template > 0, "TemplateID must be a positive integer")
        if self.templates and template not in self.templates:
            return Answer(200, {"IsSuccess": False, "SendID": None, "Error": INVALID_TEMPLATE})
        unique = body.get("UniqueMessageID")
        if unique is not None:
            _require(isinstance(unique, str) and 0 < len(unique) <= MAX_UNIQUE_MESSAGE_ID, "UniqueMessageID: 1 to 254")
        recipients = body.get("Recipients")
        _require(isinstance(recipients, list) and bool(recipients), "Recipients must be a non-empty list")
        _require(len(recipients) <= MAX_RECIPIENTS_PER_MAIL, f"at most {MAX_RECIPIENTS_PER_MAIL} email recipients")
        supplied: set[str] = set()
        for recipient in recipients:
            _require(isinstance(recipient, dict), "Recipients items must be objects")
            _only(recipient, {"Email", "Personalizations"}, "Recipients")
            email = recipient.get("Email")
            _require(isinstance(email, str) and "@" in email, "every recipient needs an Email")
            personalizations = recipient.get("Personalizations", [])
            _require(isinstance(personalizations, list), "Personalizations must be an array")
            _require(
                len(json.dumps(personalizations).encode()) <= MAX_PERSONALIZATION_BYTES,
                f"a Personalizations block is limited to {MAX_PERSONALIZATION_BYTES} bytes",
            )
            for tag in personalizations:
                _require(
                    isinstance(tag, dict) and isinstance(tag.get("Tag"), str) and isinstance(tag.get("Value"), str),
                    "Personalizations items are {Tag, Value} strings",
                )
                supplied.add(tag["Tag"])
        with self._lock:
            if unique is not None and unique in self.mails:
                return Answer(409, {"IsSuccess": False, "SendID": None, "Error": REPEATED_MAIL})
            send_id = str(uuid.uuid4())
            self.mails[unique or send_id] = {
                "sendId": send_id,
                "uniqueMessageId": unique,
                "templateId": template,
                "recipients": recipients,
            }
        missing = sorted(self.templates.get(template, frozenset()) - supplied)
        if missing:
            return Answer(
                206,
                {"IsSuccess": True, "SendID": send_id, "Error": f"Missing personalization tags: {', '.join(missing)}"},
            )
        return Answer(200, {"IsSuccess": True, "SendID": send_id, "Error": None})

    # --- real-time ---------------------------------------------------------------------------

    def _reportEvent(self, body: Any) -> Answer:
        _require(isinstance(body, dict), "the body must be a JSON object")
        _only(body, {"tid", "cid", "eid", "context"})
        if body.get("tid") != self.realtime_token:
            return Answer(401, {"IsSuccess": False, "Error": "invalid tid"})
        _require(isinstance(body.get("cid"), str) and body["cid"], "cid is required")
        _require(_integer(body.get("eid")), "eid must be a number")
        _context(body.get("context", {}))
        return self._realtime(body["cid"], body)

    def _serverSideEvent(self, body: Any) -> Answer:
        _require(isinstance(body, dict), "the body must be a JSON object")
        _only(body, {"tenant", "timestamp", "event", "customer", "visitor", "context"})
        _require(_integer(body.get("tenant")), "tenant must be a number")
        _require(self.tenant_id is None or body["tenant"] == self.tenant_id, "unknown tenant")
        _require(
            isinstance(body.get("timestamp"), str) and bool(SERVER_SIDE_TIMESTAMP.match(body["timestamp"])),
            "timestamp must be YYYY-MM-DD HH:MM:SS.ssssss UTC",
        )
        _require(isinstance(body.get("event"), str) and bool(SNAKE_CASE.match(body["event"])), "event: snake_case")
        customer = body.get("customer") or body.get("visitor")
        _require(isinstance(customer, str) and bool(customer), "customer or visitor is mandatory")
        _context(body.get("context", {}))
        return self._realtime(customer, body)

    def _realtime(self, customer: str, body: dict[str, Any]) -> Answer:
        with self._lock:
            if not self._realtime_windows[customer].allow():
                return Answer(429, {"IsSuccess": False, "Error": "rate limited for this customer"})
            self.events.append(body)
        return Answer(200, {"IsSuccess": True, "Data": False})


def _results(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The documented callback body: no list of successes, one entry per rejected customer and field."""
    return {"isSuccess": not errors, "requestId": str(uuid.uuid4()), "errors": errors}


def _error(code: str, customer_id: str, field_name: str | None) -> dict[str, Any]:
    return {"error": code, "customerId": customer_id, "realFieldName": field_name}


def _attributes(attributes: Any, where: str, *, allow_empty: bool) -> None:
    _require(isinstance(attributes, list) and (allow_empty or bool(attributes)), f"{where}.Attributes must be a list")
    _require(len(attributes) <= MAX_ATTRIBUTES_PER_CUSTOMER, f"{where}: at most 10 attributes per customer per call")
    for attribute in attributes:
        _require(isinstance(attribute, dict), f"{where}.Attributes items must be objects")
        _only(attribute, {"RealFieldName", "Value"}, f"{where}.Attributes")
        _require(isinstance(attribute.get("RealFieldName"), str), f"{where}: RealFieldName must be a string")
        _require(isinstance(attribute.get("Value"), str), f"{where}: Value must be a string")


def _context(context: Any) -> None:
    _require(isinstance(context, dict), "context must be an object")
    for key, value in context.items():
        _require(bool(SNAKE_CASE.match(key)), f"context parameter {key} must be snake_case")
        _require(isinstance(value, str | int | float | bool), f"context parameter {key}: a string, number or boolean")
        _require(not isinstance(value, str) or len(value) <= MAX_PARAMETER_LENGTH, f"context parameter {key}: <= 255")


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BadRequest(message)


def _only(document: dict[str, Any], allowed: set[str], where: str = "body") -> None:
    unknown = sorted(set(document) - allowed)
    _require(not unknown, f"{where}: unknown field(s) {', '.join(unknown)}")
