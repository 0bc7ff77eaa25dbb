"""The Optimove connector's throughput (issue: the Optimove connector).

As the issue measures it: the connector handler fed SQS batch events of 1,000 messages, as the
event source mapping would, with the audit table in moto (in process) and the Optimove simulator
enforcing 50 requests per 10 s in real time: 20,000 MEMBER_PROFILE_UPDATE events for 20,000 members.

Two more figures explain that one:
- the same batches through the same connector runtime with the audit trail in memory: what the
  connector itself manages once DynamoDB is not the bottleneck;
- moto's own ceiling: each delivered event costs two item writes (its delivery record and its
  member's watermark), and in-process moto writes a few thousand items a second at most.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import resource
import time
from pathlib import Path
from typing import Any

import httpx

EVENTS = 20_000
BATCH = 1_000


def sqs_batch(start: int, count: int) -> dict[str, Any]:
    from dig_contracts.bus import BusDetail, eventbridge_event, message_id_for
    from dig_contracts.examples import example_event

    records = []
    for i in range(start, start + count):
        event = example_event("MEMBER_PROFILE_UPDATE", eventId=f"bench-{i}", memberId=f"M-{i:06d}")
        event["data"] = {"profile": {"firstName": f"Name{i}", "city": "Ottawa"}}
        detail = BusDetail(messageId=message_id_for(event["eventId"]), event=event)
        records.append(
            {
                "messageId": f"sqs-{i}",
                "receiptHandle": f"rh-{i}",
                "body": json.dumps(eventbridge_event(detail, region="us-east-1")),
                "attributes": {"ApproximateReceiveCount": "1"},
                "eventSource": "aws:sqs",
            }
        )
    return {"Records": records}


def simulator_client() -> tuple[Any, httpx.Client]:
    from connectors.optimove.local.simulator import OptimoveSimulator

    simulator = OptimoveSimulator(api_key="bench-key", realtime_token="bench-token")
    simulator.seconds = 0.0  # type: ignore[attr-defined]  # the simulator's own time, not the connector's

    def optimove(request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        answer = simulator.handle(request.method, request.url.path, dict(request.headers), request.content)
        body = b"" if answer.body is None else json.dumps(answer.body).encode()
        simulator.seconds += time.perf_counter() - started  # type: ignore[attr-defined]
        return httpx.Response(answer.status, content=body, headers={"content-type": "application/json"})

    return simulator, httpx.Client(transport=httpx.MockTransport(optimove))


def summary(simulator: Any, events: int, elapsed: float, delivered: int, retried: int) -> dict[str, Any]:
    return {
        "events": events,
        "seconds": round(elapsed, 2),
        "events_per_second": round(events / elapsed),
        "optimove_calls": sum(1 for r in simulator.requests if r["call"] == "UpdateCustomerAttributes"),
        "http_429": sum(1 for r in simulator.requests if r["status"] == 429),
        "delivered": delivered,
        "retried_records": retried,
    }


def audit_in_moto(batches: list[dict[str, Any]], events: int) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
        AUDIT_TABLE_NAME="bench-audit",
        CONFIG_TABLE_NAME="bench-config",
        OPTIMOVE_API_BASE_URL="https://optimove.bench/api",
        OPTIMOVE_REALTIME_BASE_URL="https://optimove.bench/realtime",
        OPTIMOVE_SECRET_ID="dig/optimove",
        MAX_RECEIVE_COUNT="5",
    )
    from aws_lambda_powertools import Metrics

    from benchmarks.lambda_context import BenchContext
    from connectors.optimove import handler
    from db.audit import DynamoAuditStore
    from db.config_store import DynamoConfigStore
    from db.schema import AUDIT_TABLE, CONFIG_TABLE
    from dig_connector_kit.lambda_entry import built
    from dig_contracts.bus import message_id_for
    from dig_local.stack import SAMPLE_CONFIGS

    simulator, http = simulator_client()
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(**AUDIT_TABLE.create_table_request("bench-audit"))
        dynamodb.create_table(**CONFIG_TABLE.create_table_request("bench-config"))
        boto3.client("secretsmanager").create_secret(
            Name="dig/optimove", SecretString=json.dumps({"apiKey": "bench-key", "realtimeToken": "bench-token"})
        )
        DynamoConfigStore(dynamodb, "bench-config").push(
            "optimove", json.loads(SAMPLE_CONFIGS["optimove"].read_text()), "bench"
        )
        _, runtime = built("optimove", fresh=True)
        runtime.connector._transport._http = http  # type: ignore[attr-defined]

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        retried = 0
        for event in batches:
            answer = handler.lambda_handler(event, BenchContext(timeout_seconds=120))
            Metrics().clear_metrics()  # disabled metrics still accumulate in Powertools 3.37
            retried += len(answer["batchItemFailures"])
        elapsed = time.perf_counter() - started
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

        ids = [message_id_for(f"bench-{i}") for i in range(events)]
        audit = DynamoAuditStore(dynamodb, "bench-audit")
        delivered = sum(1 for d in audit.get_deliveries("optimove", ids).values() if d.status.value == "DELIVERED")
        ceiling = moto_write_ceiling(dynamodb)
    return {
        **summary(simulator, events, elapsed, delivered, retried),
        # Peak resident set of the whole process (moto's tables included), and its growth during the run.
        "peak_rss_mb": round(rss_after / 1024, 1),
        "rss_growth_mb": round((rss_after - rss_before) / 1024, 1),
        "moto_ceiling": ceiling,
    }


def moto_write_ceiling(dynamodb: Any, items: int = 5_000) -> dict[str, Any]:
    """Items per second moto takes through BatchWriteItem, for items shaped like the connector's."""
    from db.audit import DynamoAuditStore, delivery_to_item
    from db.records import DeliveryRecord, DeliveryStatus, iso, utc_now

    store = DynamoAuditStore(dynamodb, "bench-audit", parallelism=1)
    now = iso(utc_now())
    deliveries = [
        delivery_to_item(
            DeliveryRecord(
                messageId=f"ceiling-{i}",
                connector="optimove",
                status=DeliveryStatus.DELIVERED,
                eventType="MEMBER_PROFILE_UPDATE",
                memberId=f"C-{i:06d}",
                updatedAt=now,
            ),
            0,
        )
        for i in range(items)
    ]
    marks = '{"CITY":["2026-11-21T17:00:00.000000Z","m"],"FIRST_NAME":["2026-11-21T17:00:00.000000Z","m"]}'
    watermarks = [
        {"pk": {"S": f"STATE#optimove#C-{i:06d}"}, "sk": {"S": "ATTRIBUTES"}, "w": {"S": marks}} for i in range(items)
    ]
    rates = []
    for batch in (deliveries, watermarks):
        started = time.perf_counter()
        store.batch_put(batch)
        rates.append(items / (time.perf_counter() - started))
    return {
        "delivery_items_per_second": round(rates[0]),
        "watermark_items_per_second": round(rates[1]),
        "events_per_second_at_most": round(1 / (1 / rates[0] + 1 / rates[1])),
    }


