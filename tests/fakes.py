"""The DIG API's fakes: the kit's (dig_connector_kit.testing), which connector authors' tests use too."""

from dig_connector_kit.testing import FakePublisher, InMemoryAuditStore

FakeAuditStore = InMemoryAuditStore

__all__ = ["FakeAuditStore", "FakePublisher", "InMemoryAuditStore"]
