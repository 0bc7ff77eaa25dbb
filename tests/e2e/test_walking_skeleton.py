"""ES Loyalty -> API -> EventBridge -> SQS -> Optimove connector -> Optimove, audited in DynamoDB:
over HTTP against `dig local` (moto, the real handlers, the Optimove simulator)."""

from __future__ import annotations

import uuid

import httpx

from dig_contracts.examples import example_event
from tests.e2e.conftest import LocalStackProcess, delivery


def unique(event_type: str, stack: LocalStackProcess | None = None, **changes: object) -> dict[str, object]:
    suffix = uuid.uuid4().hex[:10]
    member = stack.existing_member() if stack is not None else f"M-{suffix}"
    return example_event(event_type, eventId=f"e2e-{suffix}", memberId=member, **changes)


def test_a_profile_update_is_delivered_to_optimove_with_the_mapped_attributes(local_stack: LocalStackProcess) -> None:
    event = unique("MEMBER_PROFILE_UPDATE", local_stack)
    accepted = local_stack.post_event(event)
    assert accepted.status_code == 202
    message_id = accepted.json()["messageId"]
    assert accepted.json()["status"] == "accepted"

    record = local_stack.wait_for_final(message_id)
    assert record["eventId"] == event["eventId"]
    assert record["memberId"] == event["memberId"]
    assert record["eventType"] == "MEMBER_PROFILE_UPDATE"
    delivered_to = delivery(record)
    assert delivered_to["connector"] == "optimove"
    assert delivered_to["status"] == "DELIVERED"
    assert delivered_to["attempts"] == 1
    assert delivered_to["lastError"] is None

    calls = [
        r
        for r in local_stack.simulator_requests()
        if r["call"] == "UpdateCustomerAttributes"
        and any(c["CustomerID"] == event["memberId"] for c in r["body"]["CustomerNewAttributesValuesList"])
    ]
    [call] = calls
    assert call["status"] == 200
    [customer] = [c for c in call["body"]["CustomerNewAttributesValuesList"] if c["CustomerID"] == event["memberId"]]
    assert customer["Attributes"] == [
        {"RealFieldName": "BIRTH_DATE", "Value": "1990-12-10"},
        {"RealFieldName": "CITY", "Value": "Ottawa"},
        {"RealFieldName": "EMD_FAVORITE_STORE", "Value": "Bank St"},
        {"RealFieldName": "FIRST_NAME", "Value": "Ada"},
    ]


def test_with_optimove_failing_every_call_the_message_ends_failed_with_its_attempts(
    local_stack: LocalStackProcess, clean_faults: None
) -> None:
    assert local_stack.http.post("/_sim/optimove/faults", json={"status": 500, "rate": 1.0}).status_code == 204
    event = unique("MEMBER_PROFILE_UPDATE", local_stack)
    message_id = local_stack.post_event(event).json()["messageId"]

    record = local_stack.wait_for_final(message_id, timeout=120)
    delivered_to = delivery(record)
    assert delivered_to["status"] == "FAILED"
    assert delivered_to["lastError"] == (
        "retries spent after 5 receives: UpdateCustomerAttributes: simulated fault 500"
    )
    assert delivered_to["attempts"] == 20  # 5 receives x 4 tries each
    assert {a["status"] for a in delivered_to["attemptLog"]} == {"500"}
    assert {a["call"] for a in delivered_to["attemptLog"]} == {"UpdateCustomerAttributes"}
    # Nothing lost: the message is still in the audit trail, with its payload, to replay.
    assert record["publishState"] == "PUBLISHED"


def test_routes_refuse_a_missing_or_insufficient_token(local_stack: LocalStackProcess) -> None:
    anonymous = httpx.post(f"{local_stack.url}/v1/events", json=unique("MEMBER_TIER"))
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "UNAUTHORIZED"
    forged = httpx.get(f"{local_stack.url}/v1/messages/x", headers={"Authorization": "Bearer forged.token.value"})
    assert forged.status_code == 401


def test_a_duplicate_post_answers_the_original_message(local_stack: LocalStackProcess) -> None:
    event = unique("MEMBER_TIER")
    first = local_stack.post_event(event)
    second = local_stack.post_event(event)
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json() == {"messageId": first.json()["messageId"], "status": "duplicate"}


def test_unknown_routes_outside_v1_are_404_in_the_error_shape(local_stack: LocalStackProcess) -> None:
    answer = local_stack.http.get("/health")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "NOT_FOUND"


def test_a_read_only_token_may_read_but_not_post(local_stack: LocalStackProcess) -> None:
    import subprocess
    import sys
    from pathlib import Path

    token = subprocess.run(
        [str(Path(sys.executable).parent / "dig"), "local", "token", "--read-only"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    denied = httpx.post(f"{local_stack.url}/v1/events", json=unique("MEMBER_TIER"), headers=headers)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "FORBIDDEN"
    assert httpx.get(f"{local_stack.url}/v1/messages/unknown", headers=headers).status_code == 404


def test_a_wrong_method_is_405_through_the_gateway(local_stack: LocalStackProcess) -> None:
    answer = local_stack.http.delete("/v1/events")
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "POST"
    assert answer.headers["Content-Type"] == "application/json"


def test_dig_names_an_unreachable_local_stack_in_a_sentence() -> None:
    import subprocess
    import sys
    from pathlib import Path

    dig = str(Path(sys.executable).parent / "dig")
    result = subprocess.run(
        [dig, "audit", "list", "--connector", "optimove", "--local", "--local-url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "no local stack answers at http://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr
