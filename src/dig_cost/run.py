"""Drive events through the local stack's real handlers with every AWS request metered.

The handlers run in this process (the local stack's gateway, its pollers standing in for the event
source mappings), moto in its own; the meter counts what the handlers ask of AWS, the wrapper times
each invocation, and what the handlers log is counted in bytes at the level a deployed function logs
(INFO). A warm-up event goes first, so that loading configuration and secrets, which a warm function
does once, is not counted per event.
"""

from __future__ import annotations

import io
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from dig_cost.latency import request_seconds
from dig_cost.meter import AwsMeter, Usage, Waits, covered, current_function, current_waits

SETTLE_CHECKS = 3  # consecutive looks at empty connector queues before the run counts as done
# At a paced rate, the batch route's client posts what arrived every this many seconds (at most 500).
BATCH_EVERY_SECONDS = 10.0
# The default event mix (README, "What a million events cost"): attribute updates most, then what a
# member waits for. Each share is out of 20, and the events cycle through it in this order.
DEFAULT_MIX: tuple[tuple[str, int], ...] = (
    ("MEMBER_REGISTRATION", 2),
    ("MEMBER_PROFILE_UPDATE", 12),
    ("OPT_IN_EMAIL", 2),
    ("REDEMPTION", 2),
    ("MEMBER_TIER", 2),
)
# Mailed without an email of their own: sent to the member the last registration introduced.
MAILED_TO_KNOWN_MEMBERS = frozenset({"MEMBER_TIER"})


def member_event(event_type: str, event_id: str, member_id: str) -> dict[str, Any]:
    """The example event of ``event_type`` for ``member_id``, with the member's own email address where the
    event carries one: a provider keys its contacts by email (Marketo's leads), so one address shared by
    every member would make every upsert wait for the one before it, which no program's traffic does."""
    from dig_contracts.examples import example_event

    event = example_event(event_type, eventId=event_id, memberId=member_id)
    data = event.get("data")
    if isinstance(data, dict) and "email" in data:
        data["email"] = f"{member_id.lower()}@example.com"
    return event


def mix_sequence(mix: tuple[tuple[str, int], ...]) -> list[str]:
    """One cycle of the mix, its types interleaved (a round robin by share), not in runs."""
    left = {name: share for name, share in mix}
    order: list[str] = []
    while any(left.values()):
        for name, _ in mix:
            if left[name]:
                order.append(name)
                left[name] -= 1
    return order


class Route(StrEnum):
    BATCH = "batch"  # POST /v1/events/batch, 500 events a request
    SINGLE = "single"  # POST /v1/events, one event a request
    FILE = "file"  # one JSON-lines events file through POST /v1/files and the file flow


# The parts of an invocation's time (Invocations.breakdown), beside "measured", its wall time here.
# "own_idle": the part of "own" the invocation's thread spent without the CPU (sleeping on a rate limiter,
# a concurrency gate or a backoff; waiting for the interpreter lock here), which Lambda bills as time
# but which no CPU share stretches.
TIME_PARTS = ("meter", "aws_local", "aws_in_region", "provider", "own", "own_idle")


