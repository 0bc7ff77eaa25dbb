"""The return path's core: providers' webhooks verified before anything is kept (401/403/404/413),
kept and handed to their connector; inbound events emitted once per provider notification, recorded
like ES Loyalty's; ES Loyalty's pull of them, page by page."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto import mock_aws
from standardwebhooks.webhooks import Webhook

from db.audit import DynamoAuditStore
from db.inbound_feed import InboundFeed, encode_cursor
from db.receipts import ReceiptStore
from db.records import PublishState
from dig_api import handler
from dig_api.dependencies import providers
from dig_api.errors import ApiError
from dig_api.inbound import InboundService, SourceSpec, WebhookRequest, parse_sources
from dig_connector_kit.inbound import InboundEmitter, InboundNotPublished
from dig_connector_kit.model import Deadline, WebhookReading
from dig_connector_kit.runtime import ConnectorRuntime
from dig_connector_kit.testing import FakePublisher, InMemoryAuditStore
from dig_contracts.bus import message_id_for
from dig_contracts.inbound import (
    INBOUND_RECEIVED_SOURCE,
    INBOUND_SOURCE,
    WebhookReceipt,
    example_inbound,
    inbound_event_id,
    inbound_received_detail_type,
    parse_inbound,
)
from dig_contracts.manifest import ConnectorManifest, SecretSetting, WebhookSource, webhook_sources
from dig_contracts.publisher import entry_for
from tests.apigw import FakeLambdaContext, rest_event
from tests.aws import AUDIT, create_tables

NOW = 1_800_000_000.0
SECRETS = {"tok": "s3cret-token", "mac": "hmac-key", "std": "whsec_" + base64.b64encode(b"standard-key").decode()}
SOURCES = {
    "acme": {
        "token": SourceSpec(verification="token", secretName="tok", header="X-Token", query_parameter="token"),
        "signed": SourceSpec(
            verification="hmac",
            secretName="mac",
            header="X-Signature",
            timestamp_header="X-Timestamp",
            prefix="sha256=",
            max_body_bytes=100,
        ),
        "standard": SourceSpec(verification="standard_webhooks", secretName="std"),
        # Tipalti's webhook: tipalti-signature: t=<unix>,v=<hex HMAC-SHA256 of "<t>-<body>">.
        "tipalti": SourceSpec(
            verification="hmac", secretName="mac", header="tipalti-signature", layout="t=,v=", separator="-"
        ),
        "ipn": SourceSpec(verification="postback", secretName="mac", postback_url="https://provider.test/notif/ipn"),
        # SFMC's Event Notification Service: base64 HMAC-SHA256 of the body; an unsigned handshake first.
        "ens": SourceSpec(
            verification="hmac",
            secretName="mac",
            header="x-sfmc-ens-signature",
            encoding="base64",
            handshake_keys=("callbackId", "verificationKey"),
        ),
    }
}


class Receipts:
    def __init__(self) -> None:
        self.kept: list[WebhookReceipt] = []

    def keep(self, receipt: WebhookReceipt) -> None:
        self.kept.append(receipt)


POSTED_BACK: list[tuple[str, bytes]] = []


def provider_check(url: str, body: bytes, content_type: str | None) -> str:
    """The provider's post-back endpoint: it sent only bodies that say so."""
    POSTED_BACK.append((url, body))
    if b"unreachable" in body:
        raise ConnectionError("no answer")
    return "VERIFIED" if b"genuine" in body else "INVALID"


def service(publisher: FakePublisher | None = None, receipts: Receipts | None = None) -> InboundService:
    return InboundService(
        SOURCES,
        SECRETS.__getitem__,
        receipts or Receipts(),  # type: ignore[arg-type]
        publisher or FakePublisher(),
        None,  # type: ignore[arg-type]
        clock=lambda: NOW,
        send=provider_check,
    )


def tipalti_signature(body: bytes, stamp: int = int(NOW), key: str = "hmac-key") -> dict[str, str]:
    digest = hmac.new(key.encode(), f"{stamp}-".encode() + body, hashlib.sha256).hexdigest()
    return {"tipalti-signature": f"t={stamp},v={digest}"}


