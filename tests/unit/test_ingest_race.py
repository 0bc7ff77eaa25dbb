"""Racing posts of one event, through the ingest logic and the DynamoDB audit store: one message and
one record, every answer accepted or duplicate; the bus may carry it more than once (connectors
deliver on messageId, once)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from moto import mock_aws

from db.audit import DynamoAuditStore
from db.records import PublishState
from dig_api.ingest import Caller, IngestService
from dig_contracts.bus import message_id_for
from dig_contracts.events import parse_event
from dig_contracts.examples import example_event
from tests.aws import AUDIT, AtomicCalls, create_tables
from tests.fakes import FakePublisher


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        yield create_tables()


def test_racing_posts_of_one_event_accept_it_once(dynamodb: Any) -> None:
    store = DynamoAuditStore(AtomicCalls(dynamodb), AUDIT)  # type: ignore[arg-type]
    bus = FakePublisher()
    service = IngestService(store, bus)
    event = parse_event(example_event("REDEMPTION"))

    def post(i: int) -> str:
        return service.ingest(event, "x" * 500, Caller(request_id=f"request-{i}")).status.value

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(post, range(12)))
    assert "accepted" in answers
    assert set(answers) <= {"accepted", "duplicate"}
    # Only the posts that found no record published it; the others answered from the record.
    assert len(bus.published) == answers.count("accepted")
    assert {d.messageId for d in bus.published} == {message_id_for(event.eventId)}
    view = store.get_message(message_id_for(event.eventId))
    assert view is not None
    assert view.message.publishState is PublishState.PUBLISHED
    # Once recorded, the event is answered from its record and not published again.
    copies = len(bus.published)
    assert post(99) == "duplicate"
    assert len(bus.published) == copies
