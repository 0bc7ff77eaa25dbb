"""``dig audit`` and ``dig replay``: find what failed, understand why, replay it, prove it went through.

Exit codes: 0 success, 1 partial failure (something could not be replayed), 2 usage error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from db.audit import DONE, TYPE_INDEXED, DynamoAuditStore
from db.call_log import CallStatus
from db.queries import AuditQueries, MessageRow, Window, delivery_row
from db.records import DeliveryRecord, DeliveryStatus
from dig_cli.console import console, errors
from dig_cli.target import Target, resolve
from dig_cli.timewindow import BadTime, window

audit_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Query the audit trail.")
replay_app = typer.Typer(
    add_completion=False, help="Replay messages from the audit trail through one connector's queue."
)

Stack = Annotated[
    str | None, typer.Option(help="Deployed stack name, e.g. Dig-dev (outputs name the table and queues)")
]
Region = Annotated[str | None, typer.Option(help="AWS region of the stack")]
Local = Annotated[bool, typer.Option(help="The running local stack (dig local)")]
LocalUrl = Annotated[
    str | None, typer.Option(help="URL of the local stack (default: the running one, wherever it listens)")
]
Connector = Annotated[str | None, typer.Option(help="Connector, e.g. optimove")]
Status = Annotated[DeliveryStatus | None, typer.Option(help="Delivery status", case_sensitive=False)]
Since = Annotated[str, typer.Option(help="Start: ISO timestamp, or a duration back from now (30m, 6h, 7d)")]
Until = Annotated[str | None, typer.Option(help="End: ISO timestamp or duration back (default now)")]
EventType = Annotated[str | None, typer.Option("--event-type", help="ES Loyalty event type")]
Member = Annotated[str | None, typer.Option(help="Member id")]


def usage(message: str) -> typer.Exit:
    errors.print(f"dig: {message}")
    return typer.Exit(2)


def connect(
    stack: str | None, region: str | None, local: bool, local_url: str | None
) -> tuple[Target, DynamoAuditStore]:
    target = resolve(stack=stack, region=region, local=local, local_url=local_url)
    return target, DynamoAuditStore(target.dynamodb(), target.audit_table)


def time_window(since: str, until: str | None) -> Window:
    try:
        return window(since, until)
    except BadTime as error:
        raise usage(str(error)) from None


# --- dig audit list ------------------------------------------------------------------------------


def rows_for(
    store: DynamoAuditStore,
    target: Target,
    *,
    connector: str | None,
    status: DeliveryStatus | None,
    event_type: str | None,
    member: str | None,
    span: Window,
    scan_limit: int = 10_000,
) -> Iterator[MessageRow]:
    queries = AuditQueries(store)
    if member:
        rows = queries.with_deliveries(queries.messages_by_member(member, span), connector)
    elif status in DONE and not event_type:
        raise usage(
            f"{status} deliveries are not indexed (only PENDING and FAILED are; `dig status` counts the day's "
            "delivered and skipped): add --event-type or --member"
        )
    elif (status and status not in DONE) or (connector and not event_type):
        connectors = [connector] if connector else sorted(target.queues)
        statuses = [status] if status else [DeliveryStatus.PENDING, DeliveryStatus.FAILED]
        rows = (
            delivery_row(d)
            for name in connectors
            for one in statuses
            for d in queries.deliveries_by_status(name, one, span)
        )
    elif event_type and event_type not in TYPE_INDEXED:
        scanned = queries.scan_messages_by_event_type(event_type, span, scan_limit)
        errors.print(
            f"dig: {event_type} is not in the byEventType index (db.audit.TYPE_INDEXED): scanned "
            f"{scanned.items:,} items of the table, "
            + (
                "all of it."
                if scanned.complete
                else "not all of it: raise --scan-limit, or list by --member or --status."
            )
        )
        rows = queries.with_deliveries(iter(scanned.rows), connector)
    elif event_type:
        rows = queries.with_deliveries(queries.messages_by_event_type(event_type, span), connector)
    else:
        raise usage(
            "say what to list: --connector, --status, --event-type or --member (the audit table is never scanned)"
        )
    for row in rows:
        delivery = row.delivery
        if status and (delivery is None or delivery.status is not status):
            continue
        if event_type and row.event_type != event_type:
            continue
        if member and row.member_id != member:
            continue
        yield row


def file_rows(
    store: DynamoAuditStore, target: Target, file_id: str, *, connector: str | None, status: DeliveryStatus | None
) -> Iterator[MessageRow]:
    """The messages a batch file's lines became, read from its per-chunk results (no index needed)."""
    from dig_cli.files import file_messages

    for _, message_id in file_messages(target, file_id):
        view = store.get_message(message_id)
        if view is None:  # expired by its retention
            continue
        message = view.message
        deliveries = [d for d in view.deliveries if connector in (None, d.connector)]
        if not deliveries and status is None:
            yield MessageRow(message_id, message.receivedAt, message.eventType, message.memberId)
        for d in deliveries:
            if status is None or d.status is status:
                yield MessageRow(message_id, message.receivedAt, message.eventType, message.memberId, d, d.connector)