def request(
    source: str,
    body: bytes = b'{"a":1}',
    headers: dict[str, str] | None = None,
    content_type: str | None = None,
    **query: str,
) -> WebhookRequest:
    return WebhookRequest("acme", source, body, headers or {}, query, request_id="req-1", content_type=content_type)


def hmac_headers(body: bytes, stamp: int = int(NOW), key: str = "hmac-key") -> dict[str, str]:
    digest = hmac.new(key.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"x-signature": f"sha256={digest}", "x-timestamp": str(stamp)}


@pytest.mark.parametrize(
    ("source", "headers", "query", "status", "code"),
    [
        ("token", {}, {}, 401, "UNAUTHORIZED"),
        ("token", {"x-token": "wrong"}, {}, 403, "FORBIDDEN"),
        ("token", {}, {"token": "wrong"}, 403, "FORBIDDEN"),
        ("signed", {}, {}, 401, "UNAUTHORIZED"),
        ("signed", {"x-signature": "sha256=00"}, {}, 401, "UNAUTHORIZED"),  # no timestamp
        ("signed", hmac_headers(b'{"a":1}', key="other"), {}, 403, "FORBIDDEN"),
        ("signed", hmac_headers(b'{"a":1}', stamp=int(NOW) - 301), {}, 403, "FORBIDDEN"),  # stale: a replay
        ("standard", {}, {}, 401, "UNAUTHORIZED"),
        ("tipalti", tipalti_signature(b'{"a":1}', key="other"), {}, 403, "FORBIDDEN"),
        ("tipalti", {"tipalti-signature": "v=abc"}, {}, 401, "UNAUTHORIZED"),  # no t=
        ("tipalti", tipalti_signature(b'{"a":1}', stamp=int(NOW) + 400), {}, 403, "FORBIDDEN"),
        ("nosuch", {}, {}, 404, "NOT_FOUND"),
    ],
)
def test_a_webhook_that_does_not_verify_is_refused_and_nothing_is_kept_or_published(
    source: str, headers: dict[str, str], query: dict[str, str], status: int, code: str
) -> None:
    publisher, receipts = FakePublisher(), Receipts()
    with pytest.raises(ApiError) as refused:
        service(publisher, receipts).receive(request(source, headers=headers, **query))
    assert (refused.value.status, refused.value.code) == (status, code)
    assert receipts.kept == []
    assert publisher.receipts == []


def test_a_body_above_its_sources_limit_is_refused_before_it_is_verified() -> None:
    with pytest.raises(ApiError) as refused:
        service().receive(request("signed", body=b"x" * 101, headers=hmac_headers(b"x" * 101)))
    assert refused.value.status == 413


@pytest.mark.parametrize(
    ("source", "headers", "query"),
    [
        ("token", {"x-token": "s3cret-token"}, {}),
        ("token", {}, {"token": "s3cret-token"}),  # a URL given to a provider that cannot set headers
        ("signed", hmac_headers(b'{"a":1}'), {}),
        ("tipalti", tipalti_signature(b'{"a":1}'), {}),
    ],
)
def test_a_verified_webhook_is_kept_and_handed_to_its_connector(
    source: str, headers: dict[str, str], query: dict[str, str]
) -> None:
    publisher, receipts = FakePublisher(), Receipts()
    receipt = service(publisher, receipts).receive(request(source, headers=headers, **query))
    assert (receipt.connector, receipt.source, receipt.receiptId, receipt.body) == ("acme", source, "req-1", '{"a":1}')
    assert receipts.kept == [receipt]
    assert publisher.receipts == [receipt]


def test_a_standard_webhooks_source_verifies_with_the_library() -> None:
    body = b'{"type":"x"}'
    stamp = datetime.now(UTC)
    signature = Webhook(SECRETS["std"]).sign("msg_1", stamp, body)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(stamp.timestamp())), "webhook-signature": signature}
    real_time = InboundService(SOURCES, SECRETS.__getitem__, Receipts(), FakePublisher(), None)  # type: ignore[arg-type]
    assert real_time.receive(request("standard", body, headers)).body == body.decode()
    with pytest.raises(ApiError) as refused:
        real_time.receive(request("standard", b'{"type":"y"}', headers))
    assert refused.value.status == 403


