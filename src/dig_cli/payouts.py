"""`dig payouts`: reward payouts, whatever connector pays them. `status` reads the audit trail (ES
Loyalty's PAYOUT_REQUESTED and the PAYOUT_STATUS_CHANGED that came back); `reconcile` asks the paying
connector's ``reconcile`` job for a day's report (the job also writes it to the files bucket)."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

import typer
from rich.table import Table

from dig_cli.console import console, styled
from dig_cli.feed import invoke_job
from dig_cli.operate import Local, LocalUrl, Region, Since, Stack, Until, connect, time_window
from dig_cli.target import resolve

payouts_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Reward payouts: where each stands.")
PaidBy = Annotated[str, typer.Option("--connector", help="The connector that pays them")]
RECONCILE_JOB = "reconcile"


@payouts_app.command("status")
def status_command(
    since: Since = "24h",
    until: Until = None,
    payout_id: Annotated[str | None, typer.Option("--payout-id", help="One payout (ES Loyalty's id)")] = None,
    connector: PaidBy = "tipalti",
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, for scripts")] = False,
    stack: Stack = None,
    region: Region = None,
    local: Local = False,
    local_url: LocalUrl = None,
) -> None:
    """Each payout ES Loyalty requested in the window: DIG's delivery to the paying connector and the
    latest status the provider reported (final or not)."""
    from db.queries import AuditQueries

    span = time_window(since, until)
    _, store = connect(stack, region, local, local_url)
    queries = AuditQueries(store)
    requested = list(queries.with_deliveries(queries.messages_by_event_type("PAYOUT_REQUESTED", span), connector))
    changed = list(queries.messages_by_event_type("PAYOUT_STATUS_CHANGED", span))
    # Their payloads in batch reads (the rows name only the message).
    records = store.find_messages([row.message_id for row in requested + changed])
    payouts: dict[str, dict[str, Any]] = {}
    for row in requested:
        envelope = records[row.message_id].envelope if row.message_id in records else {}
        payout = str(envelope.get("data", {}).get("payoutId", ""))
        if payout_id and payout != payout_id:
            continue
        payouts[payout] = {
            "payoutId": payout,
            "memberId": row.member_id,
            "requestedAt": row.time,
            "messageId": row.message_id,
            "delivery": row.delivery.status.value if row.delivery else None,
            "lastError": row.delivery.lastError if row.delivery else None,
            "status": None,
            "final": False,
        }
    for row in sorted(changed, key=lambda r: r.time):
        data = records[row.message_id].envelope.get("data", {}) if row.message_id in records else {}
        known = payouts.get(str(data.get("payoutId", "")))
        if known is not None and not known["final"]:
            known["status"], known["final"] = data.get("status"), bool(data.get("final"))
    if as_json:
        for line in payouts.values():
            print(json.dumps(line))
        return
    table = Table(title=f"{len(payouts)} payout(s) requested from {span.since:%Y-%m-%d %H:%M} UTC")
    for column in ("payoutId", "member", "requested", "delivery", "status", "final", "last error"):
        table.add_column(column, overflow="fold")
    for shown in payouts.values():
        table.add_row(
            shown["payoutId"],
            shown["memberId"],
            shown["requestedAt"],
            shown["delivery"] or "(none)",
            shown["status"] or "-",
            "yes" if shown["final"] else "no",
            (shown["lastError"] or "")[:120],
        )
    console.print(table)


@payouts_app.command("reconcile")
def reconcile_command(
    day: Annotated[str, typer.Option("--date", help="The day of the requests (yyyy-MM-dd, UTC)")],
    connector: PaidBy = "tipalti",
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON")] = False,
    stack: Stack = None,
    region: Region = None,
    local: Local = False,
    local_url: LocalUrl = None,
) -> None:
    """A day's reconciliation report, built now by the connector's reconcile job (and written to the
    files bucket): per program, requested, submitted, paid, failed, open and not sent; what is unmatched
    on either side. Exits 1 when something is unmatched."""
    try:
        date.fromisoformat(day)
    except ValueError:
        raise typer.BadParameter(f"--date {day!r} is not a date (yyyy-MM-dd)") from None
    target = resolve(stack=stack, region=region, local=local, local_url=local_url)
    answer = invoke_job(target, connector, {"date": day}, job=RECONCILE_JOB)
    report = answer.get("report")
    if not isinstance(report, dict):
        console.print(styled(("The report was not built:", "red"), f" {answer.get('error') or answer}"))
        raise typer.Exit(1)
    unmatched = report["unmatched"]
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        table = Table(title=f"{connector} payouts requested on {day} ({answer.get('reportKey', '')})")
        columns = ("requested", "submitted", "paid", "failed", "open", "notSent")
        for column in ("program", *columns, "paid amounts"):
            table.add_column(column)
        for program, counts in sorted(report["programs"].items()):
            amounts = ", ".join(f"{v} {k}" for k, v in sorted(counts["paidAmounts"].items()))
            table.add_row(program, *(str(counts[c]) for c in columns), amounts)
        console.print(table)
        console.print(
            f"Unmatched, submitted by DIG and unknown to {connector}: {', '.join(unmatched['dig']) or 'none'}"
        )
        console.print(f"Unmatched, at {connector} and never sent by DIG: {', '.join(unmatched['provider']) or 'none'}")
    if unmatched["dig"] or unmatched["provider"]:
        raise typer.Exit(1)
