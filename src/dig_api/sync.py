"""The synchronous flow: deliver one event to its connectors now and answer their results.

The message is recorded like any other (so it can be looked up and replayed), but it does not go
on the bus: each subscribed connector's synchronous entry point is invoked directly, in parallel,
within the API's time. In AWS that is a RequestResponse Lambda invoke; the local stack calls the
handler in process.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from db.audit import AuditStore, AuditUnavailable, BeginOutcome
from db.records import DeliveryRecord, DeliveryStatus, iso, utc_now
from dig_api.errors import PublishInProgress, ServiceUnavailable
from dig_api.ingest import Caller, IngestService
from dig_contracts.bus import BusDetail
from dig_contracts.events import EnvelopeFields

logger = logging.getLogger(__name__)


class ConnectorInvoker(Protocol):
    def invoke(self, connector: str, request: dict[str, Any]) -> dict[str, Any]:
        """Run ``connector``'s synchronous entry point; its SyncResult, or raise."""
        ...


@dataclass(frozen=True)
class SyncConnector:
    name: str
    function: str
    event_types: frozenset[str]


def parse_sync_connectors(text: str) -> list[SyncConnector]:
    """SYNC_CONNECTORS: {"optimove": {"function": "<arn>", "eventTypes": [...]}} (set by the stack)."""
    document = json.loads(text or "{}")
    return [
        SyncConnector(name, str(spec["function"]), frozenset(spec.get("eventTypes", [])))
        for name, spec in sorted(document.items())
    ]


def invoke_function(client: Any, function: str, request: dict[str, Any]) -> dict[str, Any]:
    """A RequestResponse invoke of ``function``: its JSON answer, or RuntimeError when it raised."""
    answer = client.invoke(
        FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(request).encode()
    )
    payload = json.loads(answer["Payload"].read() or b"{}")
    if answer.get("FunctionError"):
        raise RuntimeError(f"{payload.get('errorType', 'Error')}: {payload.get('errorMessage', '')}"[:300])
    return dict(payload)


class LambdaInvoker:
    def __init__(self, client: Any, connectors: list[SyncConnector]) -> None:
        self._client = client
        self._functions = {c.name: c.function for c in connectors}

    def invoke(self, connector: str, request: dict[str, Any]) -> dict[str, Any]:
        return invoke_function(self._client, self._functions[connector], request)


class DirectInvoker:
    """The local stack's invoker: the connector's sync handler, called in process."""

    def __init__(self, handlers: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]]) -> None:
        self._handlers = dict(handlers)

    def invoke(self, connector: str, request: dict[str, Any]) -> dict[str, Any]:
        return self._handlers[connector](request)


@dataclass(frozen=True)
class SyncAnswer:
    message_id: str
    duplicate: bool
    deliveries: list[dict[str, Any]]


class SyncService:
    def __init__(
        self, ingest: IngestService, audit: AuditStore, invoker: ConnectorInvoker, connectors: list[SyncConnector]
    ) -> None:
        self._ingest = ingest
        self._audit = audit
        self._invoker = invoker
        self._connectors = connectors

    def deliver(self, event: EnvelopeFields, body: str | bytes, caller: Caller) -> SyncAnswer:
        begun = self._ingest.begin(event, body, caller)
        record = begun.record
        if begun.outcome is BeginOutcome.DUPLICATE:
            view = self._ingest.message(record.messageId)
            deliveries = [self._view(d) for d in (view.deliveries if view else [])]
            return SyncAnswer(record.messageId, True, deliveries)
        if begun.outcome is BeginOutcome.IN_PROGRESS:
            raise PublishInProgress("another request is delivering this eventId right now; retry shortly")
        subscribed = [c for c in self._connectors if str(getattr(event, "eventType", "")) in c.event_types]
        request = {"detail": BusDetail(messageId=record.messageId, event=record.envelope).model_dump(mode="json")}

        def call(connector: SyncConnector) -> dict[str, Any]:
            try:
                return self._invoker.invoke(connector.name, request)
            except Exception as error:  # the connector did not answer: record it, so it can be replayed
                logger.error("sync invoke failed", extra={"connector": connector.name, "error": str(error)})
                return self._record_unanswered(connector.name, record.messageId, event, str(error))

        with ThreadPoolExecutor(max_workers=max(len(subscribed), 1)) as pool:
            results = list(pool.map(call, subscribed))
        self._ingest.mark_delivered_synchronously(record.messageId)
        return SyncAnswer(record.messageId, False, results)

    def _record_unanswered(self, connector: str, message_id: str, event: EnvelopeFields, error: str) -> dict[str, Any]:
        text = f"the connector did not answer the synchronous call: {error}"[:500]
        delivery = DeliveryRecord(
            messageId=message_id,
            connector=connector,
            status=DeliveryStatus.FAILED,
            eventType=str(getattr(event, "eventType", "")),
            memberId=event.memberId,
            updatedAt=iso(utc_now()),
            lastError=text,
        )
        try:
            existing = self._audit.get_deliveries(connector, [message_id]).get(message_id)
            if existing is None or not existing.status.final:
                self._audit.save_deliveries([delivery])
        except AuditUnavailable:
            raise ServiceUnavailable("the audit trail cannot be written right now") from None
        return {"connector": connector, "status": "FAILED", "error": text, "attempts": 0, "notes": []}

    @staticmethod
    def _view(delivery: DeliveryRecord) -> dict[str, Any]:
        return {
            "connector": delivery.connector,
            "status": delivery.status.value,
            "error": delivery.lastError,
            "attempts": delivery.attemptCount,
            "notes": delivery.notes,
        }
