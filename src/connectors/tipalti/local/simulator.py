"""A Tipalti simulator: a test double of the REST API calls the connector makes, built from what the
reference documents (../shared/reference/cataboom-tipalti-api.md) and the samples in ../tests/fixtures/,
which the connector's parsers and this simulator are both tested against. Never imported by Lambda code.

Served under ``/_sim/tipalti``:
  POST /connect/token (form: client credentials)        GET  /api/v1/payees?filter=refCode=="X"
  POST /api/v1/payees                                   POST /api/v1/payees/{id}/invitation
  GET  /api/v1/payments?filter=refCode=="X"             POST /api/v1/payment-batches
  GET  /api/v1/payments?pageSize=200&pageCursor=...     (every payment, a page at a time)
  GET  /api/v1/payment-batches/{id}/instructions
  GET  /payments (every payment, one per refCode)       GET  /payees
  POST /payable {"refCodes": [...]}: those payees finish onboarding (or {"all": true})
  POST /advance {"refCodes": [...], "status": "PAID"}: payments move on, as Tipalti's clock would
  POST /webhook {"secret": "...", "type": "paymentCompleted", "refCode": "...", "paymentStatus": "PAID"}:
       the body and tipalti-signature header of that notification, signed as Tipalti signs it
  and the shared surface (GET/DELETE /requests, POST/DELETE /faults: dig_connector_kit.testing.double).

The simulator's own assumptions, where nothing public says (named so): a refCode used before refuses its
whole batch with 409 ``DuplicateRefCode``; an instruction to a payee not payable is an ``Error`` line
with the alert ``PayeeNotPayable``; a new payee is payable unless the simulator is told otherwise
(``new_payees_payable``); payments start ``SUBMITTED``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from dig_connector_kit.testing.double import Answer, ProviderSimulator

API = "/api/v1"
TOKEN_LIFETIME_SECONDS = 3600
MAX_INSTRUCTIONS = 250
FILTER = re.compile(r'^refCode=="([^"]+)"$')
INVITATION = re.compile(rf"^{API}/payees/([^/]+)/invitation$")
INSTRUCTIONS = re.compile(rf"^{API}/payment-batches/([^/]+)/instructions$")


def duplicate(ref: str) -> Answer:
    return Answer(409, {"errors": [{"code": "DuplicateRefCode", "message": f"refCode {ref} already exists"}]})


def signed(secret: str, body: bytes, stamp: int) -> str:
    """``tipalti-signature``: t=<unix>,v=<hex HMAC-SHA256 of "<t>-<body>">."""
    digest = hmac.new(secret.encode(), f"{stamp}-".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v={digest}"


class TipaltiSimulator(ProviderSimulator):
    secret_headers = frozenset({"authorization"})

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        new_payees_payable: bool = True,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        seed: int = 7,
    ) -> None:
        super().__init__(clock=clock, seed=seed)
        self.client_id, self.client_secret = client_id, client_secret
        self.new_payees_payable = new_payees_payable
        self._wall_clock = wall_clock
        self.tokens: dict[str, float] = {}
        self.payees: dict[str, dict[str, Any]] = {}  # by refCode
        self.payments: dict[str, dict[str, Any]] = {}  # by refCode
        self.batches: dict[str, list[dict[str, Any]]] = {}  # id -> instructions' results
        self.invitations: list[str] = []

    def call_name(self, method: str, path: str) -> str | None:
        routes = {
            ("POST", "/connect/token"): "token",
            ("GET", f"{API}/payees"): "findPayee",
            ("POST", f"{API}/payees"): "createPayee",
            ("GET", f"{API}/payments"): "findPayment",
            ("POST", f"{API}/payment-batches"): "createPaymentBatch",
        }
        if (method, path) in routes:
            return routes[(method, path)]
        if method == "POST" and INVITATION.match(path):
            return "invitePayee"
        if method == "GET" and INSTRUCTIONS.match(path):
            return "batchInstructions"
        return None

    def loggable_body(self, call: str, body: bytes) -> Any:
        if call == "token":
            return {"grant_type": "client_credentials", "client_secret": "[redacted]"}
        return super().loggable_body(call, body)

    def control(self, method: str, path: str, body: bytes) -> Answer | None:
        with self._lock:
            if (method, path) == ("GET", "/payments"):
                return Answer(200, list(self.payments.values()))
            if (method, path) == ("GET", "/payees"):
                return Answer(200, list(self.payees.values()))
        try:
            if (method, path) == ("POST", "/payable"):
                spec = json.loads(body)
                with self._lock:
                    refs = list(self.payees) if spec.get("all") else [str(r) for r in spec["refCodes"]]
                    for ref in refs:
                        if ref in self.payees:
                            self.payees[ref] |= {"isPayable": True, "status": "ACTIVE"}
                return Answer(204)
            if (method, path) == ("POST", "/advance"):
                spec = json.loads(body)
                with self._lock:
                    for ref in spec["refCodes"]:
                        if ref in self.payments:
                            self.payments[ref]["status"] = str(spec["status"])
                return Answer(204)
            if (method, path) == ("POST", "/webhook"):
                spec = json.loads(body)
                payload, headers = self.webhook(
                    str(spec["secret"]),
                    str(spec["type"]),
                    spec.get("eventData")
                    or {
                        "refCode": spec["refCode"],
                        "paymentStatus": spec.get("paymentStatus"),
                    },
                )
                return Answer(200, {"body": payload.decode(), "headers": headers})
        except (ValueError, KeyError, TypeError):
            return Answer(
                400, {"message": f"unexpected body for {method} {path}; see connectors.tipalti.local.simulator"}
            )
        return None

    def webhook(self, secret: str, kind: str, event_data: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """A webhook as Tipalti posts it: ``{id, type, createdDate, isTest, version, traceId, eventData}``."""
        document = {
            "id": str(uuid.uuid4()),
            "type": kind,
            "createdDate": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._wall_clock())),
            "isTest": False,
            "version": "1.0",
            "traceId": str(uuid.uuid4()),
            "eventData": event_data,
        }
        payload = json.dumps(document).encode()
        stamp = int(self._wall_clock())
        return payload, {"tipalti-signature": signed(secret, payload, stamp), "content-type": "application/json"}

    def serve(self, call: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Answer:
        if call == "token":
            return self.faulted(call, lambda: self._token(body))
        token = {k.lower(): v for k, v in headers.items()}.get("authorization", "").removeprefix("Bearer ")
        with self._lock:
            expires = self.tokens.get(token)
        if expires is None or self._clock() >= expires:
            return Answer(401, {"errors": [{"code": "Unauthorized", "message": "invalid or expired token"}]})
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        try:
            document = json.loads(body) if body else None
        except ValueError:
            return Answer(400, {"errors": [{"code": "InvalidJson", "message": "the body is not JSON"}]})
        handlers: dict[str, Callable[[], Answer]] = {
            "findPayee": lambda: self._find(self.payees, params),
            "createPayee": lambda: self._create_payee(document),
            "invitePayee": lambda: self._invite(path),
            "findPayment": lambda: self._find(self.payments, params) if "filter" in params else self._page(params),
            "createPaymentBatch": lambda: self._batch(document),
            "batchInstructions": lambda: self._instructions(path),
        }
        return self.faulted(call, handlers[call])

    def _token(self, body: bytes) -> Answer:
        form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return Answer(400, {"error": "unsupported_grant_type"})
        if (form.get("client_id"), form.get("client_secret")) != (self.client_id, self.client_secret):
            return Answer(400, {"error": "invalid_client"})
        token = f"sim-{uuid.uuid4().hex}"
        with self._lock:
            self.tokens[token] = self._clock() + TOKEN_LIFETIME_SECONDS
        return Answer(200, {"access_token": token, "expires_in": TOKEN_LIFETIME_SECONDS, "token_type": "Bearer"})

    def _find(self, collection: dict[str, dict[str, Any]], params: dict[str, str]) -> Answer:
        found = FILTER.match(params.get("filter", ""))
        if found is None:
            return Answer(400, {"errors": [{"code": "InvalidFilter", "message": 'filter: refCode=="..."'}]})
        with self._lock:
            item = collection.get(found.group(1))
        return Answer(200, {"items": [item] if item else [], "totalCount": 1 if item else 0})

    def _page(self, params: dict[str, str]) -> Answer:
        """GET /payments without a filter: every payment, ``pageSize`` at a time, from ``pageCursor``."""
        size = min(int(params.get("pageSize", "200")), 200)
        start = int(params.get("pageCursor", "0"))
        with self._lock:
            items = list(self.payments.values())[start : start + size]
            total = len(self.payments)
        cursor = str(start + size) if start + size < total else None
        return Answer(200, {"items": items, "totalCount": total, "pageInfo": {"nextPageCursor": cursor}})

    def _create_payee(self, document: Any) -> Answer:
        if (
            not isinstance(document, dict)
            or not document.get("refCode")
            or document.get("entityType")
            not in (
                "INDIVIDUAL",
                "COMPANY",
            )
        ):
            return Answer(400, {"errors": [{"code": "InvalidPayee", "message": "refCode and entityType are required"}]})
        ref = str(document["refCode"])
        if len(ref) > 64 or not ref.isalnum():
            return Answer(400, {"errors": [{"code": "InvalidRefCode", "message": "64 letters and digits at most"}]})
        with self._lock:
            if ref in self.payees:
                return duplicate(ref)
            payee = {
                "id": str(uuid.uuid4()),
                "refCode": ref,
                "status": "ACTIVE" if self.new_payees_payable else "PENDING",
                "isPayable": self.new_payees_payable,
                "contactInformation": document.get("contactInformation", {}),
            }
            self.payees[ref] = payee
        return Answer(201, {k: v for k, v in payee.items() if k != "contactInformation"})

    def _invite(self, path: str) -> Answer:
        found = INVITATION.match(path)
        assert found is not None
        with self._lock:
            if not any(p["id"] == found.group(1) for p in self.payees.values()):
                return Answer(404, {"errors": [{"code": "PayeeNotFound", "message": "no such payee"}]})
            self.invitations.append(found.group(1))
        sent = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._wall_clock()))
        return Answer(200, {"payeeId": found.group(1), "sentTime": sent, "status": "Sent"})

    def _batch(self, document: Any) -> Answer:
        instructions = document.get("paymentInstructions") if isinstance(document, dict) else None
        if not isinstance(instructions, list) or not 1 <= len(instructions) <= MAX_INSTRUCTIONS:
            return Answer(
                400, {"errors": [{"code": "InvalidBatch", "message": f"1 to {MAX_INSTRUCTIONS} instructions"}]}
            )
        with self._lock:
            for line in instructions:
                if line.get("refCode") in self.payments:
                    return duplicate(str(line["refCode"]))
            batch = str(uuid.uuid4())
            results = []
            by_id = {p["id"]: p for p in self.payees.values()}
            for line in instructions:
                payee = by_id.get(line.get("payeeId"))
                amount = (line.get("amountSubmitted") or {}).get("amount")
                ref = str(line.get("refCode"))
                alerts = []
                if payee is None or not payee["isPayable"]:
                    alerts.append({"code": "PayeeNotPayable", "message": "the payee cannot be paid", "type": "Error"})
                if not isinstance(amount, int | float) or amount <= 0:
                    alerts.append({"code": "InvalidAmount", "message": "amount must be positive", "type": "Error"})
                status = "Error" if alerts else "Created"
                results.append({"id": str(uuid.uuid4()), "refCode": ref, "payeeId": line.get("payeeId"),
                                "instructionStatus": status, "alerts": alerts})  # fmt: skip
                if not alerts:
                    self.payments[ref] = {
                        "id": str(uuid.uuid4()),
                        "batchId": batch,
                        "refCode": ref,
                        "status": "SUBMITTED",
                        "amountSubmitted": line["amountSubmitted"],
                        "fees": [],
                    }
            self.batches[batch] = results
        return Answer(201, {"id": batch})

    def _instructions(self, path: str) -> Answer:
        found = INSTRUCTIONS.match(path)
        assert found is not None
        with self._lock:
            results = self.batches.get(found.group(1))
        if results is None:
            return Answer(404, {"errors": [{"code": "BatchNotFound", "message": "no such batch"}]})
        return Answer(200, {"items": results, "totalCount": len(results)})
