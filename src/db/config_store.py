"""Versioned connector configurations in the configuration table.

  pk                    sk               what
  CONNECTOR#<name>      CURRENT          the live version: its number and document
  CONNECTOR#<name>      VERSION#000042   every version ever pushed, with who pushed it and when

The store keeps documents as JSON and knows nothing of their schema: each connector validates
its own (the Optimove connector with connectors.optimove.config.OptimoveConfig).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from db.records import iso, utc_now

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class ConfigConflict(Exception):
    """Another push landed first; read the current version and push again."""


@dataclass(frozen=True)
class ConfigVersion:
    connector: str
    version: int
    document: dict[str, Any]
    pushedAt: str
    pushedBy: str


class ConfigSource(Protocol):
    def current(self, connector: str) -> ConfigVersion | None: ...


def _pk(connector: str) -> dict[str, str]:
    return {"S": f"CONNECTOR#{connector}"}


def _version_sk(version: int) -> dict[str, str]:
    return {"S": f"VERSION#{version:06d}"}


class DynamoConfigStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table_name = table_name

    def current(self, connector: str) -> ConfigVersion | None:
        answer = self._client.get_item(
            TableName=self._table_name, Key={"pk": _pk(connector), "sk": {"S": "CURRENT"}}, ConsistentRead=True
        )
        item = answer.get("Item")
        return _from_item(connector, item) if item else None

    def history(self, connector: str) -> list[ConfigVersion]:
        answer = self._client.query(
            TableName=self._table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": _pk(connector), ":prefix": {"S": "VERSION#"}},
            ScanIndexForward=False,
        )
        return [_from_item(connector, item) for item in answer.get("Items", [])]

    def push(self, connector: str, document: dict[str, Any], pushed_by: str) -> ConfigVersion:
        """Store ``document`` as the next version and make it current, atomically."""
        from botocore.exceptions import ClientError

        live = self.current(connector)
        version = (live.version if live else 0) + 1
        attributes = {
            "version": {"N": str(version)},
            "document": {"S": json.dumps(document, sort_keys=True)},
            "pushedAt": {"S": iso(utc_now())},
            "pushedBy": {"S": pushed_by},
        }
        current_condition = (
            {
                "ConditionExpression": "version = :previous",
                "ExpressionAttributeValues": {":previous": {"N": str(version - 1)}},
            }
            if live
            else {"ConditionExpression": "attribute_not_exists(pk)"}
        )
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table_name,
                            "Item": {"pk": _pk(connector), "sk": _version_sk(version), **attributes},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table_name,
                            "Item": {"pk": _pk(connector), "sk": {"S": "CURRENT"}, **attributes},
                            **current_condition,
                        }
                    },
                ]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                raise ConfigConflict(f"configuration of {connector} changed while pushing; push again") from error
            raise
        return ConfigVersion(connector, version, document, attributes["pushedAt"]["S"], pushed_by)


def _from_item(connector: str, item: dict[str, Any]) -> ConfigVersion:
    return ConfigVersion(
        connector=connector,
        version=int(item["version"]["N"]),
        document=json.loads(item["document"]["S"]),
        pushedAt=item["pushedAt"]["S"],
        pushedBy=item["pushedBy"]["S"],
    )