def test_a_post_back_source_is_kept_only_when_the_provider_confirms_it_sent_it() -> None:
    publisher, receipts = FakePublisher(), Receipts()
    refused = service(publisher, receipts)
    with pytest.raises(ApiError) as forged:
        refused.receive(request("ipn", b"type=payment_completed&ref=forged"))
    assert forged.value.status == 403
    with pytest.raises(ApiError) as silent:
        refused.receive(request("ipn", b"type=x&ref=unreachable"))
    assert silent.value.status == 503  # the provider sends it again
    assert receipts.kept == []
    kept = refused.receive(
        request("ipn", b"type=payment_completed&ref=genuine", content_type="application/x-www-form-urlencoded")
    )
    assert kept.body == "type=payment_completed&ref=genuine"
    assert POSTED_BACK[-1] == ("https://provider.test/notif/ipn", b"type=payment_completed&ref=genuine")


def test_a_sources_unsigned_handshake_is_kept_marked_and_nothing_else_unsigned_gets_through() -> None:
    publisher, receipts = FakePublisher(), Receipts()
    inbound = service(publisher, receipts)
    handshake = b'{"callbackId": "cb-1", "verificationKey": "vk-1"}'
    receipt = inbound.receive(request("ens", handshake))
    assert receipt.handshake is True
    assert publisher.receipts == [receipt]
    signed_body = b'[{"eventCategoryType": "EngagementEvents.EmailUnsubscribe"}]'
    signature = base64.b64encode(hmac.new(b"hmac-key", signed_body, hashlib.sha256).digest()).decode()
    assert inbound.receive(request("ens", signed_body, {"x-sfmc-ens-signature": signature})).handshake is False
    not_a_handshake = [
        signed_body,  # a notification without its signature
        b'{"callbackId": "cb-1", "verificationKey": "vk-1", "extra": "x"}',  # other keys
        b'{"callbackId": "cb-1", "verificationKey": 7}',  # not strings
        b'{"callbackId": "cb-1", "verificationKey": "' + b"v" * 300 + b'"}',  # too long
    ]
    for body in not_a_handshake:
        with pytest.raises(ApiError) as refused:
            inbound.receive(request("ens", body))
        assert refused.value.status == 401
    with pytest.raises(ApiError) as forged:  # a handshake's shape with a wrong signature is a notification
        inbound.receive(request("ens", handshake, {"x-sfmc-ens-signature": "AAAA"}))
    assert forged.value.status == 403
    with pytest.raises(ApiError) as elsewhere:  # only a source that declares a handshake takes one
        inbound.receive(request("signed", handshake))
    assert elsewhere.value.status == 401
    assert len(receipts.kept) == 2


def test_a_card_number_in_a_webhook_is_masked_before_it_is_kept() -> None:
    receipt = service().receive(request("token", b'{"note":"card 4111 1111 1111 1111"}', {"x-token": "s3cret-token"}))
    assert "4111 1111 1111 1111" not in receipt.body


def test_the_route_answers_202_without_a_bearer_token_and_any_content_type() -> None:
    publisher = FakePublisher()
    providers.inbound = lambda: service(publisher)
    try:
        event = rest_event(
            "POST", "/v1/inbound/acme/token", "a=1&b=2", content_type="application/x-www-form-urlencoded", raw=True
        )
        event["headers"]["X-Token"] = "s3cret-token"
        event["requestContext"]["authorizer"] = None
        answer = handler.lambda_handler(event, FakeLambdaContext())
        assert answer["statusCode"] == 202
        assert json.loads(answer["body"]) == {"status": "accepted", "receiptId": event["requestContext"]["requestId"]}
        assert publisher.receipts[0].body == "a=1&b=2"
        event["headers"]["X-Token"] = "nope"
        refused = handler.lambda_handler(event, FakeLambdaContext())
        assert refused["statusCode"] == 403
        assert json.loads(refused["body"])["error"]["code"] == "FORBIDDEN"
    finally:
        providers.reset()


