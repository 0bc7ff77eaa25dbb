"""`dig cost`: what a million events cost, measured through the local stack's real handlers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dig_cli.console import console
from dig_contracts.events import EventType


def cost_command(
    events: Annotated[int, typer.Option(help="Events to send through the stack", min=1)] = 2000,
    route: Annotated[
        str, typer.Option(help="batch (POST /v1/events/batch, 500 a request), single, or file (one JSON-lines file)")
    ] = "batch",
    event_type: Annotated[str, typer.Option(help="The event type sent")] = EventType.MEMBER_PROFILE_UPDATE.value,
    template: Annotated[
        Path | None, typer.Option(help="A synthesized template for the fixed monthly costs (default: cdk.out/)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON")] = False,
) -> None:
    """Send events through the local stack with every AWS request metered, and price them per million."""
    from dig_cost.report import load_template, price
    from dig_cost.run import Route, measure

    try:
        chosen = Route(route)
        EventType(event_type)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    measurement = measure(chosen, events, event_type)
    report = price(measurement, load_template(template))
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
        return
    table = Table(
        title=f"{report.route} route, {report.accepted:,} {report.event_type} events "
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
    console.print(f"The audit trail's share: {report.audit_share:.0%}")
    if report.monthly:
        fixed = Table(title="Fixed, per month (from the template)")
        fixed.add_column("what")
        fixed.add_column("count", justify="right")
        fixed.add_column("$ per month", justify="right")
        for line in report.monthly:
            fixed.add_row(line.detail, f"{line.per_event:g}", f"{line.usd_per_million:.2f}")
        console.print(fixed)
    else:
        console.print("No template in cdk.out/: `make synth` first for the fixed monthly costs.")
