"""Tipalti's REST API (``/api/v1``), as this connector calls it: one request builder per endpoint, the
OAuth 2.0 token, the references DIG derives, and how each answer is read. The kit's transport sends
them (timeouts, retries with backoff honouring Retry-After, the rate limit held across invocations).

Facts and their sources: ../shared/reference/cataboom-tipalti-api.md (Tipalti's docs, and the REST
client of a production integration: payees and payments by ``refCode`` filter, payment batches,
``tipalti-signature``). What no public source confirmed is marked UNVERIFIED here, and only here
(the README lists the same):
- the client-credentials grant's scopes (``TOKEN_SCOPES``) and that its body is form-encoded (OAuth 2.0's
  rule; the production client found uses the refresh-token grant);
- how many instructions a payment batch takes (``MAX_INSTRUCTIONS_PER_BATCH``: the SOAP API's 250);
- the answer to a batch holding a refCode used before (taken as 409 ``{"errors": [{"code":
  "DuplicateRefCode"}]}``, read as "already submitted": the lookup by refCode then finds it);
- that a payment event's ``eventData`` carries ``refCode``, ``paymentStatus`` and, for errors and
  deferrals, ``errorDescription`` and ``deferredReasons`` (the production client reads them so).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx

from dig_connector_kit.http import REQUEST_TIMEOUT, Request
from dig_connector_kit.oauth import ClientCredentialsToken

if TYPE_CHECKING:
    from dig_connector_kit.http import Transport
    from dig_connector_kit.lambda_entry import Kit
from dig_connector_kit.ratelimit import RateLimit

LIMITER_KEY = "tipalti-rest"
FIND_PAYEE = "findPayee"
CREATE_PAYEE = "createPayee"
INVITE_PAYEE = "invitePayee"
FIND_PAYMENT = "findPayment"
LIST_PAYMENTS = "listPayments"
PAGE_SIZE = 200
CREATE_BATCH = "createPaymentBatch"
BATCH_INSTRUCTIONS = "batchInstructions"
MAX_INSTRUCTIONS_PER_BATCH = 250  # UNVERIFIED for REST: the SOAP ProcessPayments limit
TOKEN_SCOPES = " ".join(
    ("tipalti.api.payee.read", "tipalti.api.payee.write", "tipalti.api.payment.read", "tipalti.api.payment.write")
)
TOKEN_MARGIN_SECONDS = 120
DUPLICATE_REF_CODE = "DuplicateRefCode"  # UNVERIFIED: see the module's docstring
# Tipalti's payment statuses [T17]: not final, then final.
OPEN_STATUSES = frozenset({"SUBMITTED", "PENDING_PAYER_FUNDS", "SCHEDULED", "FRAUD_REVIEW", "PAID"})
FINAL_STATUSES = frozenset({"CLEARED", "REJECTED", "DEFERRED", "DEFERRED_INTERNAL", "CANCELED"})


class TokenSource(ClientCredentialsToken):
    """The client-credentials token (``POST https://sso.tipalti.com/connect/token``, a form body), kept
    until two minutes before ``expires_in`` and renewed when a call answers 401 (the kit's
    ClientCredentialsToken)."""

    def __init__(
        self,
        http: httpx.Client,
        token_url: str,
        credentials: Callable[[], Mapping[str, str]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            http, credentials, provider="Tipalti's identity service", margin_seconds=TOKEN_MARGIN_SECONDS, clock=clock
        )
        self._url = token_url

    def _request(self, secret: Mapping[str, str]) -> httpx.Response:
        form = {
            "grant_type": "client_credentials",
            "client_id": secret["clientId"],
            "client_secret": secret["clientSecret"],
            "scope": TOKEN_SCOPES,
        }
        return self._http.post(self._url, data=form, timeout=REQUEST_TIMEOUT)


def transport_for(kit: Kit) -> Transport:
    """The kit's transport with Tipalti's token, renewed when a call answers 401 (delivery and jobs alike)."""
    from connectors.tipalti.manifest import SECRET_ID, TOKEN_URL

    tokens = TokenSource(kit.http, kit.setting(TOKEN_URL), lambda: kit.secret(SECRET_ID))
    return kit.transport(tokens.authorize, renew=tokens.renew, renew_on=frozenset({401}))


# --- DIG's references at Tipalti ------------------------------------------------------------------


def payee_ref(member_id: str) -> str:
    """The member's payee refCode (idap): at most 64 characters, letters and digits only [T11][T12];
    opaque (no member id at Tipalti) and the same every time."""
    return "m" + hashlib.sha256(f"dig-payee:{member_id}".encode()).hexdigest()[:40]


def payment_ref(payout_id: str) -> str:
    """The payment's refCode, from ES Loyalty's payout id alone: never regenerated, so Tipalti's refusal
    of a refCode used before is what stops a second payment [T2]."""
    return "p" + hashlib.sha256(f"dig-payout:{payout_id}".encode()).hexdigest()[:40]


# --- request builders: one per endpoint -----------------------------------------------------------


def find_payee(base: str, ref: str, limit: RateLimit) -> Request:
    return Request(FIND_PAYEE, "GET", f"{base}/payees", {}, LIMITER_KEY, limit, params={"filter": f'refCode=="{ref}"'})


def create_payee(base: str, ref: str, payee: Mapping[str, str], entity_type: str, limit: RateLimit) -> Request:
    """POST /payees: the member as an individual payee, name, email and country only; a retry after a lost
    answer is answered by the lookup first (``find_payee``), so this is sent at most once per attempt."""
    body = {
        "refCode": ref,
        "entityType": entity_type,
        "contactInformation": {
            "email": payee["email"],
            "firstName": payee["firstName"],
            "lastName": payee["lastName"],
            "countryCode": payee["country"],
        },
    }
    return Request(CREATE_PAYEE, "POST", f"{base}/payees", body, LIMITER_KEY, limit, at_most_once=True)


def invite_payee(base: str, payee_id: str, limit: RateLimit) -> Request:
    """POST /payees/{id}/invitation: Tipalti mails the member its onboarding (bank or card details,
    tax forms: entered there, never through DIG)."""
    return Request(
        INVITE_PAYEE, "POST", f"{base}/payees/{payee_id}/invitation", {}, LIMITER_KEY, limit, at_most_once=True
    )


def find_payment(base: str, ref: str, limit: RateLimit) -> Request:
    return Request(
        FIND_PAYMENT, "GET", f"{base}/payments", {}, LIMITER_KEY, limit, params={"filter": f'refCode=="{ref}"'}
    )


def list_payments(base: str, cursor: str | None, limit: RateLimit) -> Request:
    """GET /payments, a page of 200 (UNVERIFIED: ``pageSize``/``pageCursor`` and ``pageInfo.nextPageCursor``
    come from a connector README [T22]): what the daily report reads for payments DIG does not know."""
    params = {"pageSize": str(PAGE_SIZE), **({"pageCursor": cursor} if cursor else {})}
    return Request(LIST_PAYMENTS, "GET", f"{base}/payments", {}, LIMITER_KEY, limit, params=params)


def next_cursor(body: Any) -> str | None:
    info = body.get("pageInfo") if isinstance(body, dict) else None
    cursor = info.get("nextPageCursor") if isinstance(info, dict) else None
    return str(cursor) if cursor else None


def is_dig_payment_ref(ref: str) -> bool:
    """Whether a refCode has the shape of DIG's (payment_ref): what DIG may answer for."""
    return len(ref) == 41 and ref[0] == "p" and all(c in "0123456789abcdef" for c in ref[1:])


def create_batch(base: str, instructions: Sequence[Mapping[str, Any]], limit: RateLimit) -> Request:
    """POST /payment-batches: money moves. Never resent by the transport after a lost answer or a 5xx
    (``at_most_once``): the next attempt looks each payment up by refCode first."""
    if not 1 <= len(instructions) <= MAX_INSTRUCTIONS_PER_BATCH:
        raise ValueError(f"1 to {MAX_INSTRUCTIONS_PER_BATCH} instructions a batch")
    return Request(
        CREATE_BATCH,
        "POST",
        f"{base}/payment-batches",
        {"paymentInstructions": list(instructions)},
        LIMITER_KEY,
        limit,
        at_most_once=True,
    )


def batch_instructions(base: str, batch_id: str, limit: RateLimit) -> Request:
    return Request(BATCH_INSTRUCTIONS, "GET", f"{base}/payment-batches/{batch_id}/instructions", {}, LIMITER_KEY, limit)


def instruction(payee_id: str, amount: Decimal, currency: str, ref: str) -> dict[str, Any]:
    # Tipalti takes the amount as a JSON number; a decimal of at most 8+4 digits is exact as a float's text.
    return {"payeeId": payee_id, "amountSubmitted": {"amount": float(amount), "currency": currency}, "refCode": ref}


# --- answers ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PayeeState:
    payee_id: str
    payable: bool
    status: str


def first_item(body: Any) -> dict[str, Any] | None:
    """``{"items": [...], "totalCount": n}``: its first item, or None."""
    items = body.get("items") if isinstance(body, dict) else None
    return items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else None


def payee_state(item: Mapping[str, Any]) -> PayeeState:
    if not item.get("id"):
        raise ValueError("a payee without an id")
    return PayeeState(str(item["id"]), bool(item.get("isPayable")), str(item.get("status") or ""))


def batch_id(body: Any) -> str:
    if not isinstance(body, dict) or not body.get("id"):
        raise ValueError("the payment batch's answer has no id")
    return str(body["id"])


@dataclass(frozen=True)
class Line:
    ref: str
    status: str
    alerts: str

    @property
    def refused(self) -> bool:
        return self.status.upper() in {"ERROR", "FAILED", "REJECTED"}


def lines(body: Any) -> dict[str, Line]:
    """``GET /payment-batches/{id}/instructions``: each instruction's status and alerts, by refCode."""
    found = {}
    for item in body.get("items", []) if isinstance(body, dict) else []:
        if isinstance(item, dict) and item.get("refCode"):
            alerts = "; ".join(
                f"{a.get('code', '')} {a.get('message', '')}".strip()
                for a in item.get("alerts") or []
                if isinstance(a, dict)
            )
            found[str(item["refCode"])] = Line(str(item["refCode"]), str(item.get("instructionStatus", "")), alerts)
    return found


def duplicate_ref(error_text: str | None) -> bool:
    """Whether a refused request's answer (the transport's text of ``{"errors": [{"code", "message"}]}``
    [T7]) names the refCode used before."""
    return DUPLICATE_REF_CODE in (error_text or "")