@audit_app.command("list")
def audit_list(
    connector: Connector = None,
    status: Status = None,
    since: Since = "24h",
    until: Until = None,
    event_type: EventType = None,
    member: Member = None,
    file: Annotated[str | None, typer.Option("--file", help="The messages of a batch file (its fileId)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, for scripts")] = False,
    limit: Annotated[int, typer.Option(help="Rows per page (0: all, on one page)")] = 50,
    page: Annotated[int, typer.Option(min=1, help="Which page of --limit rows to show")] = 1,
    scan_limit: Annotated[
        int,
        typer.Option(
            min=1,
            help="--event-type of a type the index does not hold (all but the return path's and payouts): "
            "read at most this many items of the table (each billed)",
        ),
    ] = 10_000,
    stack: Stack = None,
    region: Region = None,
    local: Local = False,
    local_url: LocalUrl = None,
) -> None:
    """List messages and their deliveries: by connector and status, by event type, by member, or by
    batch file (in line order; --since does not apply). By connector and status: PENDING and FAILED only,
    the status index's; DELIVERED and SKIPPED with --event-type or --member (`dig status` and `dig audit
    counts` count them per day). By event type: from the index for the return path's types and payouts;
    any other type by a scan of at most --scan-limit items, which it says."""
    span = time_window(since, until)
    target, store = connect(stack, region, local, local_url)
    if file:
        rows = file_rows(store, target, file, connector=connector, status=status)
    else:
        rows = rows_for(
            store,
            target,
            connector=connector,
            status=status,
            event_type=event_type,
            member=member,
            span=span,
            scan_limit=scan_limit,
        )
    skipped = (page - 1) * limit
    shown = list(islice(rows, skipped, skipped + limit + 1)) if limit else list(rows)
    more = bool(limit) and len(shown) > limit
    shown = shown[:limit] if limit else shown
    if as_json:
        for row in shown:
            print(json.dumps(_row_json(row)))
        return
    where = f"from {span.since:%Y-%m-%d %H:%M} to {span.until:%Y-%m-%d %H:%M} UTC"
    numbered = f", page {page} (rows {skipped + 1}-{skipped + len(shown)})" if limit and shown else ""
    table = Table(title=f"{len(shown)} message(s) {where}{numbered}")
    for column in ("time", "messageId", "event type", "member", "connector", "status", "attempts", "last error"):
        table.add_column(column, overflow="fold")
    for row in shown:
        delivery = row.delivery
        table.add_row(
            row.time,
            row.message_id,
            row.event_type,
            row.member_id,
            row.connector or "-",
            delivery.status.value if delivery else "(none)",
            str(delivery.attemptCount) if delivery else "",
            (delivery.lastError or "")[:120] if delivery else "",
        )
    console.print(table)
    if more:
        console.print(f"There is more: the same command with --page {page + 1} (or --limit 0 for every row).")


@audit_app.command("counts")
def audit_counts(
    connector: Connector = None,
    since: Since = "7d",
    until: Until = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per connector and day")] = False,
    stack: Stack = None,
    region: Region = None,
    local: Local = False,
    local_url: LocalUrl = None,
) -> None:
    """Each connector's own daily counts (UTC days): figures no message record holds, such as CataBoom's
    plays issued, won and awarded and its writebacks refused."""
    from db.counters import DynamoCounters
    from db.table import Table as AuditTable

    span = time_window(since, until)
    target, _ = connect(stack, region, local, local_url)
    counters = DynamoCounters(AuditTable(target.dynamodb(), target.audit_table))
    days = [
        (span.since.date() + timedelta(days=n)).isoformat()
        for n in range((span.until.date() - span.since.date()).days + 1)
    ]
    names = [connector] if connector else sorted(target.queues)
    rows = [(name, day, counts) for name in names for day, counts in counters.read(name, days).items()]
    if as_json:
        for name, day, counts in rows:
            print(json.dumps({"connector": name, "day": day, **counts}))
        return
    table = Table(title=f"Daily counts from {days[0]} to {days[-1]} (UTC)")
    for column in ("connector", "day", "counts"):
        table.add_column(column, overflow="fold")
    for name, day, counts in rows:
        table.add_row(name, day, ", ".join(f"{value} {key}" for key, value in sorted(counts.items())))
    console.print(table if rows else "No counts in that span.")


