"""Bearer tokens revoked before they expire, in the configuration table (one item, read by the
authorizer at most every REVOCATIONS_MAX_AGE_SECONDS):

  pk AUTH#REVOCATIONS, sk CURRENT, doc = {"tokens": {jti: exp}, "clients": {clientId: revokedAt}}

A revoked token (by its ``jti``) stays listed until it would have expired anyway; a revoked client's
tokens issued at or before ``revokedAt`` are refused, and new ones minted after it work again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

KEY = {"pk": {"S": "AUTH#REVOCATIONS"}, "sk": {"S": "CURRENT"}}


@dataclass(frozen=True)
class Revocations:
    tokens: Mapping[str, int] = field(default_factory=dict)  # jti -> its exp
    clients: Mapping[str, int] = field(default_factory=dict)  # client id -> revoked at (epoch seconds)

    def refuses(self, claims: Mapping[str, Any]) -> bool:
        if str(claims.get("jti")) in self.tokens:
            return True
        revoked_at = self.clients.get(str(claims.get("sub")))
        return revoked_at is not None and int(claims.get("iat", 0)) <= revoked_at

    def document(self) -> dict[str, Any]:
        return {"tokens": dict(self.tokens), "clients": dict(self.clients)}


NONE = Revocations()


class DynamoRevocations:
    def __init__(self, client: DynamoDBClient, table_name: str, clock: Any = time.time) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock

    def read(self) -> Revocations:
        item = self._client.get_item(TableName=self._table, Key=KEY, ConsistentRead=True).get("Item")
        if not item:
            return NONE
        document = json.loads(item["doc"]["S"])
        return Revocations(tokens=document.get("tokens", {}), clients=document.get("clients", {}))

    def revoke_token(self, jti: str, expires_at: int) -> Revocations:
        return self._change(lambda r: Revocations({**r.tokens, jti: expires_at}, r.clients))

    def revoke_client(self, client_id: str) -> Revocations:
        now = int(self._clock())
        return self._change(lambda r: Revocations(r.tokens, {**r.clients, client_id: now}))

    def _change(self, change: Any) -> Revocations:
        """Read, change, write back on the condition that nobody wrote in between (then again)."""
        from botocore.exceptions import ClientError

        for _ in range(10):
            item = self._client.get_item(TableName=self._table, Key=KEY, ConsistentRead=True).get("Item")
            version = int(item["version"]["N"]) if item else 0
            current = self.read() if item else NONE
            now = int(self._clock())
            changed: Revocations = change(current)
            kept = Revocations({j: e for j, e in changed.tokens.items() if e > now}, changed.clients)
            condition = "version = :version" if item else "attribute_not_exists(pk)"
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item={**KEY, "doc": {"S": json.dumps(kept.document())}, "version": {"N": str(version + 1)}},
                    ConditionExpression=condition,
                    **({"ExpressionAttributeValues": {":version": {"N": str(version)}}} if item else {}),
                )
                return kept
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
        raise RuntimeError("the revocation list kept changing under this write; try again")
