"""The return path in the DIG API: providers' webhooks, verified before anything is stored, kept and
handed to their connector; and ES Loyalty's pull of the inbound events (``GET /v1/inbound-events``)
for deployments that cannot take DIG's webhooks. No HTTP here: the routes translate.

Each connector's webhook sources (its manifest's ``webhooks``) reach the API as the
``INBOUND_SOURCES`` environment: ``{connector: {source: WebhookSource.describe()}}``, the secret by
its Secrets Manager name. A request is refused with 401 when it carries nothing to verify, 403 when
what it carries is wrong or stale, 413 above its source's size: before the body is kept.

A source its connector answers (verification ``connector``: CataBoom's writeback, whose answer carries
CataBoom's codes) is handed to the connector's sync function as it came (``answer``): the connector
verifies, acts and answers; the API sends that answer and keeps only what the connector says to keep.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from db.inbound_feed import FeedPage, InboundFeed
from db.receipts import ReceiptStore
from dig_api.errors import (
    ApiError,
    ErrorDetail,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
)
from dig_contracts.inbound import WebhookAnswer, WebhookCall, WebhookReceipt
from dig_contracts.pan import mask_card_numbers
from dig_contracts.publisher import EventPublisher

logger = logging.getLogger(__name__)


class Unauthorized(ApiError):
    status, code = 401, "UNAUTHORIZED"


class SourceSpec(BaseModel):
    """One webhook source as the API verifies it (dig_contracts.manifest.WebhookSource.describe)."""

    model_config = ConfigDict(frozen=True)

    verification: Literal["hmac", "token", "standard_webhooks", "postback", "connector"]
    secretName: str | None = None
    function: str | None = None  # the connector's sync function (verification connector)
    header: str | None = None
    query_parameter: str | None = None
    timestamp_header: str | None = None
    tolerance_seconds: int = 300
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = ""
    separator: str = "."
    layout: Literal["value", "t=,v="] = "value"
    postback_url: str | None = None
    postback_answer: str = "VERIFIED"
    max_body_bytes: int = 64 * 1024
    handshake_keys: tuple[str, ...] = ()


HANDSHAKE_MAX_BYTES = 1024
HANDSHAKE_MAX_VALUE_CHARS = 256


def parse_sources(text: str) -> dict[str, dict[str, SourceSpec]]:
    document = json.loads(text or "{}")
    return {
        connector: {name: SourceSpec.model_validate(spec) for name, spec in sources.items()}
        for connector, sources in document.items()
    }


@dataclass(frozen=True)
class WebhookRequest:
    connector: str
    source: str
    body: bytes
    headers: Mapping[str, str]  # lower-cased names
    query: Mapping[str, str]
    request_id: str
    content_type: str | None = None


def _hmac(secret: str, message: bytes, encoding: str) -> str:
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def is_handshake(spec: SourceSpec, request: WebhookRequest) -> bool:
    """Whether the request is the source's unsigned subscription handshake (WebhookSource.handshake_keys):
    no signature header, and a small JSON object of exactly the declared keys, each a short string."""
    if not spec.handshake_keys or len(request.body) > HANDSHAKE_MAX_BYTES:
        return False
    if spec.header and request.headers.get(spec.header.lower()):
        return False  # signed: verified as a notification, never let through as a handshake
    try:
        document = json.loads(request.body)
    except ValueError:
        return False
    return (
        isinstance(document, dict)
        and set(document) == set(spec.handshake_keys)
        and all(isinstance(v, str) and 0 < len(v) <= HANDSHAKE_MAX_VALUE_CHARS for v in document.values())
    )


def verify(spec: SourceSpec, secret: str, request: WebhookRequest, now: float) -> None:
    """Raise Unauthorized (nothing to verify) or Forbidden (it does not verify); return when it does.
    (Post-back sources are checked by ``post_back``, with the provider.)"""
    if spec.verification == "postback":
        if not request.body:
            raise Unauthorized("the request carries nothing to verify")
        return
    if spec.verification == "standard_webhooks":
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError

        if not all(request.headers.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature")):
            raise Unauthorized("the request carries no Standard Webhooks signature")
        try:
            Webhook(secret).verify(request.body, dict(request.headers), json_parse=False)
        except WebhookVerificationError:
            raise Forbidden("the webhook's signature does not verify, or its timestamp is stale") from None
        return
    if spec.verification == "token":
        given = request.headers.get(spec.header.lower()) if spec.header else None
        if given is None and spec.query_parameter:
            given = request.query.get(spec.query_parameter)
        if not given:
            raise Unauthorized("the request carries no token")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            raise Forbidden("the webhook's token is not this source's")
        return
    assert spec.header is not None
    given = request.headers.get(spec.header.lower())
    if not given:
        raise Unauthorized(f"the request carries no signature ({spec.header})")
    stamp: str | None = None
    if spec.layout == "t=,v=":
        parts = dict(part.split("=", 1) for part in given.split(",") if "=" in part)
        stamp, given = parts.get("t", ""), parts.get("v", "")
    elif spec.timestamp_header:
        stamp = request.headers.get(spec.timestamp_header.lower(), "")
    message = request.body
    if stamp is not None:
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            raise Unauthorized("the request carries no timestamp with its signature")
        if abs(now - int(stamp)) > spec.tolerance_seconds:
            raise Forbidden(f"the webhook's timestamp is more than {spec.tolerance_seconds} s from now")
        message = stamp.encode() + spec.separator.encode() + request.body
    expected = spec.prefix + _hmac(secret, message, spec.encoding)
    if not hmac.compare_digest(expected.encode(), given.strip().encode("utf-8", "replace")):
        raise Forbidden("the webhook's signature does not verify")


def post_back(spec: SourceSpec, request: WebhookRequest, send: Callable[[str, bytes, str | None], str]) -> None:
    """The provider's own check (Tipalti's IPN): the raw body posted back to it, which answers whether it
    sent it. No answer raises ServiceUnavailable (the provider sends it again); any answer but the
    expected one is Forbidden."""
    assert spec.postback_url is not None
    try:
        answer = send(spec.postback_url, request.body, request.content_type)
    except Exception:
        raise ServiceUnavailable("the provider's verification did not answer; send it again") from None
    if answer.strip() != spec.postback_answer:
        raise Forbidden("the provider did not confirm the notification")


def http_post_back(url: str, body: bytes, content_type: str | None) -> str:
    import httpx

    headers = {"Content-Type": content_type or "application/x-www-form-urlencoded"}
    response = httpx.post(url, content=body, headers=headers, timeout=httpx.Timeout(5.0))
    response.raise_for_status()
    return response.text


# Invokes a function by name with a JSON payload and answers its JSON (in AWS a RequestResponse Lambda
# invoke, dig_api.sync.invoke_function; the local stack calls the handler in process).
FunctionInvoke = Callable[[str, dict[str, Any]], dict[str, Any]]


def no_functions(function: str, payload: dict[str, Any]) -> dict[str, Any]:
    raise RuntimeError(f"no way to invoke {function}")


class InboundService:
    def __init__(
        self,
        sources: Mapping[str, Mapping[str, SourceSpec]],
        secret: Callable[[str], str],
        receipts: ReceiptStore,
        publisher: EventPublisher,
        feed: InboundFeed,
        *,
        clock: Callable[[], float] = time.time,
        send: Callable[[str, bytes, str | None], str] = http_post_back,
        invoke: FunctionInvoke = no_functions,
    ) -> None:
        self._send = send
        self._invoke = invoke
        self._sources = sources
        self._secret = secret
        self._receipts = receipts
        self._publisher = publisher
        self._feed = feed
        self._clock = clock

    def invoke_with(self, invoke: FunctionInvoke) -> None:
        """How connectors' functions are invoked (the local stack: in process)."""
        self._invoke = invoke

    def _spec(self, request: WebhookRequest) -> SourceSpec:
        spec = self._sources.get(request.connector, {}).get(request.source)
        if spec is None:
            raise NotFound("no such webhook source")
        if len(request.body) > spec.max_body_bytes:
            raise PayloadTooLarge(
                f"this source takes bodies of at most {spec.max_body_bytes} bytes",
                [ErrorDetail(field="(body)", rule=f"at most {spec.max_body_bytes} bytes")],
            )
        return spec

    def answered_by_connector(self, connector: str, source: str) -> bool:
        spec = self._sources.get(connector, {}).get(source)
        return spec is not None and spec.verification == "connector"

    def answer(self, request: WebhookRequest) -> WebhookAnswer:
        """A connector-verified source: the request to the connector's sync function as it came, its
        answer back; what it says to keep, kept (card numbers masked). No answer is a 503: the provider
        sends it again, and the connector's inbound events' ids make a second copy one event."""
        spec = self._spec(request)
        assert spec.function is not None, "a connector-verified source names its connector's function"
        received_at = datetime.fromtimestamp(self._clock()).astimezone()
        call = WebhookCall(
            connector=request.connector,
            source=request.source,
            receiptId=request.request_id,
            receivedAt=received_at,
            body=request.body.decode("utf-8", "replace"),
            contentType=request.content_type,
            query=dict(request.query),
        )
        try:
            answer = WebhookAnswer.model_validate(
                self._invoke(spec.function, {"webhook": call.model_dump(mode="json")})
            )
        except Exception:
            logger.exception("the connector did not answer its webhook", extra={"connector": request.connector})
            raise ServiceUnavailable("the webhook's connector did not answer; send it again") from None
        if answer.keep is not None:
            receipt = WebhookReceipt(
                connector=request.connector,
                source=request.source,
                receiptId=request.request_id,
                receivedAt=received_at,
                body=mask_card_numbers(answer.keep),
                contentType=request.content_type,
            )
            try:
                self._receipts.keep(receipt)
            except Exception:  # acted on already: the audit trail misses its body, the provider its answer not
                logger.exception("a webhook's receipt was not kept", extra={"receiptId": request.request_id})
        return answer

    def receive(self, request: WebhookRequest) -> WebhookReceipt:
        spec = self._spec(request)
        if spec.verification == "connector":
            raise NotFound("this webhook source is answered by its connector")  # the route calls answer()
        assert spec.secretName is not None, "every source the API verifies names its secret"
        try:
            secret = self._secret(spec.secretName)
        except Exception:
            raise ServiceUnavailable("the webhook's secret cannot be read right now; send it again") from None
        handshake = is_handshake(spec, request)
        if not handshake:
            verify(spec, secret, request, self._clock())
        if spec.verification == "postback" and not handshake:
            post_back(spec, request, self._send)
        receipt = WebhookReceipt(
            connector=request.connector,
            source=request.source,
            receiptId=request.request_id,
            receivedAt=datetime.fromtimestamp(self._clock()).astimezone(),
            body=mask_card_numbers(request.body.decode("utf-8", "replace")),  # masked before anything keeps it
            contentType=request.content_type,
            handshake=handshake,
        )
        try:
            self._receipts.keep(receipt)
        except Exception:
            raise ServiceUnavailable("the webhook cannot be kept right now; send it again") from None
        if not self._publisher.publish_webhook_receipt(receipt).ok:
            raise ServiceUnavailable("the event bus did not take the webhook; send it again")
        return receipt

    def page(self, after: str | None, limit: int, since: datetime | None = None) -> FeedPage:
        try:
            return self._feed.page(after, limit, since)
        except ValueError:
            # 404, not 422: any text fits the parameter's schema; this one names no page DIG gave.
            raise NotFound(
                "the cursor is not one this API gave",
                [ErrorDetail(field="after", rule="a nextCursor from an earlier page")],
            ) from None
