"""The event bus: every accepted event, routed by connector rules, and archived for bus replay."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from constructs import Construct

from dig_contracts.bus import BUS_SOURCE
from dig_contracts.inbound import INBOUND_SOURCE


class Bus(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, stage: str, archive_retention_days: int) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "EventBus", event_bus_name=f"dig-{stage}")
        self.archive = self.bus.archive(
            "Archive",
            description="Every event DIG published (ES Loyalty's, and providers' inbound), for replay by time window",
            event_pattern=events.EventPattern(source=[BUS_SOURCE, INBOUND_SOURCE]),
            retention=Duration.days(archive_retention_days),
        )
