"""The DIG API's figures (issue: DIG API).

Cold start: importing each handler module against `import boto3`, side by side in fresh processes,
median of 9, with the environment a deployed function has (tracing on), and where the time goes.
Then the same imports laid out as Lambda lays them out (dependencies as the layer installs them,
code as the function asset ships it, nothing writable), without bytecode and with it: what the
build's bytecode step (infra/bundling.py) saves every cold start.
Warm path: time per event for a 1 KB event through the handler, with the bus and table replaced by
in-memory fakes, against a baseline that only parses the JSON and calls the fake PutEvents.
Batch: PutEvents calls for a 500-event batch.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body

from dig_contracts.events import LoyaltyEvent

REPO = Path(__file__).resolve().parents[1]
HANDLERS = ("dig_api.handler", "dig_api.authorizer", "connectors.optimove.handler")
RUNS = 9


def import_milliseconds(
    module: str, runs: int = RUNS, *, env: dict[str, str] | None = None, flags: tuple[str, ...] = ()
) -> float:
    """Median time to import ``module`` in fresh processes (``env``: a deployed function's by default)."""
    times = []
    for _ in range(runs):
        code = f"import time; t = time.perf_counter(); import {module}; print((time.perf_counter() - t) * 1000)"
        out = subprocess.run(
            [sys.executable, *flags, "-c", code],
            capture_output=True,
            text=True,
            env=env or deployed_env(),
            cwd=REPO,
            check=True,
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def deployed_env() -> dict[str, str]:
    """The environment of a deployed function, as far as imports care."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERTOOLS_")}
    env["POWERTOOLS_SERVICE_NAME"] = "bench"
    # Powertools' Tracer switches itself off outside Lambda, which it recognizes by this variable.
    env["LAMBDA_TASK_ROOT"] = str(REPO / "src")
    return env


# Where a handler's import time goes (cumulative, from python -X importtime).
BREAKDOWN = {
    "xray_sdk": "aws_xray_sdk.core",
    "botocore": "botocore.client",  # through the X-Ray patch when tracing; boto3 needs it all the same
    "powertools_openapi": "aws_lambda_powertools.event_handler.openapi.params",
    "powertools_event_handler": "aws_lambda_powertools.event_handler",
    "powertools_core": "aws_lambda_powertools",
    "pydantic": "pydantic",
    "httpx": "httpx",
    "babel": "babel",
}


def import_breakdown(module: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env=deployed_env(),
        cwd=REPO,
        check=True,
    )
    cumulative: dict[str, int] = {}
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            cumulative.setdefault(parts[2].strip(), int(parts[1]) // 1000)
    return {label: cumulative[name] for label, name in BREAKDOWN.items() if name in cumulative}


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
            "of_which_ms": import_breakdown(module),
        }
    return results


def lambda_layout_milliseconds(module: str, task: Path, layer: Path, runs: int = 5) -> float:
    """Import time with only the function's code and the layer on the path, as in Lambda."""
    env = {**deployed_env(), "PYTHONPATH": f"{task}{os.pathsep}{layer}", "PYTHONDONTWRITEBYTECODE": "1"}
    return import_milliseconds(module, runs, env=env, flags=("-S",))  # -S: no site-packages, only these


def cold_start_as_deployed() -> dict[str, Any]:
    from infra import bundling

    with tempfile.TemporaryDirectory() as scratch:
        layer, task = Path(scratch) / "opt" / "python", Path(scratch) / "var" / "task"
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile"]
        subprocess.run(
            [*pip, "--target", str(layer), "-r", str(bundling.LOCK)],
            check=True,
            capture_output=True,
        )
        for package in (*bundling.CORE_PACKAGES, "dig_api", "connectors"):
            shutil.copytree(REPO / "src" / package, task / package, ignore=shutil.ignore_patterns("__pycache__"))
        without = {module: lambda_layout_milliseconds(module, task, layer) for module in HANDLERS}
        bundling.compile_bytecode(layer, bundling.LAYER_ROOT, sys.executable)
        bundling.compile_bytecode(task, bundling.FUNCTION_ROOT, sys.executable)
        with_bytecode = {module: lambda_layout_milliseconds(module, task, layer) for module in HANDLERS}
    return {
        module: {"without_bytecode_ms": round(without[module]), "with_bytecode_ms": round(with_bytecode[module])}
        for module in HANDLERS
    }


def one_kb_event() -> dict[str, Any]:
    from dig_contracts.examples import example_event

    event = example_event("MEMBER_PROFILE_UPDATE")
    event["data"]["profile"]["bio"] = ""
    size = len(json.dumps(event))
    event["data"]["profile"]["bio"] = "x" * (1024 - size - len(b', "bio": ""') + 9)
    return event


def warm_path(events: int = 3000) -> dict[str, Any]:
    warnings.filterwarnings("ignore", "No application metrics to publish")
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
    with contextlib.redirect_stdout(io.StringIO()):  # disabled metrics still print (Powertools 3.37)
        started = time.perf_counter()
        for request in requests:
            answer = handler.lambda_handler(request, context)
            assert answer["statusCode"] == 202, answer
        handler_us = (time.perf_counter() - started) / events * 1e6
        floor_us = framework_floor_us(requests, context)

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
        "framework_floor_us_per_event": round(floor_us),
    }


def framework_floor_us(requests: list[dict[str, Any]], context: Any) -> float:
    """A bare Powertools handler that validates the same event against the same model and puts it on
    the same fake bus, with the same decorators: what the framework costs before DIG does anything."""
    from aws_lambda_powertools import Logger, Metrics, Tracer
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver
    from tests.fakes import FakePublisher

    from dig_contracts.bus import BusDetail

    logger, metrics, tracer = Logger(service="floor"), Metrics(namespace="floor"), Tracer(service="floor")
    app = APIGatewayRestResolver(enable_validation=True)
    bus = FakePublisher()

    @app.post("/v1/events")
    def post(event: Annotated[LoyaltyEvent, Body()]) -> tuple[dict[str, str], int]:
        bus.publish([BusDetail(messageId=event.eventId, event={"eventId": event.eventId})])
        metrics.add_metric(name="Accepted", unit="Count", value=1)
        return {"status": "accepted"}, 202

    @logger.inject_lambda_context
    @metrics.log_metrics
    @tracer.capture_lambda_handler(capture_response=False)
    def floor(event: dict[str, Any], lambda_context: Any) -> dict[str, Any]:
        return app.resolve(event, lambda_context)

    for request in requests[:50]:
        floor(request, context)
    started = time.perf_counter()
    for request in requests:
        answer = floor(request, context)
        assert answer["statusCode"] == 202, answer
    return (time.perf_counter() - started) / len(requests) * 1e6


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


def batch_route(events: int = 500, batches: int = 6) -> dict[str, Any]:
    """The API's own time per event through POST /v1/events/batch (500 events a request), with the
    table and the bus in memory: what a batch costs in Lambda beyond waiting for AWS."""
    warnings.filterwarnings("ignore", "No application metrics to publish")
    from tests.apigw import FakeLambdaContext, rest_event
    from tests.fakes import FakeAuditStore, FakePublisher

    from dig_api import handler
    from dig_api.dependencies import providers
    from dig_api.ingest import IngestService

    template = one_kb_event()
    requests = [
        rest_event("POST", "/v1/events/batch", {"events": [dict(template, eventId=f"b{b}-{i}") for i in range(events)]})
        for b in range(batches)
    ]
    service = IngestService(FakeAuditStore(), FakePublisher())
    providers.ingest = lambda: service
    context = FakeLambdaContext()
    with contextlib.redirect_stdout(io.StringIO()):
        handler.lambda_handler(requests[0], context)  # warm
        started = time.perf_counter()
        for request in requests[1:]:
            assert handler.lambda_handler(request, context)["statusCode"] == 200
        seconds = time.perf_counter() - started
    providers.reset()
    return {"events_per_request": events, "us_per_event": round(seconds / ((batches - 1) * events) * 1e6)}


def single_path_calls() -> dict[str, Any]:
    """The AWS calls POST /v1/events makes, in order (moto in process): one after another, they are
    the floor of the route's latency."""
    warnings.filterwarnings("ignore", "No application metrics to publish")
    import boto3
    from moto import mock_aws
    from tests.apigw import FakeLambdaContext, rest_event
    from tests.aws import AUDIT, create_tables

    from db.audit import DynamoAuditStore
    from dig_api import handler
    from dig_api.dependencies import providers
    from dig_api.ingest import IngestService
    from dig_api.publisher import EventBridgePublisher

    with mock_aws():
        create_tables()
        session = boto3.session.Session(region_name="us-east-1")
        calls: list[str] = []
        session.events.register(
            "before-call", lambda model, **_: calls.append(f"{model.service_model.service_name}.{model.name}")
        )
        session.client("events").create_event_bus(Name="bench")
        calls.clear()
        service = IngestService(
            DynamoAuditStore(session.client("dynamodb"), AUDIT), EventBridgePublisher(session.client("events"), "bench")
        )
        providers.ingest = lambda: service
        with contextlib.redirect_stdout(io.StringIO()):
            answer = handler.lambda_handler(rest_event("POST", "/v1/events", one_kb_event()), FakeLambdaContext())
        providers.reset()
    assert answer["statusCode"] == 202, answer
    return {"calls_in_order": calls, "sequential_calls": len(calls)}


def run() -> dict[str, Any]:
    return {
        "cold_start": cold_start(),
        "cold_start_as_deployed": cold_start_as_deployed(),
        "warm_path": warm_path(),
        "batch": batch_put_events_calls(),
        "batch_route": batch_route(),
        "single_path": single_path_calls(),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
