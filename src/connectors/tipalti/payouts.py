"""What DIG knows of each payout it sent to Tipalti: the refCode it was paid under, whose it is, and its
latest status. A Tipalti notification names a payment by refCode alone (a hash of the payout id: see
client.payment_ref); this is how it finds its payout and member again.

One item per payout in the audit table: pk ``TIPALTI#PAYOUT#<refCode>``, sk ``PAYOUT``, kept
``RETENTION_DAYS`` (a payout's statuses can come weeks after it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from dig_connector_kit.ports import Table, is_conditional_failure

RETENTION_DAYS = 400
SK = "PAYOUT"


@dataclass(frozen=True)
class Payout:
    ref: str
    payout_id: str
    member_id: str
    program_id: str | None = None
    status: str = "REQUESTED"
    final: bool = False


class PayoutBook(Protocol):
    def keep(self, payout: Payout) -> None: ...

    def get(self, ref: str) -> Payout | None: ...

    def set_status(self, ref: str, status: str, final: bool) -> None:
        """A later status; a final one is never replaced."""
        ...


def _pk(ref: str) -> str:
    return f"TIPALTI#PAYOUT#{ref}"


class DynamoPayoutBook:
    def __init__(self, table: Table, clock: Any = time.time) -> None:
        self._table = table
        self._clock = clock

    def keep(self, payout: Payout) -> None:
        item: dict[str, Any] = {
            "pk": {"S": _pk(payout.ref)},
            "sk": {"S": SK},
            "payoutId": {"S": payout.payout_id},
            "memberId": {"S": payout.member_id},
            "status": {"S": payout.status},
            "final": {"BOOL": payout.final},
            "expiresAt": {"N": str(int(self._clock()) + RETENTION_DAYS * 86_400)},
        }
        if payout.program_id:
            item["programId"] = {"S": payout.program_id}
        self._table.call("put_item", Item=item)

    def get(self, ref: str) -> Payout | None:
        item = self._table.call("get_item", Key={"pk": {"S": _pk(ref)}, "sk": {"S": SK}}).get("Item")
        if item is None:
            return None
        return Payout(
            ref,
            item["payoutId"]["S"],
            item["memberId"]["S"],
            item.get("programId", {}).get("S"),
            item["status"]["S"],
            item["final"]["BOOL"],
        )

    def set_status(self, ref: str, status: str, final: bool) -> None:
        from botocore.exceptions import ClientError

        try:
            self._table.call(
                "update_item",
                Key={"pk": {"S": _pk(ref)}, "sk": {"S": SK}},
                UpdateExpression="SET #status = :status, #final = :final",
                ConditionExpression="attribute_exists(pk) AND #final = :false",
                ExpressionAttributeNames={"#status": "status", "#final": "final"},
                ExpressionAttributeValues={
                    ":status": {"S": status},
                    ":final": {"BOOL": final},
                    ":false": {"BOOL": False},
                },
            )
        except ClientError as error:  # unknown, or final already
            if not is_conditional_failure(error):
                raise


class FakePayoutBook:
    def __init__(self) -> None:
        self.payouts: dict[str, Payout] = {}

    def keep(self, payout: Payout) -> None:
        self.payouts[payout.ref] = payout

    def get(self, ref: str) -> Payout | None:
        return self.payouts.get(ref)

    def set_status(self, ref: str, status: str, final: bool) -> None:
        known = self.payouts.get(ref)
        if known is not None and not known.final:
            self.payouts[ref] = Payout(known.ref, known.payout_id, known.member_id, known.program_id, status, final)
