"""An Optimove outage, seen and repaired by an operator with `dig`, against a local stack of its own:
redemptions end FAILED; the outage ends; `dig replay` delivers them, and the simulator shows exactly
one mail per redemption, after a second replay, a forced one, and an interrupted one resumed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from dig_contracts.examples import example_event
from tests.e2e.conftest import LocalStackProcess, delivery, start_local_stack

DIG = str(Path(sys.executable).parent / "dig")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStackProcess]:
    yield from start_local_stack()


def dig(stack: LocalStackProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DIG, *args, "--local", "--local-url", stack.url], capture_output=True, text=True, timeout=120, env=_wide()
    )


def stray_callback(stack: LocalStackProcess, call_id: str) -> None:
    """A provider's callback in Optimove's dead-letter queue, as a rule would have put it on the queue."""
    from dig_cli.target import resolve
    from dig_contracts.bus import CALLBACK_SOURCE, CallbackDetail, callback_detail_type

    target = resolve(stack=None, region=None, local=True, local_url=stack.url)
    detail = CallbackDetail(connector="optimove", callId=call_id, payload=[], receivedAt="2026-12-07T10:00:00Z")
    body = {"source": CALLBACK_SOURCE, "detail-type": callback_detail_type("optimove"), "detail": detail.model_dump()}
    target.sqs().send_message(QueueUrl=target.dead_letter_queues["optimove"], MessageBody=json.dumps(body))


def _wide() -> dict[str, str]:
    import os

    return {**os.environ, "COLUMNS": "200"}


def redemptions(stack: LocalStackProcess, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        suffix = uuid.uuid4().hex[:8]
        member = stack.existing_member()
        answer = stack.post_event(example_event("REDEMPTION", eventId=f"red-{suffix}", memberId=member))
        assert answer.status_code == 202
        ids.append(answer.json()["messageId"])
    return ids


def statuses(stack: LocalStackProcess, ids: list[str]) -> list[str]:
    return [delivery(stack.wait_for_final(i, timeout=120))["status"] for i in ids]


def mails_sent(stack: LocalStackProcess) -> Counter[str]:
    """How many times Optimove accepted (200) a mail, per UniqueMessageID."""
    return Counter(
        r["body"]["UniqueMessageID"]
        for r in stack.simulator_requests()
        if r["call"] == "SendTransactionalMail" and r["status"] == 200
    )


def outage(stack: LocalStackProcess, count: int) -> list[str]:
    assert stack.http.post("/_sim/optimove/faults", json={"status": 503, "rate": 1.0}).status_code == 204
    ids = redemptions(stack, count)
    assert statuses(stack, ids) == ["FAILED"] * count
    assert stack.http.delete("/_sim/optimove/faults").status_code == 204
    return ids


def test_an_outage_is_replayed_with_exactly_one_mail_per_redemption(stack: LocalStackProcess) -> None:
    ids = outage(stack, 3)

    listed = dig(stack, "audit", "list", "--connector", "optimove", "--status", "FAILED", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {line.split('"messageId": "')[1][:36] for line in listed.stdout.splitlines()} == set(ids)

    failed_since_10m = ("audit", "list", "--connector", "optimove", "--status", "FAILED", "--since", "10m")
    first, second = (dig(stack, *failed_since_10m, "--limit", "2", "--page", page) for page in ("1", "2"))
    assert "page 1 (rows 1-2)" in first.stdout
    assert "There is more: the same command with --page 2" in first.stdout
    assert "page 2 (rows 3-3)" in second.stdout
    assert "There is more" not in second.stdout
    assert sum(i in first.stdout for i in ids) == 2
    assert sum(i in second.stdout for i in ids) == 1
    assert not any(i in first.stdout and i in second.stdout for i in ids)

    dry = dig(stack, "replay", "--connector", "optimove", "--status", "FAILED", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "3 message(s) selected" in dry.stdout
    assert "Dry run: nothing was changed or sent." in dry.stdout
    # An absence is only seen over a window: a dry run's enqueued message would be delivered by now.
    time.sleep(2)
    assert [delivery(stack.http.get(f"/v1/messages/{i}").json())["status"] for i in ids] == ["FAILED"] * 3
    assert mails_sent(stack) == Counter()

    replayed = dig(stack, "replay", "--connector", "optimove", "--status", "FAILED", "--yes")
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 3, skipped 0" in replayed.stdout
    assert statuses(stack, ids) == ["DELIVERED"] * 3
    run_id = replayed.stdout.split("run ")[1].split(":")[0]
    status = dig(stack, "replay", "status", run_id)
    assert "0 PENDING, 3 DELIVERED, 0 FAILED" in status.stdout

    again = dig(stack, "replay", "--connector", "optimove", "--status", "FAILED", "--yes")
    assert again.returncode == 0
    assert "Nothing to replay." in again.stdout
    assert sorted(mails_sent(stack).values()) == [1, 1, 1]

    forced = dig(stack, "replay", "--connector", "optimove", "--message-id", ids[0], "--force", "--yes")
    assert forced.returncode == 0, forced.stderr
    assert "replayed 1" in forced.stdout

    def refused_again() -> bool:  # the forced copy was delivered: its last attempt is Optimove's 409
        record = stack.http.get(f"/v1/messages/{ids[0]}").json()
        attempts = [(a["call"], a["status"]) for a in delivery(record)["attemptLog"]]
        return bool(attempts) and attempts[-1] == ("SendTransactionalMail", "409")

    stack.wait_until(refused_again, "the forced replay sent again and refused by Optimove (409)", 60)
    assert sorted(mails_sent(stack).values()) == [1, 1, 1]

    show = dig(stack, "audit", "show", ids[0])
    assert show.returncode == 0
    assert "replay run" in show.stdout
    assert "SendTransactionalMail" in show.stdout

    # The dead-letter queue still holds the three; they are delivered now, so they can go. Beside them, a
    # callback for a call the log never held (the runbook's "Results that never came back", step 4).
    stray_callback(stack, "never-recorded-call")
    dead = dig(stack, "dlq", "--connector", "optimove")
    assert "4 message(s) in optimove's dead-letter queue" in dead.stdout
    assert all(i in dead.stdout for i in ids)
    assert "DELIVERED" in dead.stdout
    assert "callback never-recorded-call" in dead.stdout
    assert "callback: no such call" in dead.stdout
    cleared = dig(stack, "dlq", "--connector", "optimove", "--delete-resolved")
    assert "deleted 4" in cleared.stdout
    stack.wait_until(lambda: "0 message(s)" in dig(stack, "dlq", "--connector", "optimove").stdout, "an empty DLQ", 30)


def test_an_interrupted_replay_resumes_without_sending_anything_twice(stack: LocalStackProcess) -> None:
    ids = outage(stack, 12)
    command = [
        DIG,
        "replay",
        "--connector",
        "optimove",
        "--status",
        "FAILED",
        "--since",
        "10m",
        "--rate",
        "2",
        "--yes",
        "--local",
        "--local-url",
        stack.url,
    ]
    interrupted = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_wide(),
        # Ctrl-C as an operator's terminal sends it, however the tests were started: a shell running them in
        # the background hands its children SIGINT ignored, and Python then never raises KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )

    # Interrupted mid-run: once it has claimed its first message (12 at 2 a second take 6 s). Not on the
    # first mail: the outage just spent Optimove's rate limit, so the first delivery may wait out the
    # limiter's 10 s window, after the replay has put all 12 on the queue.
    def claimed() -> bool:  # the delivery as it stands now (statuses() waits for final ones)
        return any(delivery(stack.http.get(f"/v1/messages/{i}").json())["status"] != "FAILED" for i in ids)

    stack.wait_until(claimed, "the replay under way", 30)
    interrupted.send_signal(signal.SIGINT)
    out, err = interrupted.communicate(timeout=30)
    assert interrupted.returncode == 1, (out, err)
    assert "run the same command again to resume" in err

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=120, env=_wide())
    assert resumed.returncode == 0, resumed.stderr
    assert statuses(stack, ids) == ["DELIVERED"] * 12
    sent = mails_sent(stack)
    assert all(count == 1 for count in sent.values())
    assert len(sent) == 15  # the 3 of the first test and these 12, each mailed once
