"""Connectors are found by their entry points: nothing in the core names one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.optimove.manifest import MANIFEST as OPTIMOVE
from dig_contracts.events import EventType
from dig_contracts.manifest import ConnectorManifest
from dig_contracts.registry import (
    ConnectorRegistryError,
    config_parser,
    find_connector,
    installed_connectors,
    requirement_locks,
    sample_config,
)


@dataclass
class FakeEntryPoint:
    name: str
    value: str
    loaded: Any

    def load(self) -> Any:
        if isinstance(self.loaded, Exception):
            raise self.loaded
        return self.loaded


def manifest(name: str) -> ConnectorManifest:
    return ConnectorManifest(
        name=name,
        description=f"{name} for tests",
        event_types=(EventType.MEMBER_TIER,),
        handler=f"connectors.{name}.handler.lambda_handler",
        packages=(f"connectors.{name}",),
    )


def entry(name: str, loaded: Any) -> FakeEntryPoint:
    return FakeEntryPoint(name, f"connectors.{name}.manifest:MANIFEST", loaded)


def test_the_optimove_connector_is_installed_by_its_entry_point() -> None:
    assert OPTIMOVE in installed_connectors()
    assert find_connector("optimove") == OPTIMOVE


def test_connectors_come_back_by_name_whatever_order_they_are_declared_in() -> None:
    found = installed_connectors([entry("zendesk", manifest("zendesk")), entry("braze", manifest("braze"))])
    assert [m.name for m in found] == ["braze", "zendesk"]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([entry("braze", ImportError("No module named 'braze'"))], r"braze = .* does not load: ImportError"),
        ([entry("braze", {"name": "braze"})], r"braze = .* is a dict, not a ConnectorManifest"),
        ([entry("braze", manifest("zendesk"))], r"names the connector 'zendesk'; the two must match"),
        ([entry("braze", manifest("braze")), entry("braze", manifest("braze"))], "two installed connectors are named"),
    ],
)
def test_a_broken_declaration_is_refused_naming_it(entries: list[FakeEntryPoint], message: str) -> None:
    with pytest.raises(ConnectorRegistryError, match=message):
        installed_connectors(entries)


def test_an_unknown_connector_is_refused_listing_the_installed_ones() -> None:
    with pytest.raises(ConnectorRegistryError, match=r"no connector named 'marketo' is installed \(installed: braze\)"):
        find_connector("marketo", [manifest("braze")])


def test_the_sample_configuration_is_found_and_valid_for_its_connector() -> None:
    sample = sample_config(OPTIMOVE)
    parse = config_parser(OPTIMOVE)
    assert sample is not None
    assert parse is not None
    parsed = parse(json.loads(sample.read_text()))
    assert type(parsed).__name__ == "OptimoveConfig"


def test_a_connector_without_configuration_has_no_parser_and_no_sample() -> None:
    assert config_parser(manifest("braze")) is None
    assert sample_config(manifest("braze")) is None


@pytest.mark.parametrize(
    ("field", "value"), [("config_parser", "parse_config"), ("sample_config", "connectors/braze/sample.json")]
)
def test_manifest_paths_must_be_dotted_and_package_qualified(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=field):
        ConnectorManifest(**{**manifest("braze").model_dump(), field: value})


def test_make_lock_compiles_every_lock_a_manifest_or_its_jobs_name_from_requirements_in_beside_it() -> None:
    own = manifest("acme").model_copy(update={"requirements": "connectors.marketo:lambda-requirements.txt"})
    pairs = requirement_locks([OPTIMOVE, own])
    assert [(p.rsplit("/", 3)[-3:], q.rsplit("/", 3)[-3:]) for p, q in pairs] == [
        (["connectors", "marketo", "requirements.in"], ["connectors", "marketo", "lambda-requirements.txt"]),
        (["optimove", "feed", "requirements.in"], ["optimove", "feed", "lambda-requirements.txt"]),
    ]


def test_a_manifests_requirements_name_a_package_and_a_file() -> None:
    with pytest.raises(ValidationError, match="requirements"):
        manifest("acme").model_validate({**manifest("acme").model_dump(), "requirements": "no-colon.txt"})


def test_a_deployment_runs_the_connectors_dig_connectors_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIG_CONNECTORS", "optimove, esloyalty")
    assert [m.name for m in installed_connectors()] == ["esloyalty", "optimove"]
    monkeypatch.setenv("DIG_CONNECTORS", "optimove,zendesk")
    with pytest.raises(ConnectorRegistryError, match="DIG_CONNECTORS names zendesk, not installed"):
        installed_connectors()


def test_the_immediate_lane_takes_only_the_connectors_own_types_and_batches_lambda_allows_without_a_window() -> None:
    with pytest.raises(ValidationError, match=r"immediate_event_types \['REDEMPTION'\] are not among"):
        ConnectorManifest.model_validate({**manifest("braze").model_dump(), "immediate_event_types": ("REDEMPTION",)})
    with pytest.raises(ValidationError, match="less than or equal to 10"):
        ConnectorManifest.model_validate({**manifest("braze").model_dump(), "immediate_batch_size": 11})


def test_lanes_split_the_event_types_and_the_coalescing_lane_keeps_everything_else() -> None:
    coalescing, immediate = OPTIMOVE.lanes
    assert set(coalescing.event_types) | set(immediate.event_types) == set(OPTIMOVE.event_types)
    assert not set(coalescing.event_types) & set(immediate.event_types)
    assert (immediate.batch_size, immediate.max_batching_window_seconds) == (10, 0)
    assert (coalescing.batch_size, coalescing.max_batching_window_seconds) == (1000, 20)
    assert OPTIMOVE.event_pattern() == {"source": ["dig.api"], "detail-type": ["OPT_IN_EMAIL", "MEMBER_PROFILE_UPDATE"]}
    only_immediate = ConnectorManifest.model_validate(
        {**manifest("braze").model_dump(), "immediate_event_types": manifest("braze").event_types}
    )
    assert only_immediate.event_pattern() is None  # no rule to the coalescing queue; it still takes the rest
    assert [lane.name for lane in only_immediate.lanes] == ["coalescing", "immediate"]


def test_callbacks_go_to_the_immediate_lane_where_there_is_one() -> None:
    """A callback makes no provider call: a batching window gathers nothing for it (issue #28)."""
    assert OPTIMOVE.callback_queue_lane == "immediate"
    one_lane = ConnectorManifest.model_validate({**manifest("braze").model_dump(), "callbacks": True})
    assert [lane.name for lane in one_lane.lanes] == ["coalescing"]
    assert one_lane.callback_queue_lane == "coalescing"
