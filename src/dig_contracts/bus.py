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