def test_the_manifest_describes_its_webhooks_to_the_api() -> None:
    secret = SecretSetting(env="ACME_HOOK", context_key="acmeHook", default_name="dig/acme/hook", description="d")
    manifest = ConnectorManifest(
        name="acme",
        description="d",
        event_types=("MEMBER_TIER",),  # type: ignore[arg-type]
        handler="h.h",
        packages=(),
        emits=("MEMBER_CONSENT_CHANGED",),  # type: ignore[arg-type]
        webhooks=(
            WebhookSource(name="unsubs", description="d", verification="token", header="X-Token", secret=secret),
        ),
    )
    document = webhook_sources([manifest], lambda s: f"deployed/{s.default_name}", lambda m: f"fn-{m.name}")
    assert parse_sources(json.dumps(document)) == {
        "acme": {"unsubs": SourceSpec(verification="token", secretName="deployed/dig/acme/hook", header="X-Token")}
    }
    assert manifest.webhook_pattern() == {
        "source": [INBOUND_RECEIVED_SOURCE],
        "detail-type": [inbound_received_detail_type("acme")],
    }
    with pytest.raises(ValueError, match="declares the inbound event types it emits"):
        ConnectorManifest(**{**manifest.model_dump(), "emits": ()})


# --- emitting -------------------------------------------------------------------------------------


def consent(email: str = "ada@example.com", at: str = "2026-12-01 08:00:00") -> Any:
    return parse_inbound(
        example_inbound("MEMBER_CONSENT_CHANGED", eventId=inbound_event_id("optimove", "unsubscribe", "7", email, at))
    )


def test_the_same_notification_twice_is_one_inbound_event_on_the_bus_and_in_the_audit_trail() -> None:
    audit, publisher = InMemoryAuditStore(), FakePublisher()
    emitter = InboundEmitter("optimove", audit, publisher)
    first = emitter.emit([consent(), consent()])
    assert len(first.emitted) == 1
    assert first.duplicates == []
    again = emitter.emit([consent()])
    assert (again.emitted, again.duplicates) == ([], first.emitted)
    assert len(publisher.published) == 1
    [record] = audit.find_messages(first.emitted).values()
    assert (record.eventType, record.memberId, record.client, record.publishState) == (
        "MEMBER_CONSENT_CHANGED",
        "M-1001",
        "optimove/unsubscribes",
        PublishState.PUBLISHED,
    )


def test_an_inbound_event_goes_on_the_bus_with_its_own_source() -> None:
    event = consent()
    from dig_contracts.bus import BusDetail

    entry = entry_for(BusDetail(messageId="m", event=event.model_dump(mode="json")), "bus")
    assert (entry["Source"], entry["DetailType"]) == (INBOUND_SOURCE, "MEMBER_CONSENT_CHANGED")


def test_an_event_the_bus_refuses_raises_so_its_input_is_tried_again() -> None:
    audit, publisher = InMemoryAuditStore(), FakePublisher()
    event = consent()
    publisher.refuse.add(event.eventId)
    with pytest.raises(InboundNotPublished):
        InboundEmitter("optimove", audit, publisher).emit([event])
    assert audit.find_messages([message_id_for(event.eventId)]) == {}
    publisher.refuse.clear()
    assert len(InboundEmitter("optimove", audit, publisher).emit([event]).emitted) == 1


class Reads:
    name = "acme"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def deliver(self, messages: Any, deadline: Any) -> dict[str, Any]:
        return {}

    def read_webhook(self, receipt: WebhookReceipt) -> WebhookReading:
        if self.fail:
            raise ValueError("unreadable")
        return WebhookReading(events=[consent(json.loads(receipt.body)["email"])], unmatched=1)


