"""The metrics one connector invocation emits, from what it did (dig_contracts.metrics names them)."""

from __future__ import annotations

from collections.abc import Mapping

from db.records import DeliveryStatus
from dig_connector_kit.runtime import BatchReport
from dig_contracts.metrics import ConnectorMetric

# The provider's answers, as a connector's transport classes them (connectors.optimove.client.answer_class).
PROVIDER_ANSWERS = {
    "throttled": ConnectorMetric.PROVIDER_THROTTLED,
    "server-error": ConnectorMetric.PROVIDER_SERVER_ERRORS,
    "auth-refused": ConnectorMetric.PROVIDER_AUTH_REFUSED,
}
BY_STATUS = {
    DeliveryStatus.DELIVERED: ConnectorMetric.MESSAGES_DELIVERED,
    DeliveryStatus.FAILED: ConnectorMetric.MESSAGES_FAILED,
    DeliveryStatus.SKIPPED: ConnectorMetric.MESSAGES_SKIPPED,
    DeliveryStatus.PENDING: ConnectorMetric.MESSAGES_PENDING,
}


def batch_metrics(report: BatchReport, records: int, provider_answers: Mapping[str, int]) -> dict[str, int]:
    """Metric name -> value for one invocation; zeros left out (no data is not a zero in CloudWatch's
    alarms, which treat missing data as not breaching)."""
    values: dict[str, int] = {ConnectorMetric.BATCH_SIZE: records}
    for status in report.statuses.values():
        values[BY_STATUS[status]] = values.get(BY_STATUS[status], 0) + 1
    values |= {
        ConnectorMetric.MESSAGES_UNREADABLE: report.unreadable,
        ConnectorMetric.MESSAGES_REPLAYED: report.replayed,
        ConnectorMetric.MESSAGES_SENT_AGAIN: report.requeued,
        ConnectorMetric.MESSAGES_HELD: report.held,
        ConnectorMetric.DELIVERY_ATTEMPTS: report.attempts,
        ConnectorMetric.LATE_FAILURES: report.late_failures,
        ConnectorMetric.CALLBACK_RESULTS_UNREADABLE: report.callbacks_unreadable,
        ConnectorMetric.CALLBACK_RESULTS_OVERDUE: report.results_overdue,
        ConnectorMetric.PROVIDER_CALLS: sum(provider_answers.values()),
        ConnectorMetric.WEBHOOKS_READ: report.webhooks,
        ConnectorMetric.INBOUND_EMITTED: report.inbound_emitted,
        ConnectorMetric.INBOUND_UNMATCHED: report.inbound_unmatched,
    }
    for answer, metric in PROVIDER_ANSWERS.items():
        values[metric] = provider_answers.get(answer, 0)
    return {str(name): value for name, value in values.items() if value}
