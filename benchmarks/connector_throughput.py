"""The Optimove connector handler fed SQS batch events of 1,000 messages, as the event source
mapping would, with the audit table in moto (in process) and the Optimove simulator enforcing
50 requests per 10 s in real time: 20,000 MEMBER_PROFILE_UPDATE events for 20,000 members."""

from __future__ import annotations

import json
import os
import resource
import time
from typing import Any

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


def run(events: int = EVENTS, batch: int = BATCH) -> dict[str, Any]:
    import boto3
    import httpx
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
    from connectors.optimove import handler
    from db.config_store import DynamoConfigStore
    from db.schema import AUDIT_TABLE, CONFIG_TABLE
    from dig_local.optimove_simulator import OptimoveSimulator
    from dig_local.stack import SAMPLE_CONFIGS

    simulator = OptimoveSimulator(api_key="bench-key", realtime_token="bench-token")

    def optimove(request: httpx.Request) -> httpx.Response:
        answer = simulator.handle(request.method, request.url.path, dict(request.headers), request.content)
        body = b"" if answer.body is None else json.dumps(answer.body).encode()
        return httpx.Response(answer.status, content=body, headers={"content-type": "application/json"})

    batches = [sqs_batch(start, min(batch, events - start)) for start in range(0, events, batch)]
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
        handler.runtime.cache_clear()
        runtime = handler.runtime()
        runtime.connector._transport._http = httpx.Client(transport=httpx.MockTransport(optimove))  # type: ignore[attr-defined]

        from benchmarks.lambda_context import BenchContext

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        retries = 0
        for event in batches:
            answer = handler.lambda_handler(event, BenchContext(timeout_seconds=120))
            retries += len(answer["batchItemFailures"])
        elapsed = time.perf_counter() - started
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

        from db.audit import DynamoAuditStore

        audit = DynamoAuditStore(dynamodb, "bench-audit")
        from dig_contracts.bus import message_id_for

        ids = [message_id_for(f"bench-{i}") for i in range(events)]
        delivered = sum(1 for d in audit.get_deliveries("optimove", ids).values() if d.status.value == "DELIVERED")
    calls = [r for r in simulator.requests if r["call"] == "UpdateCustomerAttributes"]
    return {
        "events": events,
        "seconds": round(elapsed, 2),
        "events_per_second": round(events / elapsed),
        "optimove_calls": len(calls),
        "http_429": sum(1 for r in simulator.requests if r["status"] == 429),
        "delivered": delivered,
        "retried_records": retries,
        # Peak resident set of the whole process (moto's tables included), and its growth during the run.
        "peak_rss_mb": round(rss_after / 1024, 1),
        "rss_growth_mb": round((rss_after - rss_before) / 1024, 1),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
