"""The Tipalti connector: the exact requests it makes, each outcome, and the kit's contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.tipalti import client
from connectors.tipalti.config import ConfigError, parse_config
from connectors.tipalti.local import LOCAL_DOUBLE
from connectors.tipalti.local.simulator import TipaltiSimulator
from connectors.tipalti.manifest import MANIFEST
from connectors.tipalti.tests.harness import harness, sample_config_document
from dig_connector_kit.model import Result
from dig_connector_kit.testing import ConnectorContract, inbound
from dig_contracts.examples import example_event

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def test_a_registration_becomes_exactly_the_mapped_tipalti_event() -> None:
    h = harness()
    event = example_event("MEMBER_REGISTRATION")
    message = inbound(event)
    assert h.deliver(message)[message.message_id].result is Result.DELIVERED
    [request] = h.simulator.logged(client.EVENTS_CALL)
    assert (request["method"], request["path"]) == ("POST", "/v1/events")
    assert request["headers"]["authorization"] == "[redacted]"  # the shared base keeps secrets out of the log
    assert request["body"] == {
        "events": [
            {
                "id": message.message_id,
                "name": "member_joined",
                "memberId": event["memberId"],
                "occurredAt": message.event.occurredAt.isoformat(),
                "attributes": {
                    "email": event["data"]["email"],
                    "first_name": event["data"]["firstName"],
                    "channel": event["data"]["enrollmentChannel"],
                },
            }
        ]
    }


def test_an_event_tipalti_rejects_is_failed_with_tipaltis_reason() -> None:
    h = harness()
    message = inbound(
        example_event(
            "MEMBER_REGISTRATION", data={"email": "ada@example.com", "firstName": "x" * 150, "enrollmentChannel": "WEB"}
        )
    )
    outcome = h.deliver(message)[message.message_id]
    assert outcome.result is Result.FAILED
    assert outcome.error == "the provider rejected it: attributes longer than 100 characters: first_name"


def test_a_server_error_is_retried_within_the_invocation_and_then_left_to_the_queue() -> None:
    h = harness()
    h.simulator.set_fault(client_fault(status=503))
    message = inbound(example_event("MEMBER_TIER"))
    outcome = h.deliver(message)[message.message_id]
    assert outcome.result is Result.RETRY
    assert outcome.error == "events: 503 simulated fault 503"
    assert [a.status for a in outcome.attempts] == ["503"] * 4  # the transport's tries, each on the audit trail
    assert h.simulator.events == {}


def test_a_lost_answer_sent_again_creates_one_event_at_tipalti() -> None:
    h = harness()
    h.simulator.set_fault(client_fault(status=504, mode="lose-answer", calls=[client.EVENTS_CALL]))
    message = inbound(example_event("MEMBER_TIER"))
    assert h.deliver(message)[message.message_id].result is Result.RETRY
    h.simulator.set_fault(None)
    assert h.deliver(message)[message.message_id].result is Result.DELIVERED
    assert list(h.simulator.events) == [message.message_id]  # Tipalti deduplicates on the message's id


def test_an_event_type_the_configuration_does_not_map_is_skipped_saying_so() -> None:
    document = sample_config_document()
    del document["events"]["MEMBER_TIER"]
    h = harness(document)
    message = inbound(example_event("MEMBER_TIER"))
    outcome = h.deliver(message)[message.message_id]
    assert (outcome.result, outcome.notes) == (Result.SKIPPED, ["MEMBER_TIER is not mapped in the configuration"])
    assert h.simulator.logged() == []


def test_the_configuration_refuses_a_source_the_event_does_not_offer_naming_its_path() -> None:
    document = sample_config_document()
    document["events"]["MEMBER_TIER"]["attributes"]["email"] = "email"
    with pytest.raises(ConfigError) as refused:
        parse_config(document)
    assert refused.value.problems[0].startswith("events.MEMBER_TIER.attributes.email: 'email' is not one of")


def test_the_parser_and_the_simulator_agree_with_the_documented_samples() -> None:
    assert client.rejected(fixture("events_response.json")) == {"msg-2": "attributes longer than 100 characters: email"}
    simulator = TipaltiSimulator(api_key="k")
    answer = simulator.handle(
        "POST", client.EVENTS_PATH, {"Authorization": "Bearer k"}, json.dumps(fixture("events_request.json")).encode()
    )
    assert (answer.status, answer.body) == (200, fixture("events_response.json"))


def test_the_local_double_serves_the_shared_control_surface() -> None:
    double = LOCAL_DOUBLE.make(sample_config_document())
    assert double.handle("POST", "/faults", {}, b'{"status": 503, "mode": "sometimes"}').status == 400
    assert double.handle("POST", "/faults", {}, b'{"status": 503}').status == 204
    assert double.handle("DELETE", "/faults", {}, b"").status == 204
    assert double.handle("GET", "/requests", {}, b"").body == []


def test_the_tipalti_connector_keeps_the_connector_contract() -> None:
    events = [example_event(t) for t in MANIFEST.event_types]
    ConnectorContract(lambda: harness().connector, events, MANIFEST).check()


def client_fault(**spec: Any) -> Any:
    from dig_connector_kit.testing import Fault

    return Fault.from_document(spec)
