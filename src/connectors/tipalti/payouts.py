"""What DIG knows of each payout it sent to Tipalti: the refCode it was paid under, whose it is, and its
latest status. A Tipalti notification names a payment by refCode alone (a hash of the payout id: see
client.payment_ref); this is how it finds its payout and member again.

One item per payout in the audit table: pk ``TIPALTI#PAYOUT#<refCode>``, sk ``PAYOUT``, kept
``RETENTION_DAYS`` (a payout's statuses can come weeks after it). Beside them, the payouts submitted
and not yet final: pk ``TIPALTI#OPEN``, sk the refCode, what the reconciliation job reads (one query,
not a scan); closed when final (and removed by TTL a day later: the functions write, they never delete).
And per day of request, the payouts requested that day: pk ``TIPALTI#DAY#<yyyy-mm-dd>``, sk the refCode,
what the daily reconciliation report reads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Protocol

from dig_connector_kit.ports import Table, is_conditional_failure

RETENTION_DAYS = 400
SK = "PAYOUT"
OPEN_PK = "TIPALTI#OPEN"
DAY_PK = "TIPALTI#DAY#"
OPEN_STATUSES = frozenset({"SUBMITTED", "PAID"})


@dataclass(frozen=True)
class Payout:
    ref: str
    payout_id: str
    member_id: str
    program_id: str | None = None
    status: str = "REQUESTED"
    final: bool = False
    amount: str = ""  # the requested amount and currency, and the UTC day of the request (the report's)
    currency: str = ""
    day: str = ""


class PayoutBook(Protocol):
    def keep(self, payout: Payout) -> None:
        """Record a payout DIG is about to pay; one already recorded (a retry, a replay) stays as it is."""
        ...

    def get(self, ref: str) -> Payout | None: ...

    def set_status(self, ref: str, status: str, final: bool) -> None:
        """A later status; a final one is never replaced."""
        ...

    def open_payouts(self) -> list[Payout]:
        """The payouts submitted to Tipalti and not yet final."""
        ...

    def requested_on(self, day: str) -> list[Payout]:
        """The payouts requested on ``day`` (UTC), each with its latest status."""
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
        item |= {"amount": {"S": payout.amount}, "currency": {"S": payout.currency}, "day": {"S": payout.day}}
        from botocore.exceptions import ClientError

        try:
            self._table.call("put_item", Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as error:  # recorded by an earlier attempt: its status stands
            if not is_conditional_failure(error):
                raise
            return
        if payout.day:
            day_item = {k: v for k, v in item.items() if k not in ("status", "final")}
            self._table.call(
                "put_item", Item=day_item | {"pk": {"S": f"{DAY_PK}{payout.day}"}, "sk": {"S": payout.ref}}
            )

    def get(self, ref: str) -> Payout | None:
        item = self._table.call("get_item", Key={"pk": {"S": _pk(ref)}, "sk": {"S": SK}}).get("Item")
        if item is None:
            return None
        return _payout(ref, item)

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
            return
        self._mark_open(ref, status, final)

    def _mark_open(self, ref: str, status: str, final: bool) -> None:
        if not final and status not in OPEN_STATUSES:
            return
        payout = self.get(ref)
        if payout is None:
            return
        now = int(self._clock())
        item: dict[str, Any] = {
            "pk": {"S": OPEN_PK},
            "sk": {"S": ref},
            "payoutId": {"S": payout.payout_id},
            "memberId": {"S": payout.member_id},
            "status": {"S": status},
            "closed": {"BOOL": final},
            "expiresAt": {"N": str(now + (86_400 if final else RETENTION_DAYS * 86_400))},
        }
        if payout.program_id:
            item["programId"] = {"S": payout.program_id}
        self._table.call("put_item", Item=item)

    def requested_on(self, day: str) -> list[Payout]:
        refs = [item["sk"]["S"] for item in self._query(f"{DAY_PK}{day}")]
        keys = [{"pk": {"S": _pk(ref)}, "sk": {"S": SK}} for ref in refs]
        found = {item["pk"]["S"].removeprefix("TIPALTI#PAYOUT#"): item for item in self._table.batch_get(keys)}
        return [_payout(ref, found[ref]) for ref in refs if ref in found]

    def _query(self, pk: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            page = self._table.call(
                "query",
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": pk}},
                **({"ExclusiveStartKey": start} if start else {}),
            )
            items += page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    def open_payouts(self) -> list[Payout]:
        found: list[Payout] = []
        start: dict[str, Any] | None = None
        while True:
            page = self._table.call(
                "query",
                KeyConditionExpression="pk = :pk",
                FilterExpression="closed = :false",
                ExpressionAttributeValues={":pk": {"S": OPEN_PK}, ":false": {"BOOL": False}},
                **({"ExclusiveStartKey": start} if start else {}),
            )
            found += [
                Payout(
                    item["sk"]["S"],
                    item["payoutId"]["S"],
                    item["memberId"]["S"],
                    item.get("programId", {}).get("S"),
                    item["status"]["S"],
                    False,
                )
                for item in page.get("Items", [])
            ]
            start = page.get("LastEvaluatedKey")
            if not start:
                return found


def _payout(ref: str, item: dict[str, Any]) -> Payout:
    return Payout(
        ref,
        item["payoutId"]["S"],
        item["memberId"]["S"],
        item.get("programId", {}).get("S"),
        item["status"]["S"],
        item["final"]["BOOL"],
        item.get("amount", {}).get("S", ""),
        item.get("currency", {}).get("S", ""),
        item.get("day", {}).get("S", ""),
    )


class FakePayoutBook:
    def __init__(self) -> None:
        self.payouts: dict[str, Payout] = {}

    def keep(self, payout: Payout) -> None:
        self.payouts.setdefault(payout.ref, payout)

    def get(self, ref: str) -> Payout | None:
        return self.payouts.get(ref)

    def set_status(self, ref: str, status: str, final: bool) -> None:
        known = self.payouts.get(ref)
        if known is not None and not known.final:
            self.payouts[ref] = replace(known, status=status, final=final)

    def open_payouts(self) -> list[Payout]:
        return [p for p in self.payouts.values() if not p.final and p.status in OPEN_STATUSES]

    def requested_on(self, day: str) -> list[Payout]:
        return [p for p in self.payouts.values() if p.day == day]
