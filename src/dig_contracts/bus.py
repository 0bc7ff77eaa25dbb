"""What DIG puts on the EventBridge bus, and how a connector receives it through SQS.

The DIG API publishes one entry per accepted event: ``Source`` = ``BUS_SOURCE``,
``DetailType`` = the event type, ``Detail`` = a ``BusDetail``. A rule forwards the whole EventBridge
event to the connector's queue; an operator's replay sends the same shape to that queue directly.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

BUS_SOURCE = "dig.api"
# A provider's asynchronous results (Optimove's per-customer errors), received by the DIG API and put
# on the bus for the connector that asked for them: detail-type CALLBACK.<connector>.
CALLBACK_SOURCE = "dig.callbacks"
# A connector's periodic check (a schedule puts it on the connector's queue): results overdue.
SCHEDULE_SOURCE = "dig.schedule"
SCHEDULED_CHECK = {"source": SCHEDULE_SOURCE, "detail-type": "CHECK", "detail": {}}
# The DIG API's messageId is derived from ES Loyalty's eventId, so that the same event always maps to
# the same message, whichever request (or racing request) carries it.
_MESSAGE_NAMESPACE = uuid.UUID("5f0e7c57-4c47-4b8e-9d3e-1d2a6e0b9a41")


def message_id_for(event_id: str) -> str:
    return str(uuid.uuid5(_MESSAGE_NAMESPACE, event_id))


class ReplayTag(BaseModel):
    model_config = ConfigDict(frozen=True)

    runId: str
    force: bool = False


class BusDetail(BaseModel):
    model_config = ConfigDict(frozen=True)

    messageId: str
    event: dict[str, Any] = Field(description="The validated ES Loyalty envelope, as JSON")
    replay: ReplayTag | None = None


def eventbridge_event(detail: BusDetail, *, region: str, account: str = "000000000000") -> dict[str, Any]:
    """The event as an EventBridge rule would hand it to an SQS target (used by replay)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail.event["eventType"],
        "source": BUS_SOURCE,
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
        "detail": detail.model_dump(mode="json", exclude_none=True),
    }


def callback_detail_type(connector: str) -> str:
    return f"CALLBACK.{connector}"


class CallbackDetail(BaseModel):
    """A provider's callback, as the DIG API received it (the connector signed its URL)."""

    model_config = ConfigDict(frozen=True)

    connector: str
    callId: str
    payload: Any
    receivedAt: str
    # The API request that received it: the same post redelivered by SQS keeps it, a replayed post
    # (the provider's, or anyone's who saw the URL) gets a new one, and is not applied again.
    receiptId: str | None = None
