"""A Salesforce Marketing Cloud simulator: a test double that enforces what Salesforce documents for the
calls the connector makes (../shared/reference/sfmc-api.md), and no more: the token (client credentials,
a 20-minute life, 401 after it), the transactional send's shape and limits, a 202 whose recipients carry
their own error codes, a messageKey used twice, the send's status, the journey entry event, the
asynchronous data extension upsert with its status and per-row results. Salesforce's documented samples
live in ../tests/fixtures/; the connector's parsers and this simulator are both tested against them.
Never imported by Lambda code.

Served under ``/_sim/sfmc``:
  POST /auth/v2/token                                   POST /rest/messaging/v1/email/messages/
  GET  /rest/messaging/v1/email/messages/{messageKey}   POST /rest/interaction/v1/events
  PUT  /rest/data/v1/async/dataextensions/key:{k}/rows  GET  /rest/data/v1/async/{requestId}/status|results
  POST /rest/messaging/v1/sms/messages/                 GET  /rest/messaging/v1/sms/messages/{messageKey}
  POST /rest/platform/v1/ens-verify
  GET  /mails (the sends queued, one per messageKey)     GET /journeys (entry events)
  GET  /sms   (the SMS queued, one per messageKey)
  POST /sms-not-sent {"to": "14165550123", "statusCode": "47", "reason": "Mobile Address not found"}: SMS
                    to that number end SMSNotSent with that code (Salesforce's ENS sample's values)
  POST /ens/callbacks {"url": "..."}: an ENS callback made; answers its callbackId, verificationKey and
                    signatureKey (ENS would post the first two to the URL); GET /ens/callbacks: each, verified or not
  POST /ens/unsubscribes {"signatureKey": "...", "unsubscribes": [{"subscriberKey", "to"}]}: the body and
                    headers of the ENS notification of those unsubscribes, signed as ENS signs it
  GET  /rows  (each data extension's rows, by primary key)
  POST /unsubscribed {"contactKeys": [...]}: their sends end EmailNotSent (1 Unsubscribed)
  POST /invalid-values {"values": [...]}: a row holding one is refused at its upsert's results
  POST /recipient-errors {"to": "a@b.c", "errorcode": 109106, "message": "..."}: sends to that address are
                    refused inside the 202, with that code
  and the shared surface (GET/DELETE /requests, POST/DELETE /faults: dig_connector_kit.testing.double).

The simulator's own assumptions, where Salesforce documents nothing (named so): an unknown send or
event definition is a 400 with SFMC's usual error shape; an SMS send takes at most 100 recipients, its
``to`` digits only, and refuses a messageKey used before as email does (109110); ens-verify answers 200
with the callback, or 400 for a key that is not the callback's; an asynchronous upsert completes at once; a row
is refused when a primary-key column is missing or it holds a value marked invalid; results list rows in
the order they were sent; a send's status is EmailSent unless its contact is marked unsubscribed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

from dig_connector_kit.testing.double import Answer, ProviderSimulator

TOKEN_LIFETIME_SECONDS = 1200  # 20 minutes; the answer says 1079 so that clients renew early
ANSWERED_EXPIRES_IN = 1079
MAX_RECIPIENTS = 2000
MAX_MESSAGE_KEY = 100
MAX_ASYNC_ROWS = 32_000
MESSAGE_KEY_DAYS = 3
DUPLICATE_KEY = (109110, "MCMS_UTM_Validation_DuplicateMessageKey")
MISSING_TO = (109106, "MCMS_UTM_Validation_MissingRequiredField_to")
HAS_ERRORS = 109001
MAX_SMS_RECIPIENTS = 100  # the simulator's assumption: Salesforce documents none
STATUS_PATH = re.compile(r"^/rest/messaging/v1/email/messages/([^/]+)$")
SMS_STATUS_PATH = re.compile(r"^/rest/messaging/v1/sms/messages/([^/]+)$")
ROWS_PATH = re.compile(r"^/rest/data/v1/async/dataextensions/key:([^/]+)/rows$")
ASYNC_PATH = re.compile(r"^/rest/data/v1/async/([^/]+)/(status|results)$")


def not_authorized() -> Answer:
    return Answer(401, {"message": "Not Authorized", "errorcode": 0, "documentation": ""})


class SfmcSimulator(ProviderSimulator):
    secret_headers = frozenset({"authorization"})

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        definitions: Iterable[str] = (),
        sms_definitions: Iterable[str] = (),
        journeys: Iterable[str] = (),
        data_extensions: Mapping[str, Iterable[str]] | None = None,
        rest_url: str | None = None,
        mount: str = "/_sim/sfmc",
        clock: Callable[[], float] = time.monotonic,
        seed: int = 7,
    ) -> None:
        super().__init__(clock=clock, seed=seed)
        self.client_id, self.client_secret = client_id, client_secret
        self.definitions = frozenset(definitions)
        self.sms_definitions = frozenset(sms_definitions)
        self.sms: dict[str, dict[str, Any]] = {}  # messageKey -> the recipient, as queued
        self.sms_not_sent: dict[str, tuple[str, str]] = {}  # number -> (statusCode, reason)
        self.callbacks: dict[str, dict[str, Any]] = {}  # callbackId -> url, keys, verified
        self.journey_keys = frozenset(journeys)
        self.data_extensions = {k: tuple(v) for k, v in (data_extensions or {}).items()}  # key -> primary key
        self._rest_url, self._mount = rest_url, mount
        self.tokens: dict[str, float] = {}  # token -> expires at
        self.tokens_issued = 0
        self.mails: dict[str, dict[str, Any]] = {}  # messageKey -> the recipient, as queued
        self.journeys: list[dict[str, Any]] = []
        self.rows: dict[str, dict[str, dict[str, Any]]] = {}  # data extension -> primary key -> row
        self.unsubscribed: set[str] = set()
        self.invalid_values: set[str] = set()
        self.recipient_errors: dict[str, tuple[int, str]] = {}  # address -> (errorcode, message)
        self._async: dict[str, list[dict[str, Any]]] = {}  # requestId -> per-row results

    # --- routing ---------------------------------------------------------------------------------

    def call_name(self, method: str, path: str) -> str | None:
        if (method, path) == ("POST", "/auth/v2/token"):
            return "token"
        if (method, path) == ("POST", "/rest/messaging/v1/email/messages/"):
            return "sendEmail"
        if method == "GET" and STATUS_PATH.match(path):
            return "emailStatus"
        if (method, path) == ("POST", "/rest/messaging/v1/sms/messages/"):
            return "sendSms"
        if method == "GET" and SMS_STATUS_PATH.match(path):
            return "smsStatus"
        if (method, path) == ("POST", "/rest/platform/v1/ens-verify"):
            return "ensVerify"
        if (method, path) == ("POST", "/rest/interaction/v1/events"):
            return "journeyEvent"
        if method == "PUT" and ROWS_PATH.match(path):
            return "asyncUpsert"
        if method == "GET" and (found := ASYNC_PATH.match(path)):
            return "asyncStatus" if found.group(2) == "status" else "asyncResults"
        return None

    def loggable_body(self, call: str, body: bytes) -> Any:
        if call == "token":  # the client secret is never logged
            return {"grant_type": "client_credentials", "client_secret": "[redacted]"}
        return super().loggable_body(call, body)

    def control(self, method: str, path: str, body: bytes) -> Answer | None:
        with self._lock:
            if (method, path) == ("GET", "/mails"):
                return Answer(200, list(self.mails.values()))
            if (method, path) == ("GET", "/journeys"):
                return Answer(200, list(self.journeys))
            if (method, path) == ("GET", "/sms"):
                return Answer(200, list(self.sms.values()))
            if (method, path) == ("GET", "/ens/callbacks"):
                return Answer(
                    200,
                    [{"callbackId": k, "url": v["url"], "verified": v["verified"]} for k, v in self.callbacks.items()],
                )
            if (method, path) == ("GET", "/rows"):
                return Answer(200, {k: list(v.values()) for k, v in self.rows.items()})
        try:
            if (method, path) == ("POST", "/unsubscribed"):
                with self._lock:
                    self.unsubscribed.update(str(c) for c in json.loads(body)["contactKeys"])
                return Answer(204)
            if (method, path) == ("POST", "/recipient-errors"):
                spec = json.loads(body)
                with self._lock:
                    self.recipient_errors[str(spec["to"])] = (int(spec["errorcode"]), str(spec.get("message", "")))
                return Answer(204)
            if (method, path) == ("POST", "/sms-not-sent"):
                spec = json.loads(body)
                with self._lock:
                    self.sms_not_sent[str(spec["to"])] = (
                        str(spec.get("statusCode", "47")),
                        str(spec.get("reason", "Mobile Address not found")),
                    )
                return Answer(204)
            if (method, path) == ("POST", "/ens/callbacks"):
                spec = json.loads(body)
                return Answer(201, self.create_callback(str(spec["url"]), spec.get("callbackId")))
            if (method, path) == ("POST", "/ens/unsubscribes"):
                spec = json.loads(body)
                payload, headers = ens_unsubscribes(str(spec["signatureKey"]), spec["unsubscribes"], self._clock)
                return Answer(200, {"body": payload.decode(), "headers": headers})
            if (method, path) == ("POST", "/invalid-values"):
                with self._lock:
                    self.invalid_values.update(str(v) for v in json.loads(body)["values"])
                return Answer(204)
        except (ValueError, KeyError, TypeError):
            return Answer(400, {"message": f"unexpected body for {method} {path}; see connectors.sfmc.local.simulator"})
        return None

    def serve(self, call: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Answer:
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            document = json.loads(body) if body else None
        except ValueError:
            return Answer(400, {"message": "the body is not JSON", "errorcode": 10000, "documentation": ""})
        if call == "token":
            return self.faulted(call, lambda: self._token(document, lowered.get("host", "sfmc.test")))
        if not self._authorized(lowered.get("authorization", "")):
            return not_authorized()
        handlers: dict[str, Callable[[], Answer]] = {
            "sendEmail": lambda: self._send(document),
            "emailStatus": lambda: self._status(path),
            "sendSms": lambda: self._send_sms(document),
            "smsStatus": lambda: self._sms_status(path),
            "ensVerify": lambda: self._ens_verify(document),
            "journeyEvent": lambda: self._journey(document),
            "asyncUpsert": lambda: self._upsert(path, document),
            "asyncStatus": lambda: self._async_status(path),
            "asyncResults": lambda: self._async_results(path, query),
        }
        return self.faulted(call, handlers[call])

    # --- the calls -------------------------------------------------------------------------------

    def _token(self, document: Any, host: str) -> Answer:
        if not isinstance(document, dict) or document.get("grant_type") != "client_credentials":
            return Answer(400, {"error": "unsupported_grant_type", "error_description": "Use client_credentials."})
        if (document.get("client_id"), document.get("client_secret")) != (self.client_id, self.client_secret):
            return Answer(
                401,
                {
                    "error": "invalid_client",
                    "error_description": "Invalid client ID. Use the client ID in Marketing Cloud Installed Packages.",
                    "error_uri": "https://developer.salesforce.com/docs",
                },
            )
        token = f"sim-{uuid.uuid4().hex}"
        with self._lock:
            self.tokens[token] = self._clock() + TOKEN_LIFETIME_SECONDS
            self.tokens_issued += 1
        rest = self._rest_url or f"http://{host}{self._mount}/rest/"
        return Answer(
            200,
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": ANSWERED_EXPIRES_IN,
                "scope": "email_send email_read data_extensions_write journeys_read",
                "soap_instance_url": rest.replace("/rest/", "/soap/"),
                "rest_instance_url": rest,
            },
        )

    def _authorized(self, header: str) -> bool:
        token = header.removeprefix("Bearer ").strip()
        with self._lock:
            expires = self.tokens.get(token)
        return expires is not None and self._clock() < expires

    def _send(self, document: Any) -> Answer:
        if not isinstance(document, dict) or "recipient" in document:
            return Answer(400, {"message": "MCMS_UTM_Validation_UnknownFieldName: recipient", "errorcode": 10000})
        recipients = document.get("recipients")
        if not isinstance(recipients, list) or not 1 <= len(recipients) <= MAX_RECIPIENTS:
            return Answer(400, {"message": f"recipients: 1 to {MAX_RECIPIENTS}", "errorcode": 10000})
        if document.get("definitionKey") not in self.definitions:  # the simulator's assumption
            return Answer(400, {"message": "MCMS_UTM_Validation_InvalidDefinitionKey", "errorcode": 10000})
        responses: list[dict[str, Any]] = []
        failed = 0
        with self._lock:
            for recipient in recipients:
                key = str(recipient.get("messageKey") or uuid.uuid4())
                if len(key) > MAX_MESSAGE_KEY:
                    return Answer(400, {"message": f"messageKey: at most {MAX_MESSAGE_KEY}", "errorcode": 10000})
                error = None
                if not recipient.get("to"):
                    error = MISSING_TO
                elif key in self.mails:
                    error = DUPLICATE_KEY
                elif recipient["to"] in self.recipient_errors:
                    error = self.recipient_errors[recipient["to"]]
                if error is None:
                    self.mails[key] = {
                        "messageKey": key,
                        "definitionKey": document["definitionKey"],
                        "contactKey": recipient.get("contactKey"),
                        "to": recipient["to"],
                        "attributes": recipient.get("attributes", {}),
                        "queuedAt": self._clock(),
                    }
                    responses.append({"messageKey": key})
                else:
                    failed += 1
                    responses.append({"messageKey": key, "errorcode": error[0], "message": error[1]})
        answer: dict[str, Any] = {"requestId": str(uuid.uuid4()), "errorcode": 0, "responses": responses}
        if failed:
            answer["errorcode"] = HAS_ERRORS
            answer["message"] = (
                f"MCMS_UTM_ResponsesHasErrors: {failed} subscribers failed to queue out of {len(recipients)}"
            )
        return Answer(202, answer)

    def _status(self, path: str) -> Answer:
        found = STATUS_PATH.match(path)
        assert found is not None
        with self._lock:
            mail = self.mails.get(found.group(1))
            unsubscribed = mail is not None and mail["contactKey"] in self.unsubscribed
        if mail is None:
            return Answer(404, {"message": "MCMS_UTM_MessageKeyNotFound", "errorcode": 30003})
        info = {"messageKey": mail["messageKey"], "contactKey": mail["contactKey"], "to": mail["to"]}
        category = "EmailSent"
        if unsubscribed:
            category = "EmailNotSent"
            info |= {"statusCode": 1, "statusMessage": "Unsubscribed"}
        return Answer(
            200,
            {
                "requestId": str(uuid.uuid4()),
                "eventCategoryType": f"TransactionalSendEvents.{category}",
                "timestamp": "2026-12-06T06:00:00.000",
                "compositeId": f"{mail['messageKey']}.1",
                "info": info,
            },
        )

    def _send_sms(self, document: Any) -> Answer:
        recipients = document.get("recipients") if isinstance(document, dict) else None
        if not isinstance(recipients, list) or not 1 <= len(recipients) <= MAX_SMS_RECIPIENTS:
            return Answer(400, {"message": f"recipients: 1 to {MAX_SMS_RECIPIENTS}", "errorcode": 10000})
        if document.get("definitionKey") not in self.sms_definitions:
            return Answer(400, {"message": "MCMS_UTM_Validation_InvalidDefinitionKey", "errorcode": 10000})
        responses: list[dict[str, Any]] = []
        failed = 0
        with self._lock:
            for recipient in recipients:
                key = str(recipient.get("messageKey") or uuid.uuid4())
                to = str(recipient.get("to") or "")
                error = None
                if not to.isdigit():
                    error = (109106, f"MCMS_UTM_Validation_InvalidFieldValue_to: {to!r} is not a numeric string")
                elif key in self.sms:
                    error = DUPLICATE_KEY
                if error is None:
                    self.sms[key] = {
                        "messageKey": key,
                        "definitionKey": document["definitionKey"],
                        "contactKey": recipient.get("contactKey"),
                        "to": to,
                        "attributes": recipient.get("attributes", {}),
                        "resubscribe": (document.get("subscriptions") or {}).get("resubscribe"),
                    }
                    responses.append({"messageKey": key})
                else:
                    failed += 1
                    responses.append({"messageKey": key, "errorcode": error[0], "message": error[1]})
        answer: dict[str, Any] = {"requestId": str(uuid.uuid4()), "errorcode": 0, "responses": responses}
        if failed:
            answer |= {"errorcode": HAS_ERRORS, "message": f"MCMS_UTM_ResponsesHasErrors: {failed} failed"}
        return Answer(202, answer)

    def _sms_status(self, path: str) -> Answer:
        found = SMS_STATUS_PATH.match(path)
        assert found is not None
        with self._lock:
            sms = self.sms.get(found.group(1))
            not_sent = self.sms_not_sent.get(sms["to"]) if sms is not None else None
        if sms is None:
            return Answer(404, {"message": "MCMS_UTM_MessageKeyNotFound", "errorcode": 30003})
        info: dict[str, Any] = {"messageKey": sms["messageKey"], "subscriberKey": sms["contactKey"], "to": sms["to"]}
        category = "SMSSent"
        if not_sent is not None:
            category = "SMSNotSent"
            info |= {"statusCode": not_sent[0], "statusMessage": not_sent[1]}
        return Answer(
            200,
            {"requestId": str(uuid.uuid4()), "eventCategoryType": f"TransactionalSendEvents.{category}", "info": info},
        )

    def create_callback(self, url: str, callback_id: str | None = None) -> dict[str, str]:
        """An ENS callback, as ``POST /platform/v1/ens-callbacks`` makes one: the keys it would post. (A
        test may choose its id, to match a configuration; ENS chooses it.)"""
        made = {
            "callbackId": callback_id or str(uuid.uuid4()),
            "verificationKey": secrets.token_urlsafe(16),
            "signatureKey": secrets.token_urlsafe(32),
        }
        with self._lock:
            self.callbacks[made["callbackId"]] = {"url": url, "verified": False, **made}
        return made

    def _ens_verify(self, document: Any) -> Answer:
        callback = self.callbacks.get(str(document.get("callbackId"))) if isinstance(document, dict) else None
        if callback is None or document.get("verificationKey") != callback["verificationKey"]:
            return Answer(400, {"message": "Invalid callbackId or verificationKey", "errorcode": 10000})
        with self._lock:
            callback["verified"] = True
        return Answer(200, {"callbackId": callback["callbackId"], "url": callback["url"]})

    def _journey(self, document: Any) -> Answer:
        if not isinstance(document, dict) or not document.get("ContactKey"):
            return Answer(400, {"message": "ContactKey is required", "errorcode": 10000})
        if document.get("EventDefinitionKey") not in self.journey_keys:
            return Answer(400, {"message": "Event definition key not found", "errorcode": 30000})
        instance = str(uuid.uuid4())
        with self._lock:
            self.journeys.append({**document, "eventInstanceId": instance})
        return Answer(201, {"eventInstanceId": instance})

    def _upsert(self, path: str, document: Any) -> Answer:
        found = ROWS_PATH.match(path)
        assert found is not None
        key = found.group(1)
        request_id = str(uuid.uuid4())
        if key not in self.data_extensions:
            return Answer(
                200,
                {
                    "requestId": request_id,
                    "resultMessages": [
                        {
                            "resultType": "Error",
                            "resultClass": "Request",
                            "resultCode": "CustomObjectNotFound",
                            "message": f"Data extension {key} not found",
                        }
                    ],
                },
            )
        items = document.get("items") if isinstance(document, dict) else None
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_ASYNC_ROWS:
            return Answer(400, {"message": f"items: 1 to {MAX_ASYNC_ROWS}", "errorcode": 10000})
        primary = self.data_extensions[key]
        results = []
        with self._lock:
            for item in items:
                if not isinstance(item, dict) or any(column not in item for column in primary):
                    results.append(
                        {"status": "Error", "message": "A primary key column is missing", "errorCode": 10001}
                    )
                elif any(str(value) in self.invalid_values for value in item.values()):
                    results.append({"status": "Error", "message": "Invalid value for a column", "errorCode": 10002})
                else:
                    row_key = "|".join(str(item[c]) for c in primary)
                    self.rows.setdefault(key, {}).setdefault(row_key, {}).update(item)
                    results.append({"status": "OK", "message": "", "errorCode": 0})
            self._async[request_id] = results
        return Answer(202, {"requestId": request_id, "resultMessages": []})

    def _async_status(self, path: str) -> Answer:
        found = ASYNC_PATH.match(path)
        assert found is not None
        with self._lock:
            results = self._async.get(found.group(1))
        if results is None:
            return Answer(
                200, {"requestId": found.group(1), "resultMessages": [{"resultCode": "AsyncRequestStatusNotFound"}]}
            )
        has_errors = any(r["status"] == "Error" for r in results)
        return Answer(
            200,
            {
                "requestId": found.group(1),
                "status": {
                    "requestStatus": "Complete",
                    "resultStatus": "Has Errors" if has_errors else "OK",
                    "callDateTime": "2026-12-06T06:00:00",
                    "completionDateTime": "2026-12-06T06:00:01",
                },
                "resultMessages": [],
            },
        )

    def _async_results(self, path: str, query: str) -> Answer:
        found = ASYNC_PATH.match(path)
        assert found is not None
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        page, size = int(params.get("$page", "1")), int(params.get("$pageSize", "50"))
        with self._lock:
            results = self._async.get(found.group(1), [])
        start = (page - 1) * size
        return Answer(
            200, {"page": page, "pageSize": size, "count": len(results), "items": results[start : start + size]}
        )


def ens_signature(signature_key: str, body: bytes) -> str:
    """``x-sfmc-ens-signature``: base64 HMAC-SHA256 of the whole body (Salesforce: Notification Signing)."""
    return base64.b64encode(hmac.new(signature_key.encode(), body, hashlib.sha256).digest()).decode()


def ens_unsubscribes(
    signature_key: str, unsubscribes: Iterable[Mapping[str, Any]], clock: Callable[[], float] = time.time
) -> tuple[bytes, dict[str, str]]:
    """A batch of EngagementEvents.EmailUnsubscribe as ENS posts it (the documented sample's fields, with
    ``subscriberKey`` as ENS's other events carry it), and its signature header."""
    now_ms = int(clock() * 1000)
    events = []
    for index, unsubscribe in enumerate(unsubscribes):
        job, batch, subscriber = 1722201, 15607, 178363503 + index
        events.append(
            {
                "eventCategoryType": "EngagementEvents.EmailUnsubscribe",
                "timestampUTC": now_ms,
                "compositeId": f"{job}.69238.{batch}.{subscriber}",
                "definitionKey": "NA",
                "definitionId": "NA",
                "mid": 1476456,
                "eid": 1476266,
                "composite": {
                    "jobId": str(job),
                    "batchId": str(batch),
                    "listId": "69238",
                    "subscriberId": str(subscriber),
                },
                "info": {
                    **({"subscriberKey": unsubscribe["subscriberKey"]} if unsubscribe.get("subscriberKey") else {}),
                    "to": unsubscribe.get("to", ""),
                    "domain": str(unsubscribe.get("to", "")).rpartition("@")[2],
                    "unsubscribeDate": now_ms - 60_000,
                    "unsubscribeMethod": "Click",
                },
            }
        )
    body = json.dumps(events).encode()
    return body, {"x-sfmc-ens-signature": ens_signature(signature_key, body), "content-type": "application/json"}