def _row_json(row: MessageRow) -> dict[str, Any]:
    delivery = row.delivery
    return {
        "messageId": row.message_id,
        "time": row.time,
        "eventType": row.event_type,
        "memberId": row.member_id,
        "connector": row.connector,
        "status": delivery.status.value if delivery else None,
        "attempts": delivery.attemptCount if delivery else 0,
        "lastError": delivery.lastError if delivery else None,
        "replayRunId": delivery.replayRunId if delivery else None,
    }


# --- dig audit show ------------------------------------------------------------------------------


@audit_app.command("show")
def audit_show(
    message_id: Annotated[str, typer.Argument(help="DIG messageId (or an ES Loyalty eventId with --event-id)")],
    by_event_id: Annotated[bool, typer.Option("--event-id", help="MESSAGE_ID is ES Loyalty's eventId")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    stack: Stack = None,
    region: Region = None,
    local: Local = False,
    local_url: LocalUrl = None,
) -> None:
    """The whole story of a message: envelope, each delivery attempt, replay lineage."""
    from db.replay import ReplayStore
    from dig_contracts.bus import message_id_for

    _, store = connect(stack, region, local, local_url)
    wanted = message_id_for(message_id) if by_event_id else message_id
    view = store.get_message(wanted)
    if view is None:
        errors.print(f"dig: no message {wanted} in the audit trail (expired, or never accepted)")
        raise typer.Exit(1)
    runs = {d.replayRunId for d in view.deliveries if d.replayRunId}
    replays = ReplayStore(store.table)
    lineage = {run_id: replays.get_run(run_id) for run_id in sorted(runs)}
    if as_json:
        print(
            json.dumps(
                {
                    "message": view.message.model_dump(mode="json"),
                    "deliveries": [d.model_dump(mode="json") for d in view.deliveries],
                    "results": {d.connector: [r.__dict__ for r in _results_of(store, d)] for d in view.deliveries},
                    "replayRuns": {k: (v.__dict__ if v else None) for k, v in lineage.items()},
                },
                indent=2,
            )
        )
        return
    message = view.message
    console.rule(f"message {message.messageId}")
    console.print(
        f"eventId {message.eventId}  type {message.eventType}  member {message.memberId}\n"
        f"received {message.receivedAt} from {message.client or '?'} ({message.sourceIp or '?'}), "
        f"{message.sizeBytes} bytes; publish state {message.publishState.value}"
        + (f" ({message.publishError})" if message.publishError else "")
    )
    if message.erasedAt:
        console.print(f"payload erased on request at {message.erasedAt}")
    else:
        console.print_json(json.dumps(message.envelope))
    for delivery in view.deliveries:
        _print_delivery(delivery, _results_of(store, delivery))
    for run_id, run in lineage.items():
        console.print(
            f"replay run {run_id}: "
            + (f"by {run.startedBy} at {run.startedAt}, filter {run.filter}" if run else "(record expired)")
        )


def _results_of(store: DynamoAuditStore, delivery: DeliveryRecord) -> list[CallStatus]:
    """Where the provider's later results of each call that carried this delivery stand."""
    from db.call_log import DynamoCallLog

    log = DynamoCallLog(store.table)
    call_ids = dict.fromkeys(a.callId for a in delivery.attempts if a.callId)
    return [status for call_id in call_ids if (status := log.status(delivery.connector, call_id)) is not None]


def _print_delivery(delivery: DeliveryRecord, results: Sequence[CallStatus] = ()) -> None:
    console.rule(f"{delivery.connector}: {delivery.status.value}")
    if delivery.lastError:
        console.print(f"last error: {delivery.lastError}")
    if delivery.retryUntil and delivery.status is DeliveryStatus.PENDING:
        console.print(f"retried automatically until {delivery.retryUntil}")
    for result in results:
        style = "bold red" if result.overdue_at else ""
        console.print(f"call {result.call_id}: {result.describe()}", style=style)
    for note in delivery.notes:
        console.print(f"note: {note}")
    if delivery.completed:
        console.print(f"completed operations: {', '.join(delivery.completed)}")
    table = Table(title=f"{delivery.attemptCount} attempt(s)")
    for column in ("at", "call", "status", "latency ms", "error", "request id"):
        table.add_column(column, overflow="fold")
    for attempt in delivery.attempts:
        table.add_row(
            attempt.at,
            attempt.call,
            attempt.status,
            str(attempt.latencyMs),
            attempt.error or "",
            attempt.requestId or "",
        )
    console.print(table)


# --- dig replay ------------------------------------------------------------------------------------


@replay_app.callback(invoke_without_command=True)
def replay(
    ctx: typer.Context,
    connector: Connector = None,
    message_id: Annotated[
        list[str] | None, typer.Option("--message-id", help="A message to replay (repeatable)")
    ] = None,
    status: Status = None,
    since: Since = "24h",
    until: Until = None,
    event_type: EventType = None,
    member: Member = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be replayed; change nothing")] = False,
    rate: Annotated[float, typer.Option(help="At most this many messages per second (0: no limit)")] = 10.0,
    force: Annotated[
        bool, typer.Option(help="Replay deliveries that did not fail too (mails keep their UniqueMessageID)")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
    stack: Stack = None,
    region: Region = None,
    local: Local = False,
    local_url: LocalUrl = None,
) -> None:
    """Replay through CONNECTOR's own queue: the messages given, or those matching the filters
    (by default FAILED in the last 24 h). Already delivered messages are skipped unless --force."""
    if ctx.invoked_subcommand is not None:
        return
    from dig_cli.replay import Replayer, ReplayFilter, candidates

    if not connector:
        raise usage("--connector is required: a replay goes through one connector's own queue")
    if message_id and (status or event_type or member):
        raise usage("give either --message-id or filters (--status, --event-type, --member), not both")
    wanted = ReplayFilter(
        connector=connector,
        message_ids=tuple(message_id or ()),
        status=status or DeliveryStatus.FAILED,
        event_type=event_type,
        member=member,
        window=None if message_id else time_window(since, until),
        window_text=(since, until),
    )
    target, store = connect(stack, region, local, local_url)
    if connector not in target.queues:
        raise usage(f"no connector {connector!r} in this stack (known: {', '.join(sorted(target.queues))})")
    found = list(candidates(store, wanted))
    replayer = Replayer(store, target.sqs(), target.queues[connector], target.region)
    left_over = replayer.left_over(wanted, force)
    if not found and not left_over:
        console.print("Nothing to replay.")
        return
    if found:
        _preview(found, force)
    if left_over:
        console.print(f"{left_over} message(s) left claimed by an interrupted run of this replay: completed now.")
    if dry_run:
        console.print("Dry run: nothing was changed or sent.")
        return
    total = len(found) + left_over
    if not yes and not typer.confirm(f"Replay these {total} message(s) through {connector}'s queue?"):
        errors.print("dig: nothing replayed")
        raise typer.Exit(1)
    with Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), console=console, transient=True) as bar:
        task = bar.add_task("replay", total=total)
        summary = replayer.run(
            wanted, found, force=force, operator=target.identity(), rate=rate, progress=lambda n: bar.advance(task, n)
        )
    skipped = ", ".join(f"{count} {reason}" for reason, count in sorted(summary.skipped.items())) or "none"
    console.print(
        f"run {summary.run_id}: replayed {summary.replayed}, skipped {sum(summary.skipped.values())} ({skipped}), "
        f"failed to enqueue {summary.failed_to_enqueue}"
        + (f" ({summary.adopted} left claimed by an interrupted run, completed now)" if summary.adopted else "")
    )
    where = f" --stack {stack}" + (f" --region {region}" if region else "")
    if local:
        where = " --local" + (f" --local-url {local_url}" if local_url else "")
    console.print(f"Follow it: dig replay status {summary.run_id}{where}")
    if summary.failed_to_enqueue:
        raise typer.Exit(1)


