"""Alarms, and the topic they notify. Each alarm's description says what happened, the README's
runbook section to follow, and the first command to run (``RUNBOOK``: the section titles; an
infrastructure test checks that each is a heading of the README's runbook)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from dig_contracts.metrics import (
    FILES_SERVICE,
    NAMESPACE,
    SERVICE_DIMENSION,
    ConnectorMetric,
    FileMetric,
    JobMetric,
    connector_service,
)

if TYPE_CHECKING:
    from infra.files import FileFlow

OLDEST_MESSAGE_ALARM_SECONDS = 15 * 60
FAILED_DELIVERY_ALARM_PERCENT = 5


class RUNBOOK:
    PROVIDER_DOWN = "A provider is down or refusing"
    CREDENTIALS = "The provider refuses DIG's credentials"
    FAILING = "Deliveries failing"
    POISON = "A poison message in a dead-letter queue"
    FUNCTION = "A function failing or throttled"
    RESULTS = "Results that never came back"
    QUOTA = "A provider's daily quota spent"
    FILE_FAILED = "A batch file failed"
    FEED_LATE = "A daily feed late or failed"
    FEED_INPUT_MISSING = "An expected extract did not arrive"


def connector_metric(connector: str, metric: ConnectorMetric | JobMetric, statistic: str = "Sum") -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=str(metric),
        dimensions_map={SERVICE_DIMENSION: connector_service(connector)},
        period=Duration.minutes(5),
        statistic=statistic,
    )


class Observability(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, alarm_email: str | None, stack_name: str) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name="DIG alarms",
            enforce_ssl=True,
            master_key=kms.Alias.from_alias_name(self, "SnsKey", "alias/aws/sns"),
        )
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        self._action = actions.SnsAction(self.topic)
        self._target = f"--stack {stack_name}"
        self.alarms: list[cloudwatch.Alarm] = []

    def _alarm(
        self, construct_id: str, metric: cloudwatch.IMetric, threshold: float, what: str, runbook: str, first: str
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"{what}. Runbook: {runbook}. First: {first} {self._target}",
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms.append(alarm)
        return alarm

    def watch_dead_letter_queue(self, name: str, queue: sqs.IQueue, what: str, connector: str) -> None:
        self._alarm(
            f"{name}DeadLetters",
            queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(1), statistic="Maximum"),
            1,
            f"{what} holds messages",
            RUNBOOK.POISON,
            f"dig dlq --connector {connector}",
        )

    def watch_queue_age(self, name: str, queue: sqs.IQueue, what: str) -> None:
        self._alarm(
            f"{name}OldestMessage",
            queue.metric_approximate_age_of_oldest_message(period=Duration.minutes(1), statistic="Maximum"),
            OLDEST_MESSAGE_ALARM_SECONDS,
            f"{what}: a message has waited over {OLDEST_MESSAGE_ALARM_SECONDS // 60} minutes; the provider may be down",
            RUNBOOK.PROVIDER_DOWN,
            "dig status",
        )

    def watch_function(self, name: str, function: lambda_.IFunction) -> None:
        for kind, metric in (
            ("Errors", function.metric_errors(period=Duration.minutes(5), statistic="Sum")),
            ("Throttles", function.metric_throttles(period=Duration.minutes(5), statistic="Sum")),
        ):
            self._alarm(
                f"{name}{kind}",
                metric,
                1,
                f"the {name} Lambda function: {kind.lower()}",
                RUNBOOK.FUNCTION,
                "dig status",
            )

    def watch_job(self, connector: str, job: str) -> None:
        """A connector's scheduled job: its day not complete past its deadline; an expected input absent."""
        prefix = f"{connector.title()}{job.title()}Job"
        self._alarm(
            f"{prefix}Late",
            connector_metric(connector, JobMetric.JOB_LATE, "Maximum"),
            1,
            f"{connector} {job}: the day's files are not complete past the provider's readiness time",
            RUNBOOK.FEED_LATE,
            "dig feed status --days 3",
        )
        self._alarm(
            f"{prefix}InputMissing",
            connector_metric(connector, JobMetric.JOB_INPUT_MISSING, "Maximum"),
            1,
            f"{connector} {job}: an extract the day expected did not arrive before its build",
            RUNBOOK.FEED_INPUT_MISSING,
            "dig feed status --days 3",
        )

    def watch_connector(self, connector: str, *, callbacks: bool, daily_quota: bool = False) -> None:
        """Deliveries failing at a rate, the provider refusing DIG's credentials, (for providers that post
        results later) results overdue or unreadable, and (for providers with a daily quota) messages held
        until it resets: a queue-age alarm never sees those, each is sent again as a new, delayed message."""
        prefix = connector.title()
        failed = connector_metric(connector, ConnectorMetric.MESSAGES_FAILED)
        done = [
            connector_metric(connector, m)
            for m in (ConnectorMetric.MESSAGES_DELIVERED, ConnectorMetric.MESSAGES_SKIPPED)
        ]
        rate = cloudwatch.MathExpression(
            expression="IF(failed + delivered + skipped > 0, 100 * failed / (failed + delivered + skipped), 0)",
            using_metrics={"failed": failed, "delivered": done[0], "skipped": done[1]},
            period=Duration.minutes(5),
            label=f"{connector}: % of deliveries FAILED",
        )
        self._alarm(
            f"{prefix}FailedDeliveryRate",
            rate,
            FAILED_DELIVERY_ALARM_PERCENT,
            f"{connector}: {FAILED_DELIVERY_ALARM_PERCENT}% or more of deliveries FAILED in 5 minutes",
            RUNBOOK.FAILING,
            f"dig audit list --connector {connector} --status FAILED --since 1h",
        )
        self._alarm(
            f"{prefix}ProviderAuthRefused",
            connector_metric(connector, ConnectorMetric.PROVIDER_AUTH_REFUSED),
            1,
            f"{connector}: the provider answered 401/403 (DIG's credentials); no retry will mend it",
            RUNBOOK.CREDENTIALS,
            "dig status",
        )
        if daily_quota:
            self._alarm(
                f"{prefix}{ConnectorMetric.MESSAGES_HELD}",
                connector_metric(connector, ConnectorMetric.MESSAGES_HELD),
                1,
                f"{connector}: messages held, not delivered: the provider's daily quota (or DIG's share of it) is "
                "spent, and they wait until it resets",
                RUNBOOK.QUOTA,
                f"dig audit list --connector {connector} --status PENDING --since 1h",
            )
        if callbacks:
            for metric, what in (
                (ConnectorMetric.CALLBACK_RESULTS_OVERDUE, "results of a call never came back"),
                (ConnectorMetric.CALLBACK_RESULTS_UNREADABLE, "a callback's results could not be read"),
            ):
                self._alarm(
                    f"{prefix}{metric}",
                    connector_metric(connector, metric),
                    1,
                    f"{connector}: {what}; those messages count as delivered on acceptance alone",
                    RUNBOOK.RESULTS,
                    f"dig audit list --connector {connector} --since 1h",
                )

    def watch_files(self, files: FileFlow) -> None:
        """A file refused or left unfinished, a run that failed, an upload whose processing never
        started, and the step functions' errors."""
        self._alarm(
            "FilesFailed",
            cloudwatch.Metric(
                namespace=NAMESPACE,
                metric_name=str(FileMetric.FILES_FAILED),
                dimensions_map={SERVICE_DIMENSION: FILES_SERVICE},
                period=Duration.minutes(5),
                statistic="Sum",
            ),
            1,
            "a batch file FAILED: refused at validation, or lines left unprocessed",
            RUNBOOK.FILE_FAILED,
            "dig files list",
        )
        self._alarm(
            "FileRunsFailed",
            files.state_machine.metric_failed(period=Duration.minutes(5), statistic="Sum"),
            1,
            "a file-processing execution failed (the file may still read PROCESSING)",
            RUNBOOK.FILE_FAILED,
            "dig files list",
        )
        self._alarm(
            "FileStartDeadLetters",
            files.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1), statistic="Maximum"
            ),
            1,
            "an upload's processing could not be started (the file reads AWAITING_UPLOAD)",
            RUNBOOK.FILE_FAILED,
            "dig files list",
        )
        for name, function in (
            ("FilesValidate", files.validate_function),
            ("FilesBatch", files.batch_function),
            ("FilesFinish", files.finish_function),
        ):
            self.watch_function(name, function)
