"""The ES Loyalty connector: each inbound event of a batch, one signed webhook to ES Loyalty."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from connectors.esloyalty import client as api
from dig_connector_kit.http import Transport
from dig_connector_kit.model import Deadline, InboundMessage, Outcome, Result

NAME = "esloyalty"


class EsLoyaltyConnector:
    name = NAME

    def __init__(self, transport: Transport, url: str) -> None:
        self._transport = transport
        self._url = url

    def deliver(self, messages: Sequence[InboundMessage], deadline: Deadline) -> Mapping[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        for message in messages:
            if not deadline.allows(1.0):
                outcomes[message.message_id] = Outcome(Result.RETRY, error="no time left in this invocation")
                continue
            envelope = message.inbound_event.model_dump(mode="json", exclude_none=True)
            result = self._transport.send(api.webhook_request(self._url, message.message_id, envelope), deadline)
            if result.ok:
                outcome = Outcome(Result.DELIVERED)
            else:
                error = f"{api.WEBHOOK_CALL}: {result.status} {result.error or ''}".strip()
                outcome = Outcome(Result.RETRY if result.retryable else Result.FAILED, error=error)
            outcome.attempts = list(result.attempts)
            outcomes[message.message_id] = outcome
        return outcomes
