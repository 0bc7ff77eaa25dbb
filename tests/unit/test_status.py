"""`dig status`: its verdict from canned figures, and how `--local` commands find the running stack."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from moto import mock_aws
from rich.console import Console

from db.table import Table
from dig_cli import local_state
from dig_cli.status import Alarm, ConnectorFigures, DailyCalls, Figures, LastFailure, _quota_calls, render, verdict
from dig_connector_kit.concurrency import DynamoGate
from dig_connector_kit.ratelimit import DailyShare
from tests.aws import AUDIT, create_tables


def figures(*connectors: ConnectorFigures, alarms: list[Alarm] | None = None) -> Figures:
    return Figures(where="--stack Dig-prod", at="t", connectors=list(connectors), alarms=alarms or [])


def healthy_connector(name: str = "optimove") -> ConnectorFigures:
    return ConnectorFigures(name, waiting=12, last_hour={"DELIVERED": 900, "SKIPPED": 3}, config_version=4)


def test_a_pipeline_delivering_with_nothing_waiting_long_is_healthy() -> None:
    judged = verdict(figures(healthy_connector(), ConnectorFigures("marketo", config_version=1)))
    assert (judged.healthy, judged.line(), judged.problems) == (True, "healthy", [])


def test_failures_of_the_last_hour_name_the_connector_the_failing_call_and_the_command() -> None:
    connector = healthy_connector()
    connector.last_hour["FAILED"] = 7
    connector.last_failure = LastFailure("m-1", "2026-11-30T10:00:00.000Z", "simulated fault 500", "SendMail", "500")
    judged = verdict(figures(connector))
    assert not judged.healthy
    assert judged.problems == [
        "optimove: 7 delivery(ies) FAILED in the last hour; last: SendMail 500 (simulated fault 500) -> "
        "dig audit list --connector optimove --status FAILED --since 1h --stack Dig-prod"
    ]
    assert judged.line() == "needs attention: 1 problem(s)"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"dead_letters": 3}, "optimove: 3 message(s) in the dead-letter queue -> dig dlq --connector optimove"),
        ({"rule_target_dead_letters": 2}, "optimove: 2 event(s) EventBridge could not put on the queue"),
        ({"oldest_seconds": 16 * 60}, "optimove: a message has waited 16 min (the provider may be down)"),
        ({"config_version": None}, "optimove: no configuration -> dig config push optimove FILE --stack Dig-prod"),
    ],
)
def test_each_kind_of_trouble_needs_attention(change: dict[str, object], expected: str) -> None:
    connector = healthy_connector()
    for key, value in change.items():
        setattr(connector, key, value)
    [problem] = verdict(figures(connector)).problems
    assert problem.startswith(expected)


def test_a_message_waiting_under_the_alarms_threshold_is_fine() -> None:
    connector = healthy_connector()
    connector.oldest_seconds = 14 * 60
    assert verdict(figures(connector)).healthy


def test_an_alarm_in_alarm_needs_attention() -> None:
    alarm = Alarm("Dig-prod-ObservabilityOptimoveProviderAuthRefused-X", "Threshold Crossed: 1 datapoint")
    assert verdict(figures(healthy_connector(), alarms=[alarm])).problems == [
        "alarm Dig-prod-ObservabilityOptimoveProviderAuthRefused-X: Threshold Crossed: 1 datapoint"
    ]


def test_local_commands_find_the_newest_running_local_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(local_state.STATE_ENV, str(tmp_path / "stacks.json"))
    assert local_state.running_url() is None
    local_state.remember("http://127.0.0.1:1111", pid=os.getpid())
    assert local_state.running_url() == "http://127.0.0.1:1111"
    local_state.remember("http://127.0.0.1:2222", pid=2**22 + 7)  # no such process: ignored
    assert local_state.running_url() == "http://127.0.0.1:1111"
    local_state.remember("http://127.0.0.1:3333", pid=1)  # a lower process id, started later: it wins
    assert local_state.running_url() == "http://127.0.0.1:3333"
    local_state.forget(pid=1)
    local_state.forget(pid=os.getpid())
    assert local_state.running_url() is None


def test_the_calls_counted_on_a_providers_daily_quota_are_read_from_its_limiter_item_and_shown() -> None:
    with mock_aws():
        table = Table(create_tables(), AUDIT)
        assert _quota_calls(table, "marketo-rest") is None  # nothing counted yet
        for _ in range(2):
            with DynamoGate(table).hold("marketo-rest", 5, 30, 1, daily=DailyShare("2026-12-07", 25_000)):
                pass
        counted = _quota_calls(table, "marketo-rest")
    assert counted == DailyCalls("2026-12-07", 2)
    connector = healthy_connector("marketo")
    connector.quota_calls = counted
    console = Console(record=True, width=250)
    render(figures(connector), verdict(figures(connector)), console)
    assert "2 calls of its quota (2026-12-07)" in console.export_text()
