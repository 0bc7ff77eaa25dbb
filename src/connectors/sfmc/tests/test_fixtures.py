"""Salesforce's documented samples (tests/fixtures/README.md): the connector's parsers read them, and
the simulator answers in the same shapes, so that the two cannot agree on something SFMC does not do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.sfmc import client
from connectors.sfmc.local.simulator import SfmcSimulator

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def shape(value: Any) -> Any:
    """The keys and types of a JSON value, not its values."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


@pytest.fixture
def simulator() -> SfmcSimulator:
    return SfmcSimulator(
        client_id="c",
        client_secret="s",
        definitions={"welcome"},
        data_extensions={"DIG_Members": ["MemberId"]},
        rest_url="https://mc-test.rest.marketingcloudapis.com/",
    )


def token(simulator: SfmcSimulator) -> dict[str, str]:
    answer = simulator.handle(
        "POST", "/auth/v2/token", {}, b'{"grant_type":"client_credentials","client_id":"c","client_secret":"s"}'
    )
    return {"Authorization": f"Bearer {answer.body['access_token']}"}


def test_the_token_answer(simulator: SfmcSimulator) -> None:
    documented = fixture("token_response.json")
    assert (
        client.normalised_base(documented["rest_instance_url"])
        == "https://mc563885gzs27c5t9-63k636ttgm.rest.marketingcloudapis.com"
    )
    assert client.normalised_base("mc-x.rest.marketingcloudapis.com/") == "https://mc-x.rest.marketingcloudapis.com"
    answer = simulator.handle(
        "POST", "/auth/v2/token", {}, b'{"grant_type":"client_credentials","client_id":"c","client_secret":"s"}'
    )
    assert shape(answer.body) == shape(documented)
    refused = simulator.handle(
        "POST", "/auth/v2/token", {}, b'{"grant_type":"client_credentials","client_id":"c","client_secret":"x"}'
    )
    assert (refused.status, refused.body["error"]) == (401, "invalid_client")


def test_a_send_with_one_recipient_refused(simulator: SfmcSimulator) -> None:
    documented = fixture("send_email_partial_failure.json")
    assert client.recipient_errors(documented) == {
        "dig-key-1": client.RecipientError(109106, "MCMS_UTM_Validation_MissingRequiredField_to")
    }
    simulator.recipient_errors["x@example.com"] = (109106, "MCMS_UTM_Validation_MissingRequiredField_to")
    body = {
        "definitionKey": "welcome",
        "recipients": [
            {"contactKey": "M-1", "to": "x@example.com", "messageKey": "dig-key-1"},
            {"contactKey": "M-2", "to": "ok@example.com", "messageKey": "dig-key-2"},
        ],
    }
    answer = simulator.handle("POST", "/rest/messaging/v1/email/messages/", token(simulator), json.dumps(body).encode())
    assert answer.status == 202
    assert {k: v for k, v in answer.body.items() if k != "requestId"} == {
        k: v for k, v in documented.items() if k != "requestId"
    }
    again = simulator.handle("POST", "/rest/messaging/v1/email/messages/", token(simulator), json.dumps(body).encode())
    assert client.recipient_errors(again.body)["dig-key-2"].sent_before  # a used messageKey


def test_a_send_not_sent(simulator: SfmcSimulator) -> None:
    documented = fixture("email_status_not_sent.json")
    assert client.send_status(documented) == client.SendStatus("EmailNotSent", "1", "Unsubscribed")
    simulator.unsubscribed.add("M-1")
    body = {
        "definitionKey": "welcome",
        "recipients": [{"contactKey": "M-1", "to": "ada@example.com", "messageKey": "dig-key-2"}],
    }
    simulator.handle("POST", "/rest/messaging/v1/email/messages/", token(simulator), json.dumps(body).encode())
    answer = simulator.handle("GET", "/rest/messaging/v1/email/messages/dig-key-2", token(simulator), b"")
    assert shape(answer.body) == shape(documented)
    assert client.send_status(answer.body) == client.send_status(documented)


def test_an_asynchronous_upsert_with_a_refused_row(simulator: SfmcSimulator) -> None:
    assert client.accepted_request(fixture("async_upsert_accepted.json")) == "9bd9d4b4-b7f5-4a2c-8d8e-0c5f3b0d5f11"
    documented_status = client.async_status_of(fixture("async_status_has_errors.json"))
    assert documented_status is not None
    assert (documented_status.done, documented_status.has_errors) == (True, True)
    assert client.row_errors([fixture("async_results.json")]) == {1: "10002: Invalid value for a column"}

    simulator.invalid_values.add("bad")
    body = {"items": [{"MemberId": "M-1", "City": "Ottawa"}, {"MemberId": "M-2", "City": "bad"}]}
    accepted = simulator.handle(
        "PUT", "/rest/data/v1/async/dataextensions/key:DIG_Members/rows", token(simulator), json.dumps(body).encode()
    )
    assert (accepted.status, shape(accepted.body)) == (202, shape(fixture("async_upsert_accepted.json")))
    request_id = client.accepted_request(accepted.body)
    status = simulator.handle("GET", f"/rest/data/v1/async/{request_id}/status", token(simulator), b"")
    assert client.async_status_of(status.body) == documented_status
    results = simulator.handle(
        "GET", f"/rest/data/v1/async/{request_id}/results?$page=1&$pageSize=50", token(simulator), b""
    )
    assert results.body == fixture("async_results.json")


def test_an_upsert_to_a_data_extension_that_does_not_exist_fails_early_with_sfmcs_code(
    simulator: SfmcSimulator,
) -> None:
    answer = simulator.handle(
        "PUT", "/rest/data/v1/async/dataextensions/key:Nope/rows", token(simulator), b'{"items": [{"a": 1}]}'
    )
    with pytest.raises(ValueError, match="CustomObjectNotFound: Data extension Nope not found"):
        client.accepted_request(answer.body)


def test_the_documented_ens_unsubscribe_is_read_and_the_simulator_posts_the_same_shape() -> None:
    from connectors.sfmc.local.simulator import ens_signature, ens_unsubscribes

    documented = fixture("ens_email_unsubscribe.json")
    unsubscribe = client.unsubscribe_of(documented)
    assert unsubscribe == client.Unsubscribe(
        "1722201.69238.15607.178363503", None, "pventura.10047.0953@gmail.exacttargettest.com", 1591386215000
    )
    assert client.ens_events(documented) == [documented]  # one object alone is a batch of one
    body, headers = ens_unsubscribes("key", [{"to": "a@b.c"}])
    [simulated] = json.loads(body)
    assert shape(simulated) == shape(documented)
    assert headers["x-sfmc-ens-signature"] == ens_signature("key", body)
    import base64
    import hashlib
    import hmac

    assert base64.b64decode(headers["x-sfmc-ens-signature"]) == hmac.new(b"key", body, hashlib.sha256).digest()
