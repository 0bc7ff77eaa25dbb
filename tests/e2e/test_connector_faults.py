"""Optimove failing a third of all calls, at random: every accepted event still ends delivered (or
failed, replayable), none is lost, and no member is mailed twice."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator

import pytest

from dig_contracts.events import EventType
from dig_contracts.examples import example_event
from tests.e2e.conftest import LocalStackProcess, start_local_stack


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStackProcess]:
    yield from start_local_stack()


def test_with_a_third_of_calls_failing_nothing_is_lost_and_nobody_is_mailed_twice(stack: LocalStackProcess) -> None:
    assert stack.http.post("/_sim/optimove/faults", json={"status": 500, "rate": 0.33}).status_code == 204
    accepted = []
    for round_ in range(5):
        for event_type in EventType:
            suffix = uuid.uuid4().hex[:8]
            answer = stack.post_event(example_event(event_type, eventId=f"f{round_}-{suffix}", memberId=f"M-{suffix}"))
            assert answer.status_code == 202
            accepted.append(answer.json()["messageId"])
    final = [stack.wait_for_final(message_id, timeout=180)["deliveries"][0]["status"] for message_id in accepted]
    stack.http.delete("/_sim/optimove/faults")

    assert len(final) == 30
    assert set(final) <= {"DELIVERED", "FAILED"}
    assert final.count("DELIVERED") >= 27  # 4 tries x 5 receives at a 33 % fault rate: failures are rare
    requests = stack.simulator_requests()
    assert {r["status"] for r in requests} >= {200, 500}  # faults were really injected
    mails = Counter(
        r["body"]["UniqueMessageID"] for r in requests if r["call"] == "SendTransactionalMail" and r["status"] == 200
    )
    assert all(count == 1 for count in mails.values())
    reported = Counter(r["body"]["cid"] for r in requests if r["call"] == "reportEvent" and r["status"] == 200)
    assert all(count == 1 for count in reported.values())  # never a second welcome campaign