def audit_in_memory(batches: list[dict[str, Any]], events: int, *, profile: bool = False) -> dict[str, Any]:
    """The connector's own pace; ``profile``: a second run, profiled, for where its time goes."""
    from connectors.optimove.client import Credentials, authorize, read_body
    from connectors.optimove.config import parse_config
    from connectors.optimove.delivery import Endpoints, OptimoveConnector
    from dig_connector_kit.http import Transport
    from dig_connector_kit.model import Deadline
    from dig_connector_kit.ratelimit import InMemoryLimiter
    from dig_connector_kit.runtime import ConnectorRuntime
    from dig_connector_kit.testing import FakeCallLog, FakeOperationLedger, FakeWatermarks
    from dig_connector_kit.testing import InMemoryAuditStore as FakeAuditStore
    from dig_local.stack import SAMPLE_CONFIGS

    simulator, http = simulator_client()
    config = parse_config(json.loads(SAMPLE_CONFIGS["optimove"].read_text()))

    def credentials() -> Credentials:
        return Credentials(api_key="bench-key", realtime_token="bench-token")

    audit = FakeAuditStore()
    connector = OptimoveConnector(
        lambda: config,
        Transport(http, authorize(credentials), InMemoryLimiter(), read_body=read_body),
        FakeWatermarks(),
        Endpoints(api_base="https://optimove.bench/api", realtime_base="https://optimove.bench/realtime"),
        credentials,
        operations=FakeOperationLedger(),
        call_log=FakeCallLog(),
    )
    runtime = ConnectorRuntime(connector, audit, max_receive_count=5)
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    retried = 0
    if profiler is not None:
        profiler.enable()
    for event in batches:
        retried += len(runtime.handle_sqs_batch(event, Deadline(110)).failures)
    if profiler is not None:
        profiler.disable()
    elapsed = time.perf_counter() - started
    delivered = sum(1 for d in audit.deliveries.values() if d.status.value == "DELIVERED")
    figures = summary(simulator, events, elapsed, delivered, retried)
    if profiler is not None:
        return {"profile_top_functions_own_seconds": top_functions(profiler)}
    own = elapsed - simulator.seconds
    figures["simulator_seconds"] = round(simulator.seconds, 2)
    figures["connector_events_per_second"] = round(events / own)  # without the simulator's answers
    return figures


def top_functions(profiler: cProfile.Profile, count: int = 12) -> list[str]:
    """Where the time goes: the functions with the most time of their own."""
    stats = pstats.Stats(profiler)
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:count]  # type: ignore[attr-defined]
    return [f"{seconds:.2f} s {Path(file).name}:{line} {name}" for (file, line, name), (_, _, seconds, *_) in rows]


def run(events: int = EVENTS, batch: int = BATCH) -> dict[str, Any]:
    batches = [sqs_batch(start, min(batch, events - start)) for start in range(0, events, batch)]
    return {
        "audit_in_moto": audit_in_moto(batches, events),
        "audit_in_memory": {
            **audit_in_memory(batches, events),
            **audit_in_memory(batches, events, profile=True),
        },
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
