"""The ports a connector uses, and the values they carry: the only names a connector takes from DIG's
storage. ``db`` keeps the DynamoDB implementations; the ``Kit`` hands a connector these, and
``dig_connector_kit.testing`` has an in-memory fake of each (a contract test holds the two alike).

A connector imports from here, never from ``db`` (tests/unit/test_connector_seam.py fails if one does).
"""

from __future__ import annotations

from db.audit import AuditStore
from db.call_log import CallLog, CallStatus
from db.contacts import ContactRow, ContactStore, FillReport, MemberContact
from db.counters import Counters
from db.cursors import PollCursors
from db.feeds import FeedInput, FeedRun, FeedStore, feed_day, readiness
from db.operations import OperationClaim, OperationLedger
from db.records import Attempt, DeliveryStatus, iso, parse_iso, utc_now
from db.table import Table, is_conditional_failure
from db.watermarks import Mark, WatermarkStore, merge
from dig_connector_kit.concurrency import ConcurrencyGate
from dig_connector_kit.ratelimit import DailyShare, Limiter
from dig_connector_kit.requeue import Requeue

__all__ = [
    "Attempt",
    "AuditStore",
    "CallLog",
    "CallStatus",
    "ConcurrencyGate",
    "ContactRow",
    "ContactStore",
    "Counters",
    "DailyShare",
    "DeliveryStatus",
    "FeedInput",
    "FeedRun",
    "FeedStore",
    "FillReport",
    "Limiter",
    "Mark",
    "MemberContact",
    "OperationClaim",
    "OperationLedger",
    "PollCursors",
    "Requeue",
    # A connector's own item family in the audit table (Kit.table), for state no other port holds.
    "Table",
    "WatermarkStore",
    "feed_day",
    "is_conditional_failure",
    "iso",
    "merge",
    "parse_iso",
    "readiness",
    "utc_now",
]