def _preview(found: list[Any], force: bool) -> None:
    by_status: dict[str, int] = {}
    for candidate in found:
        key = candidate.status.value if candidate.status else "(not recorded)"
        by_status[key] = by_status.get(key, 0) + 1
    table = Table(title=f"{len(found)} message(s) selected")
    for column in ("messageId", "event type", "member", "status now"):
        table.add_column(column)
    for candidate in found[:20]:
        table.add_row(
            candidate.message_id,
            candidate.event_type,
            candidate.member_id,
            candidate.status.value if candidate.status else "(not recorded)",
        )
    if len(found) > 20:
        table.add_row(f"... and {len(found) - 20} more", "", "", "")
    console.print(table)
    console.print("by status now: " + ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())))
    if not force and by_status.get("DELIVERED"):
        console.print(f"{by_status['DELIVERED']} already DELIVERED: they will be skipped (use --force to send again)")


@replay_app.command("status")
def replay_status(
    run_id: Annotated[str, typer.Argument(help="The run id a replay printed")],
    stack: Stack = None,
    region: Region = None,
    local: Local = False,
    local_url: LocalUrl = None,
) -> None:
    """Delivered, failed and pending for the messages of a replay run."""
    from dig_cli.replay import run_status

    _, store = connect(stack, region, local, local_url)
    run, counts = run_status(store, run_id)
    if run is None:
        errors.print(f"dig: no replay run {run_id}")
        raise typer.Exit(1)
    console.print(
        f"run {run.runId} ({run.state}) by {run.startedBy} at {run.startedAt}, {run.connector}, filter {run.filter}"
    )
    console.print(f"enqueued: {run.counts}")
    console.print("now: " + ", ".join(f"{counts[s.value]} {s.value}" for s in DeliveryStatus))
    if counts.get("FAILED"):
        sys.exit(1)