def receipt_record(email: str, receipt_id: str = "req-1") -> dict[str, Any]:
    receipt = WebhookReceipt(
        connector="acme",
        source="unsubs",
        receiptId=receipt_id,
        receivedAt=datetime(2026, 12, 1, tzinfo=UTC),
        body=json.dumps({"email": email}),
    )
    body = {
        "source": INBOUND_RECEIVED_SOURCE,
        "detail-type": "INBOUND_RECEIVED.acme",
        "detail": receipt.model_dump(mode="json"),
    }
    return {"messageId": f"sqs-{receipt_id}", "body": json.dumps(body), "attributes": {"ApproximateReceiveCount": "1"}}


def test_the_runtime_reads_a_webhook_and_emits_what_the_connector_made_of_it_once() -> None:
    audit, publisher = InMemoryAuditStore(), FakePublisher()
    runtime = ConnectorRuntime(Reads(), audit, max_receive_count=3, emitter=InboundEmitter("acme", audit, publisher))
    report = runtime.handle_sqs_batch({"Records": [receipt_record("a@b.c")]}, Deadline(30))
    assert (report.webhooks, report.inbound_emitted, report.inbound_unmatched, report.failures) == (1, 1, 1, [])
    again = runtime.handle_sqs_batch({"Records": [receipt_record("a@b.c", "req-2")]}, Deadline(30))
    assert again.inbound_emitted == 0
    assert len(publisher.published) == 1


def test_a_webhook_the_connector_cannot_read_goes_back_to_the_queue() -> None:
    audit = InMemoryAuditStore()
    runtime = ConnectorRuntime(
        Reads(fail=True), audit, max_receive_count=3, emitter=InboundEmitter("acme", audit, FakePublisher())
    )
    report = runtime.handle_sqs_batch({"Records": [receipt_record("a@b.c")]}, Deadline(30))
    assert report.failures == ["sqs-req-1"]
    assert report.webhooks == 0


# --- the pull ---------------------------------------------------------------------------------------


@pytest.fixture
def audit_store() -> Iterator[DynamoAuditStore]:
    with mock_aws():
        yield DynamoAuditStore(create_tables(), AUDIT)


def test_es_loyalty_pulls_inbound_events_oldest_first_page_by_page_and_an_empty_page_keeps_its_cursor(
    audit_store: DynamoAuditStore,
) -> None:
    moments = [datetime(2026, 12, 1, 23, 59, tzinfo=UTC) + timedelta(minutes=i) for i in range(5)]  # across midnight
    ids = []
    for index, moment in enumerate(moments):
        emitter = InboundEmitter("optimove", audit_store, FakePublisher(), clock=lambda m=moment: m)
        ids += emitter.emit([consent(f"m{index}@example.com")]).emitted
    now = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    feed = InboundFeed(audit_store.table, clock=lambda: now)
    first = feed.page(None, 2)
    assert [e["id"] for e in first.events] == ids[:2]
    assert first.events[0]["event"]["eventType"] == "MEMBER_CONSENT_CHANGED"
    rest = feed.page(first.nextCursor, 10)
    assert [e["id"] for e in rest.events] == ids[2:]
    empty = feed.page(rest.nextCursor, 10)
    assert (empty.events, empty.nextCursor) == ([], rest.nextCursor)
    with pytest.raises(ValueError, match="not a cursor"):
        feed.page("not-a-cursor", 10)
    assert encode_cursor("x") != rest.nextCursor


def test_an_event_recorded_seconds_ago_waits_for_the_next_page(audit_store: DynamoAuditStore) -> None:
    moment = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    InboundEmitter("optimove", audit_store, FakePublisher(), clock=lambda: moment).emit([consent()])
    assert InboundFeed(audit_store.table, clock=lambda: moment + timedelta(seconds=2)).page(None, 10).events == []
    assert len(InboundFeed(audit_store.table, clock=lambda: moment + timedelta(seconds=6)).page(None, 10).events) == 1


