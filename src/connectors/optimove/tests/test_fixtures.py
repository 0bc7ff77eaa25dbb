"""Optimove's documented samples (tests/fixtures/ beside this file): the connector's parsers read them, the
simulator takes and answers them, and the connector's requests have their shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.optimove import client as api
from connectors.optimove.client import CustomerError, UpdateResults
from connectors.optimove.local.simulator import OptimoveSimulator
from connectors.optimove.mapping import ChannelPreference, MailCall
from dig_connector_kit.ratelimit import RateLimit

FIXTURES = Path(__file__).resolve().parent / "fixtures"
KEY = {"X-API-KEY": "k"}
LIMIT = RateLimit(requests=50, perSeconds=10)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def simulator(**options: Any) -> tuple[OptimoveSimulator, list[dict[str, Any]]]:
    posted: list[dict[str, Any]] = []
    sim = OptimoveSimulator(
        api_key="k", realtime_token="t", callback_sender=lambda url, body: posted.append(body), **options
    )
    return sim, posted


def call(sim: OptimoveSimulator, method: str, path: str, body: Any) -> Any:
    return sim.handle(method, path, KEY, json.dumps(body).encode())


def test_the_documented_results_are_read_as_one_rejection_per_customer_and_field() -> None:
    assert api.parse_update_results(fixture("update_results_rejected.json")) == UpdateResults(
        is_success=False,
        request_id="7a0c2a5e-2f43-4b8e-9a57-6f1c7a0d1b22",
        errors=[CustomerError("M-1", "INVALID_CUSTOMER", "CITY")],
    )
    accepted = api.parse_update_results(fixture("update_results_accepted.json"))
    assert accepted is not None
    assert (accepted.is_success, accepted.errors) == (True, [])


@pytest.mark.parametrize(
    "payload",
    [
        {"Errors": [{"CustomerID": "M-1", "ErrorCode": "INVALID_CUSTOMER"}]},  # the shape assumed before
        "<html>502 Bad Gateway</html>",
        {"isSuccess": False, "errors": [{"customerId": "M-1"}]},
        {"isSuccess": "false", "errors": []},
        [],
    ],
)
def test_a_body_not_of_the_documented_shape_is_unreadable_not_success(payload: Any) -> None:
    assert api.parse_update_results(payload) is None


def test_the_simulator_posts_results_in_the_documented_shape() -> None:
    sim, posted = simulator(customers=["M-2"])
    body = {
        "CustomerNewAttributesValuesList": [
            {"CustomerID": "M-1", "Attributes": [{"RealFieldName": "CITY", "Value": "Paris"}]},
            {"CustomerID": "M-2", "Attributes": [{"RealFieldName": "CITY", "Value": "Oslo"}]},
        ],
        "CallbackURL": "https://dig.test/cb",
    }
    assert call(sim, "POST", "/api/Customers/UpdateCustomerAttributes", body).status == 200
    [results] = posted
    documented = fixture("update_results_rejected.json")
    assert set(results) == set(documented)
    assert results["errors"] == documented["errors"]  # M-1 does not exist: INVALID_CUSTOMER, for CITY
    assert sim.customers == {"M-2": {"CITY": "Oslo"}}  # an update never creates a customer
    parsed = api.parse_update_results(results)
    assert parsed is not None
    assert parsed.errors == [CustomerError("M-1", "INVALID_CUSTOMER", "CITY")]


def test_insert_or_update_creates_the_customer_and_answers_202() -> None:
    sim, posted = simulator()
    request = api.insert_or_update_customers(
        "",
        [("M-9", [("CITY", "Lima")])],
        LIMIT,
        method="PUT",
        path="/api/customers/InsertOrUpdateCustomers",
        callback_url="https://dig.test/cb",
        call_id="c1",
    )
    answer = call(sim, request.method, request.url, request.body)
    assert answer.status == 202
    assert sim.customers == {"M-9": {"CITY": "Lima"}}
    assert posted == [{"isSuccess": True, "requestId": posted[0]["requestId"], "errors": []}]


def test_the_documented_preference_request_is_taken_and_the_old_string_mode_refused() -> None:
    sim, _ = simulator()
    documented = fixture("set_customer_channel_preference.json")
    assert call(sim, "POST", "/api/Integrations/SetCustomerChannelPreference", documented).status == 200
    assert sim.preferences == {("M-1", 15, 1): 2}
    old = {**documented, "CommunicationMode": "OptIn"}
    answer = call(sim, "POST", "/api/Integrations/SetCustomerChannelPreference", old)
    assert (answer.status, answer.body["Error"]) == (400, "CommunicationMode must be an integer (int32)")
    built = api.set_customer_channel_preference("", ChannelPreference(15, 1, 2, True), ["M-1"], LIMIT)
    assert built.body == documented


def test_the_documented_mail_is_sent_once_and_the_repeat_gets_the_documented_409() -> None:
    sim, _ = simulator(templates={501: ["FIRST_NAME"]})
    documented = fixture("send_transactional_mail.json")
    assert call(sim, "POST", "/api/TransactionalMail/SendTransactionalMail", documented).status == 200
    repeat = call(sim, "POST", "/api/TransactionalMail/SendTransactionalMail", documented)
    assert (repeat.status, repeat.body) == (409, fixture("send_transactional_mail_repeated.json"))
    mail = MailCall("mail:501", 501, "ada@example.com", {"FIRST_NAME": "Ada"}, "dig:501:evt-0001")
    assert api.send_transactional_mail("", "ada@example.com", mail, LIMIT).body == documented


def test_an_unknown_template_gets_the_documented_error() -> None:
    sim, _ = simulator(templates={502: []})
    answer = call(sim, "POST", "/api/TransactionalMail/SendTransactionalMail", fixture("send_transactional_mail.json"))
    assert (answer.status, answer.body) == (200, fixture("send_transactional_mail_invalid_template.json"))


@pytest.mark.parametrize(
    ("recipient", "error"),
    [
        ({"CustomerID": "M-1"}, "Recipients: unknown field(s) CustomerID"),
        ({"Personalizations": []}, "every recipient needs an Email"),
        (
            {"Email": "a@b.c", "PersonalizationTags": [{"Tag": "X", "Value": "1"}]},
            "Recipients: unknown field(s) PersonalizationTags",
        ),
    ],
)
def test_the_simulator_refuses_mails_in_shapes_optimove_does_not_document(recipient: Any, error: str) -> None:
    sim, _ = simulator()
    body = {"TemplateID": 501, "UniqueMessageID": "u", "Recipients": [recipient]}
    answer = call(sim, "POST", "/api/TransactionalMail/SendTransactionalMail", body)
    assert (answer.status, answer.body["Error"]) == (400, error)


def test_a_lose_the_answer_fault_performs_the_call_then_fails_it() -> None:
    sim, _ = simulator(templates={501: ["FIRST_NAME"]})
    sim.fail(504, calls=["SendTransactionalMail"], lose_answer=True)
    answer = call(sim, "POST", "/api/TransactionalMail/SendTransactionalMail", fixture("send_transactional_mail.json"))
    assert answer.status == 504
    assert list(sim.mails) == ["dig:501:evt-0001"]  # it was sent all the same
