"""Request and response bodies of the DIG API (the OpenAPI document is generated from these)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from db.records import Attempt, DeliveryRecord, MessageView
from dig_api.errors import ErrorInfo
from dig_api.ingest import MAX_BATCH_EVENTS
from dig_contracts.inbound import InboundEvent


class IngestResponse(BaseModel):
    messageId: str = Field(description="DIG's id for the message; the same eventId always gets the same one")
    status: Literal["accepted", "duplicate"]


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[Any] = Field(
        description="Up to 500 events, each an Event (see POST /v1/events); each is validated on its own, "
        "so a bad entry rejects only itself",
        min_length=1,
        max_length=MAX_BATCH_EVENTS,
    )


class BatchEntry(BaseModel):
    index: int
    eventId: str | None = None
    status: Literal["accepted", "duplicate", "rejected"]
    messageId: str | None = None
    error: ErrorInfo | None = Field(
        default=None, description="Why the entry was rejected; code SERVICE_UNAVAILABLE means retry it"
    )
    retryable: bool | None = None


class BatchResponse(BaseModel):
    results: list[BatchEntry]


class SyncDelivery(BaseModel):
    connector: str
    status: Literal["PENDING", "DELIVERED", "FAILED", "SKIPPED"]
    error: str | None = None
    attempts: int = 0
    notes: list[str] = Field(default_factory=list)


class SyncResponse(BaseModel):
    messageId: str
    status: Literal["completed", "duplicate"] = Field(
        description="completed: every subscribed connector answered now; duplicate: this eventId was seen before, "
        "and deliveries are its recorded state"
    )
    deliveries: list[SyncDelivery]


class DeliveryView(BaseModel):
    connector: str
    status: Literal["PENDING", "DELIVERED", "FAILED", "SKIPPED"]
    attempts: int = Field(description="How many provider calls were made for this message")
    lastError: str | None = None
    updatedAt: str
    notes: list[str] = Field(default_factory=list)
    replayRunId: str | None = None
    retryUntil: str | None = Field(
        default=None, description="PENDING: sent again automatically until then (the provider's verdict may change)"
    )
    attemptLog: list[Attempt] = Field(default_factory=list)

    @classmethod
    def of(cls, record: DeliveryRecord) -> DeliveryView:
        return cls(
            connector=record.connector,
            status=record.status.value,
            attempts=record.attemptCount,
            lastError=record.lastError,
            updatedAt=record.updatedAt,
            notes=record.notes,
            replayRunId=record.replayRunId,
            retryUntil=record.retryUntil,
            attemptLog=record.attempts,
        )


class MessageResponse(BaseModel):
    messageId: str
    eventId: str
    eventType: str
    memberId: str
    receivedAt: str
    publishState: Literal["PENDING", "PUBLISHED", "FAILED", "SYNC"]
    client: str | None = None
    fileId: str | None = Field(default=None, description="The batch file the event came in, if any")
    fileLine: int | None = Field(default=None, description="Its line in that file")
    deliveries: list[DeliveryView]

    @classmethod
    def of(cls, view: MessageView) -> MessageResponse:
        message = view.message
        return cls(
            messageId=message.messageId,
            eventId=message.eventId,
            eventType=message.eventType,
            memberId=message.memberId,
            receivedAt=message.receivedAt,
            publishState=message.publishState.value,
            client=message.client,
            fileId=message.fileId,
            fileLine=message.fileLine,
            deliveries=[DeliveryView.of(d) for d in sorted(view.deliveries, key=lambda d: d.connector)],
        )


class InboundEventEntry(BaseModel):
    id: str = Field(description="DIG's id for it: the webhook-id of the webhook that delivers it; deduplicate on it")
    receivedAt: str
    event: InboundEvent


class InboundEventsPage(BaseModel):
    events: list[InboundEventEntry]
    nextCursor: str | None = Field(default=None, description="Pass as `after` for the next page")
