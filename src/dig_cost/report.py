"""A measurement priced: dollars per million events, by component and purpose, and the fixed monthly
costs of the stack's template."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dig_contracts import functions
from dig_cost.prices import (
    AS_OF,
    LAMBDA_PLATFORM_LOG_BYTES,
    MONTHLY,
    PER_UNIT,
    REGION,
    SECONDS_PER_MONTH,
    XRAY_SAMPLED,
)
from dig_cost.run import Measurement

MILLION = 1_000_000
# An SQS event source mapping long-polls an idle queue: modelled as 5 pollers, one 20-second receive each.
IDLE_RECEIVES_PER_MONTH = 5 * 3 * 60 * 730


@dataclass(frozen=True)
class Line:
    component: str
    detail: str
    per_event: float  # billed units per event
    usd_per_million: float


@dataclass
class Report:
    route: str
    event_type: str
    events: int
    accepted: int
    region: str = REGION
    prices_as_of: str = AS_OF
    lines: list[Line] = field(default_factory=list)
    monthly: list[Line] = field(default_factory=list)
    requests_per_event: dict[str, float] = field(default_factory=dict)
    # handler -> the "service:Operation" requests it made (API names, as botocore calls them)
    calls_by_function: dict[str, list[str]] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return round(sum(line.usd_per_million for line in self.lines), 4)

    @property
    def audit_share(self) -> float:
        audit = sum(line.usd_per_million for line in self.lines if line.detail.startswith("audit:"))
        return round(audit / self.total, 3) if self.total else 0.0

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["totalUsdPerMillion"] = self.total
        document["auditTrailShare"] = self.audit_share
        document["monthlyUsd"] = round(sum(line.usd_per_million for line in self.monthly), 2)
        return document


def price(measurement: Measurement, template: dict[str, Any] | None = None) -> Report:
    events = max(measurement.accepted, 1)
    report = Report(measurement.route.value, measurement.event_type, measurement.events, measurement.accepted)

    def add(component: str, detail: str, units: float, key: str) -> None:
        per_event = units / events
        usd = per_event * MILLION * PER_UNIT[key].usd
        report.lines.append(Line(component, detail, float(f"{per_event:.4g}"), round(usd, 4)))

    usage = measurement.usage
    for purpose, units in sorted(usage.write_units_by_purpose.items(), key=lambda kv: -kv[1]):
        add("DynamoDB writes", purpose, units, "dynamodb.write_unit")
    for purpose, units in sorted(usage.read_units_by_purpose.items(), key=lambda kv: -kv[1]):
        add("DynamoDB reads", purpose, units, "dynamodb.read_unit")
    add("EventBridge", "PutEvents entries (64 KB chunks)", usage.units["eventbridge.event"], "eventbridge.event")
    delivered = usage.bus_deliveries
    add("SQS", "rules' deliveries to connector queues", delivered, "sqs.request")
    add(
        "SQS",
        "receives, deletes, sends (event source mappings, handlers)",
        usage.units["sqs.request"] - delivered,
        "sqs.request",
    )
    for handler, count in sorted(measurement.invocations.items()):
        # The module (dig_api.handler, connectors.optimove.handler), or with the function when it is not
        # the module's lambda_handler (dig_api.files.handler.batch_handler).
        module, _, function = handler.rpartition(".")
        name = module if function == "lambda_handler" else handler
        if handler == functions.AUTHORIZER.handler:
            continue  # API Gateway caches its answer for 5 minutes: a fixed cost, not one per event
        add("Lambda", f"{name}: invocations", count, "lambda.request")
        gb_seconds = measurement.seconds.get(handler, 0.0) * measurement.memory_mb.get(handler, 1024) / 1024
        add("Lambda", f"{name}: GB-seconds at {measurement.memory_mb.get(handler)} MB", gb_seconds, "lambda.gb_second")
    # Every invocation of the API function is a request through API Gateway and the WAF: ES Loyalty's
    # posts, and the providers' result callbacks.
    api_requests = measurement.invocations.get(functions.API.handler, 0)
    add("API Gateway", "REST requests (posts, file status, provider callbacks)", api_requests, "apigateway.request")
    add("WAF", "requests through the web ACL", api_requests, "waf.request")
    invocations = sum(c for h, c in measurement.invocations.items() if h != functions.AUTHORIZER.handler)
    log_gb = (measurement.log_bytes + invocations * LAMBDA_PLATFORM_LOG_BYTES) / 1e9
    add("CloudWatch Logs", "handlers' log lines and Lambda's START/END/REPORT", log_gb, "logs.gb")
    traced = sum(c for h, c in measurement.invocations.items() if h != functions.AUTHORIZER.handler)
    add("X-Ray", f"traces, {XRAY_SAMPLED:.0%} sampled", traced * XRAY_SAMPLED, "xray.trace")
    # Step Functions is not metered (the local stack's file driver stands in for it): modelled from the
    # definition (infra/files.py): per file Validate, Proceed?, the map and Finish; per child one task.
    files, batches = (
        measurement.invocations.get(f.handler, 0) for f in (functions.FILE_VALIDATE, functions.FILE_BATCH)
    )
    add(
        "Step Functions",
        "state transitions (modelled: 4 a file, 1 a batch)",
        4 * files + batches,
        "stepfunctions.transition",
    )
    add("Secrets Manager", "GetSecretValue", usage.units["secretsmanager.call"], "secretsmanager.call")
    add("S3", "PUT and LIST requests", usage.units["s3.put"], "s3.put")
    add("S3", "GET requests", usage.units["s3.get"], "s3.get")
    report.lines = [line for line in report.lines if line.per_event > 0]
    report.requests_per_event = {
        f"{service}.{operation}": round(count / events, 4)
        for (service, operation), count in sorted(usage.calls.items(), key=lambda kv: -kv[1])
    }
    report.calls_by_function = measurement.calls_by_function
    if template is not None:
        report.monthly = monthly_costs(template)
    return report


def monthly_costs(template: dict[str, Any]) -> list[Line]:
    """What the stack costs a month whatever the traffic, from its synthesized template."""
    resources = template.get("Resources", {})
    kinds = Counter(r.get("Type") for r in resources.values())
    rules = sum(
        len(r.get("Properties", {}).get("Rules", []))
        for r in resources.values()
        if r.get("Type") == "AWS::WAFv2::WebACL"
    )
    lines = [
        Line("fixed", kind, float(count), round(count * MONTHLY[kind].usd, 2))
        for kind, count in sorted(kinds.items())
        if kind in MONTHLY
    ]
    if rules:
        key = "AWS::WAFv2::WebACL rule"
        lines.append(Line("fixed", key, float(rules), round(rules * MONTHLY[key].usd, 2)))
    snapshots_gb = sum(
        r["Properties"].get("MemorySize", 128) / 1024
        for r in resources.values()
        if r.get("Type") == "AWS::Lambda::Function" and r.get("Properties", {}).get("SnapStart")
    )
    if snapshots_gb:  # one live version each (old ones are deleted when replaced: infra/function.py)
        gb_seconds = snapshots_gb * SECONDS_PER_MONTH
        lines.append(
            Line(
                "fixed",
                f"SnapStart snapshots cached ({snapshots_gb:g} GB of live versions; restores extra)",
                round(gb_seconds),
                round(gb_seconds * PER_UNIT["lambda.snapstart_cache_gb_second"].usd, 2),
            )
        )
    mappings = kinds.get("AWS::Lambda::EventSourceMapping", 0)
    if mappings:
        receives = mappings * IDLE_RECEIVES_PER_MONTH
        lines.append(
            Line(
                "fixed",
                "idle event source mappings' long polls (modelled)",
                float(receives),
                round(receives * PER_UNIT["sqs.request"].usd, 2),
            )
        )
    return lines


def load_template(path: Path | None) -> dict[str, Any] | None:
    """The stack's synthesized template: ``path``, or the one `make synth` left in cdk.out/."""
    if path is None:
        found = sorted(Path("cdk.out").glob("*.template.json"))
        if not found:
            return None
        path = found[0]
    document: dict[str, Any] = json.loads(path.read_text())
    return document
