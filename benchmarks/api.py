"""The request path's figures, as users feel them (issues: DIG API, cost and latency).

Import time as deployed: each function's handler module and `import boto3`, laid out as Lambda lays
them out (dependencies as the layer installs them, code as the function asset ships it, nothing
writable), with the bytecode the build compiles and without it; median of 9 fresh processes; and,
with SnapStart, what a restored environment still does (its restore hooks and rebuilding its clients)
against the init a snapshot spares it.
Warm path: the API's own time per event, one 1 KB event a request and 500 a request, with the table
and the bus in memory. Single-event path: the AWS calls POST /v1/events makes, in order (its floor).
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
from typing import Any

REPO = Path(__file__).resolve().parents[1]
HANDLERS = (
    "dig_api.handler",
    "dig_api.authorizer",
    "dig_api.files.handler",
    "connectors.optimove.handler",
    "connectors.marketo.handler",
)
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


def lambda_layout_milliseconds(module: str, task: Path, layer: Path, runs: int = 5) -> float:
    """Import time with only the function's code and the layer on the path, as in Lambda."""
    env = {**deployed_env(), "PYTHONPATH": f"{task}{os.pathsep}{layer}", "PYTHONDONTWRITEBYTECODE": "1"}
    return import_milliseconds(module, runs, env=env, flags=("-S",))  # -S: no site-packages, only these


def import_as_deployed() -> dict[str, Any]:
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
        results: dict[str, Any] = {}
        for module in HANDLERS:
            # Side by side: boto3 right before each handler, on the same machine state and layout.
            boto3_ms = lambda_layout_milliseconds("boto3", task, layer)
            handler_ms = lambda_layout_milliseconds(module, task, layer)
            results[module] = {
                "with_bytecode_ms": round(handler_ms),
                "boto3_with_bytecode_ms": round(boto3_ms),
                "ratio_to_boto3": round(handler_ms / boto3_ms, 2),
                "without_bytecode_ms": round(without[module]),
                "of_which_ms": import_breakdown(module),
            }
    return results


SNAPSTART_PROBE = """
import os, time
os.environ.update(AUDIT_TABLE_NAME="audit", EVENT_BUS_NAME="bus", FILES_BUCKET_NAME="files")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
t = time.perf_counter()
from dig_api import dependencies, handler
from dig_contracts import snapstart
dependencies.warm()
init = time.perf_counter() - t
t = time.perf_counter()
for hook in snapstart.restore_hooks():
    hook()
dependencies.warm()  # what the first request after a restore builds again
print(init * 1000, (time.perf_counter() - t) * 1000)
"""


def snapstart_restore() -> dict[str, Any]:
    """The API's init (imports, clients), which a snapshot holds, against what a restored environment
    still does before its first answer: its restore hooks and its clients built again (from loaded
    service models). Lambda's own restore time comes on top and cannot be measured here."""
    inits, restores = [], []
    for _ in range(5):
        done = subprocess.run(
            [sys.executable, "-c", SNAPSTART_PROBE],
            capture_output=True,
            text=True,
            env=deployed_env(),
            cwd=REPO,
            check=True,
        )
        init_ms, restore_ms = map(float, done.stdout.split())
        inits.append(init_ms)
        restores.append(restore_ms)
    return {
        "api_init_ms_the_snapshot_holds": round(statistics.median(inits)),
        "api_after_restore_ms": round(statistics.median(restores)),
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
    providers.reset()
    return {"event_bytes": len(bodies[0]), "handler_us_per_event": round(handler_us)}


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
    from dig_contracts.publisher import EventBridgePublisher

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
        "import_as_deployed": import_as_deployed(),
        "snapstart": snapstart_restore(),
        "single_event_path": warm_path(),
        "batch_route": batch_route(),
        "single_path": single_path_calls(),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