def test_a_kept_receipt_reads_back_as_received(audit_store: DynamoAuditStore) -> None:
    store = ReceiptStore(audit_store.table, clock=time.time)
    receipt = WebhookReceipt(
        connector="acme", source="s", receiptId="r-1", receivedAt=datetime(2026, 12, 1, tzinfo=UTC), body="é" * 5000
    )
    store.keep(receipt)
    assert store.get("r-1") == receipt
    handshake = receipt.model_copy(update={"receiptId": "r-2", "body": "{}", "handshake": True})
    store.keep(handshake)
    assert store.get("r-2") == handshake


def test_the_pull_route_names_a_bad_cursor_and_pages_with_exactly_the_webhooks_envelope(
    audit_store: DynamoAuditStore,
) -> None:
    moment = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    emitted = InboundEmitter("optimove", audit_store, FakePublisher(), clock=lambda: moment).emit([consent()])
    feed = InboundFeed(audit_store.table, clock=lambda: moment + timedelta(minutes=1))
    providers.inbound = lambda: InboundService({}, SECRETS.__getitem__, Receipts(), FakePublisher(), feed)  # type: ignore[arg-type]
    try:
        event = rest_event("GET", "/v1/inbound-events")
        answer = handler.lambda_handler(event, FakeLambdaContext())
        assert answer["statusCode"] == 200
        page = json.loads(answer["body"])
        assert [e["id"] for e in page["events"]] == emitted.emitted
        assert page["events"][0]["event"] == consent().model_dump(mode="json", exclude_none=True)
        event["queryStringParameters"] = {"after": "garbage"}
        event["multiValueQueryStringParameters"] = {"after": ["garbage"]}
        refused = handler.lambda_handler(event, FakeLambdaContext())
        assert refused["statusCode"] == 404
        assert json.loads(refused["body"])["error"]["details"] == [
            {"field": "after", "rule": "a nextCursor from an earlier page"}
        ]
    finally:
        providers.reset()


def test_forgetting_a_member_erases_the_webhooks_their_inbound_events_came_in(audit_store: DynamoAuditStore) -> None:
    from db.erasure import forget_member

    receipts = ReceiptStore(audit_store.table)
    receipt = WebhookReceipt(
        connector="marketo",
        source="unsubscribes",
        receiptId="r-9",
        receivedAt=datetime(2026, 12, 1, tzinfo=UTC),
        body="leadId=5&email=ada%40example.com&unsubscribed=true",
    )
    receipts.keep(receipt)
    event = parse_inbound(
        example_inbound(
            "MEMBER_CONSENT_CHANGED",
            memberId="M-erase",
            origin={
                "connector": "marketo",
                "source": "unsubscribes",
                "providerReference": "lead 5",
                "receiptId": "r-9",
            },
        )
    )
    moment = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    other = parse_inbound(example_inbound("MEMBER_CONSENT_CHANGED", memberId="M-kept", eventId="kept-1"))
    InboundEmitter("marketo", audit_store, FakePublisher(), clock=lambda: moment).emit([event, other])
    report = forget_member(audit_store, "M-erase", ["marketo"])
    assert report.receipts == ["r-9"]
    kept = receipts.get("r-9")
    assert kept is not None
    assert kept.body == "{}"
    # ES Loyalty's pull leaves the forgotten member's event out (its payload is gone), and goes on past it.
    page = InboundFeed(audit_store.table, clock=lambda: moment + timedelta(minutes=1)).page(None, 10)
    assert [e["event"]["memberId"] for e in page.events] == ["M-kept"]
    assert page.nextCursor is not None


def test_without_a_cursor_the_feed_starts_a_day_ago_or_since_a_moment_within_the_retention(
    audit_store: DynamoAuditStore,
) -> None:
    old = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    InboundEmitter("optimove", audit_store, FakePublisher(), clock=lambda: old).emit([consent()])
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    feed = InboundFeed(audit_store.table, retention_days=30, clock=lambda: now)
    assert feed.page(None, 10).events == []  # three days old: before the default day
    assert len(feed.page(None, 10, since=old - timedelta(hours=1)).events) == 1
    assert feed.page(None, 10, since=old + timedelta(hours=1)).events == []
