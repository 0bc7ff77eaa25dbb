"""ES Loyalty's webhook endpoint, as this connector calls it: one POST per inbound event, signed per
the Standard Webhooks specification (https://www.standardwebhooks.com) with the ``standardwebhooks``
library: ``webhook-id`` (DIG's message id: the same on every retry and replay, so ES Loyalty
deduplicates on it), ``webhook-timestamp`` (when this attempt was signed), ``webhook-signature``.

The body is the inbound event's envelope as JSON (dig_contracts.inbound), the same object
``GET /v1/inbound-events`` lists. 2xx: delivered. 408, 429, 5xx, a timeout: retried (the kit's
transport, then the queue). Any other 4xx: FAILED at once, replayable once ES Loyalty takes it.

UNVERIFIED: ES Loyalty's side of this (its endpoint, that it verifies Standard Webhooks signatures and
deduplicates on webhook-id) is not in ES Loyalty's public documentation; it is DIG's proposal, built so
that ES Loyalty can use any Standard Webhooks library to verify it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from dig_connector_kit.http import Request

WEBHOOK_CALL = "webhook"
LIMITER_KEY = "esloyalty-webhook"


def body_of(envelope: Mapping[str, Any]) -> bytes:
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


def webhook_request(url: str, message_id: str, envelope: Mapping[str, Any]) -> Request:
    return Request(
        call=WEBHOOK_CALL,
        method="POST",
        url=url,
        body={},
        content=body_of(envelope),
        headers={"webhook-id": message_id},
        limiter_key=None,
        limit=None,
    )


def sign(
    secret: Callable[[], Mapping[str, str]], clock: Callable[[], float] = time.time
) -> Callable[[Request], dict[str, str]]:
    """The Standard Webhooks headers of one attempt, over the exact bytes sent; the secret never leaves."""
    from standardwebhooks.webhooks import Webhook

    def headers(request: Request) -> dict[str, str]:
        assert request.content is not None
        moment = datetime.fromtimestamp(int(clock()), UTC)
        signature = Webhook(secret()["secret"]).sign(request.headers["webhook-id"], moment, request.content)
        return {"webhook-timestamp": str(int(moment.timestamp())), "webhook-signature": signature}

    return headers
