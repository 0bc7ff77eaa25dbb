"""`dig feed`: a connector's daily batch feed (Optimove's batch channel): each day's extracts and
runs, and a day built again."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from dig_cli.console import console, styled
from dig_cli.operate import Local, LocalUrl, Region, Stack
from dig_cli.target import Target, resolve

feed_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Daily batch feeds: status, rebuild.")
Connector = Annotated[str, typer.Option(help="The connector whose feed job it is")]
JOB = "feed"


def _store(target: Target, connector: str) -> Any:
    from db.feeds import DynamoFeedStore
    from db.table import Table as DynamoTable

    return DynamoFeedStore(DynamoTable(target.dynamodb(), target.audit_table), connector)


def day_report(store: Any, day: str) -> dict[str, Any]:
    runs = sorted(store.runs(day), key=lambda r: r.startedAt)
    return {
        "day": day,
        "complete": store.complete(day),
        "extracts": [asdict(i) | {"parts": len(i.parts)} for i in store.inputs(day)],
        "runs": [asdict(r) for r in runs],
    }


@feed_app.command("status")
def status_command(
    days: Annotated[int, typer.Option(min=1, max=90, help="Days back from three days ahead")] = 7,
    connector: Connector = "optimove",
    as_json: Annotated[bool, typer.Option("--json", help="As JSON")] = False,
    stack: Stack = None,
    region: Region = None,
    local: Local = False,
    local_url: LocalUrl = None,
) -> None:
    """Each day: the extracts that arrived for it, whether its files are complete, and its runs."""
    target = resolve(stack=stack, region=region, local=local, local_url=local_url)
    store = _store(target, connector)
    # Ahead too: an extract that arrives after its day was built feeds the next day, which may be ahead.
    first = date.today() + timedelta(days=3)
    reports = [day_report(store, (first - timedelta(days=n)).isoformat()) for n in range(days)]
    if as_json:
        print(json.dumps(reports, indent=2))
        return
    table = Table(title=f"{connector} daily feed")
    for column in ("day", "complete", "extracts", "last run", "sent", "files", "MB", "s", "error"):
        table.add_column(column, overflow="fold")
    for report in reports:
        last = report["runs"][-1] if report["runs"] else None
        table.add_row(
            report["day"],
            "yes" if report["complete"] else "no",
            ", ".join(sorted({e["name"] for e in report["extracts"]})) or "-",
            f"{last['status']} ({last['trigger']}{', full' if last['full'] else ''})" if last else "-",
            ", ".join(f"{k} {v}" for k, v in last["sent"].items()) if last else "",
            str(last["files"]) if last else "",
            f"{last['bytes'] / 1e6:.1f}" if last else "",
            f"{last['seconds']:.1f}" if last else "",
            (last.get("error") or "") if last else "",
        )
    console.print(table)


@feed_app.command("run")
def run_command(
    day: Annotated[str, typer.Option("--date", help="The day to build (yyyy-MM-dd), again if it was built")],
    full: Annotated[bool, typer.Option(help="Every row of its extracts, not only new or changed ones")] = False,
    connector: Connector = "optimove",
    stack: Stack = None,
    region: Region = None,
    local: Local = False,
    local_url: LocalUrl = None,
) -> None:
    """Build a day's files now, from every extract recorded for it (the same files for the same
    extracts); the run is recorded and shown by `dig feed status`."""
    try:
        date.fromisoformat(day)
    except ValueError:
        raise typer.BadParameter(f"--date {day!r} is not a date (yyyy-MM-dd)") from None
    target = resolve(stack=stack, region=region, local=local, local_url=local_url)
    answer = invoke_job(target, connector, {"day": day, "full": full})
    run = answer.get("run") or {}
    if run.get("status") != "COMPLETE":
        console.print(styled(("The run failed:", "red"), f" {answer.get('error') or run.get('error') or answer}"))
        raise typer.Exit(1)
    sent = ", ".join(f"{k} {v}" for k, v in run["sent"].items())
    merged = ", ".join(f"{k} {v}" for k, v in (run.get("merged") or {}).items())
    tables = f"; Snowflake rows changed: {merged}" if merged else ""
    console.print(f"{day}: {run['files']} files, {run['bytes']:,} bytes, sent {sent}{tables} ({run['seconds']:.1f} s)")


def invoke_job(target: Target, connector: str, event: dict[str, Any], job: str = JOB) -> dict[str, Any]:
    """A connector's job function, as its schedule invokes it (locally: the local stack runs the handler)."""
    if target.local:
        import httpx

        assert target.url is not None
        answer = httpx.post(f"{target.url}/_local/jobs/{connector}/{job}", json=event, timeout=900)
        return dict(answer.json())
    from botocore.config import Config

    name = target.jobs.get(f"{connector}.{job}")
    if name is None:
        console.print(f"The stack has no {connector} {job} job.", style="red")
        raise typer.Exit(1)
    client = target.session.client("lambda", config=Config(read_timeout=910, retries={"total_max_attempts": 1}))
    answer = client.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    payload = json.loads(answer["Payload"].read() or b"{}")
    if answer.get("FunctionError"):
        return {"error": payload.get("errorMessage", payload)}
    return dict(payload)
