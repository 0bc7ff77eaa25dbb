"""Files processed at once are capped, and the others wait their turn in the order they arrived."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from db.file_gate import STALE_SECONDS, FileGate
from db.table import Table
from tests.aws import AUDIT, create_tables


@pytest.fixture
def table() -> Iterator[Table]:
    with mock_aws():
        yield Table(create_tables(), AUDIT)


def test_at_most_the_limit_run_and_the_others_are_admitted_in_arrival_order(table: Table) -> None:
    now = [1000.0]
    gate = FileGate(table, limit=2, clock=lambda: now[0])
    assert [gate.admit(f) for f in ("a", "b", "c", "d")] == [True, True, False, False]
    assert gate.admit("d") is False  # d asks first, but c arrived before it
    gate.release("a")
    assert gate.admit("d") is False
    assert gate.admit("c") is True
    assert gate.admit("c") is True  # a retried step keeps its slot
    gate.release("b")
    assert gate.admit("d") is True
    assert sorted(gate.state()["running"]) == ["c", "d"]
    assert gate.state()["waiting"] == {}


def test_a_slot_held_by_an_execution_that_died_is_freed_after_the_state_machines_timeout(table: Table) -> None:
    now = [1000.0]
    gate = FileGate(table, limit=1, clock=lambda: now[0])
    assert gate.admit("dead") is True
    assert gate.admit("next") is False
    now[0] += STALE_SECONDS
    assert gate.admit("next") is True


def test_releasing_a_file_that_holds_nothing_changes_nothing(table: Table) -> None:
    gate = FileGate(table, limit=1)
    gate.release("never-seen")
    assert gate.state()["version"] == 0
