"""Versioned connector configuration: push, show, history, conflicts, and the connector's cache."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from typer.testing import CliRunner

from connectors.optimove.config import parse_config
from connectors.optimove.tests.harness import SAMPLE_CONFIG, sample_config_document
from db.config_store import ConfigConflict, ConfigVersion, DynamoConfigStore
from dig_cli.main import app
from dig_connector_kit.lambda_entry import ConfigCache
from tests.aws import CONFIG, AtomicCalls, create_tables


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        yield create_tables()


def test_each_push_is_a_new_version_and_the_latest_is_current(dynamodb: Any) -> None:
    store = DynamoConfigStore(dynamodb, CONFIG)
    assert store.current("optimove") is None
    first = store.push("optimove", {"a": 1}, "alice")
    second = store.push("optimove", {"a": 2}, "bob")
    assert (first.version, second.version) == (1, 2)
    current = store.current("optimove")
    assert current is not None
    assert (current.version, current.document, current.pushedBy) == (2, {"a": 2}, "bob")
    assert [v.version for v in store.history("optimove")] == [2, 1]


def test_racing_pushes_never_lose_a_version(dynamodb: Any) -> None:
    store = DynamoConfigStore(AtomicCalls(dynamodb), CONFIG)  # type: ignore[arg-type]

    def push(i: int) -> int | None:
        try:
            return store.push("optimove", {"n": i}, f"op{i}").version
        except ConfigConflict:
            return None

    with ThreadPoolExecutor(max_workers=6) as pool:
        versions = [v for v in pool.map(push, range(6)) if v is not None]
    assert len(versions) == len(set(versions))
    assert sorted(v.version for v in store.history("optimove")) == sorted(versions)


def test_the_connector_rereads_its_configuration_after_the_ttl_only() -> None:
    now = [0.0]
    loads: list[int] = []
    document = sample_config_document()

    def load(connector: str) -> ConfigVersion:
        loads.append(1)
        return ConfigVersion(connector, len(loads), document, "t", "op")

    cache = ConfigCache("optimove", load, parse_config, ttl_seconds=60, clock=lambda: now[0])
    cache()
    now[0] = 59
    cache()
    assert len(loads) == 1
    now[0] = 61
    cache()
    assert (len(loads), cache.version) == (2, 2)


def test_a_missing_configuration_says_how_to_push_one() -> None:
    with pytest.raises(LookupError, match="dig config push optimove FILE"):
        ConfigCache("optimove", lambda connector: None, parse_config)()


def test_dig_config_push_validates_and_stores_and_show_prints_it(
    dynamodb: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dig_cli import target

    monkeypatch.setattr(
        target,
        "_deployed",
        lambda stack, region: target.Target(
            session=__import__("boto3").session.Session(region_name="us-east-1"),
            audit_table="unused",
            config_table=CONFIG,
            region="us-east-1",
        ),
    )
    runner = CliRunner()
    pushed = runner.invoke(app, ["config", "push", "optimove", str(SAMPLE_CONFIG), "--stack", "Dig-dev"])
    assert pushed.exit_code == 0, pushed.output
    assert "optimove configuration version 1 is live" in pushed.output
    shown = runner.invoke(app, ["config", "show", "optimove", "--stack", "Dig-dev"])
    assert shown.exit_code == 0
    assert json.loads(shown.stdout) == json.loads(SAMPLE_CONFIG.read_text())

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**sample_config_document(), "locale": "xx-QQ"}))
    refused = runner.invoke(app, ["config", "push", "optimove", str(bad), "--stack", "Dig-dev"])
    assert refused.exit_code == 1
    assert DynamoConfigStore(dynamodb, CONFIG).current("optimove").version == 1  # type: ignore[union-attr]
