"""`dig cost`: what AWS bills for each request the handlers make, and the price per million."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import typer
from moto import mock_aws

from db.audit import delivery_to_item, message_to_item
from db.records import DeliveryRecord, DeliveryStatus, MessageRecord, PublishState
from dig_cli.cost import monthly_volume
from dig_contracts import functions
from dig_contracts.examples import example_event
from dig_cost.latency import FULL_VCPU_MB, request_seconds
from dig_cost.meter import AwsMeter, Usage, Waits, covered, current_function, purpose
from dig_cost.report import (
    IDLE_RECEIVES_PER_MONTH,
    MonthlyLine,
    Retention,
    billed_seconds,
    monthly_costs,
    price,
    traced_share,
)
from dig_cost.run import DEFAULT_MIX, Invocations, Measurement, Route, member_event, mix_sequence
from dig_cost.units import chunks_64k, item_size, read_units, value_size, write_units
from tests.aws import AUDIT, CONFIG, create_tables

# --- sizes --------------------------------------------------------------------------------------


def test_item_sizes_follow_dynamodbs_rules() -> None:
    assert item_size({"pk": {"S": "abc"}}) == 2 + 3
    assert item_size({"é": {"S": "é"}}) == 2 + 2  # UTF-8 bytes, names too
    assert value_size({"N": "123"}) == 3  # ceil(3 digits / 2) + 1
    assert value_size({"N": "-0.0012500"}) == 3  # significant digits only: 125
    assert value_size({"B": b"\x00" * 10}) == 10
    assert value_size({"BOOL": True}) == value_size({"NULL": True}) == 1
    assert value_size({"L": [{"S": "ab"}, {"N": "1"}]}) == 3 + (1 + 2) + (1 + 2)
    assert value_size({"M": {"k": {"S": "v"}}}) == 3 + 1 + 1 + 1


def test_units_round_up_per_item_and_chunk() -> None:
    assert [write_units(n) for n in (0, 1, 1024, 1025)] == [1, 1, 1, 2]
    assert read_units(4096, consistent=True) == 1.0
    assert read_units(4097, consistent=False) == 1.0
    assert read_units(0, consistent=False) == 0.5  # an absent item still costs the minimum
    assert [chunks_64k(n) for n in (0, 65536, 65537)] == [1, 1, 2]


# --- the meter against moto (in process) ---------------------------------------------------------


@pytest.fixture
def metered() -> Iterator[tuple[AwsMeter, Any]]:
    with mock_aws():
        create_tables()
        meter = AwsMeter()
        with meter.installed():
            peek = meter.unmetered(boto3.session.Session(region_name="us-east-1")).client("dynamodb")
            meter.attach(peek, config_table=CONFIG)
            client = boto3.session.Session(region_name="us-east-1").client("dynamodb")
            yield meter, client


def message_item(message_id: str = "m-1", event_type: str = "MEMBER_TIER") -> dict[str, Any]:
    record = MessageRecord(
        messageId=message_id,
        eventId="e-1",
        eventType=event_type,
        memberId="M-1",
        occurredAt="2026-11-21T12:00:00Z",
        receivedAt="2026-11-21T12:00:01.000Z",
        sizeBytes=120,
        envelope={"eventId": "e-1", "data": {"newTier": "GOLD"}},
        publishState=PublishState.PUBLISHED,
    )
    return message_to_item(record, 1_900_000_000)


def delivery_item(message_id: str, status: DeliveryStatus = DeliveryStatus.DELIVERED) -> dict[str, Any]:
    record = DeliveryRecord(
        messageId=message_id,
        connector="optimove",
        status=status,
        eventType="MEMBER_TIER",
        memberId="M-1",
        updatedAt="2026-11-21T12:00:02.000Z",
    )
    return delivery_to_item(record, 1_900_000_000)


def test_a_new_message_record_is_billed_with_a_write_to_each_index_it_appears_in(
    metered: tuple[AwsMeter, Any],
) -> None:
    meter, client = metered
    client.put_item(TableName=AUDIT, Item=message_item())
    usage = meter.reset()
    # The item (under 1 KB) and its row in byMember: byEventType holds only the types code reads by type.
    assert usage.write_units_by_purpose == ({"audit: message records": 2})
    assert usage.calls == Counter({("dynamodb", "PutItem"): 1})
    client.put_item(TableName=AUDIT, Item=message_item("m-2", "PAYOUT_REQUESTED"))
    assert meter.reset().write_units_by_purpose == ({"audit: message records": 3})
    # What it keeps: the item, and each index entry the row only (db.schema.MESSAGE_ROW), each with 100
    # bytes of DynamoDB's overhead.
    assert list(usage.stored_bytes_by_purpose) == ["audit: message records"]
    assert usage.stored_bytes == item_size(message_item()) + 100 + 100 + item_size(
        {
            k: v
            for k, v in message_item().items()
            if k in ("pk", "sk", "gsiMemberPk", "gsiMemberSk", "eventType", "memberId", "receivedAt")
        }
    )


def test_a_refused_conditional_write_is_billed_without_index_writes(metered: tuple[AwsMeter, Any]) -> None:
    meter, client = metered
    client.put_item(TableName=AUDIT, Item=message_item())
    meter.reset()
    with pytest.raises(client.exceptions.ConditionalCheckFailedException):
        client.put_item(TableName=AUDIT, Item=message_item(), ConditionExpression="attribute_not_exists(pk)")
    assert meter.reset().units["dynamodb.write_unit"] == 1


def test_a_batch_write_bills_each_item_and_an_index_key_change_twice(metered: tuple[AwsMeter, Any]) -> None:
    meter, client = metered
    items = [{"PutRequest": {"Item": delivery_item(f"m-{i}", DeliveryStatus.PENDING)}} for i in range(25)]
    client.batch_write_item(RequestItems={AUDIT: items})
    assert meter.reset().write_units_by_purpose == ({"audit: delivery records": 25 * 2})

    client.put_item(TableName=AUDIT, Item=delivery_item("m-0", DeliveryStatus.FAILED))
    # The item, and in byConnectorStatus the PENDING entry deleted and the FAILED one written.
    assert meter.reset().units["dynamodb.write_unit"] == 1 + 2
    client.put_item(TableName=AUDIT, Item=delivery_item("m-1", DeliveryStatus.DELIVERED))
    # The item, and its PENDING entry deleted: a delivered delivery is in no index.
    assert meter.reset().units["dynamodb.write_unit"] == 1 + 1


def test_an_update_is_billed_on_the_larger_of_before_and_after(metered: tuple[AwsMeter, Any]) -> None:
    meter, client = metered
    client.put_item(TableName=AUDIT, Item={"pk": {"S": "STATE#optimove#M-1"}, "sk": {"S": "ATTRIBUTES"}})
    meter.reset()
    client.update_item(
        TableName=AUDIT,
        Key={"pk": {"S": "STATE#optimove#M-1"}, "sk": {"S": "ATTRIBUTES"}},
        UpdateExpression="SET big = :v",
        ExpressionAttributeValues={":v": {"S": "x" * 1500}},
    )
    assert meter.reset().write_units_by_purpose == ({"watermarks": 2})


def test_reads_are_billed_per_item_read_and_absent_items_at_the_minimum(metered: tuple[AwsMeter, Any]) -> None:
    meter, client = metered
    client.put_item(TableName=AUDIT, Item=message_item("m-1"))
    meter.reset()
    keys = [{"pk": {"S": f"MSG#m-{i}"}, "sk": {"S": "MESSAGE"}} for i in (1, 2, 3)]
    client.batch_get_item(RequestItems={AUDIT: {"Keys": keys, "ConsistentRead": True}})
    client.get_item(TableName=AUDIT, Key=keys[2])  # eventually consistent, absent
    usage = meter.reset()
    assert usage.read_units_by_purpose == ({"audit: message records": 1, "audit: message records: absent items": 2.5})
    client.batch_get_item(
        RequestItems={AUDIT: {"Keys": [{"pk": {"S": "STATE#optimove#M-9"}, "sk": {"S": "ATTRIBUTES"}}, keys[0]]}}
    )
    # Named for what was looked for: each absent key's own kind, at the minimum (eventually consistent: 0.5).
    assert meter.reset().read_units_by_purpose == {"audit: message records": 0.5, "watermarks: absent items": 0.5}


def test_eventbridge_and_sqs_are_billed_per_64_kb_chunk_and_idle_polls_are_not_per_event() -> None:
    with mock_aws():
        meter = AwsMeter()
        with meter.installed():
            session = boto3.session.Session(region_name="us-east-1")
            meter.attach(meter.unmetered(boto3.session.Session(region_name="us-east-1")).client("dynamodb"))
            events, sqs = session.client("events"), session.client("sqs")
            entry = {"Source": "dig.api", "DetailType": "LoyaltyEvent", "EventBusName": "default"}
            events.put_events(Entries=[{**entry, "Detail": json.dumps({"x": "y" * 70_000})}, {**entry, "Detail": "{}"}])
            url = sqs.create_queue(QueueName="q")["QueueUrl"]
            sqs.receive_message(QueueUrl=url)  # nothing there
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"source": "dig.api", "detail": {}}))
            sqs.receive_message(QueueUrl=url, AttributeNames=["All"])
        usage = meter.reset()
    assert usage.units["eventbridge.event"] == 2 + 1
    assert usage.empty_receives == 1
    # Creating the queue, the send, the receive that found it; and the first receive of a bus event
    # counts the rule's send to the queue too.
    assert usage.units["sqs.request"] == 1 + 1 + 1 + 1
    assert usage.bus_deliveries == 1


def test_each_request_is_attributed_to_the_handler_running_it_even_from_the_threads_it_starts(
    metered: tuple[AwsMeter, Any],
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    meter, client = metered
    key = {"pk": {"S": "MSG#m-1"}, "sk": {"S": "MESSAGE"}}
    client.get_item(TableName=AUDIT, Key=key)  # no handler running: the stack's own request
    token = current_function.set("dig_api.handler.lambda_handler")
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda _: client.put_item(TableName=AUDIT, Item=message_item()), range(2)))
    finally:
        current_function.reset(token)
    meter.reset()  # a warm-up's reset: what each function asked stays known
    assert meter.calls_by_function == Counter(
        {("", "dynamodb", "GetItem"): 1, ("dig_api.handler.lambda_handler", "dynamodb", "PutItem"): 2}
    )


# --- an invocation's time ---------------------------------------------------------------------------


def test_overlapping_waits_are_counted_once() -> None:
    assert covered([]) == 0
    assert covered([(0.0, 1.0), (0.5, 1.5), (3.0, 4.0), (3.2, 3.4)]) == pytest.approx(2.5)


def test_an_invocations_time_is_split_into_the_meters_reads_aws_providers_and_its_own() -> None:
    invocations = Invocations()
    waits = Waits()
    # Two DynamoDB writes at once (a parallel batch write), 0.2 s each as moto answered; the meter read
    # 0.1 s before them; a provider call of 0.3 s; the invocation took 1.0 s in all.
    waits.meter.append((0.0, 0.1))
    waits.aws.extend([("dynamodb.BatchWriteItem", (0.1, 0.3)), ("dynamodb.BatchWriteItem", (0.1, 0.3))])
    waits.provider.append((0.3, 0.6))
    invocations._add("connectors.optimove.handler.lambda_handler", 1.0, waits)
    [(handler, parts)] = invocations.breakdown().items()
    assert handler == "connectors.optimove.handler.lambda_handler"
    assert parts == pytest.approx(
        {
            "measured": 1.0,
            "meter": 0.1,
            "aws_local": 0.2,  # the overlap once
            # the same overlap at AWS's pace: two requests of 25 ms at once, 25 ms
            "aws_in_region": 0.2 * (2 * request_seconds("dynamodb.BatchWriteItem")) / 0.4,
            "provider": 0.3,
            "own": 0.4,  # 1.0 less the 0.6 covered by the meter, AWS and the provider
            "own_idle": 0.0,  # the thread's CPU time not measured: none taken out of the stretch
        }
    )
    # Its thread on the CPU 0.1 s of its own 0.4: 0.3 s off it (a limiter's sleep).
    invocations._add("connectors.marketo.handler.lambda_handler", 1.0, waits, cpu=0.1)
    assert invocations.breakdown()["connectors.marketo.handler.lambda_handler"]["own_idle"] == pytest.approx(0.3)


def test_a_handler_that_sleeps_has_that_time_idle_not_stretched() -> None:
    invocations = Invocations()
    invocations.wrap("connectors.marketo.handler.lambda_handler", lambda event, context: time.sleep(0.05))({}, None)
    parts = invocations.breakdown()["connectors.marketo.handler.lambda_handler"]
    assert parts["own"] >= 0.05
    assert parts["own_idle"] >= 0.045  # a sleep takes no CPU
    made = measurement(time_parts={"connectors.marketo.handler.lambda_handler": parts})
    # At 512 MB the idle part counts once, the little work left 3.45 times.
    billed = billed_seconds(made, "connectors.marketo.handler.lambda_handler", 512)
    assert billed == pytest.approx(parts["own_idle"] + (parts["own"] - parts["own_idle"]) * 1769 / 512, rel=1e-3)
    assert billed < parts["own"] * 1769 / 512 * 0.5


def test_an_invocation_is_billed_its_own_time_at_its_cpu_share_aws_at_in_region_latency_and_providers_as_answered() -> (
    None
):
    parts = {"measured": 9.0, "meter": 3.0, "aws_local": 4.0, "aws_in_region": 0.5, "provider": 0.25, "own": 1.0}
    handler = "connectors.optimove.handler.lambda_handler"
    made = measurement(time_parts={handler: parts})
    assert billed_seconds(made, handler, FULL_VCPU_MB) == pytest.approx(1.0 + 0.5 + 0.25)
    # A quarter of a vCPU's memory: the same work takes four times as long.
    assert billed_seconds(made, handler, FULL_VCPU_MB // 4) == pytest.approx(1.0 * 4 * (1769 / 1768) + 0.75, rel=1e-3)
    assert billed_seconds(made, handler, 3008) == pytest.approx(1.75)  # more memory than a vCPU: no faster here
    # Without parts (a measurement made by hand): the seconds measured.
    assert billed_seconds(made, "dig_api.handler.lambda_handler", 1024) == 2.0
    # Of its own second, 0.6 s off the CPU: at a quarter of a vCPU only the 0.4 s of work is stretched.
    idle = measurement(time_parts={handler: {**parts, "own_idle": 0.6}})
    assert billed_seconds(idle, handler, FULL_VCPU_MB // 4) == pytest.approx(0.4 * 4 + 0.6 + 0.75, rel=1e-3)
    report = price(made)
    assert report.lambda_seconds[handler] == {**parts, "priced": pytest.approx(1.75)}  # at 2048 MB
    assert report.lambda_seconds["dig_api.handler.lambda_handler"] == {"priced": 2.0}


def test_the_meter_times_each_request_of_a_handler_apart_from_its_own_reads(metered: tuple[AwsMeter, Any]) -> None:
    from dig_cost.meter import current_waits

    _meter, client = metered
    waits = Waits()
    token = current_waits.set(waits)
    try:
        client.put_item(TableName=AUDIT, Item=message_item())  # the meter reads the item before it
    finally:
        current_waits.reset(token)
    client.get_item(TableName=AUDIT, Key={"pk": {"S": "MSG#m-1"}, "sk": {"S": "MESSAGE"}})  # outside: not timed
    [(call, (sent, answered))] = waits.aws
    assert call == "dynamodb.PutItem"
    assert 0 < answered - sent < 5
    # Its read of the item before, and its accounting after: two stretches, neither overlapping the request.
    assert len(waits.meter) == 2
    assert waits.meter[0][1] <= sent
    assert waits.meter[1][0] >= answered


def test_a_handlers_provider_calls_are_timed_and_the_stacks_own_are_not(metered: tuple[AwsMeter, Any]) -> None:
    import httpx

    from dig_cost.meter import current_waits

    with httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(204))) as http:
        http.get("https://provider.example/stack-own")
        waits = Waits()
        token = current_waits.set(waits)
        try:
            assert http.post("https://provider.example/call").status_code == 204
        finally:
            current_waits.reset(token)
    [(started, ended)] = waits.provider
    assert 0 <= ended - started < 5
    assert waits.aws == []


# --- pricing --------------------------------------------------------------------------------------


def measurement(**overrides: Any) -> Measurement:
    usage = Usage()
    usage.write_units_by_purpose.update({"audit: message records": 3000, "audit: delivery records": 2000})
    usage.units.update({"dynamodb.write_unit": 5000, "eventbridge.event": 1000, "sqs.request": 1200})
    usage.bus_deliveries = 1000
    fields: dict[str, Any] = {
        "route": Route.BATCH,
        "event_type": "MEMBER_PROFILE_UPDATE",
        "events": 1000,
        "accepted": 1000,
        "api_requests": 2,
        "usage": usage,
        "invocations": {
            functions.API.handler: 4,
            functions.AUTHORIZER.handler: 2,
            "connectors.optimove.handler.lambda_handler": 5,
        },
        "seconds": {
            functions.API.handler: 2.0,
            functions.AUTHORIZER.handler: 1.0,
            "connectors.optimove.handler.lambda_handler": 1.0,
        },
        "log_bytes": 0,
        "memory_mb": {
            functions.API.handler: 1024,
            functions.AUTHORIZER.handler: 512,
            "connectors.optimove.handler.lambda_handler": 2048,
        },
        "wall_seconds": 10.0,
    }
    return Measurement(**{**fields, **overrides})


def test_a_measurement_is_priced_per_million_by_component() -> None:
    report = price(measurement())
    lines = {(line.component, line.detail): line.usd_per_million for line in report.lines}
    assert lines[("DynamoDB writes", "audit: message records")] == 1.875  # 3 write units at $0.625 per million
    assert lines[("DynamoDB writes", "audit: delivery records")] == 1.25
    assert lines[("EventBridge", "PutEvents entries (64 KB chunks)")] == 1.0
    assert lines[("SQS", "rules' deliveries to connector queues")] == 0.4
    assert lines[("SQS", "receives, deletes, sends (event source mappings, handlers)")] == 0.08
    # 4 API invocations (posts and callbacks) are 4 API Gateway requests for 1,000 events.
    assert lines[("API Gateway", "REST requests (posts, file status, provider callbacks)")] == 0.014
    # 2 s at 1 GB for 1,000 events: 2,000 GB-s per million.
    assert lines[("Lambda", "dig_api.handler: GB-seconds at 1024 MB")] == pytest.approx(2000 * 0.0000133334, abs=1e-4)
    assert lines[("Lambda", "connectors.optimove.handler: GB-seconds at 2048 MB")] == pytest.approx(
        2000 * 0.0000133334, abs=1e-4
    )
    # The authorizer ran twice for a second, but API Gateway caches its answer: not a cost per event.
    assert [detail for component, detail in lines if component == "Lambda"] == [
        "connectors.optimove.handler: invocations",
        "connectors.optimove.handler: GB-seconds at 2048 MB",
        "dig_api.handler: invocations",
        "dig_api.handler: GB-seconds at 1024 MB",
    ]
    assert report.audit_share == pytest.approx((1.875 + 1.25) / report.total, abs=0.001)


def test_fixed_monthly_costs_come_from_the_template_and_alarms_are_billed_per_metric() -> None:
    math_alarm = {
        "Metrics": [
            {"Id": "rate", "Expression": "a/(a+b)"},
            {"Id": "a", "MetricStat": {}},
            {"Id": "b", "MetricStat": {}},
        ]
    }
    template = {
        "Resources": {
            "A1": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"MetricName": "Errors"}},
            "A2": {"Type": "AWS::CloudWatch::Alarm", "Properties": math_alarm},
            "S": {"Type": "AWS::SecretsManager::Secret"},
            "W": {"Type": "AWS::WAFv2::WebACL", "Properties": {"Rules": [{}, {}, {}]}},
            "E": {"Type": "AWS::Lambda::EventSourceMapping"},
            "T": {"Type": "AWS::DynamoDB::Table"},
            "F1": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"MemorySize": 1024, "SnapStart": {"ApplyOn": "PublishedVersions"}},
            },
            "F2": {"Type": "AWS::Lambda::Function", "Properties": {"MemorySize": 512}},
        }
    }
    lines = {
        line.detail: (line.count, line.usd_per_month)
        for line in monthly_costs(template, secrets_outside=3, custom_metrics=40, custom_metrics_possible=60)
    }
    # A metric-math alarm over two metrics is billed for two.
    assert lines["2 alarms over 3 metrics"] == (3, 0.3)
    assert lines["AWS::SecretsManager::Secret"] == (1, 0.4)
    assert lines["secrets the connectors and webhooks read, made outside the stack"] == (3, 1.2)
    # The metrics a run emitted are billed; what the code could emit besides is named, not priced.
    assert lines["custom metrics the run emitted (name and service); the code can emit 60"] == (40, 12.0)
    assert lines["AWS::WAFv2::WebACL"] == (1, 5.0)
    assert lines["AWS::WAFv2::WebACL rule"] == (3, 3.0)
    assert lines["1 event source mappings' long polls while idle (modelled)"][0] == IDLE_RECEIVES_PER_MONTH
    assert "AWS::DynamoDB::Table" not in lines  # on-demand: nothing when idle
    # 1 GB of snapshot cached all month (730 hours) at $0.0000015 a GB-second; F2 has no SnapStart.
    assert lines["SnapStart snapshots cached (1 GB of live versions; restores extra)"] == (2_628_000, 3.94)


def test_storage_pitr_and_the_archive_are_priced_for_what_the_template_keeps() -> None:
    usage = Usage()
    usage.stored_bytes_by_purpose["audit: message records"] = 1000 * 1_500  # 2 KB an event, by what it is for
    usage.stored_bytes_by_purpose["watermarks"] = 1000 * 500
    usage.archived_bytes = 1000 * 1_000
    template = {
        "Resources": {
            "T": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {"PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True}},
            },
            "F": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Environment": {"Variables": {"AUDIT_RETENTION_DAYS": "60"}}},
            },
            "A": {"Type": "AWS::Events::Archive", "Properties": {"RetentionDays": 7}},
            "L": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 14}},
        }
    }
    report = price(measurement(usage=usage), template)
    assert report.retention == Retention(audit_days=60, pitr=True, archive_days=7, log_days=14)
    lines = {line.component: line for line in report.lines}
    # 2 KB kept 60 days: 2e-6 GB x 1.97 months x $0.25, per million events, a line for each purpose.
    stored = {line.detail: line.usd_per_million for line in report.lines if line.component == "DynamoDB storage"}
    assert stored == {
        "audit: message records: items and index entries, 60 days (GB-months)": pytest.approx(
            1.5e-6 * 60 / 30.42 * 0.25 * 1e6, abs=1e-3
        ),
        "watermarks: items and index entries, 60 days (GB-months)": pytest.approx(
            0.5e-6 * 60 / 30.42 * 0.25 * 1e6, abs=1e-3
        ),
    }
    assert lines["DynamoDB PITR"].usd_per_million == pytest.approx(2e-6 * 60 / 30.42 * 0.20 * 1e6, abs=1e-3)
    archived = [line for line in report.lines if line.component == "EventBridge archive"]
    assert [line.usd_per_million for line in archived] == [0.1, round(0.023 * 7 / 30.42, 4)]
    no_pitr = {**template["Resources"], "T": {"Type": "AWS::DynamoDB::Table", "Properties": {}}}
    assert "DynamoDB PITR" not in {
        line.component for line in price(measurement(usage=usage), {"Resources": no_pitr}).lines
    }


def connector_function(mode: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {"Handler": "connectors.optimove.handler.lambda_handler", "TracingConfig": {"Mode": mode}},
    }


def test_xray_traces_nearly_every_invocation_at_a_low_rate_and_five_percent_at_volume() -> None:
    assert traced_share(0.4) == 1.0
    assert traced_share(1.0) == 1.0
    assert traced_share(21.0) == pytest.approx((1 + 0.05 * 20) / 21)
    assert traced_share(10_000) == pytest.approx(0.05, abs=0.001)
    active = {"Resources": {"H": connector_function("Active")}}
    paced = price(measurement(per_second=0.5), active)  # 5 connector invocations in 10 s: each traced
    fast = price(measurement(), active)
    xray = {r.per_second: next(line for line in r.lines if line.component == "X-Ray") for r in (paced, fast)}
    # The API's 4 by the stack's sampling rule (5%, no reservoir) at any rate; the connector's by Lambda's.
    assert xray[0.5].per_event == pytest.approx((4 * 0.05 + 5) / 1000)
    assert xray[None].per_event == pytest.approx((4 * 0.05 + 5 * 0.05) / 1000)


@pytest.mark.parametrize("template", [None, {"Resources": {"H": connector_function("PassThrough")}}])
def test_a_queue_fed_function_passing_tracing_through_is_traced_at_most_as_often_as_the_api(
    template: dict[str, Any] | None,
) -> None:
    # The default (queueTracing): a paced run's connector invocations are no longer each traced.
    [xray] = [line for line in price(measurement(per_second=0.5), template).lines if line.component == "X-Ray"]
    assert xray.per_event == pytest.approx((4 * 0.05 + 5 * 0.05) / 1000)
    assert "PassThrough at most as often" in xray.detail


def test_a_month_adds_the_fixed_cost_and_spreads_it_over_the_months_events() -> None:
    report = price(measurement(), monthly_events=1_000_000)
    report.monthly = [MonthlyLine("CloudWatch", "dashboard", 1, 3.0)]
    assert report.month_total == round(report.total + 3.0, 2)
    assert report.all_in_per_million == round(report.total + 3.0, 2)
    document = report.to_json()
    assert document["monthly"] == [{"component": "CloudWatch", "detail": "dashboard", "count": 1, "usd_per_month": 3.0}]
    assert document["fixedUsdPerMonth"] == 3.0
    assert all(line["service"] and line["what"] for line in document["free_tiers"])


def test_volumes_and_the_default_mix_read_as_the_readme_says() -> None:
    assert [monthly_volume(v) for v in ("1M", "10m", "100M", "250k", "5000")] == [
        1_000_000,
        10_000_000,
        100_000_000,
        250_000,
        5000,
    ]
    with pytest.raises(typer.BadParameter):
        monthly_volume("lots")
    cycle = mix_sequence(DEFAULT_MIX)
    assert len(cycle) == 20
    assert cycle.count("MEMBER_PROFILE_UPDATE") == 12
    assert cycle[:5] == ["MEMBER_REGISTRATION", "MEMBER_PROFILE_UPDATE", "OPT_IN_EMAIL", "REDEMPTION", "MEMBER_TIER"]


def test_each_member_of_a_cost_run_has_an_address_of_its_own() -> None:
    # One shared address made every Marketo upsert of a run wait for the one before (its lead claim), so
    # that the run priced retries, PENDING records and their index entries no program's traffic makes.
    first, second = (member_event("REDEMPTION", f"cost-{n}", f"COST-000000{n}") for n in (1, 2))
    assert first["data"]["email"] == "cost-0000001@example.com"
    assert second["data"]["email"] == "cost-0000002@example.com"
    assert (first["eventId"], first["memberId"]) == ("cost-1", "COST-0000001")
    registration = member_event("MEMBER_REGISTRATION", "cost-3", "COST-0000003")
    assert registration["data"]["email"] == "cost-0000003@example.com"
    assert "email" not in member_event("MEMBER_TIER", "cost-4", "COST-0000004")["data"]
    assert member_event("MEMBER_REGISTRATION", "x", "COST-9")["data"]["firstName"] == "Ada"
    assert example_event("REDEMPTION")["data"]["email"] == "ada@example.com"  # the example itself unchanged


def test_the_calls_a_handler_sends_to_its_provider_are_counted_by_connector() -> None:
    import httpx

    meter, invocations = AwsMeter(), Invocations()
    provider = httpx.MockTransport(lambda request: httpx.Response(200, json={"success": True}))

    def handler(event: Any, context: Any) -> None:
        with httpx.Client(transport=provider) as client:
            for _ in range(event["calls"]):
                client.post(event["url"], json={})

    with meter.installed():
        marketo = invocations.wrap("connectors.marketo.handler.lambda_handler", handler)
        marketo({"calls": 2, "url": "https://000-AAA-000.mktorest.com/rest/v1/leads.json"}, None)
        marketo({"calls": 1, "url": "http://127.0.0.1:8000/_sim/marketo/rest/v1/campaigns/3001/trigger.json"}, None)
        optimove = invocations.wrap("connectors.optimove.handler.lambda_handler", handler)
        optimove(
            {"calls": 1, "url": "http://127.0.0.1:8000/_sim/optimove/current/customers/UpdateCustomerAttributes"}, None
        )
        with httpx.Client(transport=provider) as outside:  # the stack's own requests (a sender's): not a provider's
            outside.get("https://example.com/")
    usage = meter.reset()
    assert usage.provider_calls == Counter({"marketo": 3, "optimove": 1})
    # By endpoint: past a simulator's prefix, a number segment (a campaign id) as {n}.
    assert usage.provider_endpoints == Counter(
        {
            ("marketo", "/rest/v1/leads.json"): 2,
            ("marketo", "/rest/v1/campaigns/{n}/trigger.json"): 1,
            ("optimove", "/current/customers/UpdateCustomerAttributes"): 1,
        }
    )


def test_a_months_provider_calls_are_set_against_the_providers_limits() -> None:
    usage = measurement().usage
    usage.provider_calls.update({"marketo": 250, "optimove": 100})  # for 1,000 events
    usage.provider_endpoints.update({("optimove", "/UpdateCustomerAttributes"): 60, ("optimove", "/mail"): 40})
    limits = {"marketo": (150, 25_000), "optimove": (300, None)}
    report = price(measurement(usage=usage), monthly_events=10_000_000, provider_limits=limits)
    marketo = report.provider_calls["marketo"]
    # 0.25 an event, 10 M events in a month of 30.42 days: 82,183 a day, 57 a minute on average.
    assert (marketo.per_event, marketo.per_day, marketo.per_minute) == (0.25, 82_183, 57.1)
    assert (marketo.limit_per_day, marketo.limit_per_minute, marketo.over_daily_quota) == (25_000, 150, True)
    optimove = report.provider_calls["optimove"]
    assert (optimove.per_day, optimove.limit_per_day, optimove.over_daily_quota) == (32_873, None, False)
    document = report.to_json()["provider_calls"]
    assert document["marketo"]["overDailyQuota"] is True
    assert document["optimove"] == {
        "per_event": 0.1,
        "per_day": 32_873,
        "per_minute": 22.8,
        "limit_per_day": None,
        "limit_per_minute": 300,
        "endpoints": {"/UpdateCustomerAttributes": 0.06, "/mail": 0.04},
        "overDailyQuota": False,
    }
    at_pace = price(measurement(usage=usage), provider_limits=limits).provider_calls["marketo"]  # no month
    assert (at_pace.per_event, at_pace.per_day, at_pace.over_daily_quota) == (0.25, None, False)


@pytest.mark.parametrize(
    ("pk", "sk", "what"),
    [
        ("MSG#m1", "MESSAGE", "audit: message records"),
        ("MSG#m1", "DELIVERY#optimove", "audit: delivery records"),
        ("MSG#m1", "OP#marketo#lead", "operations ledger"),
        ("LIMIT#marketo:rest", "WINDOW", "rate limiter and concurrency gate"),
        ("CALL#optimove#c1", "CALL", "call log"),
        ("COUNTS#optimove#2026-12-08", "COUNTS", "daily counts"),
    ],
)
def test_each_item_is_metered_under_what_it_is_for(pk: str, sk: str, what: str) -> None:
    assert purpose("audit", {"pk": {"S": pk}, "sk": {"S": sk}}) == what
