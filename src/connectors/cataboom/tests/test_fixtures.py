"""CataBoom's documented samples (fixtures/README.md): the connector's parsers read them, the simulator
produces their shapes; and the play book's fake behaves as its DynamoDB adapter does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.cataboom import client
from connectors.cataboom.local import SECRET
from connectors.cataboom.local.simulator import CataBoomSimulator
from connectors.cataboom.plays import Account, DynamoPlayBook, FakePlayBook, IssuedPlay
from dig_connector_kit.testing import moto_audit_table

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> Any:
    text = (FIXTURES / name).read_text()
    return json.loads(text) if name.endswith(".json") else text


def test_the_unique_url_answer_is_read_as_a_link_whose_last_segment_is_the_play() -> None:
    link = client.read_play_link(fixture("unique_url_answer.txt"), "holiday-spin")
    assert link.play_id == "3f2c9a4e-8b1d-4c7e-9f60-2a5d7e1b4c88"
    with pytest.raises(ValueError, match="for campaign 'holiday-spin', not 'other'"):
        client.read_play_link(fixture("unique_url_answer.txt"), "other")
    with pytest.raises(ValueError, match="not a play link"):
        client.read_play_link("<html>Maintenance</html>", "holiday-spin")


@pytest.mark.parametrize("name", ["writeback_v1_3.json", "writeback_renamed_fields.json"])
def test_both_spellings_of_the_writeback_read_alike(name: str) -> None:
    writeback = client.read_writeback((FIXTURES / name).read_text())
    assert (writeback.campaign, writeback.play, writeback.win_level) == (
        "holiday-spin",
        "3f2c9a4e-8b1d-4c7e-9f60-2a5d7e1b4c88",
        "2",
    )
    assert writeback.account == "m0f4b8c1d2e3a4b5c6d7e8f9a0b1c2d3e4f5a6b7"
    assert "token" not in writeback.kept()
    assert "4821" not in writeback.kept()


def test_the_answer_codes_are_cataboom_s() -> None:
    answers = fixture("writeback_answers.json")
    codes = {name: (a["status"], a["body"]["code"]) for name, a in answers.items()}
    assert codes == {
        "success": (200, client.OK),
        "invalidToken": (client.HTTP_STATUS[client.BAD_TOKEN], client.BAD_TOKEN),
        "unknownCampaign": (client.HTTP_STATUS[client.UNKNOWN_CAMPAIGN], client.UNKNOWN_CAMPAIGN),
        "unknownAccount": (client.HTTP_STATUS[client.UNKNOWN_ACCOUNT], client.UNKNOWN_ACCOUNT),
        "invalidWinLevel": (client.HTTP_STATUS[client.BAD_WIN_LEVEL], client.BAD_WIN_LEVEL),
    }
    assert json.loads(client.answer_body(0, "success")) == answers["success"]["body"]


def shape(document: Any) -> Any:
    if isinstance(document, dict):
        return {k: shape(v) for k, v in document.items()}
    return type(document).__name__


def test_the_simulator_answers_and_posts_in_the_fixtures_shapes() -> None:
    simulator = CataBoomSimulator(SECRET["campaigns"])
    campaign = SECRET["campaigns"]["holiday-spin"]
    query = f"username={campaign['username']}&password={campaign['password']}&AccountID=m1"
    answer = simulator.handle("GET", f"/dplayurl/holiday-spin?{query}", {}, b"")
    assert answer.text is not None
    link = client.read_play_link(answer.text, "holiday-spin")
    assert answer.text.rsplit("/", 1)[0] == fixture("unique_url_answer.txt").rsplit("/", 1)[0]
    simulator.play(link.play_id, "2")
    assert shape(json.loads(simulator.writeback(link.play_id))) == shape(fixture("writeback_v1_3.json"))
    assert shape(json.loads(simulator.writeback(link.play_id, renamed=True))) == shape(
        fixture("writeback_renamed_fields.json")
    )
    assert simulator.logged()[0]["query"] == "username=%5Bredacted%5D&password=%5Bredacted%5D&AccountID=m1"


# --- the play book: the fake behaves as DynamoDB does -------------------------------------------


@pytest.fixture
def dynamo_book() -> Iterator[DynamoPlayBook]:
    with moto_audit_table() as table:
        yield DynamoPlayBook(table, clock=lambda: 1_000)


def book_of(kind: str, request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("dynamo_book") if kind == "dynamo" else FakePlayBook(clock=lambda: 1_000)


@pytest.mark.parametrize("kind", ["dynamo", "fake"])
def test_an_account_is_known_until_it_expires(kind: str, request: pytest.FixtureRequest) -> None:
    book = book_of(kind, request)
    assert book.account("m1") is None
    book.remember(Account("m1", "M-1", "ACME"), until=2_000)
    assert book.account("m1") == Account("m1", "M-1", "ACME")
    book.remember(Account("m2", "M-2"), until=500)  # expired: DynamoDB's TTL may not have removed it yet
    assert book.account("m2") is None


@pytest.mark.parametrize("kind", ["dynamo", "fake"])
def test_a_play_number_is_issued_once_the_first_record_standing(kind: str, request: pytest.FixtureRequest) -> None:
    book = book_of(kind, request)
    first = IssuedPlay("AW-1", 1, "spin", "p1", "https://x/dplay/spin/p1", "2026-12-31T23:59:59+00:00")
    assert book.keep(first, until=2_000) == first
    racing = IssuedPlay("AW-1", 1, "spin", "p9", "https://x/dplay/spin/p9")
    assert book.keep(racing, until=2_000) == first
    second = IssuedPlay("AW-1", 2, "spin", "p2", "https://x/dplay/spin/p2")
    book.keep(second, until=2_000)
    assert book.issued("AW-1", 3) == {1: first, 2: second}
    assert book.issued("AW-1", 1) == {1: first}
    assert book.issued("AW-2", 3) == {}


@pytest.mark.parametrize("kind", ["dynamo", "fake"])
def test_a_win_and_a_launch_token_are_each_first_once(kind: str, request: pytest.FixtureRequest) -> None:
    book = book_of(kind, request)
    assert book.claim_win("spin", "p1", until=2_000)
    assert not book.claim_win("spin", "p1", until=2_000)
    assert book.claim_win("spin", "p2", until=2_000)
    assert book.use_launch("j1", until=2_000)
    assert not book.use_launch("j1", until=2_000)


# --- dig member forget: the manifest's member_erasure -----------------------------------------------


def test_forgetting_a_member_unlinks_each_of_their_accounts_by_conditioned_updates_on_the_manifests_keys() -> None:
    import fnmatch

    from connectors.cataboom.manifest import MANIFEST
    from connectors.cataboom.plays import erase_member
    from dig_contracts.registry import member_erasure

    assert MANIFEST.member_erasure is not None
    assert member_erasure(MANIFEST) is erase_member
    with moto_audit_table() as table:
        book = DynamoPlayBook(table, clock=lambda: 1_000)
        book.remember(Account("m1", "M-1", "ACME"), until=2_000)
        book.remember(Account("m2", "M-1", "OTHER"), until=2_000)  # the same member in another program
        book.remember(Account("m3", "M-2"), until=2_000)
        writes: list[tuple[str, dict[str, Any]]] = []
        table.client.meta.events.register(
            "provide-client-params.dynamodb.*",
            lambda params, model, **_: writes.append((model.name, params)) if "Item" in model.name else None,
        )

        assert erase_member(table, "M-1") == 3  # two accounts and the member's list of them
        # A writeback naming either reference is now CataBoom's 1200 (unknown account); M-2's is untouched.
        assert (book.account("m1"), book.account("m2"), book.account("m3")) == (None, None, Account("m3", "M-2"))
        # Nothing left links a reference to M-1: no account names them, their item lists no reference.
        items = table.client.scan(TableName=table.name)["Items"]
        assert [i["pk"]["S"] for i in items if i.get("memberId", {}).get("S") == "M-1"] == []
        [member] = [i for i in items if i["pk"]["S"] == "CATABOOM#MEMBER#M-1"]
        assert "refs" not in member
        assert "erasedAt" in member
        # Only what the operators' policy allows: UpdateItem, conditioned, on the keys the manifest names.
        updates = [(op, params) for op, params in writes if op != "GetItem"]
        assert {op for op, _ in updates} == {"UpdateItem"}
        for _, params in updates:
            assert params["ConditionExpression"] == "attribute_exists(pk)"
            assert any(fnmatch.fnmatchcase(params["Key"]["pk"]["S"], k) for k in MANIFEST.member_erasure.keys)

        assert erase_member(table, "M-1") == 0  # forgotten already
        assert erase_member(table, "M-nobody") == 0
        book.remember(Account("m1", "M-1", "ACME"), until=2_000)  # a later award: known again
        assert book.account("m1") == Account("m1", "M-1", "ACME")


def test_a_connector_may_name_only_its_own_keys_for_operators_to_update() -> None:
    from pydantic import ValidationError

    from connectors.cataboom.manifest import MANIFEST
    from dig_contracts.manifest import ConnectorManifest

    erasing_core_keys = {"function": "connectors.cataboom.plays.erase_member", "keys": ["CATABOOM#ACCOUNT#*", "MSG#*"]}
    with pytest.raises(ValidationError, match="must each start with 'CATABOOM#'"):
        ConnectorManifest.model_validate({**MANIFEST.model_dump(), "member_erasure": erasing_core_keys})
