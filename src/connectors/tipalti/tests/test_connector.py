"""The Tipalti connector: the exact requests it makes for a payout, each outcome, what a lost answer, an
outage, a payee not yet payable or a payout outside its program's rules does, the statuses it tells ES
Loyalty, and the kit's contract."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.tipalti import client
from connectors.tipalti.config import ConfigError, parse_config
from connectors.tipalti.local import LOCAL_DOUBLE
from connectors.tipalti.manifest import MANIFEST
from connectors.tipalti.tests.harness import BASE_URL, harness, sample_config_document
from dig_connector_kit.model import Result
from dig_connector_kit.testing import ConnectorContract, Fault, inbound
from dig_contracts.examples import example_event
from dig_contracts.inbound import PayoutStatusChanged, WebhookReceipt


def payout(payout_id: str = "PO-1", member: str = "M-1", amount: str = "25.00", **data: Any) -> dict[str, Any]:
    event = example_event("PAYOUT_REQUESTED", eventId=f"evt-{payout_id}", memberId=member)
    event["data"] |= {"payoutId": payout_id, **data}
    event["data"]["amount"] = {"amount": amount, "currency": "CAD"}
    return event


def test_a_payout_creates_the_payee_then_pays_once_under_its_own_refcode() -> None:
    h = harness()
    message = inbound(payout())
    outcome = h.deliver(message)[message.message_id]
    assert outcome.result is Result.DELIVERED
    ref, payee_ref = client.payment_ref("PO-1"), client.payee_ref("M-1")
    assert [c["call"] for c in h.calls() if c["call"] != "token"] == [
        "findPayment",
        "findPayee",
        "createPayee",
        "createPaymentBatch",
        "batchInstructions",
    ]
    [token] = h.calls("token")
    assert token["body"] == {"grant_type": "client_credentials", "client_secret": "[redacted]"}
    [lookup] = h.calls("findPayment")
    assert (lookup["method"], lookup["path"], lookup["query"]) == (
        "GET",
        "/api/v1/payments",
        f"filter=refCode%3D%3D%22{ref}%22",
    )
    [created] = h.calls("createPayee")
    assert created["body"] == {
        "refCode": payee_ref,
        "entityType": "INDIVIDUAL",
        "contactInformation": {
            "email": "ada@example.com",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "countryCode": "CA",
        },
    }
    [batch] = h.calls("createPaymentBatch")
    payee_id = h.simulator.payees[payee_ref]["id"]
    assert batch["body"] == {
        "paymentInstructions": [
            {"payeeId": payee_id, "amountSubmitted": {"amount": 25.0, "currency": "CAD"}, "refCode": ref}
        ]
    }
    assert list(h.simulator.payments) == [ref]
    assert h.statuses("PO-1") == ["SUBMITTED"]
    assert h.payouts.get(ref).status == "SUBMITTED"  # type: ignore[union-attr]
    # The refCodes Tipalti sees hold no member or payout id, and follow its idap rules.
    assert payee_ref.isalnum()
    assert len(payee_ref) <= 64
    assert "M-1" not in payee_ref
    assert ref == client.payment_ref("PO-1") != client.payment_ref("PO-2")


def test_a_lost_answer_on_the_batch_is_never_paid_twice() -> None:
    h = harness()
    h.simulator.set_fault(
        Fault.from_document({"status": 504, "mode": "lose-answer", "calls": ["createPaymentBatch"], "times": 1})
    )
    message = inbound(payout())
    first = h.deliver(message)[message.message_id]
    assert first.result is Result.RETRY  # never resent blindly by the transport: money
    assert [a.status for a in first.attempts if a.call == "createPaymentBatch"] == ["504"]
    again = h.deliver(inbound(payout(), receive_count=2))[message.message_id]
    assert again.result is Result.DELIVERED
    assert any("already submitted to Tipalti" in n for n in again.notes)
    assert len(h.calls("createPaymentBatch")) == 1
    assert len(h.simulator.payments) == 1


def test_a_refcode_tipalti_holds_refuses_its_batch_and_the_next_attempt_pays_only_the_rest() -> None:
    h = harness()
    first, second = inbound(payout("PO-1")), inbound(payout("PO-2"))
    h.deliver(first)
    # A second copy of PO-1 whose lookup ran before the first copy's batch landed (two invocations at once).
    real_find, raced = h.simulator._find, list[dict[str, str]]()

    def stale_find(collection: Any, params: dict[str, str]) -> Any:
        if collection is h.simulator.payments and not raced:
            raced.append(params)
            return real_find({}, params)
        return real_find(collection, params)

    h.simulator._find = stale_find  # type: ignore[method-assign]
    outcomes = h.deliver(first, second)
    assert {o.result for o in outcomes.values()} == {Result.RETRY}
    assert outcomes[second.message_id].error == (
        "Tipalti refused a refCode it holds already: the next attempt looks each payment up"
    )
    later = h.deliver(first, second)
    assert {o.result for o in later.values()} == {Result.DELIVERED}
    assert sorted(h.simulator.payments) == sorted([client.payment_ref("PO-1"), client.payment_ref("PO-2")])
    assert len(h.calls("createPaymentBatch")) == 3  # PO-1; PO-1 and PO-2, refused; PO-2


def test_an_outage_is_retried_and_pays_once_when_tipalti_is_back() -> None:
    h = harness()
    h.simulator.set_fault(Fault.from_document({"status": 503, "calls": ["createPaymentBatch"]}))
    message = inbound(payout())
    outcome = h.deliver(message)[message.message_id]
    assert (outcome.result, outcome.error) == (Result.RETRY, "createPaymentBatch: 503 simulated fault 503")
    h.simulator.set_fault(None)
    assert h.deliver(message)[message.message_id].result is Result.DELIVERED
    assert len(h.simulator.payments) == 1
    assert len(h.simulator.payees) == 1  # the payee made on the first attempt was found, not made again


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"amount": "1000.01"}, "1000.01 CAD is above the program's maximum payout of 1000.00 CAD"),
        ({"currency": "EUR"}, "the program does not pay in EUR (configured: CAD, USD)"),
    ],
)
def test_a_payout_outside_its_programs_rules_fails_at_once_and_nothing_is_sent(
    change: dict[str, str], reason: str
) -> None:
    h = harness()
    event = payout(amount=change.get("amount", "25.00"))
    if "currency" in change:
        event["data"]["amount"]["currency"] = change["currency"]
    message = inbound(event)
    outcome = h.deliver(message)[message.message_id]
    assert (outcome.result, outcome.error) == (Result.FAILED, f"not sent to Tipalti: {reason}")
    assert h.calls() == []
    [status] = h.emitted.events
    assert (status.data.status.value, status.data.final, status.data.reason) == ("FAILED", True, reason)  # type: ignore[attr-defined]


def test_a_method_the_program_does_not_pay_by_fails_at_once() -> None:
    h = harness()
    event = payout(method="CASH")
    event["programId"] = "OTHER"  # the default program pays by direct deposit only, in USD
    event["data"]["amount"]["currency"] = "USD"
    message = inbound(event)
    outcome = h.deliver(message)[message.message_id]
    assert outcome.error == "not sent to Tipalti: the program does not pay by CASH (configured: DIRECT_DEPOSIT)"
    assert h.calls() == []


def test_a_payee_not_yet_payable_is_invited_once_held_reported_and_paid_once_payable() -> None:
    h = harness(payable=False)
    message = inbound(payout())
    held = h.deliver(message)[message.message_id]
    assert (held.result, held.hold_seconds) == (Result.RETRY, 900)
    assert held.error == "the payee is not payable yet (Tipalti: PENDING): held"
    assert h.calls("createPaymentBatch") == []
    assert len(h.simulator.invitations) == 1
    h.deliver(message)  # held again: not invited again
    assert len(h.simulator.invitations) == 1
    assert h.statuses("PO-1") == ["PAYEE_NOT_READY", "PAYEE_NOT_READY"]  # one event id: ES Loyalty gets it once
    assert len({e.eventId for e in h.emitted.events}) == 1
    h.simulator.payees[client.payee_ref("M-1")] |= {"isPayable": True, "status": "ACTIVE"}
    assert h.deliver(message)[message.message_id].result is Result.DELIVERED
    assert len(h.simulator.payments) == 1
    assert h.statuses("PO-1")[-1] == "SUBMITTED"


def test_a_payee_never_payable_fails_the_payout_after_the_configured_hours() -> None:
    h = harness(payable=False)
    message = inbound(payout())
    h.wall[0] = datetime(2026, 11, 24, 22, 0, tzinfo=UTC).timestamp()  # 73 hours after the request
    outcome = h.deliver(message)[message.message_id]
    assert (outcome.result, outcome.error) == (
        Result.FAILED,
        "the payee was still not payable 72 hours after the request",
    )
    assert h.emitted.events[-1].data.final is True  # type: ignore[attr-defined]


def test_a_refused_line_fails_its_payout_with_tipaltis_alert_and_the_others_are_submitted() -> None:
    h = harness()
    good, bad = inbound(payout("PO-1", "M-1")), inbound(payout("PO-2", "M-2"))
    real_batch = h.simulator._batch

    def payee_closes_meanwhile(document: Any) -> Any:
        # M-2's payee closes between DIG's payable check and the batch: Tipalti refuses that line only.
        h.simulator.payees[client.payee_ref("M-2")]["isPayable"] = False
        return real_batch(document)

    h.simulator._batch = payee_closes_meanwhile  # type: ignore[method-assign]
    outcomes = h.deliver(good, bad)
    assert outcomes[good.message_id].result is Result.DELIVERED
    assert (outcomes[bad.message_id].result, outcomes[bad.message_id].error) == (
        Result.FAILED,
        "Tipalti refused the payment: PayeeNotPayable the payee cannot be paid",
    )
    assert h.statuses("PO-2") == ["REJECTED"]
    assert list(h.simulator.payments) == [client.payment_ref("PO-1")]


def receipt(body: bytes) -> WebhookReceipt:
    return WebhookReceipt(
        connector="tipalti",
        source="payments",
        receiptId="req-1",
        receivedAt=datetime(2026, 11, 22, tzinfo=UTC),
        body=body.decode(),
    )


def test_tipalti_webhooks_tell_es_loyalty_each_status_once_and_nothing_after_a_final_one() -> None:
    h = harness()
    h.deliver(inbound(payout()))
    ref = client.payment_ref("PO-1")
    paid, _ = h.simulator.webhook("k", "paymentCompleted", {"refCode": ref, "paymentStatus": "PAID"})
    [event] = h.connector.read_webhook(receipt(paid)).events
    assert isinstance(event, PayoutStatusChanged)
    assert (event.memberId, event.data.payoutId, event.data.status.value, event.data.final) == (
        "M-1",
        "PO-1",
        "PAID",
        False,
    )
    deferred, _ = h.simulator.webhook(
        "k",
        "paymentDeferred",
        {"refCode": ref, "paymentStatus": "DEFERRED", "deferredReasons": [{"reasonDescription": "Tax form missing"}]},
    )
    [final] = h.connector.read_webhook(receipt(deferred)).events
    assert (final.data.status.value, final.data.final, final.data.reason, final.data.providerStatus) == (  # type: ignore[attr-defined]
        "DEFERRED",
        True,
        "Tax form missing",
        "DEFERRED",
    )
    late, _ = h.simulator.webhook("k", "paymentCompleted", {"refCode": ref, "paymentStatus": "PAID"})
    assert h.connector.read_webhook(receipt(late)).events == []
    unknown, _ = h.simulator.webhook("k", "paymentCompleted", {"refCode": "pnotours", "paymentStatus": "PAID"})
    assert h.connector.read_webhook(receipt(unknown)).unmatched == 1


def test_the_configuration_names_each_problem_by_its_path() -> None:
    document = sample_config_document()
    document["programs"]["default"]["maxAmount"] = {"XXX": "10.00"}
    document["holdMinutes"] = 16
    with pytest.raises(ConfigError) as refused:
        parse_config(document)
    text = str(refused.value)
    assert "programs.default.maxAmount" in text
    assert "holdMinutes" in text


def test_the_local_double_serves_the_shared_control_surface() -> None:
    assert LOCAL_DOUBLE.settings("http://127.0.0.1:9/_sim/tipalti") == {
        "TIPALTI_API_BASE_URL": "http://127.0.0.1:9/_sim/tipalti/api/v1",
        "TIPALTI_TOKEN_URL": "http://127.0.0.1:9/_sim/tipalti/connect/token",
    }
    assert BASE_URL.endswith("/api/v1")


def test_the_tipalti_connector_keeps_the_connector_contract() -> None:
    events = [payout("PO-c1", "M-c"), payout("PO-c2", "M-c")]
    ConnectorContract(lambda: harness().connector, events, MANIFEST).check()


def test_the_reconciliation_brings_a_status_no_webhook_brought_once_and_closes_final_payouts() -> None:
    from connectors.tipalti.reconcile import Reconciliation
    from dig_connector_kit.model import Deadline

    h = harness()
    h.deliver(inbound(payout("PO-1")), inbound(payout("PO-2", "M-2")))
    job = Reconciliation(
        lambda: h.config, h.connector._transport, BASE_URL, h.payouts, lambda: h.emitted, lambda: h.wall[0]
    )
    h.simulator.payments[client.payment_ref("PO-1")]["status"] = "CLEARED"
    report = job.run(Deadline(600, clock=h.clock))
    assert (report.open, report.looked_up, report.changed, report.missing) == (2, 2, 1, 0)
    assert h.statuses("PO-1") == ["SUBMITTED", "CLEARED"]
    assert [e.data.final for e in h.emitted.events if e.data.payoutId == "PO-1"] == [False, True]  # type: ignore[attr-defined]
    assert [p.payout_id for p in h.payouts.open_payouts()] == ["PO-2"]
    again = job.run(Deadline(600, clock=h.clock))
    assert (again.open, again.changed) == (1, 0)  # nothing new: nothing told twice


def test_the_daily_report_counts_each_programs_payouts_and_names_what_is_unmatched_on_either_side() -> None:
    from connectors.tipalti.reconcile import Reconciliation
    from dig_connector_kit.model import Deadline

    h = harness()
    over = payout("PO-3", "M-3", amount="5000.00")
    h.deliver(inbound(payout("PO-1")), inbound(payout("PO-2", "M-2", amount="10.50")), inbound(over))
    h.simulator.payments[client.payment_ref("PO-1")]["status"] = "CLEARED"
    transport = h.connector._transport
    job = Reconciliation(lambda: h.config, transport, BASE_URL, h.payouts, lambda: h.emitted, lambda: h.wall[0])
    job.run(Deadline(600, clock=h.clock))
    # Tipalti lost PO-2's payment; and holds one under a refCode of DIG's shape that DIG never sent.
    del h.simulator.payments[client.payment_ref("PO-2")]
    stray = client.payment_ref("PO-not-ours")
    h.simulator.payments[stray] = {
        "id": "x",
        "refCode": stray,
        "status": "SUBMITTED",
        "amountSubmitted": {},
        "fees": [],
    }
    report = job.daily_report("2026-11-21", Deadline(600, clock=h.clock))
    assert report["programs"] == {
        "ACME-REWARDS": {
            "requested": 3,
            "submitted": 2,
            "paid": 1,
            "failed": 1,
            "open": 1,
            "notSent": 0,
            "paidAmounts": {"CAD": "25.00"},
        }
    }
    assert report["unmatched"] == {"dig": ["PO-2"], "provider": [stray]}
    assert job.daily_report("2026-11-20", Deadline(600, clock=h.clock))["programs"] == {}
