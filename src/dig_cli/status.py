"""``dig status``: the whole pipeline on one screen, and a verdict a script can act on.

gather() reads the figures (SQS, the audit table, the configuration table, CloudWatch's alarms),
verdict() judges them (pure: unit-tested on canned figures), render() draws them with Rich.
Exit code 0 when healthy, 1 when something needs attention.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from db.records import DeliveryStatus, utc_now
from dig_cli.console import console, styled
from dig_cli.target import Target

if TYPE_CHECKING:
    from db.table import Table as AuditTable
    from dig_contracts.manifest import ConnectorManifest

OLDEST_MESSAGE_ATTENTION_SECONDS = 15 * 60  # the same as the queue-age alarm
# The deliveries the status index holds (db.audit); delivered and skipped ones are counted per day.
INDEXED_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)
WINDOW = timedelta(hours=1)
REPLAY_LOOKBACK = timedelta(days=1)


@dataclass
class LastFailure:
    message_id: str
    at: str
    error: str | None
    call: str | None = None  # the provider call of its last attempt, and its answer
    answer: str | None = None


@dataclass
class ReplayProgress:
    run_id: str
    pending: int
    delivered: int
    failed: int


@dataclass
class DailyCalls:
    day: str
    calls: int


@dataclass
class ConnectorFigures:
    name: str
    waiting: int = 0
    in_flight: int = 0
    oldest_seconds: int | None = None  # only CloudWatch knows it (not the local stack)
    dead_letters: int = 0
    rule_target_dead_letters: int = 0
    last_hour: dict[str, int] = field(default_factory=dict)
    last_failure: LastFailure | None = None
    replays: list[ReplayProgress] = field(default_factory=list)
    config_version: int | None = None
    takes_config: bool = True  # its manifest names a configuration parser (ES Loyalty's connector takes none)
    today: dict[str, int] = field(default_factory=dict)  # its own counts of the UTC day (db.counters)
    # The calls counted against the provider's daily quota on its last counted day (its manifest's
    # daily_quota_key; the day is the provider's own: Marketo's is US Central's).
    quota_calls: DailyCalls | None = None


@dataclass
class Alarm:
    name: str
    reason: str


@dataclass
class Figures:
    where: str  # "--local" or "--stack NAME": the options of the commands it suggests
    at: str
    connectors: list[ConnectorFigures]
    alarms: list[Alarm] = field(default_factory=list)


@dataclass
class Verdict:
    problems: list[str]

    @property
    def healthy(self) -> bool:
        return not self.problems

    def line(self) -> str:
        if self.healthy:
            return "healthy"
        return f"needs attention: {len(self.problems)} problem(s)"


def verdict(figures: Figures) -> Verdict:
    """What needs attention, each with the command that shows more."""
    where = figures.where
    problems: list[str] = []
    for c in figures.connectors:
        failed = c.last_hour.get(DeliveryStatus.FAILED, 0)
        if failed:
            last = c.last_failure
            cause = ""
            if last is not None:
                cause = f"; last: {last.call} {last.answer}" if last.call else ""
                cause += f" ({last.error})" if last.error else ""
            problems.append(
                f"{c.name}: {failed} delivery(ies) FAILED in the last hour{cause} -> "
                f"dig audit list --connector {c.name} --status FAILED --since 1h {where}"
            )
        if c.dead_letters:
            problems.append(
                f"{c.name}: {c.dead_letters} message(s) in the dead-letter queue -> "
                f"dig dlq --connector {c.name} {where}"
            )
        if c.rule_target_dead_letters:
            problems.append(
                f"{c.name}: {c.rule_target_dead_letters} event(s) EventBridge could not put on the queue -> "
                f"README runbook, 'A poison message in a dead-letter queue'"
            )
        if c.oldest_seconds is not None and c.oldest_seconds >= OLDEST_MESSAGE_ATTENTION_SECONDS:
            problems.append(
                f"{c.name}: a message has waited {c.oldest_seconds // 60} min (the provider may be down) -> "
                f"dig audit list --connector {c.name} --status PENDING --since 1h {where}"
            )
        if c.config_version is None and c.takes_config:
            problems.append(f"{c.name}: no configuration -> dig config push {c.name} FILE {where}")
    for alarm in figures.alarms:
        problems.append(f"alarm {alarm.name}: {alarm.reason}")
    return Verdict(problems)


# --- the figures ------------------------------------------------------------------------------------


def gather(target: Target, now: datetime | None = None) -> Figures:
    from db.audit import DynamoAuditStore
    from db.counters import DynamoCounters
    from db.queries import AuditQueries, Window
    from db.table import Table as AuditTable
    from dig_cli.replay import run_status

    now = now or utc_now()
    store = DynamoAuditStore(target.dynamodb(), target.audit_table)
    queries = AuditQueries(store)
    sqs = target.sqs()
    configs = target.config_store()
    table = AuditTable(target.dynamodb(), target.audit_table)
    counters = DynamoCounters(table)
    today = now.astimezone(UTC).date().isoformat()
    window = Window(now - WINDOW, now)
    connectors = []
    for name, queue_url in sorted(target.queues.items()):
        figures = ConnectorFigures(name)
        lane_queues = [queue_url, *([target.immediate_queues[name]] if name in target.immediate_queues else [])]
        for lane_queue in lane_queues:  # both lanes are one connector: their figures add up
            attributes = _queue_attributes(sqs, lane_queue)
            figures.waiting += attributes.get("ApproximateNumberOfMessages", 0)
            figures.in_flight += attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
        if name in target.dead_letter_queues:
            figures.dead_letters = _queue_attributes(sqs, target.dead_letter_queues[name]).get(
                "ApproximateNumberOfMessages", 0
            )
        if name in target.rule_target_dead_letter_queues:
            figures.rule_target_dead_letters = _queue_attributes(sqs, target.rule_target_dead_letter_queues[name]).get(
                "ApproximateNumberOfMessages", 0
            )
        # The status index holds what an operator acts on; delivered and skipped are the day's counts.
        figures.last_hour = {s.value: queries.count_deliveries(name, s, window) for s in INDEXED_STATUSES}
        failed = next(queries.deliveries_by_status(name, DeliveryStatus.FAILED, window), None)
        if failed is not None:
            last = failed.attempts[-1] if failed.attempts else None
            figures.last_failure = LastFailure(
                failed.messageId,
                failed.updatedAt,
                failed.lastError,
                last.call if last else None,
                last.status if last else None,
            )
        for run_id in queries.runs_since(name, now - REPLAY_LOOKBACK):
            run, counts = run_status(store, run_id)
            if run is not None and (run.state == "RUNNING" or counts.get(DeliveryStatus.PENDING, 0)):
                figures.replays.append(
                    ReplayProgress(
                        run_id,
                        counts.get(DeliveryStatus.PENDING, 0),
                        counts.get(DeliveryStatus.DELIVERED, 0),
                        counts.get(DeliveryStatus.FAILED, 0),
                    )
                )
        stored = configs.current(name)
        figures.config_version = stored.version if stored is not None else None
        manifest = _manifest(name)
        figures.takes_config = manifest is None or manifest.config_parser is not None
        figures.today = counters.read(name, [today]).get(today, {})
        if manifest is not None and manifest.daily_quota_key:
            figures.quota_calls = _quota_calls(table, manifest.daily_quota_key)
        if not target.local:
            ages = [age for q in lane_queues if (age := _oldest_message_seconds(target, q, now)) is not None]
            figures.oldest_seconds = max(ages, default=None)
        connectors.append(figures)
    alarms = [] if target.local else _alarms_in_alarm(target)
    return Figures(where=target.where(), at=now.isoformat(timespec="seconds"), connectors=connectors, alarms=alarms)


def _queue_attributes(sqs: Any, queue_url: str) -> dict[str, int]:
    answer = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    return {k: int(v) for k, v in answer.get("Attributes", {}).items()}


def _oldest_message_seconds(target: Target, queue_url: str, now: datetime) -> int | None:
    answer = target.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/SQS",
        MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": queue_url.rsplit("/", 1)[-1]}],
        StartTime=now - timedelta(minutes=10),
        EndTime=now,
        Period=60,
        Statistics=["Maximum"],
    )
    points = sorted(answer.get("Datapoints", []), key=lambda p: p["Timestamp"])
    return int(points[-1]["Maximum"]) if points else None


def _alarms_in_alarm(target: Target) -> list[Alarm]:
    assert target.stack is not None
    pages = (
        target.client("cloudwatch")
        .get_paginator("describe_alarms")
        .paginate(AlarmNamePrefix=f"{target.stack}-", StateValue="ALARM")
    )
    return [
        Alarm(alarm["AlarmName"], alarm.get("StateReason", ""))
        for page in pages
        for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]
    ]


# --- the screen ------------------------------------------------------------------------------------


def render(figures: Figures, judged: Verdict, console: Console) -> None:
    table = Table(title=f"DIG pipeline {figures.where} at {figures.at}")
    for column in (
        "connector",
        "queue (in flight)",
        "oldest",
        "dead letters",
        "last hour (pending, failed)",
        "last failure",
        "replays",
        "config",
        "today (delivered, skipped, ...)",
    ):
        table.add_column(column, overflow="fold")
    for c in figures.connectors:
        last_hour = ", ".join(f"{count} {status}" for status, count in c.last_hour.items() if count) or "none"
        failure = "-"
        if c.last_failure is not None:
            failure = f"{c.last_failure.at} {c.last_failure.call or ''} {c.last_failure.answer or ''}: "
            failure += (c.last_failure.error or "")[:160]
        replays = ", ".join(f"{r.run_id}: {r.pending} pending" for r in c.replays) or "-"
        table.add_row(
            c.name,
            f"{c.waiting} ({c.in_flight})",
            "-" if c.oldest_seconds is None else f"{c.oldest_seconds} s",
            f"{c.dead_letters}"
            + (f" + {c.rule_target_dead_letters} rule target" if c.rule_target_dead_letters else ""),
            last_hour,
            failure,
            replays,
            ("none" if c.takes_config else "-") if c.config_version is None else f"v{c.config_version}",
            ", ".join(
                [f"{value} {key}" for key, value in sorted(c.today.items())]
                + ([f"{c.quota_calls.calls} calls of its quota ({c.quota_calls.day})"] if c.quota_calls else [])
            )
            or "-",
        )
    console.print(table)
    for alarm in figures.alarms:
        console.print(styled(("ALARM", "red"), f" {alarm.name}: {alarm.reason}"))
    if judged.healthy:
        console.print("healthy", style="bold green")
    else:
        console.print(judged.line(), style="bold red")
        for problem in judged.problems:
            console.print(f"- {problem}", soft_wrap=True)


def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="The figures and the verdict as JSON")] = False,
    watch: Annotated[float, typer.Option(help="Refresh every this many seconds until Ctrl-C (0: once)")] = 0,
    stack: Annotated[str | None, typer.Option(help="Deployed stack name, e.g. Dig-dev")] = None,
    region: Annotated[str | None, typer.Option(help="AWS region of the stack")] = None,
    local: Annotated[bool, typer.Option("--local", help="The running local stack")] = False,
    local_url: Annotated[str | None, typer.Option(help="URL of the local stack (default: the running one)")] = None,
) -> None:
    """The pipeline at a glance: queues, dead letters, the last hour's deliveries, the last failure,
    replays, configuration and alarms; exit code 0 when healthy, 1 when something needs attention."""
    from dig_cli.target import resolve

    target = resolve(stack=stack, region=region, local=local, local_url=local_url)
    while True:
        figures = gather(target)
        judged = verdict(figures)
        if as_json:
            print(json.dumps({**asdict(figures), "healthy": judged.healthy, "problems": judged.problems}, indent=2))
        else:
            if watch:
                console.clear()
            render(figures, judged, console)
        if not watch:
            raise typer.Exit(0 if judged.healthy else 1)
        time.sleep(watch)


def _manifest(connector: str) -> ConnectorManifest | None:
    from dig_contracts.registry import installed_connectors

    return next((m for m in installed_connectors() if m.name == connector), None)


def _quota_calls(table: AuditTable, key: str) -> DailyCalls | None:
    from dig_connector_kit.ratelimit import ProviderWindow

    read = ProviderWindow(table, key, time.time).read()
    return DailyCalls(read.quota_day, read.quota_used) if read.quota_day else None
