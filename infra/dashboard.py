"""The operator's dashboard: one CloudWatch dashboard per stack, generated from the installed
connectors' manifests like everything else. Every DIG metric it shows is one the code emits
(dig_contracts.metrics), every other one AWS publishes."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from constructs import Construct

from dig_api.errors import REJECTION_CODES
from dig_contracts.metrics import (
    API_SERVICE,
    NAMESPACE,
    SERVICE_DIMENSION,
    ApiMetric,
    ConnectorMetric,
    JobMetric,
    rejected_metric,
)
from infra.api import Api
from infra.connector import ConnectorModule
from infra.observability import connector_metric

PERIOD = Duration.minutes(1)
WIDTH = 8  # three widgets a row (the grid is 24 wide)


def api_metric(name: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map={SERVICE_DIMENSION: API_SERVICE},
        period=PERIOD,
        statistic="Sum",
        label=name,
    )


def rule_metric(bus: events.IEventBus, rule: events.IRule, name: str, label: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace="AWS/Events",
        metric_name=name,
        dimensions_map={"EventBusName": bus.event_bus_name, "RuleName": rule.rule_name},
        period=PERIOD,
        statistic="Sum",
        label=label,
    )


def graph(title: str, left: Sequence[cloudwatch.IMetric], **options: object) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(title=title, left=list(left), width=WIDTH, height=6, **options)  # type: ignore[arg-type]


class OperatorDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stack_name: str,
        api: Api,
        bus: events.IEventBus,
        connectors: Sequence[ConnectorModule],
        alarms: Sequence[cloudwatch.IAlarm],
    ) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{stack_name}-operations")
        stage = api.rest_api.deployment_stage
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"# {stack_name}\nStart with `dig status --stack {stack_name}`; the README's runbook says "
                "what each alarm means and what to do.",
                width=24,
                height=2,
            )
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=24, height=4),
        )
        self.dashboard.add_widgets(
            graph(
                "Ingest: requests and errors",
                [
                    stage.metric_count(period=PERIOD, label="requests"),
                    stage.metric_client_error(period=PERIOD, label="4xx"),
                    stage.metric_server_error(period=PERIOD, label="5xx"),
                ],
            ),
            graph(
                "Ingest: latency",
                [
                    stage.metric_latency(period=PERIOD, statistic="p50", label="p50"),
                    stage.metric_latency(period=PERIOD, statistic="p99", label="p99"),
                ],
            ),
            graph(
                "Events: accepted, duplicate, rejected by reason",
                [api_metric(m) for m in (ApiMetric.EVENTS_ACCEPTED, ApiMetric.EVENTS_DUPLICATE)]
                + [api_metric(rejected_metric(code)) for code in REJECTION_CODES],
            ),
        )
        for connector in connectors:
            self._connector_rows(bus, connector)

    def _connector_rows(self, bus: events.IEventBus, module: ConnectorModule) -> None:
        manifest = module.manifest
        name = manifest.name

        def dig(metric: ConnectorMetric | JobMetric, statistic: str = "Sum") -> cloudwatch.Metric:
            return connector_metric(name, metric, statistic).with_(period=PERIOD, label=str(metric))

        rules = [
            r for r in (module.rule, module.immediate_rule, module.callback_rule, module.webhook_rule) if r is not None
        ]
        calls_limit = (
            [cloudwatch.HorizontalAnnotation(value=manifest.provider_calls_per_minute, label="provider's limit")]
            if manifest.provider_calls_per_minute
            else []
        )
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(markdown=f"## {name}: {manifest.description}", width=24, height=1)
        )
        self.dashboard.add_widgets(
            graph(
                f"{name}: deliveries by outcome",
                [
                    dig(m)
                    for m in (
                        ConnectorMetric.MESSAGES_DELIVERED,
                        ConnectorMetric.MESSAGES_FAILED,
                        ConnectorMetric.MESSAGES_SKIPPED,
                        ConnectorMetric.MESSAGES_PENDING,
                        ConnectorMetric.MESSAGES_SENT_AGAIN,
                        ConnectorMetric.MESSAGES_HELD,
                        ConnectorMetric.MESSAGES_REPLAYED,
                        ConnectorMetric.MESSAGES_UNREADABLE,
                    )
                ],
            ),
            graph(
                f"{name}: provider calls (per minute) and attempts",
                [dig(ConnectorMetric.PROVIDER_CALLS), dig(ConnectorMetric.DELIVERY_ATTEMPTS)],
                left_annotations=calls_limit,
            ),
            graph(
                f"{name}: provider refusals",
                [
                    dig(ConnectorMetric.PROVIDER_THROTTLED),
                    dig(ConnectorMetric.PROVIDER_SERVER_ERRORS),
                    dig(ConnectorMetric.PROVIDER_AUTH_REFUSED),
                ],
            ),
        )
        self.dashboard.add_widgets(
            graph(
                f"{name}: queue",
                [
                    *(
                        queue.metric_approximate_number_of_messages_visible(period=PERIOD, label=f"waiting ({lane})")
                        for lane, queue in zip(("coalescing", "immediate"), module.queues, strict=False)
                    ),
                    module.dead_letter_queue.metric_approximate_number_of_messages_visible(
                        period=PERIOD, label="dead letters"
                    ),
                    module.target_dead_letter_queue.metric_approximate_number_of_messages_visible(
                        period=PERIOD, label="rule-target dead letters"
                    ),
                ],
                right=[
                    queue.metric_approximate_age_of_oldest_message(
                        period=PERIOD, statistic="Maximum", label=f"oldest message, {lane} (s)"
                    )
                    for lane, queue in zip(("coalescing", "immediate"), module.queues, strict=False)
                ],
            ),
            graph(
                f"{name}: batch size",
                [dig(ConnectorMetric.BATCH_SIZE, "Average"), dig(ConnectorMetric.BATCH_SIZE, "Maximum")],
            ),
            graph(
                f"{name}: the bus and late results",
                [
                    *(rule_metric(bus, rule, "MatchedEvents", f"matched ({rule.node.id})") for rule in rules),
                    *(rule_metric(bus, rule, "FailedInvocations", f"failed ({rule.node.id})") for rule in rules),
                    *(rule_metric(bus, rule, "InvocationsSentToDlq", f"to DLQ ({rule.node.id})") for rule in rules),
                    dig(ConnectorMetric.LATE_FAILURES),
                    dig(ConnectorMetric.CALLBACK_RESULTS_OVERDUE),
                    dig(ConnectorMetric.CALLBACK_RESULTS_UNREADABLE),
                ],
            ),
        )
        if manifest.emits:
            self.dashboard.add_widgets(
                graph(
                    f"{name}: the return path (what the provider said, to ES Loyalty)",
                    [
                        dig(ConnectorMetric.WEBHOOKS_READ),
                        dig(ConnectorMetric.INBOUND_EMITTED),
                        dig(ConnectorMetric.INBOUND_UNMATCHED),
                    ],
                )
            )
        if module.jobs:
            self.dashboard.add_widgets(
                graph(
                    f"{name}: scheduled jobs ({', '.join(module.jobs)})",
                    [dig(JobMetric.JOB_LATE, "Maximum"), dig(JobMetric.JOB_INPUT_MISSING, "Maximum")],
                )
            )
