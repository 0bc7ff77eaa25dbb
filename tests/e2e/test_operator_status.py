"""`dig status --local` on a stack of its own: with Optimove refusing, it exits 1 and names the connector
and the failing call; after the runbook's replay, it exits 0. It finds the stack without being told."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dig_contracts.examples import example_event
from tests.e2e.conftest import LocalStackProcess, delivery, start_local_stack

DIG = str(Path(sys.executable).parent / "dig")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStackProcess]:
    yield from start_local_stack()


def dig(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DIG, *args], capture_output=True, text=True, timeout=120, env={"COLUMNS": "250", **_env()})


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def test_status_names_the_failing_connector_and_call_then_is_healthy_after_the_replay(stack: LocalStackProcess) -> None:
    assert dig("status", "--local").returncode == 0  # a new stack: healthy

    fault = {"status": 500, "rate": 1.0, "calls": ["UpdateCustomerAttributes"]}
    assert stack.http.post("/_sim/optimove/faults", json=fault).status_code == 204
    member = stack.existing_member()
    message_id = stack.post_event(
        example_event("MEMBER_PROFILE_UPDATE", eventId=f"st-{member}", memberId=member)
    ).json()["messageId"]
    assert delivery(stack.wait_for_final(message_id, timeout=120))["status"] == "FAILED"

    failing = dig("status", "--local")  # no --local-url: it finds the running stack
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "optimove: 1 delivery(ies) FAILED in the last hour; last: UpdateCustomerAttributes 500" in failing.stdout
    assert "dig audit list --connector optimove --status FAILED --since 1h --local" in failing.stdout
    as_json = dig("status", "--local", "--json")
    assert as_json.returncode == 1
    assert '"healthy": false' in as_json.stdout

    assert stack.http.delete("/_sim/optimove/faults").status_code == 204
    replay = dig("replay", "--connector", "optimove", "--status", "FAILED", "--since", "1h", "--yes", "--local")
    assert replay.returncode == 0, replay.stderr
    stack.wait_until(
        lambda: delivery(stack.http.get(f"/v1/messages/{message_id}").json())["status"] == "DELIVERED",
        "the replayed message DELIVERED",
    )
    cleared = dig("dlq", "--connector", "optimove", "--delete-resolved", "--local")
    assert cleared.returncode == 0, cleared.stdout + cleared.stderr
    healthy = dig("status", "--local")
    assert healthy.returncode == 0, healthy.stdout
    assert "healthy" in healthy.stdout


def test_a_local_command_with_no_local_stack_running_says_so(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "DIG_LOCAL_STATE": str(tmp_path / "none.json")}
    result = subprocess.run([DIG, "status", "--local"], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 1
    assert "no local stack is running; start one with `dig local` (or pass --local-url URL)" in result.stderr
