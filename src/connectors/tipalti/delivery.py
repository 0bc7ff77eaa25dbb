"""The Tipalti delivery engine: a batch of messages becomes calls of up to MAX_EVENTS_PER_CALL
events; each message's outcome comes from the call's answer and the provider's verdict on its event."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from connectors.tipalti import client as api
from connectors.tipalti.config import TipaltiConfig
from connectors.tipalti.mapping import tipalti_event
from dig_connector_kit.http import Transport
from dig_connector_kit.model import Deadline, InboundMessage, Outcome, Result
from dig_contracts.events import EventType

NAME = "tipalti"


class TipaltiConnector:
    name = NAME

    def __init__(self, config: Callable[[], TipaltiConfig], transport: Transport, base_url: str) -> None:
        self._config = config
        self._transport = transport
        self._base_url = base_url

    def deliver(self, messages: Sequence[InboundMessage], deadline: Deadline) -> Mapping[str, Outcome]:
        config = self._config()
        outcomes: dict[str, Outcome] = {}
        sendable: list[tuple[InboundMessage, dict[str, Any]]] = []
        for message in messages:
            mapping = config.events.get(EventType(message.event_type))
            if mapping is None:
                outcomes[message.message_id] = Outcome(
                    Result.SKIPPED, notes=[f"{message.event_type} is not mapped in the configuration"]
                )
            else:
                sendable.append((message, tipalti_event(message, mapping)))
        for start in range(0, len(sendable), api.MAX_EVENTS_PER_CALL):
            chunk = sendable[start : start + api.MAX_EVENTS_PER_CALL]
            result = self._transport.send(
                api.events_request(self._base_url, [event for _, event in chunk], config.limits), deadline
            )
            refused = api.rejected(result.body) if result.ok else {}
            for message, _ in chunk:
                attempts = list(result.attempts)
                if result.ok and message.message_id in refused:
                    outcome = Outcome(Result.FAILED, error=f"the provider rejected it: {refused[message.message_id]}")
                elif result.ok:
                    outcome = Outcome(Result.DELIVERED)
                else:
                    error = f"{api.EVENTS_CALL}: {result.status} {result.error or ''}".strip()
                    outcome = Outcome(Result.RETRY if result.retryable else Result.FAILED, error=error)
                outcome.attempts = attempts
                outcomes[message.message_id] = outcome
        return outcomes
