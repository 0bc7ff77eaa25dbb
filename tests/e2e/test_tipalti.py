"""Tipalti through `dig local`, on a stack of its own (Tipalti and the connector that delivers to ES
Loyalty): 200 payouts under a fifth of Tipalti's answers lost, then an outage, end with exactly 200
payments, none twice, each status back at the ES Loyalty double; a payout outside its program's rules is
FAILED and nothing sent. (A payee not yet payable, held every holdMinutes, is the unit tests': its
shortest hold is a minute.)"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.tipalti import client
from dig_contracts.examples import example_event
from tests.e2e.conftest import LocalStackProcess, delivery, start_local_stack

DIG = str(Path(sys.executable).parent / "dig")
HOOK = "/v1/inbound/tipalti/payments"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStackProcess]:
    yield from start_local_stack("esloyalty,tipalti")


def payout(run: str, index: int, amount: str = "25.00") -> dict[str, Any]:
    event = example_event("PAYOUT_REQUESTED", eventId=f"evt-{run}-{index}", memberId=f"M-{run}-{index % 50}")
    event["data"]["payoutId"] = f"PO-{run}-{index}"
    event["data"]["amount"]["amount"] = amount
    return event


def post_batch(stack: LocalStackProcess, events: list[dict[str, Any]]) -> list[str]:
    answer = stack.http.post("/v1/events/batch", json={"events": events})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["accepted"] * len(events)
    return [r["messageId"] for r in results]


def statuses_received(stack: LocalStackProcess, run: str) -> Counter[tuple[str, str]]:
    bodies = [json.loads(r["body"]) for r in stack.http.get("/_sim/esloyalty/received").json()]
    return Counter(
        (b["data"]["payoutId"], b["data"]["status"])
        for b in bodies
        if b["eventType"] == "PAYOUT_STATUS_CHANGED" and b["data"]["payoutId"].startswith(f"PO-{run}-")
    )


def test_200_payouts_under_lost_answers_and_an_outage_are_each_paid_exactly_once(stack: LocalStackProcess) -> None:
    run = uuid.uuid4().hex[:6]
    # The calls where a lost answer could pay twice or make a second payee (the lookups are retried as any GET).
    lossy = {"mode": "lose-answer", "status": 504, "rate": 0.2, "calls": ["createPaymentBatch", "createPayee"]}
    assert stack.http.post("/_sim/tipalti/faults", json=lossy).status_code == 204
    first = post_batch(stack, [payout(run, i) for i in range(100)])
    stack.wait_until(lambda: len(stack.http.get("/_sim/tipalti/payments").json()) >= 50, "half paid under losses")
    assert stack.http.post("/_sim/tipalti/faults", json={"status": 503, "times": 40}).status_code == 204
    second = post_batch(stack, [payout(run, i) for i in range(100, 200)])
    records = [stack.wait_for_final(i, timeout=180) for i in first + second]
    assert Counter(delivery(r, "tipalti")["status"] for r in records) == {"DELIVERED": 200}
    payments = [p for p in stack.http.get("/_sim/tipalti/payments").json()]
    ours = {client.payment_ref(f"PO-{run}-{i}") for i in range(200)}
    paid = [p["refCode"] for p in payments if p["refCode"] in ours]
    assert sorted(paid) == sorted(ours)  # exactly 200, one per payout (the simulator holds one per refCode)
    batches = [r for r in stack.http.get("/_sim/tipalti/requests").json() if r["call"] == "createPaymentBatch"]
    accepted = Counter(
        line["refCode"] for r in batches if r["status"] == 201 for line in r["body"]["paymentInstructions"]
    )
    assert all(count == 1 for ref, count in accepted.items() if ref in ours)  # none sent twice and taken

    def every_payout_reported() -> Counter[tuple[str, str]] | None:
        found = statuses_received(stack, run)
        return found if len({payout_id for payout_id, _ in found}) == 200 else None

    received = stack.wait_until(every_payout_reported, "every payout's status at ES Loyalty", timeout=120)
    assert {status for _, status in received} == {"SUBMITTED"}
    assert all(count == 1 for count in received.values())  # one webhook per payout and status

    # Ten clear at Tipalti with no webhook: the reconciliation job tells ES Loyalty, once.
    cleared = sorted(ours)[:10]
    assert stack.http.post("/_sim/tipalti/advance", json={"refCodes": cleared, "status": "CLEARED"}).status_code == 204
    first_run = stack.http.post("/_local/jobs/tipalti/reconcile", json={}).json()
    assert (first_run["open"] >= 200, first_run["changed"], first_run["missing"]) == (True, 10, 0)
    stack.wait_until(
        lambda: len([k for k in statuses_received(stack, run) if k[1] == "CLEARED"]) == 10, "the ten cleared payouts"
    )
    assert all(count == 1 for count in statuses_received(stack, run).values())

    # The day's reconciliation report, through the operator's command: nothing unmatched on either side.
    day = datetime.fromisoformat(payout(run, 0)["occurredAt"]).astimezone(UTC).date().isoformat()
    report = json.loads(dig("payouts", "reconcile", "--date", day, "--json", stack=stack))
    assert report["programs"]["ACME-REWARDS"] | {"paidAmounts": None} == {
        "requested": 200,
        "submitted": 200,
        "paid": 10,
        "failed": 0,
        "open": 190,
        "notSent": 0,
        "paidAmounts": None,
    }
    assert report["unmatched"] == {"dig": [], "provider": []}
    listed = [
        json.loads(line) for line in dig("payouts", "status", "--since", "1h", "--json", stack=stack).splitlines()
    ]
    ours_listed = {p["payoutId"]: p for p in listed if p["payoutId"].startswith(f"PO-{run}-")}
    assert len(ours_listed) == 200
    assert Counter((p["delivery"], p["status"], p["final"]) for p in ours_listed.values()) == {
        ("DELIVERED", "SUBMITTED", False): 190,
        ("DELIVERED", "CLEARED", True): 10,
    }

    # Tipalti's webhook, signed as Tipalti signs it: a forged copy refused, the real one (sent twice) once.
    secret = stack.http.get("/_local/stack").json()["webhookSecrets"]["tipalti/payments"]
    paid_id = next(f"PO-{run}-{i}" for i in range(200) if client.payment_ref(f"PO-{run}-{i}") not in cleared)
    document = {"secret": secret, "type": "paymentCompleted", "refCode": client.payment_ref(paid_id)}
    signed = stack.http.post("/_sim/tipalti/webhook", json=document | {"paymentStatus": "PAID"}).json()
    forged_headers = {**signed["headers"], "tipalti-signature": "t=1,v=00", "Authorization": ""}
    assert stack.http.post(HOOK, content=signed["body"], headers=forged_headers).status_code == 403
    for _ in range(2):
        sent = stack.http.post(HOOK, content=signed["body"], headers={**signed["headers"], "Authorization": ""})
        assert sent.status_code == 202
    stack.wait_until(lambda: statuses_received(stack, run).get((paid_id, "PAID")) == 1, "the webhook's PAID")


def dig(*arguments: str, stack: LocalStackProcess) -> str:
    done = subprocess.run(
        [DIG, *arguments, "--local", "--local-url", stack.url], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def test_a_payout_above_its_programs_maximum_fails_at_once_and_nothing_reaches_tipalti(
    stack: LocalStackProcess,
) -> None:
    run = uuid.uuid4().hex[:6]
    [message] = post_batch(stack, [payout(run, 0, amount="1000.01")])
    record = delivery(stack.wait_for_final(message), "tipalti")
    assert (record["status"], record["lastError"]) == (
        "FAILED",
        "not sent to Tipalti: 1000.01 CAD is above the program's maximum payout of 1000.00 CAD",
    )
    calls = stack.http.get("/_sim/tipalti/requests").json()
    assert not [c for c in calls if client.payment_ref(f"PO-{run}-0") in json.dumps(c.get("query") or c.get("body"))]
    received = stack.wait_until(lambda: statuses_received(stack, run), "the refusal at ES Loyalty")
    assert received == {(f"PO-{run}-0", "FAILED"): 1}
