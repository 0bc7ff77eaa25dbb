"""The generic table access every store uses (db.table), against DynamoDB in moto."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from db.table import Table, TableUnavailable, from_item, to_item
from tests.aws import AUDIT, create_tables


@pytest.fixture
def table() -> Iterator[Table]:
    with mock_aws():
        yield Table(create_tables(), AUDIT, parallelism=2)


def test_plain_values_round_trip_through_boto3s_serializers() -> None:
    values = {
        "pk": "x",
        "n": 3,
        "f": 2.5,
        "flag": True,
        "none": None,
        "list": ["a", 1],
        "map": {"k": "v"},
        "b": b"\x00",
    }
    item = to_item(values)
    assert item["n"] == {"N": "3"}
    assert from_item(item) == values


def test_batch_writes_and_reads_of_any_size(table: Table) -> None:
    items = [to_item({"pk": f"K#{i}", "sk": "S", "value": i}) for i in range(130)]
    table.batch_put(items)
    found = table.batch_get([{"pk": {"S": f"K#{i}"}, "sk": {"S": "S"}} for i in range(130)])
    assert sorted(from_item(i)["value"] for i in found) == list(range(130))


def test_an_update_only_touches_an_item_that_exists(table: Table) -> None:
    key = {"pk": {"S": "K#1"}, "sk": {"S": "S"}}
    assert table.update_if_present(key, "SET v = :v", {":v": "x"}) is False
    assert "Item" not in table.call("get_item", Key=key)  # nothing was created
    table.call("put_item", Item={**key, "v": {"S": "old"}})
    assert table.update_if_present(key, "SET v = :v", {":v": "new"}) is True
    assert table.call("get_item", Key=key)["Item"]["v"] == {"S": "new"}


def test_any_failure_but_a_conditional_refusal_is_table_unavailable(table: Table) -> None:
    with pytest.raises(TableUnavailable, match="get_item on test-audit"):
        table.call("get_item", Key={"nope": {"S": "x"}})
