"""`dig`'s contract with scripts: exit codes 0, 1 (partial failure) and 2 (usage), sentences not tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.optimove.tests.harness import SAMPLE_CONFIG, sample_config_document

DIG = str(Path(sys.executable).parent / "dig")


def dig(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DIG, *args], capture_output=True, text=True, check=False, env={"COLUMNS": "200", "PATH": ""})


def test_a_valid_configuration_validates_with_exit_0() -> None:
    result = dig("config", "validate", str(SAMPLE_CONFIG), "--connector", "optimove")
    assert result.returncode == 0
    assert "a valid optimove configuration" in result.stdout


def test_an_invalid_configuration_lists_each_problem_and_exits_1(tmp_path: Path) -> None:
    document = sample_config_document()
    document["currency"] = "ABC"
    del document["events"]["REDEMPTION"]["mail"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    result = dig("config", "validate", str(bad), "--connector", "optimove")
    assert result.returncode == 1
    assert "currency: 'ABC' is not an ISO 4217 currency in current use" in result.stderr
    assert "events.REDEMPTION: a transactional event needs mail.templateId" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "No such command 'nope'"),
        (["audit", "list", "--bogus"], "No such option: --bogus"),
        (["replay", "--local"], "--connector is required"),
        (["audit", "list", "--local", "--stack", "Dig-dev"], "say where: --local for the local stack, or --stack"),
        (
            ["replay", "--connector", "optimove", "--message-id", "m", "--status", "FAILED", "--local"],
            "either --message-id or filters",
        ),
        (
            ["audit", "list", "--connector", "optimove", "--since", "yesterday", "--local"],
            "'yesterday' is neither a duration",
        ),
        (
            ["config", "validate", str(SAMPLE_CONFIG), "--connector", "acme"],
            "no connector named 'acme' is installed (installed: cataboom, esloyalty, marketo, optimove, sfmc, tipalti)",
        ),
    ],
)
def test_usage_errors_exit_2_with_a_sentence(args: list[str], message: str) -> None:
    result = dig(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_dig_prints_provider_text_and_report_cells_as_written_never_as_rich_markup() -> None:
    from dig_cli.console import console
    from dig_cli.files import render

    hostile = "[link=https://evil.example]click[/link] [/] [bold]"
    view = {
        "fileId": "f-1",
        "kind": "events",
        "status": "FAILED",
        "counts": {"lines": 1, "accepted": 0, "duplicates": 0, "rejected": 1, "unprocessed": 0},
        "failureCode": "HEADER_MISMATCH",
        "failureMessage": hostile,
    }
    report = f"line,id,code,field,rule\n1,{hostile},VALIDATION_FAILED,x,y\n"
    with console.capture() as captured:
        render(view, report)
    text = captured.get()
    assert "[link=https://evil.example]click[/link]" in text
    assert "[/]" in text
