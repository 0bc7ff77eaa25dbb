"""The return path from Optimove: OptiMail's unsubscribes, polled from a cursor with an overlap, each
one MEMBER_CONSENT_CHANGED for the member DIG knows the address of; read twice, sent once."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from connectors.optimove import client as api
from connectors.optimove.config import parse_config
from connectors.optimove.tests.harness import API_BASE, Harness, harness, sample_config_document
from connectors.optimove.unsubscribes import PollFailed, UnsubscribePoll
from dig_connector_kit.inbound import InboundEmitter
from dig_connector_kit.model import Deadline
from dig_connector_kit.ports import MemberContact
from dig_connector_kit.testing import FakePollCursors, FakePublisher, Fault, InMemoryAuditStore
from dig_contracts.inbound import parse_inbound

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TODAY = date(2026, 12, 6)


def poll(h: Harness, config: dict[str, Any] | None = None) -> tuple[UnsubscribePoll, FakePublisher, FakePollCursors]:
    publisher, cursors = FakePublisher(), FakePollCursors()
    parsed = parse_config(config or sample_config_document())
    emitter = InboundEmitter("optimove", InMemoryAuditStore(), publisher)
    return (
        UnsubscribePoll(lambda: parsed, h.transport, API_BASE, h.contacts, cursors, emitter, today=lambda: TODAY),
        publisher,
        cursors,
    )


def queries(h: Harness) -> list[dict[str, str]]:
    return [{k: v[-1] for k, v in parse_qs(r["query"]).items()} for r in h.calls(api.UNSUBSCRIBERS_CALL)]


def test_the_documented_answer_is_read_and_the_simulator_serves_it() -> None:
    documented = json.loads((FIXTURES / "get_unsubscribers.json").read_text())
    assert api.unsubscribers(documented) == [api.Unsubscriber("a@b.com", "2020-03-16 08:00:00")]
    h = harness()
    h.simulator.unsubscribe(["a@b.com"], brand_id=7, at="2020-03-16 08:00:00")
    answer = h.simulator.handle(
        "GET",
        "/api/optimail/GetUnsubscribers?BrandID=7&StartDate=2020-03-16&EndDate=2020-03-16",
        {"X-API-KEY": h.simulator.api_key},
        b"",
    )
    assert (answer.status, answer.body) == (200, documented)


@pytest.mark.parametrize("body", [{"Email": "a@b.c"}, [{"Email": "a@b.c"}], [{"Email": 1, "UnsubscribedTime": "x"}]])
def test_an_answer_not_of_the_documented_shape_is_refused(body: Any) -> None:
    with pytest.raises(ValueError, match="GetUnsubscribers"):
        api.unsubscribers(body)


def test_an_unsubscribe_reaches_es_loyalty_as_one_consent_change_for_its_member_and_never_again() -> None:
    h = harness()
    h.contacts.keep({"M-1": MemberContact(email="ada@example.com", seen_at="t")}, {})
    h.simulator.unsubscribe(["Ada@Example.com", "stranger@example.com"], brand_id=7, at="2026-12-05 10:00:00")
    h.simulator.unsubscribe(["ada@example.com"], brand_id=8, at="2026-12-05 11:00:00")  # another brand
    runner, publisher, cursors = poll(h)
    report = runner.run(Deadline(60, clock=h.clock))
    assert queries(h) == [{"BrandID": "7", "StartDate": "2026-11-06", "EndDate": "2026-12-06"}]
    assert (report.read, report.events, report.unmatched) == (2, 1, 1)
    assert report.notes == ["1 unsubscribed addresses match no member DIG knows"]
    [detail] = publisher.published
    event = parse_inbound(detail.event)
    assert event.model_dump(mode="json", exclude={"eventId"}) == {
        "eventType": "MEMBER_CONSENT_CHANGED",
        "schemaVersion": "1",
        "occurredAt": "2026-12-05T10:00:00Z",
        "memberId": "M-1",
        "programId": None,
        "origin": {
            "connector": "optimove",
            "source": "unsubscribes",
            "providerReference": "OptiMail brand 7, 2026-12-05 10:00:00 UTC",
            "receiptId": None,
        },
        "data": {"channel": "EMAIL", "consent": "OPTED_OUT", "reason": "UNSUBSCRIBE"},
    }
    assert "example.com" not in json.dumps(detail.event)  # no address travels in the event
    assert cursors.read("optimove", "unsubscribes") == "2026-12-06"

    again = runner.run(Deadline(60, clock=h.clock))
    assert queries(h)[-1] == {"BrandID": "7", "StartDate": "2026-12-05", "EndDate": "2026-12-06"}  # the overlap
    assert (again.events, again.duplicates) == (0, 1)
    assert len(publisher.published) == 1


def test_a_list_longer_than_a_page_is_read_page_by_page() -> None:
    h = harness()
    h.simulator.unsubscribe([f"u{i}@example.com" for i in range(10_001)], brand_id=7, at="2026-12-05 10:00:00")
    runner, _, _ = poll(h)
    report = runner.run(Deadline(60, clock=h.clock))
    assert [q.get("$skip") for q in queries(h)] == [None, "10000"]
    assert (report.pages, report.read, report.unmatched) == (2, 10_001, 10_001)


def test_optimove_failing_leaves_the_cursor_so_the_next_run_reads_the_same_days() -> None:
    h = harness()
    h.simulator.set_fault(Fault.from_document({"status": 500, "calls": [api.UNSUBSCRIBERS_CALL]}))
    runner, publisher, cursors = poll(h)
    with pytest.raises(PollFailed, match="GetUnsubscribers: 500"):
        runner.run(Deadline(60, clock=h.clock))
    assert cursors.read("optimove", "unsubscribes") is None
    assert publisher.published == []


def test_a_tenant_without_unsubscribes_configured_is_not_polled() -> None:
    h = harness()
    document = sample_config_document()
    del document["unsubscribes"]
    runner, _, _ = poll(h, document)
    assert runner.run(Deadline(60, clock=h.clock)).configured is False
    assert h.calls(api.UNSUBSCRIBERS_CALL) == []
