"""What DIG remembers of CataBoom plays, in the audit table (Kit.table), each item expiring with the
configuration's ``accountRetentionDays`` after the award (or its expiry):

- ``CATABOOM#ACCOUNT#<ref>``: whose the opaque member reference is (member and program). A writeback
  names only that reference; one DIG does not know (never issued, or forgotten) is CataBoom's 1200.
- ``CATABOOM#MEMBER#<memberId>``, sk ``ACCOUNTS``: the member's references (a string set), so that `dig
  member forget` finds their accounts without the secret the references are made with
  (``erase_member``: each account forgets whose it is, and this item its references).
- ``CATABOOM#AWARD#<awardId>``, sk ``PLAY#<nn>``: each play link issued for an award, so that the same
  award sent twice (a retry, a replay) issues no new links and tells ES Loyalty the same ones.
- ``CATABOOM#WIN#<campaign>#<playId>``: a play's prize, claimed once: the first writeback counts it.
- ``CATABOOM#LAUNCH#<jti>``: a launch token used, until it expires: the second use is refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from dig_connector_kit.ports import Table, is_conditional_failure

DAY_SECONDS = 86_400


@dataclass(frozen=True)
class Account:
    ref: str
    member_id: str
    program_id: str | None = None


@dataclass(frozen=True)
class IssuedPlay:
    award_id: str
    play: int
    campaign: str
    play_id: str
    url: str
    expires_at: str | None = None  # the award's expiry, as ES Loyalty sent it


class PlayBook(Protocol):
    def remember(self, account: Account, until: int) -> None:
        """Whose ``account.ref`` is, until ``until`` (epoch seconds; a later award extends it)."""
        ...

    def account(self, ref: str) -> Account | None: ...

    def issued(self, award_id: str, plays: int) -> dict[int, IssuedPlay]:
        """The links issued so far for an award's plays 1 to ``plays``, by play number."""
        ...

    def keep(self, play: IssuedPlay, until: int) -> IssuedPlay:
        """Record a link issued; when a racing copy recorded this play number first, that one stands and is returned."""
        ...

    def claim_win(self, campaign: str, play_id: str, until: int) -> bool:
        """Whether this is the first writeback of a win for the play."""
        ...

    def use_launch(self, jti: str, until: int) -> bool:
        """Whether this is the launch token's first use."""
        ...


class DynamoPlayBook:
    def __init__(self, table: Table, clock: Any = time.time) -> None:
        self._table = table
        self._clock = clock

    def _live(self, item: dict[str, Any]) -> bool:  # DynamoDB's TTL deletes within days, not at the second
        return "expiresAt" not in item or int(item["expiresAt"]["N"]) > self._clock()

    def remember(self, account: Account, until: int) -> None:
        values: dict[str, Any] = {":m": {"S": account.member_id}, ":u": {"N": str(until)}}
        expression = "SET memberId = :m, expiresAt = :u"
        if account.program_id:
            values[":p"] = {"S": account.program_id}
            expression += ", programId = :p"
        # The member's references first: an account never names a member whose erasure could miss it.
        self._table.call(
            "update_item",
            Key=_member_key(account.member_id),
            UpdateExpression="ADD refs :r SET expiresAt = :u",
            ExpressionAttributeValues={":r": {"SS": [account.ref]}, ":u": {"N": str(until)}},
        )
        self._table.call(
            "update_item",
            Key=_account_key(account.ref),
            UpdateExpression=expression,
            ExpressionAttributeValues=values,
        )

    def account(self, ref: str) -> Account | None:
        item = self._table.call("get_item", Key=_account_key(ref), ConsistentRead=True).get("Item")
        if item is None or not self._live(item) or "memberId" not in item:  # no memberId: forgotten
            return None
        return Account(ref, item["memberId"]["S"], item.get("programId", {}).get("S"))

    def issued(self, award_id: str, plays: int) -> dict[int, IssuedPlay]:
        # A batch get of the award's (at most 20) keys: the connector's role may get items, not query.
        keys = [_play_key(award_id, n) for n in range(1, plays + 1)]
        found = [_play(award_id, item) for item in self._table.batch_get(keys) if self._live(item)]
        return {p.play: p for p in found}

    def keep(self, play: IssuedPlay, until: int) -> IssuedPlay:
        item: dict[str, Any] = {
            **_play_key(play.award_id, play.play),
            "campaign": {"S": play.campaign},
            "playId": {"S": play.play_id},
            "url": {"S": play.url},
            "expiresAt": {"N": str(until)},
        }
        if play.expires_at:
            item["playsExpireAt"] = {"S": play.expires_at}
        try:
            self._table.call("put_item", Item=item, ConditionExpression="attribute_not_exists(pk)")
        except Exception as error:
            if not is_conditional_failure(error):
                raise
            return self.issued(play.award_id, play.play)[play.play]
        return play

    def _first(self, pk: str, until: int) -> bool:
        try:
            self._table.call(
                "put_item",
                Item={"pk": {"S": pk}, "sk": {"S": "ONCE"}, "expiresAt": {"N": str(until)}},
                ConditionExpression="attribute_not_exists(pk) OR expiresAt < :now",
                ExpressionAttributeValues={":now": {"N": str(int(self._clock()))}},
            )
        except Exception as error:
            if is_conditional_failure(error):
                return False
            raise
        return True

    def claim_win(self, campaign: str, play_id: str, until: int) -> bool:
        return self._first(f"CATABOOM#WIN#{campaign}#{play_id}", until)

    def use_launch(self, jti: str, until: int) -> bool:
        return self._first(f"CATABOOM#LAUNCH#{jti}", until)


