"""Tipalti's documented shapes (tests/fixtures/README.md): the connector's parsers read them, and the
simulator answers in the same shapes; and the payout book's fake behaves as its DynamoDB adapter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.tipalti import client
from connectors.tipalti.payouts import DynamoPayoutBook, FakePayoutBook, Payout
from connectors.tipalti.tests.harness import harness
from dig_connector_kit.testing import inbound, moto_audit_table
from dig_contracts.examples import example_event

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__


def test_the_documented_answers_are_read() -> None:
    payee = client.first_item(fixture("payees_page.json"))
    assert payee is not None
    assert client.payee_state(payee) == client.PayeeState("b7a1c2d3-0000-4000-8000-000000000001", True, "ACTIVE")
    assert client.batch_id(fixture("payment_batch_created.json")) == "5f0e9c1a-0000-4000-8000-0000000000b1"
    lines = client.lines(fixture("batch_instructions.json"))
    assert [(line.refused, line.alerts) for line in lines.values()] == [
        (False, ""),
        (True, "PayeeNotPayable the payee cannot be paid"),
    ]
    assert client.duplicate_ref(json.dumps(fixture("errors_duplicate_ref.json")))
    assert client.first_item({"items": [], "totalCount": 0}) is None


def test_the_simulator_answers_in_the_documented_shapes() -> None:
    h = harness()
    h.deliver(inbound(example_event("PAYOUT_REQUESTED")))
    [payee] = h.simulator.payees.values()
    documented_payee = fixture("payees_page.json")["items"][0]
    assert set(payee) - {"contactInformation"} <= set(documented_payee)
    [payment] = h.simulator.payments.values()
    assert shape(payment) == shape(fixture("payments_page.json")["items"][0])
    [results] = h.simulator.batches.values()
    assert shape(results[0]) == shape(fixture("batch_instructions.json")["items"][1]) | {"alerts": []}
    body, _ = h.simulator.webhook("k", "paymentCompleted", {"refCode": "x", "paymentStatus": "PAID"})
    assert shape(json.loads(body)) == shape(fixture("webhook_payment_completed.json"))


@pytest.fixture
def dynamo_book() -> Iterator[DynamoPayoutBook]:
    with moto_audit_table() as table:
        yield DynamoPayoutBook(table)


@pytest.mark.parametrize("kind", ["dynamo", "fake"])
def test_the_payout_book_keeps_a_final_status_final(kind: str, request: pytest.FixtureRequest) -> None:
    book: Any = request.getfixturevalue("dynamo_book") if kind == "dynamo" else FakePayoutBook()
    assert book.get("p1") is None
    book.keep(Payout("p1", "PO-1", "M-1", "ACME"))
    book.set_status("p1", "SUBMITTED", False)
    book.set_status("p1", "CLEARED", True)
    book.set_status("p1", "PAID", False)  # a late, older status never replaces a final one
    assert book.get("p1") == Payout("p1", "PO-1", "M-1", "ACME", "CLEARED", True)
    book.set_status("unknown", "PAID", False)
    assert book.get("unknown") is None
    book.keep(Payout("p1", "PO-1", "M-1", "ACME"))  # a replay records it again: what is known stands
    assert book.get("p1") == Payout("p1", "PO-1", "M-1", "ACME", "CLEARED", True)


@pytest.mark.parametrize("kind", ["dynamo", "fake"])
def test_the_payout_book_lists_the_payouts_submitted_and_not_final(kind: str, request: pytest.FixtureRequest) -> None:
    book: Any = request.getfixturevalue("dynamo_book") if kind == "dynamo" else FakePayoutBook()
    for ref in ("p1", "p2", "p3"):
        book.keep(Payout(ref, f"PO-{ref}", "M-1"))
    book.set_status("p1", "SUBMITTED", False)
    book.set_status("p2", "SUBMITTED", False)
    book.set_status("p2", "CLEARED", True)
    assert [(p.ref, p.payout_id, p.status) for p in book.open_payouts()] == [("p1", "PO-p1", "SUBMITTED")]
