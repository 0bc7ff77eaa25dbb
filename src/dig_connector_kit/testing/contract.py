"""The contract every connector keeps, as a suite its author runs against their own connector::

    from dig_connector_kit.testing import ConnectorContract

    def test_my_connector_keeps_the_contract() -> None:
        ConnectorContract(make_connector, sample_events, MANIFEST).check()

``make_connector()`` makes the connector wired to test doubles (its provider's double behind
``mock_transport``, the kit's fakes for the stores); ``sample_events`` are ES Loyalty envelopes, one per
event type the manifest subscribes to; ``manifest`` (recommended): the connector implements what it
declares (callbacks, polled results, files) by the kit's protocols. Each check raises AssertionError
with a sentence saying what broke.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dig_connector_kit.model import Connector, Deadline, InboundMessage, Outcome, Result, check_capabilities
from dig_connector_kit.ports import DeliveryStatus
from dig_connector_kit.runtime import ConnectorRuntime
from dig_connector_kit.testing.fakes import InMemoryAuditStore
from dig_connector_kit.testing.records import sqs_record
from dig_contracts.bus import message_id_for
from dig_contracts.inbound import parse_any_event
from dig_contracts.manifest import ConnectorManifest

MAX_RECEIVES = 3


class _Raises:
    """The connector, made to raise: what the runtime does then is part of the contract."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0

    def deliver(self, messages: Sequence[InboundMessage], deadline: Deadline) -> Mapping[str, Outcome]:
        self.calls += 1
        raise RuntimeError("the provider client blew up")


@dataclass
class ConnectorContract:
    make_connector: Callable[[], Connector]
    events: Sequence[dict[str, Any]]
    manifest: ConnectorManifest | None = None

    def check(self) -> None:
        self.it_does_what_its_manifest_declares()
        self.every_message_gets_an_outcome()
        self.every_outcome_is_on_the_audit_trail()
        self.nothing_is_lost_when_deliver_raises()
        self.a_delivered_message_is_not_delivered_again()

    def it_does_what_its_manifest_declares(self) -> None:
        if self.manifest is not None:
            connector = self.make_connector()
            assert connector.name == self.manifest.name, f"the connector is named {connector.name!r}"
            check_capabilities(self.manifest, connector)
            subscribed = {str(e["eventType"]) for e in self.events}
            assert subscribed <= {t.value for t in self.manifest.event_types}, "an event its manifest does not route"

    def _records(self, receive_count: int = 1) -> list[dict[str, Any]]:
        return [sqs_record(event, receive_count=receive_count) for event in self.events]

    def every_message_gets_an_outcome(self) -> None:
        connector = self.make_connector()
        messages = [InboundMessage(message_id_for(e["eventId"]), parse_any_event(e)) for e in self.events]
        outcomes = connector.deliver(messages, Deadline(600))
        missing = {m.message_id for m in messages} - set(outcomes)
        assert not missing, f"{connector.name}: deliver() gave no outcome for {sorted(missing)}"
        for message_id, outcome in outcomes.items():
            assert isinstance(outcome, Outcome), f"{connector.name}: the outcome of {message_id} is not an Outcome"
            assert isinstance(outcome.result, Result), f"{connector.name}: {message_id}'s outcome has no Result"
            if outcome.result in (Result.FAILED, Result.RETRY):
                assert outcome.error, f"{connector.name}: {message_id} is {outcome.result} without an error"

    def every_outcome_is_on_the_audit_trail(self) -> None:
        connector = self.make_connector()
        audit = InMemoryAuditStore()
        runtime = ConnectorRuntime(connector, audit, max_receive_count=MAX_RECEIVES)
        records = self._records()
        report = runtime.handle_sqs_batch({"Records": records}, Deadline(600))
        for event, record in zip(self.events, records, strict=True):
            message_id = message_id_for(event["eventId"])
            stored = audit.deliveries.get((message_id, connector.name))
            assert stored is not None, f"{connector.name}: {event['eventType']} left no audit record"
            if stored.status is DeliveryStatus.PENDING:
                assert record["messageId"] in report.failures, (
                    f"{connector.name}: {event['eventType']} is PENDING but not returned to the queue"
                )
            if stored.status is DeliveryStatus.FAILED:
                assert stored.lastError, f"{connector.name}: {event['eventType']} FAILED without saying why"

    def nothing_is_lost_when_deliver_raises(self) -> None:
        name = self.make_connector().name
        audit = InMemoryAuditStore()
        runtime = ConnectorRuntime(_Raises(name), audit, max_receive_count=MAX_RECEIVES)
        records = self._records()
        report = runtime.handle_sqs_batch({"Records": records}, Deadline(600))
        assert sorted(report.failures) == sorted(r["messageId"] for r in records), (
            "every message of a batch whose deliver() raised goes back to the queue"
        )
        last = runtime.handle_sqs_batch({"Records": self._records(receive_count=MAX_RECEIVES)}, Deadline(600))
        for event in self.events:
            stored = audit.deliveries[(message_id_for(event["eventId"]), name)]
            assert stored.status is DeliveryStatus.FAILED, "on its last receive a message is recorded FAILED"
            assert stored.lastError is not None
            assert "the connector raised RuntimeError" in stored.lastError
        assert len(last.failures) == len(self.events)  # and the queue moves it to the dead-letter queue

    def a_delivered_message_is_not_delivered_again(self) -> None:
        connector = self.make_connector()
        audit = InMemoryAuditStore()
        runtime = ConnectorRuntime(connector, audit, max_receive_count=MAX_RECEIVES)
        runtime.handle_sqs_batch({"Records": self._records()}, Deadline(600))
        done = {
            message_id
            for (message_id, _), record in audit.deliveries.items()
            if record.status in (DeliveryStatus.DELIVERED, DeliveryStatus.SKIPPED)
        }
        calls: list[str] = []
        original = connector.deliver

        def counting(messages: Sequence[InboundMessage], deadline: Deadline) -> Mapping[str, Outcome]:
            calls.extend(m.message_id for m in messages)
            return original(messages, deadline)

        connector.deliver = counting  # type: ignore[method-assign]
        runtime.handle_sqs_batch({"Records": self._records(receive_count=2)}, Deadline(600))
        again = done & set(calls)
        assert not again, f"{connector.name}: delivered again when SQS handed them over twice: {sorted(again)}"
