"""`dig cost`: what a million events cost, measured through the local stack's real handlers."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from dig_cli.console import console
from dig_contracts.events import EventType

if TYPE_CHECKING:
    from dig_cost.report import Report

# Two connectors, as the seeds say a program starts: what the default figures are for.
DEFAULT_CONNECTORS = "optimove,marketo"
DEFAULT_PACED_SECONDS = 120
MIN_PACED_EVENTS = 30


def monthly_volume(text: str) -> int:
    """``1M``, ``10M``, ``100M``, ``250k`` or a plain number: events a month."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", text)
    if not found:
        raise typer.BadParameter(f"{text!r}: events a month, e.g. 1M, 10M, 100M or 250k")
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[found[2].lower()]
    return int(float(found[1]) * scale)


def secrets_outside(connectors: list[object]) -> int:
    """The Secrets Manager secrets the connectors, their webhooks and jobs read, made outside the stack."""
    from dig_contracts.manifest import ConnectorManifest

    total = 0
    for manifest in connectors:
        assert isinstance(manifest, ConnectorManifest)
        total += len(manifest.secrets) + sum(1 for w in manifest.webhooks if w.secret is not None)
        total += sum(len(job.secrets) for job in manifest.scheduled)
    return total


def custom_metrics(connectors: list[object]) -> int:
    """The custom metrics the code emits (dig_contracts.metrics: one dimension, the service)."""
    from dig_contracts.manifest import ConnectorManifest
    from dig_contracts.metrics import ApiMetric, ConnectorMetric, FileMetric, JobMetric

    jobs = sum(1 for m in connectors if isinstance(m, ConnectorManifest) for job in m.scheduled if job.reports_lateness)
    return len(ApiMetric) + len(FileMetric) + len(connectors) * len(ConnectorMetric) + jobs * len(JobMetric)


