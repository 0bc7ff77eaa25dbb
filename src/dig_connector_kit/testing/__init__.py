"""Everything a connector's tests need, in one import, and never shipped in a Lambda (the build
leaves ``testing`` out)::

    from dig_connector_kit.testing import ConnectorContract, FakeContactStore, SimulatedClock, inbound

- fakes of the ports (``dig_connector_kit.ports``): audit, watermarks, call log, contacts, operation
  ledger, requeue, rate limiter (with a daily share), concurrency gate;
- ``SimulatedClock``: retries and waits cost nothing;
- record builders: ``sqs_record`` (an ES Loyalty event as the connector's queue delivers it),
  ``callback_record``, ``file_ready_record``, ``scheduled_check_record``, and ``inbound`` (what
  ``deliver`` receives);
- the contract suite every connector keeps (``ConnectorContract``), and its sample configuration;
- the base of a provider's local double (``ProviderSimulator``, ``LocalDouble``, ``mock_transport``).
"""

from db.counters import InMemoryCounters
from dig_connector_kit.concurrency import InMemoryGate
from dig_connector_kit.ratelimit import InMemoryLimiter
from dig_connector_kit.testing.clock import SimulatedClock
from dig_connector_kit.testing.config import sample_config_document, sample_config_path
from dig_connector_kit.testing.contract import ConnectorContract
from dig_connector_kit.testing.double import Answer, Fault, LocalDouble, ProviderSimulator, mock_transport
from dig_connector_kit.testing.fakes import (
    EmittedEvents,
    FakeCallLog,
    FakeContactStore,
    FakeOperationLedger,
    FakePollCursors,
    FakePublisher,
    FakeRequeue,
    FakeWatermarks,
    InMemoryAuditStore,
)
from dig_connector_kit.testing.moto_tables import moto_audit_table
from dig_connector_kit.testing.records import (
    callback_record,
    file_ready_record,
    inbound,
    scheduled_check_record,
    sqs_record,
)

__all__ = [
    "Answer",
    "ConnectorContract",
    "EmittedEvents",
    "FakeCallLog",
    "FakeContactStore",
    "FakeOperationLedger",
    "FakePollCursors",
    "FakePublisher",
    "FakeRequeue",
    "FakeWatermarks",
    "Fault",
    "InMemoryAuditStore",
    "InMemoryCounters",
    "InMemoryGate",
    "InMemoryLimiter",
    "LocalDouble",
    "ProviderSimulator",
    "SimulatedClock",
    "callback_record",
    "file_ready_record",
    "inbound",
    "mock_transport",
    "moto_audit_table",
    "sample_config_document",
    "sample_config_path",
    "scheduled_check_record",
    "sqs_record",
]
