"""Alarms, and the topic they notify: dead-letter queues that hold anything, Lambda errors and
throttles, and queued messages getting old (a provider outage shows here first)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

OLDEST_MESSAGE_ALARM_SECONDS = 15 * 60


class Observability(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, alarm_email: str | None) -> None:
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
        self.alarms: list[cloudwatch.Alarm] = []

    def _alarm(self, construct_id: str, metric: cloudwatch.IMetric, threshold: float, description: str) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms.append(alarm)

    def watch_dead_letter_queue(self, name: str, queue: sqs.IQueue, what: str) -> None:
        self._alarm(
            f"{name}DeadLetters",
            queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(1), statistic="Maximum"),
            1,
            f"{what} holds messages: see the README's runbook (poison message / replay)",
        )

    def watch_queue_age(self, name: str, queue: sqs.IQueue, what: str) -> None:
        self._alarm(
            f"{name}OldestMessage",
            queue.metric_approximate_age_of_oldest_message(period=Duration.minutes(1), statistic="Maximum"),
            OLDEST_MESSAGE_ALARM_SECONDS,
            f"{what}: a message has waited over {OLDEST_MESSAGE_ALARM_SECONDS // 60} minutes; the provider may be down",
        )

    def watch_count(self, name: str, metric: cloudwatch.IMetric, description: str) -> None:
        """Any count of ``metric`` in five minutes: something a person should look at."""
        self._alarm(name, metric, 1, description)

    def watch_function(self, name: str, function: lambda_.IFunction) -> None:
        self._alarm(
            f"{name}Errors",
            function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
            1,
            f"{name} Lambda raised errors",
        )
        self._alarm(
            f"{name}Throttles",
            function.metric_throttles(period=Duration.minutes(5), statistic="Sum"),
            1,
            f"{name} Lambda was throttled",
        )
