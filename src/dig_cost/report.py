"""A measurement priced: dollars per million events, by component and purpose, and the fixed monthly
costs of the stack's template."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dig_contracts import environment as env
from dig_contracts import functions
from dig_cost.latency import cpu_stretch
from dig_cost.prices import (
    ACCESS_LOG_BYTES,
    AS_OF,
    FREE_TIERS,
    LAMBDA_PLATFORM_LOG_BYTES,
    MONTHLY,
    PER_UNIT,
    REGION,
    SECONDS_PER_MONTH,
    SECONDS_PER_MONTH_EXACT,
    XRAY_RESERVOIR_PER_SECOND,
    XRAY_SAMPLED,
)
from dig_cost.run import Measurement

MILLION = 1_000_000
# An SQS event source mapping long-polls an idle queue: modelled as 5 pollers, one 20-second receive each.
IDLE_RECEIVES_PER_MONTH = 5 * 3 * 60 * 730


@dataclass(frozen=True)
class Line:
    """A cost that grows with the events: billed units per event, dollars per million events."""

    component: str
    detail: str
    per_event: float
    usd_per_million: float


@dataclass(frozen=True)
class MonthlyLine:
    """A cost of the stack whatever the traffic: how many of the thing, dollars a month."""

    component: str
    detail: str
    count: float
    usd_per_month: float


@dataclass(frozen=True)
class ProviderCalls:
    """A connector's calls to its provider: per event as measured, and what a month's volume makes of them
    a day and a minute (on average: a day's peaks go higher) beside the provider's limits (its manifest's)."""

    per_event: float
    per_day: float | None = None
    per_minute: float | None = None
    limit_per_day: int | None = None
    limit_per_minute: int | None = None
    # endpoint -> calls per event (meter.provider_endpoint): a provider's limits may cover only some of them
    # (Optimove's 50 per 10 s: its customer APIs; its mails have their own, its real-time events none).
    endpoints: dict[str, float] = field(default_factory=dict)

    @property
    def over_daily_quota(self) -> bool:
        return self.per_day is not None and self.limit_per_day is not None and self.per_day > self.limit_per_day


@dataclass(frozen=True)
class Retention:
    """What the deployment keeps, and so pays to store (from the template: defaults otherwise)."""

    audit_days: int = 30
    pitr: bool = True
    archive_days: int = 30
    log_days: int = 30


@dataclass
class Report:
    route: str
    event_type: str
    events: int
    accepted: int
    region: str = REGION
    prices_as_of: str = AS_OF
    # The arrival rate measured (events a second) and the month it stands for (None: as fast as taken).
    per_second: float | None = None
    monthly_events: int | None = None
    # Every connector lane's batching window when the run shortened it (None: each manifest's, as in AWS).
    batching_window_seconds: float | None = None
    retention: Retention = field(default_factory=Retention)
    lines: list[Line] = field(default_factory=list)
    monthly: list[MonthlyLine] = field(default_factory=list)
    # Never subtracted: what a small account's free tiers take off (prices.FREE_TIERS).
    free_tiers: list[dict[str, str]] = field(default_factory=lambda: [{"service": s, "what": w} for s, w in FREE_TIERS])
    requests_per_event: dict[str, float] = field(default_factory=dict)
    # handler -> the "service:Operation" requests it made (API names, as botocore calls them)
    calls_by_function: dict[str, list[str]] = field(default_factory=dict)
    # handler -> its invocations' seconds in all, by part (Invocations.breakdown), and "priced": what the
    # GB-seconds line bills (billed_seconds)
    lambda_seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    # connector -> its provider calls (ProviderCalls)
    provider_calls: dict[str, ProviderCalls] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return round(sum(line.usd_per_million for line in self.lines), 4)

    @property
    def audit_share(self) -> float:
        audit = sum(line.usd_per_million for line in self.lines if line.detail.startswith("audit:"))
        return round(audit / self.total, 3) if self.total else 0.0

    @property
    def fixed_per_month(self) -> float:
        return round(sum(line.usd_per_month for line in self.monthly), 2)

    @property
    def month_total(self) -> float | None:
        """At ``monthly_events``: the events' cost and the fixed cost together, dollars a month."""
        if self.monthly_events is None:
            return None
        return round(self.total * self.monthly_events / MILLION + self.fixed_per_month, 2)

    @property
    def all_in_per_million(self) -> float | None:
        """Dollars a million events with the fixed cost spread over the month's events."""
        if not self.monthly_events:
            return None
        return round(self.total + self.fixed_per_month * MILLION / self.monthly_events, 2)

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["totalUsdPerMillion"] = self.total
        document["auditTrailShare"] = self.audit_share
        document["fixedUsdPerMonth"] = self.fixed_per_month
        document["monthTotalUsd"] = self.month_total
        document["allInUsdPerMillion"] = self.all_in_per_million
        for name, calls in self.provider_calls.items():
            document["provider_calls"][name]["overDailyQuota"] = calls.over_daily_quota
        return document


def traced_share(invocations_per_second: float) -> float:
    """The share of a function's invocations X-Ray records under the default rule: the first each second
    and 5% of the rest (``invocations_per_second`` of one function, spread evenly)."""
    if invocations_per_second <= 0:
        return 1.0
    reservoir = min(invocations_per_second, XRAY_RESERVOIR_PER_SECOND)
    return (reservoir + XRAY_SAMPLED * (invocations_per_second - reservoir)) / invocations_per_second


def billed_seconds(measurement: Measurement, handler: str, memory_mb: int) -> float:
    """The duration AWS would bill: the handler's own work at the CPU share of its memory, the time its
    thread spent off the CPU (sleeping on a limiter) as it passed, its AWS requests at in-region latency,
    its provider calls as answered (latency.py). The local stack's wall time instead holds moto's latency
    and the meter's own reads; it is what a measurement without the parts (one made by hand) is priced at."""
    parts = measurement.time_parts.get(handler)
    if not parts:
        return measurement.seconds.get(handler, 0.0)
    idle = parts.get("own_idle", 0.0)
    return (parts["own"] - idle) * cpu_stretch(memory_mb) + idle + parts["aws_in_region"] + parts["provider"]


def price(
    measurement: Measurement,
    template: dict[str, Any] | None = None,
    *,
    monthly_events: int | None = None,
    secrets_outside: int = 0,
    custom_metrics: int = 0,
    custom_metrics_possible: int = 0,
    provider_limits: dict[str, tuple[int | None, int | None]] | None = None,
) -> Report:
    """``provider_limits``: connector -> its provider's limits (calls a minute, calls a day), None each where
    the provider publishes none (the manifests' ``provider_calls_per_minute`` and ``_per_day``)."""
    events = max(measurement.accepted, 1)
    retention = retention_of(template)
    report = Report(
        measurement.route.value,
        measurement.event_type,
        measurement.events,
        measurement.accepted,
        per_second=measurement.per_second,
        monthly_events=monthly_events,
        batching_window_seconds=measurement.batching_window_seconds,
        retention=retention,
    )

    def add(component: str, detail: str, units: float, key: str) -> None:
        per_event = units / events
        usd = per_event * MILLION * PER_UNIT[key].usd
        report.lines.append(Line(component, detail, float(f"{per_event:.4g}"), round(usd, 4)))

    usage = measurement.usage
    for purpose, units in sorted(usage.write_units_by_purpose.items(), key=lambda kv: -kv[1]):
        add("DynamoDB writes", purpose, units, "dynamodb.write_unit")
    for purpose, units in sorted(usage.read_units_by_purpose.items(), key=lambda kv: -kv[1]):
        add("DynamoDB reads", purpose, units, "dynamodb.read_unit")

    # What the writes left stored, for as long as the audit trail keeps it: each event's bytes are
    # stored auditRetentionDays (deliveries that failed longer, contacts and watermarks longer still:
    # their share is small and left at the audit's retention).
    def gb_months(stored_bytes: float) -> float:
        return max(stored_bytes, 0.0) / 1e9 * retention.audit_days / 30.42

    stored_gb_months = gb_months(sum(max(stored, 0.0) for stored in usage.stored_bytes_by_purpose.values()))
    for purpose, stored in sorted(usage.stored_bytes_by_purpose.items(), key=lambda kv: -kv[1]):
        if stored > 0:  # a purpose whose writes freed more than they kept (a delete) is no line of its own
            add(
                "DynamoDB storage",
                f"{purpose}: items and index entries, {retention.audit_days} days (GB-months)",
                gb_months(stored),
                "dynamodb.storage_gb_month",
            )
    if retention.pitr:
        add(
            "DynamoDB PITR",
            "point-in-time recovery of the same bytes (GB-months)",
            stored_gb_months,
            "dynamodb.pitr_gb_month",
        )
    add("EventBridge", "PutEvents entries (64 KB chunks)", usage.units["eventbridge.event"], "eventbridge.event")
    if retention.archive_days:
        archived_gb = usage.archived_bytes / 1e9
        add("EventBridge archive", "events archived (GB)", archived_gb, "eventbridge.archive_gb")
        add(
            "EventBridge archive",
            f"archive stored, {retention.archive_days} days (GB-months)",
            archived_gb * retention.archive_days / 30.42,
            "eventbridge.archive_gb_month",
        )
    delivered = usage.bus_deliveries
    add("SQS", "rules' deliveries to connector queues", delivered, "sqs.request")
    add(
        "SQS",
        "receives, deletes, sends (event source mappings, handlers)",
        usage.units["sqs.request"] - delivered,
        "sqs.request",
    )
    wall = max(measurement.wall_seconds, 1e-9)
    tracing = tracing_modes(template)
    traces = 0.0
    for handler, count in sorted(measurement.invocations.items()):
        # The module (dig_api.handler, connectors.optimove.handler), or with the function when it is not
        # the module's lambda_handler (dig_api.files.handler.batch_handler).
        module, _, function = handler.rpartition(".")
        name = module if function == "lambda_handler" else handler
        if handler == functions.AUTHORIZER.handler:
            continue  # API Gateway caches its answer for 5 minutes: a fixed cost, not one per event
        add("Lambda", f"{name}: invocations", count, "lambda.request")
        memory = measurement.memory_mb.get(handler, 1024)
        billed = billed_seconds(measurement, handler, memory)
        report.lambda_seconds[handler] = {**measurement.time_parts.get(handler, {}), "priced": round(billed, 4)}
        add("Lambda", f"{name}: GB-seconds at {memory} MB", billed * memory / 1024, "lambda.gb_second")
        # The API follows API Gateway's decision, by the stack's sampling rule; every other function
        # samples on its own by Lambda's rule: at the rate this run's invocations came (paced runs), or,
        # for a run as fast as the stack takes it, at volume (5%).
        if handler == functions.API.handler:
            traces += count * functions.API_TRACE_FIXED_RATE
            continue
        if tracing.get(handler, functions.QUEUE_TRACING_DEFAULT) == "PassThrough":
            # Traced only where the upstream's trace was sampled: at most the API's share (an upper bound).
            traces += count * functions.API_TRACE_FIXED_RATE
            continue
        rate = count / wall if measurement.per_second is not None else float("inf")
        traces += count * (traced_share(rate) if rate != float("inf") else XRAY_SAMPLED)
    # Every invocation of the API function is a request through API Gateway and the WAF: ES Loyalty's
    # posts, and the providers' result callbacks.
    api_requests = measurement.invocations.get(functions.API.handler, 0)
    add("API Gateway", "REST requests (posts, file status, provider callbacks)", api_requests, "apigateway.request")
    add("WAF", "requests through the web ACL", api_requests, "waf.request")
    invocations = sum(c for h, c in measurement.invocations.items() if h != functions.AUTHORIZER.handler)
    log_gb = (measurement.log_bytes + invocations * LAMBDA_PLATFORM_LOG_BYTES) / 1e9
    add("CloudWatch Logs", "handlers' log lines and Lambda's START/END/REPORT", log_gb, "logs.gb")
    access_gb = api_requests * ACCESS_LOG_BYTES / 1e9
    add("CloudWatch Logs", "API Gateway access log lines", access_gb, "logs.gb")
    add(
        "CloudWatch Logs",
        f"logs stored, {retention.log_days} days (GB-months)",
        (log_gb + access_gb) * retention.log_days / 30.42,
        "logs.storage_gb_month",
    )
    sampled = "at the measured rate" if measurement.per_second is not None else f"{XRAY_SAMPLED:.0%} (at volume)"
    add(
        "X-Ray",
        f"traces: the API {functions.API_TRACE_FIXED_RATE:.0%} (the stack's rule); queue-fed functions in PassThrough "
        f"at most as often, in Active 1 a second each and 5% of the rest, {sampled}",
        traces,
        "xray.trace",
    )
    # Step Functions is not metered (the local stack's file driver stands in for it): modelled from the
    # definition (infra/files.py): per file Validate, Proceed?, the map and Finish; per child execution
    # of the Distributed Map its start and its one task.
    files, batches = (
        measurement.invocations.get(f.handler, 0) for f in (functions.FILE_VALIDATE, functions.FILE_BATCH)
    )
    add(
        "Step Functions",
        "state transitions (modelled: 4 a file, 2 a child execution)",
        4 * files + 2 * batches,
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
    report.provider_calls = provider_calls(
        usage.provider_calls, events, monthly_events, provider_limits or {}, usage.provider_endpoints
    )
    if template is not None:
        report.monthly = monthly_costs(
            template,
            secrets_outside=secrets_outside,
            custom_metrics=custom_metrics,
            custom_metrics_possible=custom_metrics_possible,
        )
    return report


def provider_calls(
    counted: Counter[str],
    events: int,
    monthly_events: int | None,
    limits: dict[str, tuple[int | None, int | None]],
    endpoints: Counter[tuple[str, str]] | None = None,
) -> dict[str, ProviderCalls]:
    found: dict[str, ProviderCalls] = {}
    by_endpoint = sorted((endpoints or Counter()).items(), key=lambda kv: -kv[1])
    for connector in sorted({*counted, *limits}):
        per_event = counted.get(connector, 0) / events
        per_minute_limit, per_day_limit = limits.get(connector, (None, None))
        per_day = per_event * monthly_events * 86_400 / SECONDS_PER_MONTH_EXACT if monthly_events else None
        found[connector] = ProviderCalls(
            per_event=round(per_event, 4),
            per_day=round(per_day) if per_day is not None else None,
            per_minute=round(per_day / 1440, 1) if per_day is not None else None,
            limit_per_day=per_day_limit,
            limit_per_minute=per_minute_limit,
            endpoints={path: round(n / events, 4) for (name, path), n in by_endpoint if name == connector},
        )
    return found


def tracing_modes(template: dict[str, Any] | None) -> dict[str, str]:
    """Each function's X-Ray mode by its handler, as the template deploys it (none: the defaults)."""
    modes: dict[str, str] = {}
    for resource in (template or {}).get("Resources", {}).values():
        if resource["Type"] == "AWS::Lambda::Function" and "Handler" in resource["Properties"]:
            properties = resource["Properties"]
            modes[properties["Handler"]] = properties.get("TracingConfig", {}).get("Mode", "PassThrough")
    return modes


def retention_of(template: dict[str, Any] | None) -> Retention:
    """What the synthesized stack keeps: the audit retention its connector functions are given, PITR on
    the audit table, the bus archive's retention, the log groups' retention."""
    if template is None:
        return Retention()
    resources = template.get("Resources", {})
    audit_days = next(
        (
            int(variables[env.AUDIT_RETENTION_DAYS])
            for r in resources.values()
            if r.get("Type") == "AWS::Lambda::Function"
            and env.AUDIT_RETENTION_DAYS in (variables := r["Properties"].get("Environment", {}).get("Variables", {}))
        ),
        Retention.audit_days,
    )
    tables = [r["Properties"] for r in resources.values() if r.get("Type") == "AWS::DynamoDB::Table"]
    pitr = any(t.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") for t in tables)
    archives = [r["Properties"] for r in resources.values() if r.get("Type") == "AWS::Events::Archive"]
    archive_days = int(archives[0].get("RetentionDays", 0)) if archives else 0
    logs = [
        int(r["Properties"]["RetentionInDays"])
        for r in resources.values()
        if r.get("Type") == "AWS::Logs::LogGroup" and "RetentionInDays" in r.get("Properties", {})
    ]
    return Retention(audit_days=audit_days, pitr=pitr, archive_days=archive_days, log_days=max(logs, default=30))


def alarm_metrics(alarm: dict[str, Any]) -> int:
    """The metrics an alarm is billed for: one, or each metric a metric-math alarm reads."""
    metrics = alarm.get("Metrics")
    if not metrics:
        return 1
    return sum(1 for m in metrics if "MetricStat" in m)


def monthly_costs(
    template: dict[str, Any], *, secrets_outside: int = 0, custom_metrics: int = 0, custom_metrics_possible: int = 0
) -> list[MonthlyLine]:
    """What the stack costs a month whatever the traffic, from its synthesized template, the secrets its
    connectors read that the stack does not hold, and the custom metrics the code emits."""
    resources = template.get("Resources", {})
    kinds = Counter(r.get("Type") for r in resources.values())
    lines: list[MonthlyLine] = []
    alarms = [r.get("Properties", {}) for r in resources.values() if r.get("Type") == "AWS::CloudWatch::Alarm"]
    if alarms:
        metrics = sum(alarm_metrics(a) for a in alarms)
        key = "AWS::CloudWatch::Alarm"
        lines.append(
            MonthlyLine(
                "CloudWatch",
                f"{len(alarms)} alarms over {metrics} metrics",
                metrics,
                round(metrics * MONTHLY[key].usd, 2),
            )
        )
    for kind, count in sorted(kinds.items()):
        if kind in MONTHLY and kind != "AWS::CloudWatch::Alarm":
            lines.append(MonthlyLine(kind.split("::")[1], kind, float(count), round(count * MONTHLY[kind].usd, 2)))
    rules = sum(
        len(r.get("Properties", {}).get("Rules", []))
        for r in resources.values()
        if r.get("Type") == "AWS::WAFv2::WebACL"
    )
    if rules:
        key = "AWS::WAFv2::WebACL rule"
        lines.append(MonthlyLine("WAFv2", key, float(rules), round(rules * MONTHLY[key].usd, 2)))
    if secrets_outside:
        key = "secret outside the stack"
        lines.append(
            MonthlyLine(
                "SecretsManager",
                "secrets the connectors and webhooks read, made outside the stack",
                float(secrets_outside),
                round(secrets_outside * MONTHLY[key].usd, 2),
            )
        )
    if custom_metrics:
        key = "custom metric"
        lines.append(
            MonthlyLine(
                "CloudWatch",
                "custom metrics the run emitted (name and service)"
                + (f"; the code can emit {custom_metrics_possible}" if custom_metrics_possible else ""),
                float(custom_metrics),
                round(custom_metrics * MONTHLY[key].usd, 2),
            )
        )
    snapshots_gb = sum(
        r["Properties"].get("MemorySize", 128) / 1024
        for r in resources.values()
        if r.get("Type") == "AWS::Lambda::Function" and r.get("Properties", {}).get("SnapStart")
    )
    if snapshots_gb:  # one live version each (old ones are deleted when replaced: infra/function.py)
        gb_seconds = snapshots_gb * SECONDS_PER_MONTH
        lines.append(
            MonthlyLine(
                "Lambda",
                f"SnapStart snapshots cached ({snapshots_gb:g} GB of live versions; restores extra)",
                round(gb_seconds),
                round(gb_seconds * PER_UNIT["lambda.snapstart_cache_gb_second"].usd, 2),
            )
        )
    mappings = kinds.get("AWS::Lambda::EventSourceMapping", 0)
    if mappings:
        receives = mappings * IDLE_RECEIVES_PER_MONTH
        lines.append(
            MonthlyLine(
                "SQS",
                f"{mappings} event source mappings' long polls while idle (modelled)",
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
