"""The DIG API's figures (issue: DIG API).

Cold start: importing each handler module against `import boto3`, side by side in fresh processes,
median of 9, with the environment a deployed function has (tracing on).
Warm path: time per event for a 1 KB event through the handler, with the bus and table replaced by
in-memory fakes, against a baseline that only parses the JSON and calls the fake PutEvents.
Batch: PutEvents calls for a 500-event batch.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
HANDLERS = ("dig_api.handler", "dig_api.authorizer", "connectors.optimove.handler")
RUNS = 9


def import_milliseconds(module: str, runs: int = RUNS) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERTOOLS_")}
    env["POWERTOOLS_SERVICE_NAME"] = "bench"
    times = []
    for _ in range(runs):
        code = f"import time; t = time.perf_counter(); import {module}; print((time.perf_counter() - t) * 1000)"
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, check=True
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def cold_start() -> dict[str, Any]:
    results: dict[str, Any] = {}
    for module in HANDLERS:
        # Side by side: boto3 measured right before each handler, on the same machine state.
        boto3_ms = import_milliseconds("boto3")
        handler_ms = import_milliseconds(module)
        results[module] = {
            "import_ms": round(handler_ms),
            "boto3_ms": round(boto3_ms),
            "ratio": round(handler_ms / boto3_ms, 2),
        }
    return results


def one_kb_event() -> dict[str, Any]:
    from dig_contracts.examples import example_event

    event = example_event("MEMBER_PROFILE_UPDATE")
    event["data"]["profile"]["bio"] = ""
    size = len(json.dumps(event))
    event["data"]["profile"]["bio"] = "x" * (1024 - size - len(b', "bio": ""') + 9)
    return event


def warm_path(events: int = 3000) -> dict[str, Any]:
    os.environ.update(
        POWERTOOLS_TRACE_DISABLED="true", POWERTOOLS_METRICS_DISABLED="true", POWERTOOLS_LOG_LEVEL="WARNING"
    )
    from tests.apigw import FakeLambdaContext, rest_event
    from tests.fakes import FakeAuditStore, FakePublisher

    from dig_api import handler
    from dig_api.dependencies import providers
    from dig_api.ingest import IngestService

    template = one_kb_event()
    bodies = [json.dumps(dict(template, eventId=f"warm-{i}")) for i in range(events)]
    requests = [rest_event("POST", "/v1/events", body, raw=True) for body in bodies]
    context = FakeLambdaContext()

    audit, bus = FakeAuditStore(), FakePublisher()
    service = IngestService(audit, bus)
    providers.ingest = lambda: service
    for request in requests[:50]:  # warm: the first requests build pydantic validators and routes
        handler.lambda_handler(dict(request, body=request["body"].replace("warm-", "pre-")), context)
    started = time.perf_counter()
    for request in requests:
        answer = handler.lambda_handler(request, context)
        assert answer["statusCode"] == 202, answer
    handler_us = (time.perf_counter() - started) / events * 1e6

    from dig_contracts.bus import BusDetail

    baseline_bus = FakePublisher()
    started = time.perf_counter()
    for body in bodies:
        document = json.loads(body)
        baseline_bus.publish([BusDetail(messageId=document["eventId"], event=document)])
    baseline_us = (time.perf_counter() - started) / events * 1e6
    providers.reset()
    return {
        "event_bytes": len(bodies[0]),
        "handler_us_per_event": round(handler_us),
        "baseline_us_per_event": round(baseline_us),
        "ratio": round(handler_us / baseline_us, 2),
    }


def batch_put_events_calls() -> dict[str, Any]:
    import boto3
    from botocore.stub import Stubber

    from dig_api.publisher import EventBridgePublisher
    from dig_contracts.bus import BusDetail
    from dig_contracts.examples import example_event

    client = boto3.client("events", region_name="us-east-1")
    publisher = EventBridgePublisher(client, "bench")
    stub = Stubber(client)
    for _ in range(50):
        stub.add_response("put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "x"}] * 10})
    details = [BusDetail(messageId=f"m-{i}", event=example_event("MEMBER_TIER", eventId=f"b-{i}")) for i in range(500)]
    with stub:
        outcomes = publisher.publish(details)
    return {"events": 500, "put_events_calls": publisher.calls_made, "published": sum(o.ok for o in outcomes)}


def run() -> dict[str, Any]:
    return {"cold_start": cold_start(), "warm_path": warm_path(), "batch": batch_put_events_calls()}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
