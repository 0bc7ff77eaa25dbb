"""The DIG API's fakes (the publisher); the ports' fakes are the kit's (dig_connector_kit.testing)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from dig_api.publisher import PUBLISHED, PublishOutcome
from dig_connector_kit.testing import InMemoryAuditStore
from dig_contracts.bus import BusDetail, CallbackDetail
from dig_contracts.files import FileReadyDetail

FakeAuditStore = InMemoryAuditStore  # the kit's, which connector authors' tests use too


@dataclass
class FakePublisher:
    """PutEvents in memory; ``refuse`` names eventIds the bus rejects."""

    published: list[BusDetail] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    calls: int = 0

    callbacks: list[CallbackDetail] = field(default_factory=list)
    files_ready: list[FileReadyDetail] = field(default_factory=list)

    def publish_callback(self, detail: CallbackDetail) -> PublishOutcome:
        self.callbacks.append(detail)
        return PUBLISHED

    def publish_file_ready(self, detail: FileReadyDetail) -> PublishOutcome:
        self.files_ready.append(detail)
        return PUBLISHED

    def publish(self, details: Sequence[BusDetail]) -> list[PublishOutcome]:
        self.calls += 1
        outcomes = []
        for detail in details:
            if detail.event["eventId"] in self.refuse:
                outcomes.append(PublishOutcome(ok=False, error_code="InternalFailure", error_message="fake refusal"))
            else:
                self.published.append(detail)
                outcomes.append(PUBLISHED)
        return outcomes