@dataclass
class Invocations:
    """Each handler's invocations and their time: the wall time as measured here, and its parts (seconds
    in all, by handler): what the meter itself read (``meter``: not the handler's), the AWS requests as
    moto answered (``aws_local``) and at in-region latency (``aws_in_region``, latency.py), the provider
    calls as the simulators answered (``provider``), and the handler's own rest (``own``), of which
    ``own_idle`` its thread spent off the CPU."""

    count: Counter[str] = field(default_factory=Counter)
    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    parts: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wrap(self, dotted: str, handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        def timed(event: Any, context: Any) -> Any:
            waits = Waits()
            started, cpu_started = time.perf_counter(), time.thread_time()
            token = current_function.set(dotted)
            waits_token = current_waits.set(waits)
            try:
                return handler(event, context)
            finally:
                current_waits.reset(waits_token)
                current_function.reset(token)
                self._add(dotted, time.perf_counter() - started, waits, cpu=time.thread_time() - cpu_started)

        return timed

    def _add(self, dotted: str, wall: float, waits: Waits, *, cpu: float | None = None) -> None:
        """``cpu``: the CPU time of the invocation's thread, when measured. It also holds what that thread
        spent inside the requests (botocore's work, the meter's), so the idle part it leaves is a lower
        bound: only time clearly off the CPU is taken out of the stretch."""
        with waits.lock:
            aws = [span for _, span in waits.aws]
            measured = sum(end - start for start, end in aws)
            assumed = sum(request_seconds(call) for call, _ in waits.aws)
            aws_local = covered(aws)
            parts = {
                "meter": covered(waits.meter),
                "aws_local": aws_local,
                # Overlapping requests (a handler's parallel batch writes) keep their overlap at AWS's pace.
                "aws_in_region": aws_local * assumed / measured if measured > 0 else 0.0,
                "provider": covered(waits.provider),
                "own": max(wall - covered([*waits.meter, *aws, *waits.provider]), 0.0),
            }
            parts["own_idle"] = max(parts["own"] - cpu, 0.0) if cpu is not None else 0.0
        with self.lock:
            self.count[dotted] += 1
            self.seconds[dotted] += wall
            self.parts[dotted].update(parts)

    def reset(self) -> None:
        with self.lock:
            self.count.clear()
            self.seconds.clear()
            self.parts.clear()

    def breakdown(self) -> dict[str, dict[str, float]]:
        """handler -> "measured" and each of TIME_PARTS, in seconds (for the report)."""
        with self.lock:
            return {
                handler: {
                    "measured": round(self.seconds[handler], 4),
                    **{part: round(self.parts[handler][part], 4) for part in TIME_PARTS},
                }
                for handler in self.count
            }


@dataclass
class Measurement:
    route: Route
    event_type: str
    events: int
    accepted: int
    api_requests: int
    usage: Usage
    invocations: dict[str, int]
    seconds: dict[str, float]
    log_bytes: int
    memory_mb: dict[str, int]
    wall_seconds: float
    calls_by_function: dict[str, list[str]] = field(default_factory=dict)  # handler -> "service:Operation"
    per_second: float | None = None  # the paced arrival rate, None: as fast as the stack took them
    metrics_emitted: tuple[str, ...] = ()  # "<handler>:<metric>": the custom metrics the handlers emitted
    batching_window_seconds: float | None = None  # every lane's window, if shortened (None: the manifests')
    # handler -> its seconds by part: measured, meter, aws_local, aws_in_region, provider, own (Invocations)
    time_parts: dict[str, dict[str, float]] = field(default_factory=dict)


class _CountingStream(io.TextIOBase):
    """Stands in for standard output: counts what the handlers' loggers write, and drops it."""

    def __init__(self) -> None:
        self.bytes = 0
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self.bytes += len(text.encode())
        return len(text)

    def reset(self) -> int:
        with self._lock:
            done, self.bytes = self.bytes, 0
        return done


@contextmanager
def _stdout_counted() -> Iterator[_CountingStream]:
    stream, original = _CountingStream(), sys.stdout
    sys.stdout = stream  # the handlers' loggers bind to it when the local stack imports them
    try:
        yield stream
    finally:
        sys.stdout = original


def measure(
    route: Route,
    events: int,
    event_type: str = "MEMBER_PROFILE_UPDATE",
    batch_size: int = 500,
    *,
    per_second: float | None = None,
    mix: tuple[tuple[str, int], ...] | None = None,
    batching_window_seconds: float | None = None,
) -> Measurement:
    """``per_second``: post at that pace (single: one at a time; batch: what arrived, every
    BATCH_EVERY_SECONDS), so that the connectors' batching windows gather what a program's traffic
    gives them; None: as fast as the stack takes them. ``mix``: event types and shares (else one type).
    ``batching_window_seconds``: every lane's window (None: each manifest's, as in AWS)."""
    import boto3
    import httpx

    from dig_contracts import functions
    from dig_local import resources
    from dig_local import stack as local_stack
    from dig_local.resources import local_token
    from dig_local.stack import LocalStack

    invocations = Invocations()
    meter = AwsMeter()
    with _stdout_counted() as logs, meter.installed():
        # Each connector batches with its manifest's window, as its event source mapping does in AWS,
        # unless the caller shortens every window.
        stack = LocalStack(
            port=0,
            quiet=False,
            wrap_handler=invocations.wrap,
            batching_window_seconds=batching_window_seconds,
            coalescing_pollers_as_aws=True,  # a low rate's batches no larger than AWS would make them
        )
        stack.start()
        try:
            assert stack.resources is not None
            session = meter.unmetered(boto3.session.Session(region_name=resources.LOCAL_REGION))
            sqs = session.client("sqs", endpoint_url=stack.aws_endpoint)
            meter.attach(
                session.client("dynamodb", endpoint_url=stack.aws_endpoint), config_table=stack.resources.config_table
            )
            queues = [
                c.lane_queue(lane.name)[0] for c in stack.resources.connectors.values() for lane in c.manifest.lanes
            ]
            token = {"Authorization": f"Bearer {local_token('dig-cost', hours=2)}"}
            with httpx.Client(base_url=stack.url, headers=token, timeout=120) as http:
                members = [f"COST-{i:07d}" for i in range(events + 1)]
                http.post("/_sim/optimove/customers", json={"customers": members})

                types = mix_sequence(mix) if mix else [event_type]
                member_of: list[str] = []
                last_registered: str | None = None
                for i in range(events + 1):
                    kind = types[i % len(types)]
                    known = kind in MAILED_TO_KNOWN_MEMBERS and last_registered is not None
                    member_of.append(last_registered if known and last_registered else members[i])
                    if kind == "MEMBER_REGISTRATION":
                        last_registered = members[i]

                def event(i: int) -> dict[str, Any]:
                    kind = types[i % len(types)]
                    return member_event(kind, f"cost-{time.time_ns()}-{i}", member_of[i])

                # Warm-up: the handlers are imported already (at start); this loads configuration and secrets.
                http.post("/v1/events", json=event(events))
                _wait_drained(sqs, queues)
                meter.reset()
                invocations.reset()
                logs.reset()
                local_stack.EMF_BYTES.reset()

                started = time.perf_counter()
                accepted = requests = 0
                if route is Route.BATCH:
                    size = batch_size
                    if per_second is not None:
                        size = max(1, min(batch_size, round(per_second * BATCH_EVERY_SECONDS)))
                    for number, start in enumerate(range(0, events, size)):
                        if per_second is not None:
                            _pace(started, number * size / per_second)
                        batch = [event(i) for i in range(start, min(start + size, events))]
                        results = http.post("/v1/events/batch", json={"events": batch}).json()["results"]
                        accepted += sum(1 for r in results if r["status"] == "accepted")
                        requests += 1
                elif route is Route.SINGLE:
                    for i in range(events):
                        if per_second is not None:
                            _pace(started, i / per_second)
                        accepted += http.post("/v1/events", json=event(i)).status_code == 202
                        requests += 1
                else:
                    accepted = _send_file(http, [event(i) for i in range(events)])
                    requests = 2  # the declaration, and the file's status when done
                _wait_drained(sqs, queues)
                wall = time.perf_counter() - started
                usage = meter.reset()
        finally:
            stack.stop()
        memory = {f.handler: f.memory_mb for f in functions.CORE_FUNCTIONS}
        memory.update({m.handler: m.memory_mb for m in stack.manifests})
        time_parts = invocations.breakdown()
        with invocations.lock:
            return Measurement(
                route=route,
                event_type="default mix" if mix else event_type,
                events=events,
                accepted=accepted,
                api_requests=requests,
                usage=usage,
                invocations=dict(invocations.count),
                seconds=dict(invocations.seconds),
                # The handlers' lines, and the metric documents they would print deployed (EMF: billed as logs).
                log_bytes=logs.reset() + local_stack.EMF_BYTES.reset(),
                memory_mb=memory,
                wall_seconds=wall,
                calls_by_function=_by_function(meter.calls_by_function),
                per_second=per_second,
                metrics_emitted=tuple(sorted(f"{handler}:{name}" for handler, name in local_stack.EMITTED_METRICS)),
                batching_window_seconds=batching_window_seconds,
                time_parts=time_parts,
            )


def _pace(started: float, at_seconds: float) -> None:
    """Wait until ``at_seconds`` after ``started`` (perf_counter): arrivals at a program's pace."""
    time.sleep(max(0.0, started + at_seconds - time.perf_counter()))


def _send_file(http: Any, events: list[dict[str, Any]]) -> int:
    """Upload ``events`` as a JSON-lines file the way `dig files upload` does; the lines it accepted."""
    import json
    import tempfile
    from pathlib import Path

    import httpx

    from dig_cli.files import Uploader, describe

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "events.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for e in events))
        with httpx.Client(timeout=120) as storage:
            uploader = Uploader(http, storage)
            upload = uploader.declare(describe(path, kind="events", name=None, on_bytes=lambda _: None))
            uploader.upload(path, upload["upload"], lambda _: None)
            view = uploader.wait(upload["fileId"], timeout=1800, on_progress=lambda _: None, interval=0.5)
    if view["status"] != "COMPLETED":
        raise RuntimeError(f"the file ended {view['status']}: {view.get('failure')}")
    return int(view["counts"]["accepted"])


def _by_function(calls: Counter[tuple[str, str, str]]) -> dict[str, list[str]]:
    by_function: dict[str, set[str]] = defaultdict(set)
    for handler, service, operation in calls:
        if handler:  # "": the stack's own requests (the pollers, standing in for event source mappings)
            by_function[handler].add(f"{service}:{operation}")
    return {handler: sorted(calls) for handler, calls in sorted(by_function.items())}


def _wait_drained(sqs: Any, queue_urls: list[str], timeout: float = 1800) -> None:
    """Until every connector queue is empty, visible and in flight, several looks in a row."""
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    deadline = time.monotonic() + timeout
    empty = 0
    while time.monotonic() < deadline:
        counts = [sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"] for url in queue_urls]
        empty = empty + 1 if all(v == "0" for c in counts for v in c.values()) else 0
        if empty >= SETTLE_CHECKS:
            return
        time.sleep(0.5)
    raise TimeoutError(f"the connector queues did not drain within {timeout} s")
