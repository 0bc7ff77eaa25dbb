"""Webhooks a connector answers itself (WebhookSource verification ``connector``: CataBoom's writeback,
whose answer carries CataBoom's codes): handed to the connector's sync function as they came, its
answer sent back as it is, only what it says to keep kept, and its events emitted before it answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from dig_api import handler
from dig_api.dependencies import providers
from dig_api.errors import ApiError
from dig_api.inbound import InboundService, SourceSpec, WebhookRequest, parse_sources
from dig_connector_kit.inbound import InboundEmitter
from dig_connector_kit.model import WebhookReading, WebhookReply, check_capabilities
from dig_connector_kit.runtime import ConnectorRuntime
from dig_connector_kit.testing import FakePublisher, InMemoryAuditStore
from dig_contracts.inbound import (
    WebhookAnswer,
    WebhookCall,
    WebhookReceipt,
    example_inbound,
    inbound_event_id,
    parse_inbound,
)
from dig_contracts.manifest import ConnectorManifest, WebhookSource, webhook_sources
from tests.apigw import FakeLambdaContext, rest_event

NOW = 1_800_000_000.0
SOURCES = {"acme": {"writeback": SourceSpec(verification="connector", function="fn-acme-sync", max_body_bytes=200)}}


class Receipts:
    def __init__(self) -> None:
        self.kept: list[WebhookReceipt] = []

    def keep(self, receipt: WebhookReceipt) -> None:
        self.kept.append(receipt)


class Function:
    """The connector's sync function: answers what it was told to, and remembers what it was given."""

    def __init__(self, answer: dict[str, Any] | Exception) -> None:
        self.answer = answer
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, function: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((function, payload))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def service(function: Function, receipts: Receipts, publisher: FakePublisher | None = None) -> InboundService:
    return InboundService(
        SOURCES,
        lambda name: pytest.fail("a connector-verified source reads no secret in the API"),
        receipts,  # type: ignore[arg-type]
        publisher or FakePublisher(),
        None,  # type: ignore[arg-type]
        clock=lambda: NOW,
        invoke=function,
    )


def writeback(body: bytes) -> WebhookRequest:
    return WebhookRequest(
        "acme", "writeback", body, {}, {"k": "v"}, request_id="req-9", content_type="application/json"
    )


def test_the_request_goes_to_the_connectors_function_as_it_came_and_its_answer_comes_back_as_it_is() -> None:
    body = b'{"token":"t0k","campaignid":"spin"}'
    function = Function({"status": 200, "body": '{"code":0,"message":"ok"}', "keep": '{"campaignid":"spin"}'})
    receipts, publisher = Receipts(), FakePublisher()
    answer = service(function, receipts, publisher).answer(writeback(body))
    assert answer == WebhookAnswer(status=200, body='{"code":0,"message":"ok"}', keep='{"campaignid":"spin"}')
    [(name, payload)] = function.calls
    assert name == "fn-acme-sync"
    assert payload["webhook"] == {
        "connector": "acme",
        "source": "writeback",
        "receiptId": "req-9",
        "receivedAt": "2027-01-15T08:00:00Z",
        "body": body.decode(),
        "contentType": "application/json",
        "query": {"k": "v"},
    }
    # What the connector said to keep (no token), and nothing published: the connector acted on it.
    assert [(r.receiptId, r.body) for r in receipts.kept] == [("req-9", '{"campaignid":"spin"}')]
    assert publisher.receipts == []


def test_a_refused_request_keeps_nothing_and_the_providers_code_goes_back() -> None:
    function = Function({"status": 401, "body": '{"code":1000,"message":"bad token"}'})
    receipts = Receipts()
    answer = service(function, receipts).answer(writeback(b'{"token":"wrong"}'))
    assert (answer.status, json.loads(answer.body)) == (401, {"code": 1000, "message": "bad token"})
    assert receipts.kept == []


@pytest.mark.parametrize("failure", [RuntimeError("Task timed out"), {"status": "not a status"}])
def test_no_answer_from_the_connector_is_a_503_so_the_provider_sends_it_again(failure: Any) -> None:
    receipts = Receipts()
    with pytest.raises(ApiError) as refused:
        service(Function(failure), receipts).answer(writeback(b"{}"))
    assert (refused.value.status, refused.value.code) == (503, "SERVICE_UNAVAILABLE")
    assert receipts.kept == []


