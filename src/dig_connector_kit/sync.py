"""The synchronous flow: one message delivered now, its outcome answered to the caller.

The DIG API invokes a connector's sync entry point (in AWS a RequestResponse Lambda invoke, in the
local stack a direct call). The message goes through the same runtime as a queued one and is
audited the same way; a transient failure is final here (FAILED, replayable), since the caller is
waiting for an answer.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from db.records import DeliveryStatus
from dig_connector_kit.model import Deadline
from dig_connector_kit.runtime import BatchReport, ConnectorRuntime, Received
from dig_contracts.bus import BusDetail


class SyncRequest(BaseModel):
    detail: BusDetail


class SyncResult(BaseModel):
    connector: str
    status: DeliveryStatus
    error: str | None = None
    attempts: int = 0
    notes: list[str] = []


def deliver_one(runtime: ConnectorRuntime, request: SyncRequest, deadline: Deadline) -> dict[str, Any]:
    received = Received(record_id="sync", receive_count=1, detail=request.detail)
    report: BatchReport = runtime.process([received], deadline, synchronous=True)
    message_id = request.detail.messageId
    record = report.records.get(message_id)
    status = report.statuses.get(message_id, DeliveryStatus.FAILED)
    result = SyncResult(
        connector=runtime.connector.name,
        status=status,
        error=record.lastError if record else None,
        attempts=record.attemptCount if record else 0,
        notes=record.notes if record else ["already delivered earlier"],
    )
    return result.model_dump(mode="json")