def _play_key(award_id: str, play: int) -> dict[str, Any]:
    return {"pk": {"S": f"CATABOOM#AWARD#{award_id}"}, "sk": {"S": f"PLAY#{play:02d}"}}


def _play(award_id: str, item: dict[str, Any]) -> IssuedPlay:
    return IssuedPlay(
        award_id,
        int(item["sk"]["S"].removeprefix("PLAY#")),
        item["campaign"]["S"],
        item["playId"]["S"],
        item["url"]["S"],
        item.get("playsExpireAt", {}).get("S"),
    )


class FakePlayBook:
    """In memory, for the connector's tests; test_plays holds it to DynamoPlayBook's behaviour."""

    def __init__(self, clock: Any = time.time) -> None:
        self._clock = clock
        self.accounts: dict[str, tuple[Account, int]] = {}
        self.plays: dict[str, dict[int, tuple[IssuedPlay, int]]] = {}
        self.once: dict[str, int] = {}

    def remember(self, account: Account, until: int) -> None:
        self.accounts[account.ref] = (account, until)

    def account(self, ref: str) -> Account | None:
        found = self.accounts.get(ref)
        return found[0] if found and found[1] > self._clock() else None

    def issued(self, award_id: str, plays: int) -> dict[int, IssuedPlay]:
        found = self.plays.get(award_id, {}).items()
        return {n: p for n, (p, until) in found if n <= plays and until > self._clock()}

    def keep(self, play: IssuedPlay, until: int) -> IssuedPlay:
        existing = self.plays.setdefault(play.award_id, {}).setdefault(play.play, (play, until))
        return existing[0]

    def _first(self, key: str, until: int) -> bool:
        if self.once.get(key, 0) > self._clock():
            return False
        self.once[key] = until
        return True

    def claim_win(self, campaign: str, play_id: str, until: int) -> bool:
        return self._first(f"win:{campaign}:{play_id}", until)

    def use_launch(self, jti: str, until: int) -> bool:
        return self._first(f"launch:{jti}", until)


def _account_key(ref: str) -> dict[str, Any]:
    return {"pk": {"S": f"CATABOOM#ACCOUNT#{ref}"}, "sk": {"S": "ACCOUNT"}}


def _member_key(member_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"CATABOOM#MEMBER#{member_id}"}, "sk": {"S": "ACCOUNTS"}}


def erase_member(table: Table, member_id: str) -> int:
    """`dig member forget` for CataBoom: each account of the member forgets whose it is (a writeback naming
    it is then CataBoom's 1200, unknown account), then the member's item its references. Conditioned
    UpdateItems only, as the operators' policy requires; the items changed."""
    now = {":now": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")}
    item = table.call("get_item", Key=_member_key(member_id), ConsistentRead=True).get("Item") or {}
    refs = sorted(item.get("refs", {}).get("SS", []))
    erased = 0
    for ref in refs:
        erased += table.update_if_present(_account_key(ref), "REMOVE memberId, programId SET erasedAt = :now", now)
    if refs and table.update_if_present(_member_key(member_id), "REMOVE refs SET erasedAt = :now", now):
        erased += 1
    return erased
