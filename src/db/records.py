"""The audit trail's records, independent of how they are stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Sortable UTC timestamps with milliseconds: 2026-11-21T23:58:00.123Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def epoch_after(moment: datetime, days: int) -> int:
    return int((moment + timedelta(days=days)).timestamp())


class PublishState(StrEnum):
    """Where the DIG API is with putting a message on the bus."""

    PENDING = "PENDING"  # recorded, publish in progress (or interrupted: a retry completes it)
    PUBLISHED = "PUBLISHED"
    FAILED = "FAILED"  # the bus refused it; the client was told 503 and a retry completes it
    SYNC = "SYNC"  # the synchronous flow delivered it to the connectors directly, not via the bus


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"

    @property
    def final(self) -> bool:
        return self is not DeliveryStatus.PENDING


class Attempt(BaseModel):
    """One call to a provider on behalf of a message."""

    model_config = ConfigDict(frozen=True)

    at: str
    call: str
    status: str = Field(description="HTTP status, or 'timeout' / 'network' when no answer came")
    latencyMs: int
    error: str | None = None
    requestId: str | None = None
    callId: str | None = Field(default=None, description="A call whose results the provider posts back later")


@dataclass(frozen=True)
class FileLine:
    """Where an event from a batch file came from."""

    file_id: str
    line: int


class MessageRecord(BaseModel):
    messageId: str
    eventId: str
    eventType: str
    memberId: str
    programId: str | None = None
    occurredAt: str
    receivedAt: str
    client: str | None = None
    sourceIp: str | None = None
    sizeBytes: int
    envelope: dict[str, Any]
    publishState: PublishState = PublishState.PENDING
    publishedAt: str | None = None
    publishError: str | None = None
    publishAttempts: int = 1
    erasedAt: str | None = Field(default=None, description="The payload was erased on request (dig member forget)")
    fileId: str | None = Field(default=None, description="The batch file the event came in (POST /v1/files)")
    fileLine: int | None = Field(default=None, description="Its line in that file")

    @property
    def origin(self) -> FileLine | None:
        return FileLine(self.fileId, self.fileLine) if self.fileId and self.fileLine is not None else None


class DeliveryRecord(BaseModel):
    messageId: str
    connector: str
    status: DeliveryStatus
    eventType: str
    memberId: str
    updatedAt: str
    attempts: list[Attempt] = Field(default_factory=list)
    attemptCount: int = 0
    lastError: str | None = None
    notes: list[str] = Field(default_factory=list, description="What was skipped or superseded, and why")
    completed: list[str] = Field(
        default_factory=list, description="Operations already done, which a retry must not repeat"
    )
    replayRunId: str | None = None
    retryUntil: str | None = Field(
        default=None, description="Retried automatically until then (a provider's verdict that may change)"
    )


class MessageView(BaseModel):
    """A message with its deliveries: what GET /v1/messages/{messageId} answers."""

    message: MessageRecord
    deliveries: list[DeliveryRecord]
