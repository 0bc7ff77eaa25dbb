"""Once-only provider calls in the audit table: one copy of a message makes the call."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from moto import mock_aws

from db.audit import DynamoAuditStore
from db.operations import DynamoOperationLedger, OperationClaim
from tests.aws import AUDIT, AtomicCalls, create_tables

OPERATION = ("optimove", "message-1", "realtime:registration")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(clock: Clock) -> Iterator[DynamoOperationLedger]:
    with mock_aws():
        yield DynamoOperationLedger(DynamoAuditStore(AtomicCalls(create_tables()), AUDIT).table, 120, clock)


def test_one_copy_claims_the_others_wait_and_after_it_is_done_nobody_calls_again(
    ledger: DynamoOperationLedger,
) -> None:
    assert ledger.claim(*OPERATION, "invocation-a") is OperationClaim.MINE
    assert ledger.claim(*OPERATION, "invocation-b") is OperationClaim.BUSY
    ledger.done(*OPERATION)
    assert ledger.claim(*OPERATION, "invocation-b") is OperationClaim.DONE
    assert ledger.claim(*OPERATION, "invocation-a") is OperationClaim.DONE


def test_copies_racing_for_a_claim_get_exactly_one(ledger: DynamoOperationLedger) -> None:
    with ThreadPoolExecutor(8) as pool:
        claims = list(pool.map(lambda n: ledger.claim(*OPERATION, f"invocation-{n}"), range(8)))
    assert claims.count(OperationClaim.MINE) == 1
    assert claims.count(OperationClaim.BUSY) == 7


def test_a_released_claim_can_be_claimed_again(ledger: DynamoOperationLedger) -> None:
    ledger.claim(*OPERATION, "invocation-a")
    ledger.release(*OPERATION, "invocation-a")
    assert ledger.claim(*OPERATION, "invocation-b") is OperationClaim.MINE


def test_a_claim_left_by_an_invocation_that_died_lapses_after_its_lease(
    ledger: DynamoOperationLedger, clock: Clock
) -> None:
    ledger.claim(*OPERATION, "invocation-a")
    clock.now += 119
    assert ledger.claim(*OPERATION, "invocation-b") is OperationClaim.BUSY
    clock.now += 2
    assert ledger.claim(*OPERATION, "invocation-b") is OperationClaim.MINE
    # The first invocation, late, releases what is no longer its claim: nothing changes.
    ledger.release(*OPERATION, "invocation-a")
    assert ledger.claim(*OPERATION, "invocation-c") is OperationClaim.BUSY


def test_operations_of_other_messages_and_connectors_are_independent(ledger: DynamoOperationLedger) -> None:
    ledger.claim(*OPERATION, "invocation-a")
    assert ledger.claim("optimove", "message-2", "realtime:registration", "b") is OperationClaim.MINE
    assert ledger.claim("marketo", "message-1", "realtime:registration", "b") is OperationClaim.MINE
