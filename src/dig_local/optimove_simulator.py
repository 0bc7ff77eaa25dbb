"""An Optimove simulator: a test double that enforces what Optimove documents for the endpoints the
connector calls (../shared/reference/optimove-api.md): request shapes, per-call limits, the rate
limits per API key, authentication, and the error answers. It records every request.

It is never imported by Lambda code: the connector reaches it only through its configured base URLs.

Served under ``/_sim/optimove`` by the local gateway:
  POST /api/Customers/UpdateCustomerAttributes        POST /api/Integrations/SetCustomerChannelPreference
  POST /api/TransactionalMail/SendTransactionalMail   POST /realtime/reportEvent
  GET  /requests   every request: method, path, body, status answered (DELETE clears the log)
  POST /faults     {"status": 500, "rate": 0.3, "calls": ["SendTransactionalMail"]}; DELETE clears
  GET  /mails      the transactional mails actually sent (one per UniqueMessageID)
  POST /invalid-customers  {"customers": ["M-1"]}: UpdateCustomerAttributes reports them INVALID_CUSTOMER
  GET  /callbacks  the results it posted to CallbackURLs, and the status each got

UpdateCustomerAttributes answers at once and posts per-customer results to the request's CallbackURL
a moment later, as Optimove documents: INVALID_CUSTOMER for customers marked invalid, INVALID_FIELD
for a RealFieldName it does not know (when it was given the known fields).
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_CUSTOMERS_PER_UPDATE = 1000
MAX_ATTRIBUTES_PER_CUSTOMER = 10
MAX_CUSTOMERS_PER_PREFERENCE = 50_000
MAX_RECIPIENTS_PER_MAIL = 200
MAX_UNIQUE_MESSAGE_ID = 254
MAX_PARAMETER_LENGTH = 255
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9_]*$")

CALLS = {
    "/api/Customers/UpdateCustomerAttributes": "UpdateCustomerAttributes",
    "/api/Integrations/SetCustomerChannelPreference": "SetCustomerChannelPreference",
    "/api/TransactionalMail/SendTransactionalMail": "SendTransactionalMail",
    "/realtime/reportEvent": "reportEvent",
}


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class BadRequest(Exception):
    pass


@dataclass
class Fault:
    status: int
    rate: float
    calls: frozenset[str] | None


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


class OptimoveSimulator:
    def __init__(
        self,
        *,
        api_key: str,
        realtime_token: str,
        customer_limit: tuple[int, float] = (50, 10.0),
        mail_limit: tuple[int, float] = (10, 1.0),
        templates: Mapping[int, Iterable[str]] | None = None,
        known_fields: Iterable[str] | None = None,
        callback_sender: Callable[[str, dict[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        seed: int = 7,
    ) -> None:
        self.api_key = api_key
        self.realtime_token = realtime_token
        self._clock = clock
        self._customer_window = SlidingWindow(*customer_limit, clock)
        self._mail_window = SlidingWindow(*mail_limit, clock)
        self.templates = {int(k): frozenset(v) for k, v in (templates or {}).items()}
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.fault: Fault | None = None
        self.requests: list[dict[str, Any]] = []
        self.mails: dict[str, dict[str, Any]] = {}
        self.customers: dict[str, dict[str, str]] = {}
        self.preferences: dict[tuple[str, int], str] = {}
        self.events: list[dict[str, Any]] = []
        self.known_fields = frozenset(known_fields) if known_fields is not None else None
        self.invalid_customers: set[str] = set()
        self.callbacks: list[dict[str, Any]] = []
        self._callback_sender = callback_sender or self._post_later

    # --- control ---------------------------------------------------------------------------

    def set_fault(self, status: int, rate: float = 1.0, calls: Iterable[str] | None = None) -> None:
        with self._lock:
            self.fault = Fault(status, rate, frozenset(calls) if calls else None)

    def clear_fault(self) -> None:
        with self._lock:
            self.fault = None

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    # --- HTTP ------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        """``path`` relative to /_sim/optimove."""
        if path == "/requests":
            if method == "GET":
                with self._lock:
                    return Answer(200, list(self.requests))
            if method == "DELETE":
                self.reset()
                return Answer(204)
        if path == "/faults":
            if method == "POST":
                try:
                    spec = json.loads(body or b"{}")
                    self.set_fault(int(spec["status"]), float(spec.get("rate", 1.0)), spec.get("calls"))
                except (ValueError, KeyError, TypeError):
                    return Answer(400, {"message": 'expected {"status": 500, "rate": 0.3, "calls": [...]}'})
                return Answer(204)
            if method == "DELETE":
                self.clear_fault()
                return Answer(204)
        if path == "/mails" and method == "GET":
            with self._lock:
                return Answer(200, list(self.mails.values()))
        if path == "/callbacks" and method == "GET":
            with self._lock:
                return Answer(200, list(self.callbacks))
        if path == "/invalid-customers":
            if method == "POST":
                try:
                    customers = json.loads(body or b"{}")["customers"]
                except (ValueError, KeyError, TypeError):
                    return Answer(400, {"message": 'expected {"customers": ["M-1", ...]}'})
                with self._lock:
                    self.invalid_customers.update(str(c) for c in customers)
                return Answer(204)
            if method == "DELETE":
                with self._lock:
                    self.invalid_customers.clear()
                return Answer(204)
        call = CALLS.get(path)
        if call is None or method != "POST":
            return Answer(404, {"message": f"no such endpoint: {method} {path}"})
        parsed: Any = None
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            answer = Answer(400, {"message": "the body is not JSON"})
        else:
            answer = self._serve(call, headers, parsed)
        with self._lock:
            self.requests.append(
                {
                    "method": method,
                    "path": path,
                    "call": call,
                    "body": parsed,
                    "status": answer.status,
                    "at": time.time(),
                }
            )
        return answer

    def _serve(self, call: str, headers: dict[str, str], body: Any) -> Answer:
        lowered = {k.lower(): v for k, v in headers.items()}
        if call != "reportEvent" and lowered.get("x-api-key") != self.api_key:
            return Answer(401, {"message": "Unauthorized: invalid or missing X-API-KEY"})
        with self._lock:
            fault = self.fault
            if fault and (fault.calls is None or call in fault.calls) and self._random.random() < fault.rate:
                return Answer(fault.status, {"message": f"simulated fault {fault.status}"})
            if call == "SendTransactionalMail":
                if not self._mail_window.allow():
                    return Answer(429, {"message": "Too many requests: 10 transactional mail calls per second"})
            elif call != "reportEvent" and not self._customer_window.allow():
                return Answer(429, {"message": "Too many requests: 50 requests per 10 seconds per API key"})
        try:
            return getattr(self, f"_{call}")(body)
        except BadRequest as error:
            return Answer(400, {"IsSuccess": False, "Error": str(error)})

    # --- endpoints -------------------------------------------------------------------------

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
            _require(
                isinstance(customer.get("CustomerID"), str) and customer["CustomerID"],
                f"{where}.CustomerID is required",
            )
            attributes = customer.get("Attributes")
            _require(isinstance(attributes, list) and bool(attributes), f"{where}.Attributes must be a non-empty list")
            _require(
                len(attributes) <= MAX_ATTRIBUTES_PER_CUSTOMER,
                f"{where}: at most {MAX_ATTRIBUTES_PER_CUSTOMER} attributes per customer per call",
            )
            for attribute in attributes:
                _require(isinstance(attribute, dict), f"{where}.Attributes items must be objects")
                _only(attribute, {"RealFieldName", "Value"}, f"{where}.Attributes")
                _require(isinstance(attribute.get("RealFieldName"), str), f"{where}: RealFieldName must be a string")
                _require(isinstance(attribute.get("Value"), str), f"{where}: Value must be a string")
        callback = body.get("CallbackURL")
        _require(
            callback is None or (isinstance(callback, str) and callback.startswith("http")), "CallbackURL must be a URL"
        )
        errors: list[dict[str, Any]] = []
        with self._lock:
            for customer in customers:
                customer_id = customer["CustomerID"]
                if customer_id in self.invalid_customers:
                    errors.append({"CustomerID": customer_id, "ErrorCode": "INVALID_CUSTOMER"})
                    continue
                stored = self.customers.setdefault(customer_id, {})
                for attribute in customer["Attributes"]:
                    name = attribute["RealFieldName"]
                    if self.known_fields is not None and name not in self.known_fields:
                        errors.append({"CustomerID": customer_id, "ErrorCode": "INVALID_FIELD", "RealFieldName": name})
                        continue
                    stored[name] = attribute["Value"]
        if callback:
            self._callback_sender(callback, {"Errors": errors})
        return Answer(200, {"IsSuccess": True, "Data": None})

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

    def _SetCustomerChannelPreference(self, body: Any) -> Answer:
        _require(isinstance(body, dict), "the body must be a JSON object")
        _only(body, {"ChannelID", "CustomerIDs", "CommunicationMode", "AppID"})
        _require(isinstance(body.get("ChannelID"), int), "ChannelID must be a number")
        ids = body.get("CustomerIDs")
        _require(
            isinstance(ids, list) and bool(ids) and all(isinstance(i, str) and i for i in ids),
            "CustomerIDs must be a non-empty list of ids",
        )
        _require(
            len(ids) <= MAX_CUSTOMERS_PER_PREFERENCE, f"at most {MAX_CUSTOMERS_PER_PREFERENCE} CustomerIDs per call"
        )
        _require(body.get("CommunicationMode") in ("OptIn", "OptOut"), "CommunicationMode must be OptIn or OptOut")
        with self._lock:
            for customer_id in ids:
                self.preferences[(customer_id, body["ChannelID"])] = body["CommunicationMode"]
        return Answer(200)

    def _SendTransactionalMail(self, body: Any) -> Answer:
        _require(isinstance(body, dict), "the body must be a JSON object")
        _only(body, {"TemplateID", "UniqueMessageID", "ScheduleTime", "Recipients"})
        template = body.get("TemplateID")
        _require(isinstance(template, int) and template > 0, "TemplateID must be a positive number")
        if self.templates and template not in self.templates:
            return Answer(200, {"IsSuccess": False, "SendID": None, "Error": "Invalid template"})
        unique = body.get("UniqueMessageID")
        if unique is not None:
            _require(
                isinstance(unique, str) and 0 < len(unique) <= MAX_UNIQUE_MESSAGE_ID,
                "UniqueMessageID: 1 to 254 characters",
            )
        recipients = body.get("Recipients")
        _require(isinstance(recipients, list) and bool(recipients), "Recipients must be a non-empty list")
        _require(len(recipients) <= MAX_RECIPIENTS_PER_MAIL, f"at most {MAX_RECIPIENTS_PER_MAIL} recipients per call")
        supplied: set[str] = set()
        for recipient in recipients:
            _require(isinstance(recipient, dict), "Recipients items must be objects")
            _only(recipient, {"CustomerID", "Email", "PersonalizationTags"}, "Recipients")
            _require(
                bool(recipient.get("CustomerID") or recipient.get("Email")),
                "a recipient needs a CustomerID or an Email",
            )
            for tag in recipient.get("PersonalizationTags", []):
                _require(
                    isinstance(tag, dict) and isinstance(tag.get("Tag"), str) and isinstance(tag.get("Value"), str),
                    "PersonalizationTags items are {Tag, Value} strings",
                )
                supplied.add(tag["Tag"])
        with self._lock:
            if unique is not None and unique in self.mails:
                return Answer(409, {"IsSuccess": False, "Error": f"UniqueMessageID {unique} was already sent"})
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

    def _reportEvent(self, body: Any) -> Answer:
        _require(isinstance(body, dict), "the body must be a JSON object")
        _only(body, {"tid", "cid", "eid", "context"})
        if body.get("tid") != self.realtime_token:
            return Answer(401, {"IsSuccess": False, "Error": "invalid tid"})
        _require(isinstance(body.get("cid"), str) and body["cid"], "cid is required")
        _require(isinstance(body.get("eid"), int), "eid must be a number")
        context = body.get("context", {})
        _require(isinstance(context, dict), "context must be an object")
        for key, value in context.items():
            _require(bool(SNAKE_CASE.match(key)), f"context parameter {key} must be snake_case")
            _require(
                isinstance(value, str | int | float | bool),
                f"context parameter {key} must be a string, number or boolean",
            )
            _require(
                not isinstance(value, str) or len(value) <= MAX_PARAMETER_LENGTH,
                f"context parameter {key}: at most 255 characters",
            )
        with self._lock:
            self.events.append(body)
        return Answer(200, {"IsSuccess": True, "Data": False})


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BadRequest(message)


def _only(document: dict[str, Any], allowed: set[str], where: str = "body") -> None:
    unknown = sorted(set(document) - allowed)
    _require(not unknown, f"{where}: unknown field(s) {', '.join(unknown)}")