def cost_command(
    events: Annotated[
        int, typer.Option(help="Events to send as fast as the stack takes them (without --monthly)", min=1)
    ] = 2000,
    route: Annotated[
        str, typer.Option(help="batch (POST /v1/events/batch, 500 a request), single, or file (one JSON-lines file)")
    ] = "batch",
    event_type: Annotated[str, typer.Option(help="The event type sent (without --mix)")] = (
        EventType.MEMBER_PROFILE_UPDATE.value
    ),
    mix: Annotated[
        bool, typer.Option("--mix", help="The default event mix (README) instead of one event type")
    ] = False,
    monthly: Annotated[
        str | None,
        typer.Option(
            help="A program's month (1M, 10M, 100M): events arrive at its rate for --seconds, so that the "
            "connectors' batching windows and X-Ray's sampling see what that traffic gives them"
        ),
    ] = None,
    seconds: Annotated[int, typer.Option(help="How long a --monthly run sends, bounded", min=10, max=1800)] = (
        DEFAULT_PACED_SECONDS
    ),
    connectors: Annotated[
        str, typer.Option(help="The connectors the measured stack runs (DIG_CONNECTORS)")
    ] = DEFAULT_CONNECTORS,
    template: Annotated[
        Path | None, typer.Option(help="A synthesized template for the fixed monthly costs (default: cdk.out/)")
    ] = None,
    batching_window: Annotated[
        float | None,
        typer.Option(
            help="Seconds each connector's poller gathers a batch (default: its manifest's, as in AWS). Shorter "
            "runs faster but prices the smaller batches it makes: for tests and quick looks, not for figures",
            min=0,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON")] = False,
) -> None:
    """Send events through the local stack with every AWS request metered, and price them per million:
    what grows with the events, what the stack costs a month whatever the traffic, and with --monthly the
    month's bill at that volume. Free tiers are listed, never subtracted."""
    from dig_contracts.registry import CONNECTORS_ENV, installed_connectors
    from dig_cost.prices import SECONDS_PER_MONTH_EXACT
    from dig_cost.report import load_template, price
    from dig_cost.run import DEFAULT_MIX, TIME_PARTS, Route, measure

    try:
        chosen = Route(route)
        EventType(event_type)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    volume = monthly_volume(monthly) if monthly else None
    per_second = volume / SECONDS_PER_MONTH_EXACT if volume else None
    if per_second is not None:
        events = max(MIN_PACED_EVENTS, math.ceil(per_second * seconds))
    os.environ[CONNECTORS_ENV] = connectors
    manifests = list(installed_connectors())
    measurement = measure(
        chosen,
        events,
        event_type,
        per_second=per_second,
        mix=DEFAULT_MIX if mix else None,
        batching_window_seconds=batching_window,
    )
    report = price(
        measurement,
        load_template(template),
        monthly_events=volume,
        secrets_outside=secrets_outside(manifests),  # type: ignore[arg-type]
        # What the run emitted; the code can emit more (errors, throttles, late results): each is billed
        # only in a month it is emitted.
        custom_metrics=len(measurement.metrics_emitted),
        custom_metrics_possible=custom_metrics(manifests),  # type: ignore[arg-type]
        provider_limits={m.name: (m.provider_calls_per_minute, m.provider_calls_per_day) for m in manifests},
    )
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
        return
    pace = "as fast as taken" if per_second is None else f"{per_second:.2f} a second ({volume:,} a month)"
    table = Table(
        title=f"{report.route} route, {report.accepted:,} {report.event_type} events, {pace}, to {connectors} "
        f"({report.region} list prices, {report.prices_as_of})"
    )
    table.add_column("component")
    table.add_column("what")
    table.add_column("units per event", justify="right")
    table.add_column("$ per million", justify="right")
    for line in report.lines:
        table.add_row(line.component, line.detail, f"{line.per_event:g}", f"{line.usd_per_million:.3f}")
    table.add_row("", "total", "", f"{report.total:.2f}", style="bold")
    console.print(table)
    if report.batching_window_seconds is not None:
        console.print(
            f"[yellow]Every batching window shortened to {report.batching_window_seconds:g} s: smaller batches "
            "than a deployment makes, so more invocations and calls a million than it pays.[/yellow]"
        )
    console.print(f"The audit trail's share: {report.audit_share:.0%}")
    if report.lambda_seconds:
        timing = Table(
            title="Lambda time, all invocations (s): priced = (own - own idle) x its CPU share + own idle + AWS in "
            "region + provider; the AWS latencies assumed are dig_cost/latency.py's"
        )
        parts = ("measured", *TIME_PARTS, "priced")
        timing.add_column("function")
        for part in parts:
            timing.add_column(part.replace("_", " "), justify="right")
        for handler, by_part in sorted(report.lambda_seconds.items()):
            timing.add_row(handler, *(f"{by_part[part]:.2f}" if part in by_part else "" for part in parts))
        console.print(timing)
    if report.provider_calls:
        console.print(provider_table(report))
    if report.monthly:
        fixed = Table(title="Fixed, per month (from the template and the connectors)")
        fixed.add_column("component")
        fixed.add_column("what")
        fixed.add_column("count", justify="right")
        fixed.add_column("$ per month", justify="right")
        for monthly_line in report.monthly:
            fixed.add_row(
                monthly_line.component,
                monthly_line.detail,
                f"{monthly_line.count:g}",
                f"{monthly_line.usd_per_month:.2f}",
            )
        fixed.add_row("", "total", "", f"{report.fixed_per_month:.2f}", style="bold")
        console.print(fixed)
    else:
        console.print("No template in cdk.out/: `make synth` first for the fixed monthly costs.")
    if report.month_total is not None:
        console.print(
            f"At {volume:,} events a month: ${report.month_total:,.2f} a month, "
            f"${report.all_in_per_million:.2f} a million with the fixed cost spread over them."
        )
    console.print("Free tiers, not subtracted: " + "; ".join(f"{t['service']}: {t['what']}" for t in report.free_tiers))


def provider_table(report: Report) -> Table:
    """Each connector's calls to its provider, and at a month's volume against the provider's limits."""
    table = Table(
        title="Provider calls: per event as measured; a day and a minute (on average) at the month's volume, "
        "beside the limits the manifests name"
    )
    for column in ("connector", "per event", "a day", "limit a day", "a minute", "limit a minute"):
        table.add_column(column, justify="left" if column == "connector" else "right")

    def figure(value: float | None, limit: int | None = None) -> str:
        if value is None:
            return "-"
        text = f"{value:,.0f}" if value >= 100 else f"{value:g}"
        return f"[red]{text} (over)[/red]" if limit is not None and value > limit else text

    for name, calls in report.provider_calls.items():
        table.add_row(
            name,
            f"{calls.per_event:g}",
            figure(calls.per_day, calls.limit_per_day),
            figure(calls.limit_per_day),
            # Not flagged: a provider's per-minute limit may cover only some endpoints (Optimove's), and a
            # day's average is not its peak.
            figure(calls.per_minute),
            figure(calls.limit_per_minute),
        )
        for endpoint, per_event in calls.endpoints.items():
            table.add_row(f"  {endpoint}", f"{per_event:g}", "", "", "", "", style="dim")
    return table