# --- dig dlq ----------------------------------------------------------------------------------------

dlq_app = typer.Typer(add_completion=False, help="A connector's dead-letter queue, next to the audit trail.")


@dlq_app.callback(invoke_without_command=True)
def dead_letters(
    ctx: typer.Context,
    connector: Annotated[str, typer.Option(help="Connector, e.g. optimove")],
    delete_resolved: Annotated[
        bool,
        typer.Option(
            "--delete-resolved",
            help="Delete what nothing waits on any more: events whose delivery is now DELIVERED or SKIPPED, "
            "provider callbacks whose call's results were kept or that no call in the log awaits, scheduled checks",
        ),
    ] = False,
    fail_stranded: Annotated[
        bool,
        typer.Option(
            "--fail-stranded",
            help="Record FAILED (replayable) the messages whose delivery still reads PENDING or was never "
            "recorded: the function timed out or crashed on their last receive",
        ),
    ] = False,
    limit: Annotated[int, typer.Option(help="Look at up to this many messages")] = 100,
    stack: Stack = None,
    region: Region = None,
    local: Local = False,
    local_url: LocalUrl = None,
) -> None:
    """List what sits in CONNECTOR's dead-letter queue with its audit status (an event: its delivery; a
    provider's callback: its call's results in the call log; the schedule's check); with --delete-resolved,
    remove what nothing waits on any more, such as what a replay has since delivered (the audit trail, not
    the queue, is what you replay from)."""
    if ctx.invoked_subcommand is not None:
        return
    from db.call_log import DynamoCallLog
    from dig_cli import replay as replay_logic
    from dig_cli.dead_letters import read_dead_letter, standing_of

    target, store = connect(stack, region, local, local_url)
    if connector not in target.dead_letter_queues:
        raise usage(f"no connector {connector!r} in this stack (known: {', '.join(sorted(target.dead_letter_queues))})")
    sqs, url = target.sqs(), target.dead_letter_queues[connector]
    seen: dict[str, dict[str, Any]] = {}
    while len(seen) < limit:
        # Hidden for the scan, then visible again at once (below): looking must not take them away.
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=0)
        messages = answer.get("Messages", [])
        if not messages:
            break
        for message in messages:
            seen.setdefault(message["MessageId"], message)
    letters = [read_dead_letter(sqs_id, message["Body"]) for sqs_id, message in seen.items()]
    deliveries = store.get_deliveries(connector, [letter.event.messageId for letter in letters if letter.event])
    calls = DynamoCallLog(store.table)
    table = Table(title=f"{len(seen)} message(s) in {connector}'s dead-letter queue")
    for column in ("messageId", "audit status", "last error", "action"):
        table.add_column(column, overflow="fold")
    deleted = failed = 0
    deleted_ids: set[str] = set()
    for letter in letters:
        standing = standing_of(letter, deliveries, lambda call_id: calls.status(connector, call_id))
        action = ""
        event = letter.event if fail_stranded else None  # only an event's delivery can be stranded
        if event is not None and replay_logic.fail_stranded(store, connector, event, standing.delivery):
            failed += 1
            action = "recorded FAILED"
        if delete_resolved and standing.resolved:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=seen[letter.sqs_id]["ReceiptHandle"])
            deleted += 1
            deleted_ids.add(letter.sqs_id)
            action = "deleted"
        table.add_row(letter.shown_id, standing.status, standing.note, action)
    kept = [m for sqs_id, m in seen.items() if sqs_id not in deleted_ids]
    for start in range(0, len(kept), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(kept[start : start + 10])
            ],
        )
    console.print(table)
    if fail_stranded:
        console.print(f"recorded {failed} stranded message(s) FAILED; replay: dig replay --connector {connector} ...")
    if delete_resolved:
        console.print(
            f"deleted {deleted}; the others stay (replay FAILED ones: dig replay --connector {connector} ...)"
        )


