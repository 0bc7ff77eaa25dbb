"""The synchronous and batch flows, and racing duplicates, over HTTP against `dig local`."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from dig_contracts.examples import example_event
from tests.e2e.conftest import LocalStackProcess, delivery


def unique(event_type: str, stack: LocalStackProcess) -> dict[str, object]:
    suffix = uuid.uuid4().hex[:10]
    return example_event(event_type, eventId=f"flow-{suffix}", memberId=stack.existing_member())


def test_the_synchronous_flow_delivers_now_and_answers_each_connector(local_stack: LocalStackProcess) -> None:
    event = unique("REDEMPTION", local_stack)
    answer = local_stack.http.post("/v1/sync/events", json=event)
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "completed"
    assert body["deliveries"] == [  # every connector that takes REDEMPTION, now
        {"connector": "marketo", "status": "DELIVERED", "error": None, "attempts": 3, "notes": []},
        {"connector": "optimove", "status": "DELIVERED", "error": None, "attempts": 2, "notes": []},
    ]
    record = local_stack.http.get(f"/v1/messages/{body['messageId']}").json()
    assert record["publishState"] == "SYNC"
    assert delivery(record)["status"] == "DELIVERED"
    calls = [
        r["call"]
        for r in local_stack.simulator_requests()
        if event["memberId"] in str(r["body"]) or str(event["eventId"]) in str(r["body"])  # a mail names the event
    ]
    assert calls == ["UpdateCustomerAttributes", "SendTransactionalMail"]

    again = local_stack.http.post("/v1/sync/events", json=event).json()
    assert again["status"] == "duplicate"
    assert again["messageId"] == body["messageId"]


def test_a_batch_is_accepted_entry_by_entry_and_each_entry_is_delivered(local_stack: LocalStackProcess) -> None:
    events = [unique("MEMBER_PROFILE_UPDATE", local_stack) for _ in range(25)]
    events.insert(3, {"eventType": "MEMBER_PROFILE_UPDATE"})
    answer = local_stack.http.post("/v1/events/batch", json={"events": events})
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [r["status"] for r in results].count("accepted") == 25
    assert results[3]["status"] == "rejected"
    for result in results:
        if result["status"] == "accepted":
            record = local_stack.wait_for_final(result["messageId"])
            assert delivery(record)["status"] == "DELIVERED"


def test_racing_posts_of_one_event_yield_one_message(local_stack: LocalStackProcess) -> None:
    event = unique("MEMBER_PROFILE_UPDATE", local_stack)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: local_stack.post_event(event), range(8)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(202) == 1
    assert set(statuses) <= {200, 202, 409}
    message_ids = {a.json()["messageId"] for a in answers if a.status_code in (200, 202)}
    assert len(message_ids) == 1
    record = local_stack.wait_for_final(message_ids.pop())
    assert delivery(record)["attempts"] == 1
    sent = [
        r
        for r in local_stack.simulator_requests()
        if r["call"] == "UpdateCustomerAttributes" and event["memberId"] in str(r["body"])
    ]
    assert len(sent) == 1