def test_a_body_above_the_sources_limit_never_reaches_the_connector() -> None:
    function = Function({"status": 200, "body": "{}"})
    with pytest.raises(ApiError) as refused:
        service(function, Receipts()).answer(writeback(b"x" * 201))
    assert refused.value.status == 413
    assert function.calls == []


def test_the_route_sends_the_connectors_status_body_and_content_type() -> None:
    function = Function({"status": 403, "body": '{"code":1300,"message":"bad win level"}'})
    providers.inbound = lambda: service(function, Receipts())
    try:
        event = rest_event("POST", "/v1/inbound/acme/writeback", '{"winlevel":"9"}', raw=True)
        event["requestContext"]["authorizer"] = None
        answer = handler.lambda_handler(event, FakeLambdaContext())
        assert answer["statusCode"] == 403
        assert json.loads(answer["body"]) == {"code": 1300, "message": "bad win level"}
        assert answer["multiValueHeaders"]["Content-Type"] == ["application/json"]
    finally:
        providers.reset()


def manifest(**overrides: Any) -> ConnectorManifest:
    document: dict[str, Any] = {
        "name": "acme",
        "description": "d",
        "event_types": ("MEMBER_TIER",),
        "handler": "h.h",
        "sync_handler": "h.s",
        "packages": (),
        "emits": ("POINTS_AWARD_REQUESTED",),
        "webhooks": (WebhookSource(name="writeback", description="d", verification="connector"),),
    }
    return ConnectorManifest(**{**document, **overrides})


def test_a_connector_verified_source_names_no_secret_needs_a_sync_function_and_is_described_by_it() -> None:
    acme = manifest()
    document = webhook_sources([acme], lambda s: pytest.fail("no secret"), lambda m: f"fn-{m.name}-sync")
    assert parse_sources(json.dumps(document)) == {
        "acme": {"writeback": SourceSpec(verification="connector", function="fn-acme-sync")}
    }
    assert acme.webhook_pattern() is None  # nothing of it goes on the bus
    with pytest.raises(ValueError, match="needs a sync_handler"):
        manifest(sync_handler=None)
    with pytest.raises(ValueError, match="names none"):
        WebhookSource(
            name="writeback",
            description="d",
            verification="connector",
            secret={"env": "E", "context_key": "k", "default_name": "n", "description": "d"},  # type: ignore[arg-type]
        )


def points(play: str) -> Any:
    return parse_inbound(
        example_inbound("POINTS_AWARD_REQUESTED", eventId=inbound_event_id("acme", "points", "spin", play))
    )


class Answers:
    name = "acme"

    def deliver(self, messages: Any, deadline: Any) -> dict[str, Any]:
        return {}

    def answer_webhook(self, call: WebhookCall) -> WebhookReply:
        document = json.loads(call.body)
        if document.get("token") != "t0k":
            return WebhookReply(WebhookAnswer(status=401, body='{"code":1000}'))
        return WebhookReply(
            WebhookAnswer(status=200, body='{"code":0}', keep="{}"), WebhookReading(events=[points(document["play"])])
        )


def call(body: dict[str, Any]) -> WebhookCall:
    return WebhookCall(
        connector="acme",
        source="writeback",
        receiptId="r1",
        receivedAt=datetime(2026, 12, 1, tzinfo=UTC),
        body=json.dumps(body),
    )


def test_the_runtime_emits_the_events_before_the_answer_and_the_same_webhook_twice_is_one_event() -> None:
    check_capabilities(manifest(), Answers())
    audit, publisher = InMemoryAuditStore(), FakePublisher()
    runtime = ConnectorRuntime(Answers(), audit, max_receive_count=3, emitter=InboundEmitter("acme", audit, publisher))
    assert runtime.answer_webhook(call({"token": "t0k", "play": "p1"})).status == 200
    assert runtime.answer_webhook(call({"token": "t0k", "play": "p1"})).status == 200
    assert [d.event["eventType"] for d in publisher.published] == ["POINTS_AWARD_REQUESTED"]
    assert runtime.answer_webhook(call({"token": "nope", "play": "p2"})) == WebhookAnswer(
        status=401, body='{"code":1000}'
    )
    assert len(publisher.published) == 1


def test_an_event_the_bus_refuses_answers_503_never_done() -> None:
    audit, publisher = InMemoryAuditStore(), FakePublisher(refuse={points("p1").eventId})
    runtime = ConnectorRuntime(Answers(), audit, max_receive_count=3, emitter=InboundEmitter("acme", audit, publisher))
    answer = runtime.answer_webhook(call({"token": "t0k", "play": "p1"}))
    assert answer.status == 503
    assert answer.keep is None