# --- dig member forget ---------------------------------------------------------------------------

member_app = typer.Typer(add_completion=False, help="A member's personal data.")


@member_app.command("show")
def member_show(
    member_id: Annotated[str, typer.Argument(help="ES Loyalty's member id")],
    reveal: Annotated[bool, typer.Option("--reveal", help="Show the email and mobile number in full")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON")] = False,
    stack: Stack = None,
    region: Region = None,
    local: Local = False,
    local_url: LocalUrl = None,
) -> None:
    """The contact data DIG holds for a member (what its mails and SMS are addressed by) and where it came
    from: an event (its eventId) or ES Loyalty's memberAccounts extract (its fileId). Masked unless --reveal."""
    from db.contacts import DynamoContactStore
    from db.table import Table as AuditTable

    target, _ = connect(stack, region, local, local_url)
    contact = DynamoContactStore(AuditTable(target.dynamodb(), target.audit_table)).get([member_id]).get(member_id)
    if contact is None:
        message = f"member {member_id}: no contact data held (never seen with one, expired, or erased)"
        if as_json:
            print(json.dumps({"memberId": member_id, "contact": None}))
        else:
            console.print(message)
        raise typer.Exit(1)
    shown = {
        "memberId": member_id,
        "email": contact.email if reveal else mask_email(contact.email),
        "locale": contact.locale,
        "since": contact.seen_at,
        "source": contact.source or "(kept before sources were recorded)",
        "mobile": contact.mobile if reveal else mask_number(contact.mobile),
        "smsOptIn": contact.sms_opt_in,
        "expiresAt": datetime.fromtimestamp(contact.expires_at, UTC).isoformat(timespec="seconds"),
    }
    if as_json:
        print(json.dumps(shown))
        return
    for key, value in shown.items():
        console.print(f"{key:>10}: {value if value is not None else '-'}")


def mask_email(email: str | None) -> str | None:
    if not email or "@" not in email:
        return email
    local_part, _, domain = email.partition("@")
    return f"{local_part[:1]}***@{domain}"


def mask_number(number: str | None) -> str | None:
    return None if not number else "*" * (len(number) - 3) + number[-3:]


@member_app.command("forget")
def member_forget(
    member_id: Annotated[str, typer.Argument(help="ES Loyalty's member id")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
    stack: Stack = None,
    region: Region = None,
    local: Local = False,
    local_url: LocalUrl = None,
) -> None:
    """Erase a member's personal data (an erasure request): the payload of each of their messages in the
    audit trail, their contact data (email, locale), every connector's delivery state for them, and what a
    connector keeps of them itself (its manifest's member_erasure: CataBoom's account references).
    Statuses stay, with the member id; an erased message can no longer be replayed."""
    from db.erasure import forget_member
    from dig_contracts.registry import installed_connectors, member_erasure

    _, store = connect(stack, region, local, local_url)
    if not yes and not typer.confirm(f"Erase member {member_id}'s personal data from the audit trail?"):
        raise typer.Exit(1)
    manifests = list(installed_connectors())
    erasures = {m.name: erase for m in manifests if (erase := member_erasure(m)) is not None}
    report = forget_member(store, member_id, [m.name for m in manifests], erasures)
    own = ", ".join(f"{name} {count} item(s)" for name, count in report.connector_items.items())
    console.print(
        f"member {member_id}: {len(report.messages)} message payload(s) erased, contact data "
        f"{'erased' if report.contact else 'none held'}, delivery state erased for: "
        f"{', '.join(report.connectors) or 'no connector'}" + (f"; connectors' own items erased: {own}" if own else "")
    )
