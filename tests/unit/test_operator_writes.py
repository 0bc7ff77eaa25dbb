"""What an operator's `dig replay` and `dig member forget` write to the audit table: only conditioned
UpdateItems on the keys IAM lets them touch (infra/operator.py), never a PutItem, BatchWriteItem or
DeleteItem. moto enforces no IAM: this records every write request and checks it."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from db.audit import DynamoAuditStore
from db.erasure import forget_member
from db.schema import OPERATOR_WRITABLE_KEYS
from dig_cli.replay import Replayer, candidates
from tests.aws import AUDIT, create_tables
from tests.unit.test_operator_queries import FlakyQueue, failed_filter, record

WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems", "ExecuteStatement")


@pytest.fixture
def store() -> Iterator[DynamoAuditStore]:
    with mock_aws():
        yield DynamoAuditStore(create_tables(), AUDIT)


def recording(store: DynamoAuditStore) -> list[tuple[str, dict[str, Any]]]:
    seen: list[tuple[str, dict[str, Any]]] = []

    def before(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in WRITES:
            seen.append((model.name, params))

    store.client.meta.events.register("provide-client-params.dynamodb.*", before)
    return seen


def assert_operator_writes(writes: list[tuple[str, dict[str, Any]]], also: tuple[str, ...] = ()) -> None:
    """``also``: the keys connectors' own erasures may update (their manifests', granted likewise)."""
    assert writes
    for operation, params in writes:
        assert operation == "UpdateItem", operation
        assert params.get("ConditionExpression"), params["UpdateExpression"]
        pk = params["Key"]["pk"]["S"]
        assert any(fnmatch.fnmatchcase(pk, pattern) for pattern in (*OPERATOR_WRITABLE_KEYS, *also)), pk


def test_a_replay_writes_only_conditioned_updates_on_runs_and_deliveries(store: DynamoAuditStore) -> None:
    for i in range(12):
        record(store, f"e-{i}")
    record(store, "never-recorded")
    writes = recording(store)
    found = list(candidates(store, failed_filter()))
    summary = Replayer(store, FlakyQueue(), "q", "us-east-1").run(
        failed_filter(), found, force=False, operator="o", rate=0
    )
    assert summary.replayed == 13
    assert_operator_writes(writes)


def test_forgetting_a_member_writes_only_conditioned_updates(store: DynamoAuditStore) -> None:
    record(store, "e-1", member="M-9")
    writes = recording(store)
    forget_member(store, "M-9", ["optimove"])
    assert_operator_writes(writes)


def test_forgetting_a_member_a_connector_keeps_updates_only_the_keys_its_manifest_names(
    store: DynamoAuditStore,
) -> None:
    from connectors.cataboom.manifest import MANIFEST
    from connectors.cataboom.plays import Account, DynamoPlayBook
    from dig_contracts.registry import member_erasure

    assert MANIFEST.member_erasure is not None
    erase = member_erasure(MANIFEST)
    assert erase is not None
    record(store, "e-1", member="M-9")
    DynamoPlayBook(store.table).remember(Account("m-ref", "M-9"), until=2_000_000_000)
    writes = recording(store)
    report = forget_member(store, "M-9", ["optimove", "cataboom"], {"cataboom": erase})
    assert report.connector_items == {"cataboom": 2}  # its account, and its list of references
    assert_operator_writes(writes, also=MANIFEST.member_erasure.keys)
    assert [p["Key"]["pk"]["S"] for _, p in writes if p["Key"]["pk"]["S"].startswith("CATABOOM#")] == [
        "CATABOOM#ACCOUNT#m-ref",
        "CATABOOM#MEMBER#M-9",
    ]
