"""The metric catalogue (dig_contracts.metrics) is what the code emits: the dashboard reads only it."""

from __future__ import annotations

import ast
from pathlib import Path

from db.records import DeliveryStatus
from dig_api.errors import REJECTION_CODES
from dig_connector_kit.metrics import batch_metrics
from dig_connector_kit.runtime import BatchReport
from dig_contracts.metrics import ApiMetric, ConnectorMetric, rejected_metric

SRC = Path(__file__).resolve().parents[2] / "src"


def test_a_connector_invocation_can_emit_every_connector_metric_and_no_other() -> None:
    report = BatchReport(
        statuses={f"m-{s}": s for s in DeliveryStatus},
        unreadable=1,
        callbacks_unreadable=1,
        results_overdue=1,
        requeued=1,
        held=1,
        late_failures=1,
        attempts=4,
        replayed=1,
        webhooks=1,
        inbound_emitted=2,
        inbound_unmatched=1,
    )
    answers = {"ok": 5, "throttled": 1, "server-error": 2, "auth-refused": 1}
    emitted = batch_metrics(report, records=4, provider_answers=answers)
    assert set(emitted) == {str(m) for m in ConnectorMetric}
    assert emitted["ProviderCalls"] == 9
    assert emitted["BatchSize"] == 4


def test_a_quiet_invocation_emits_only_what_happened() -> None:
    report = BatchReport(statuses={"m-1": DeliveryStatus.DELIVERED})
    assert batch_metrics(report, records=1, provider_answers={"ok": 1}) == {
        "BatchSize": 1,
        "MessagesDelivered": 1,
        "ProviderCalls": 1,
    }


def test_the_api_handler_emits_every_api_metric_and_refusals_by_code() -> None:
    tree = ast.parse((SRC / "dig_api" / "handler.py").read_text())
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "ApiMetric"
    }
    assert used == {m.name for m in ApiMetric}
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "rejected_metric"]
    assert len(calls) == 2  # a refused request, and each refused entry of a batch
    assert rejected_metric("VALIDATION_FAILED") == "RejectedValidationFailed"
    assert "CARD_NUMBER_REFUSED" in REJECTION_CODES
