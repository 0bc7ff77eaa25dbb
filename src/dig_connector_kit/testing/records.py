"""The records a connector's queue hands its function, built as EventBridge and SQS build them, and
the ``InboundMessage`` a connector's ``deliver`` receives."""

from __future__ import annotations

import json
from typing import Any

from dig_connector_kit.model import InboundMessage
from dig_contracts.bus import (
    CALLBACK_SOURCE,
    SCHEDULED_CHECK,
    BusDetail,
    CallbackDetail,
    eventbridge_event,
    message_id_for,
)
from dig_contracts.files import FILE_READY, FILES_SOURCE, FileReadyDetail
from dig_contracts.inbound import parse_any_event


def sqs_record(event: dict[str, Any], *, receive_count: int = 1, record_id: str | None = None) -> dict[str, Any]:
    """An ES Loyalty event as the connector's queue delivers it (the EventBridge event a rule put there)."""
    detail = BusDetail(messageId=message_id_for(event["eventId"]), event=event)
    return {
        "messageId": record_id or f"sqs-{event['eventId']}-{receive_count}",
        "body": json.dumps(eventbridge_event(detail, region="us-east-1")),
        "attributes": {"ApproximateReceiveCount": str(receive_count)},
    }


def file_ready_record(detail: FileReadyDetail, *, record_id: str | None = None) -> dict[str, Any]:
    """A FILE_READY event as the connector's queue delivers it (a connector whose manifest names extracts)."""
    event = {
        "version": "0",
        "id": f"file-ready-{detail.fileId}",
        "detail-type": FILE_READY,
        "source": FILES_SOURCE,
        "time": detail.completedAt,
        "region": "us-east-1",
        "resources": [],
        "detail": detail.model_dump(mode="json"),
    }
    return {
        "messageId": record_id or f"sqs-{detail.fileId}",
        "body": json.dumps(event),
        "attributes": {"ApproximateReceiveCount": "1"},
    }


def _record(event: dict[str, Any], record_id: str, receive_count: int = 1) -> dict[str, Any]:
    return {
        "messageId": record_id,
        "body": json.dumps(event),
        "attributes": {"ApproximateReceiveCount": str(receive_count)},
    }


def scheduled_check_record(*, record_id: str = "sqs-scheduled-check") -> dict[str, Any]:
    """The schedule's periodic record: look for provider results that never came (polled results too)."""
    return _record(dict(SCHEDULED_CHECK), record_id)


def callback_record(detail: CallbackDetail, *, record_id: str | None = None) -> dict[str, Any]:
    """A provider's callback, as the DIG API puts it on the bus and the connector's rule queues it."""
    event = {
        "version": "0",
        "id": f"callback-{detail.callId}",
        "detail-type": f"CALLBACK.{detail.connector}",
        "source": CALLBACK_SOURCE,
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail.model_dump(mode="json"),
    }
    return _record(event, record_id or f"sqs-callback-{detail.callId}")


def inbound(
    document: dict[str, Any], *, receive_count: int = 1, completed: frozenset[str] = frozenset()
) -> InboundMessage:
    """An ES Loyalty (or inbound) event as ``Connector.deliver`` receives it."""
    return InboundMessage(
        message_id=message_id_for(document["eventId"]),
        event=parse_any_event(document),
        receive_count=receive_count,
        completed=completed,
    )


__all__ = ["BusDetail", "callback_record", "file_ready_record", "inbound", "scheduled_check_record", "sqs_record"]
