"""Every AWS request the handlers make, counted with what AWS bills for it, through botocore's event
hooks on every boto3 session created once the meter is installed.

DynamoDB bills a write on the larger of the item before and after it, plus a write to each global
secondary index whose projection the change touches (two when the index key changes); a conditional
write that is refused is still billed. To know the item before and after, the meter reads it with a
client of its own, which it does not count. Reads are billed on the size of what they read, at least
one unit per item (half for an eventually consistent read).

Inside an invocation (``current_waits`` set) it also times what the invocation waited on: each AWS
request from its first send to its answer, its own reads and accounting (which are not the handler's
time, and which it does in the handler's thread), and each provider call through httpx; run.Invocations
takes the invocation's time apart with them.
"""

from __future__ import annotations

import contextvars
import json
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from dig_contracts.bus import BUS_SOURCE
from dig_contracts.inbound import INBOUND_SOURCE
from dig_cost.units import chunks_64k, item_size, read_units, write_units

Item = dict[str, Any]
# The handler making a request (module.function), set around each invocation; carried into the
# threads a handler starts (the meter hands its context to each task an executor runs).
current_function: contextvars.ContextVar[str] = contextvars.ContextVar("current_function", default="")

Interval = tuple[float, float]  # (start, end) on time.perf_counter()


@dataclass
class Waits:
    """What one invocation waited on, beside its own work: the meter's own reads (not the handler's),
    each AWS request (with its service) and each provider call. Threads the handler starts add to the
    same instance (the invocation's context is carried into them)."""

    meter: list[Interval] = field(default_factory=list)
    aws: list[tuple[str, Interval]] = field(default_factory=list)
    provider: list[Interval] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


current_waits: contextvars.ContextVar[Waits | None] = contextvars.ContextVar("current_waits", default=None)


def covered(intervals: list[Interval]) -> float:
    """Seconds covered by ``intervals``, overlaps counted once (calls made in parallel threads)."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


@dataclass
class Usage:
    """What the metered requests add up to."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)  # (service, operation) -> requests
    # Billed units, some of them halves (eventually consistent reads).
    units: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))  # price key -> units
    write_units_by_purpose: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    read_units_by_purpose: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    bus_deliveries: int = 0  # messages EventBridge put on connector queues (SQS requests it makes)
    empty_receives: int = 0
    # What the writes left stored in DynamoDB, items and index entries (each with DynamoDB's 100 bytes of
    # overhead), net of what they replaced, by what the items are for: storage and PITR are billed on it.
    stored_bytes_by_purpose: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    archived_bytes: float = 0.0  # the events the bus archive keeps (source dig.*)
    # Requests the connectors' handlers sent to their providers (the simulators here), by connector.
    provider_calls: Counter[str] = field(default_factory=Counter)
    # The same by (connector, endpoint): the request's path, number segments as {n} (provider_endpoint).
    provider_endpoints: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def stored_bytes(self) -> float:
        """What the writes left stored, all purposes."""
        return sum(self.stored_bytes_by_purpose.values())

    def add(self, other: Usage) -> None:
        self.calls.update(other.calls)
        self.provider_calls.update(other.provider_calls)
        self.provider_endpoints.update(other.provider_endpoints)
        for mine, theirs in (
            (self.units, other.units),
            (self.write_units_by_purpose, other.write_units_by_purpose),
            (self.read_units_by_purpose, other.read_units_by_purpose),
            (self.stored_bytes_by_purpose, other.stored_bytes_by_purpose),
        ):
            for key, value in theirs.items():
                mine[key] += value
        self.bus_deliveries += other.bus_deliveries
        self.empty_receives += other.empty_receives
        self.archived_bytes += other.archived_bytes


def connector_of(handler: str) -> str | None:
    """The connector a handler's dotted path belongs to (``connectors.<name>.handler.…``), else None."""
    parts = handler.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "connectors" else None


def provider_endpoint(connector: str, path: str) -> str:
    """A request's path as one endpoint: after a simulator's ``/_sim/<connector>`` prefix, a segment that is
    a number as {n} (Marketo's campaign ids, say), so that calls to one endpoint count together."""
    _, _, rest = path.partition(f"/_sim/{connector}")
    return re.sub(r"(?<=/)\d+(?=/|$)", "{n}", rest or path) or "/"


def purpose(table: str, key: Mapping[str, Any], config_table: str | None = None) -> str:
    """What an item of DIG's tables is for, from its key (db/audit.py lists the layout)."""
    if config_table is not None and table == config_table:
        return "configuration"
    pk = str(key.get("pk", {}).get("S", ""))
    sk = str(key.get("sk", {}).get("S", ""))
    if pk.startswith("MSG#"):
        if sk == "MESSAGE":
            return "audit: message records"
        if sk.startswith("DELIVERY#"):
            return "audit: delivery records"
        if sk.startswith("OP#"):
            return "operations ledger"
    prefixes = {
        "STATE#": "watermarks",
        "CALL#": "call log",
        "CALLS#": "call log",
        "LIMIT#": "rate limiter and concurrency gate",  # one item a key (dig_connector_kit.ratelimit)
        "CONTACT#": "member contacts",
        "CONTACTEMAIL#": "member contacts",  # the email lookup beside each contact
        "RUN#": "replay runs",
        "RUNS#": "replay runs",
        "FILE#": "files",
        "CONNECTOR#": "configuration",
        "COUNTS#": "daily counts",
    }
    return next((name for prefix, name in prefixes.items() if pk.startswith(prefix)), "other")


def _from_bus(body: str) -> bool:
    try:
        document = json.loads(body)
    except ValueError:
        return False
    return isinstance(document, dict) and str(document.get("source", "")).startswith("dig.")


def _waited(waits: Waits | None, started: float) -> None:
    if waits is not None:
        with waits.lock:
            waits.meter.append((started, time.perf_counter()))


class TableShapes:
    """Each table's key attributes and global secondary indexes, read once with the meter's client."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._known: dict[str, tuple[tuple[str, ...], list[tuple[tuple[str, ...], Any]]]] = {}
        self._lock = threading.Lock()

    def get(self, table: str) -> tuple[tuple[str, ...], list[tuple[tuple[str, ...], Any]]]:
        with self._lock:
            if table not in self._known:
                description = self._client.describe_table(TableName=table)["Table"]
                keys = tuple(k["AttributeName"] for k in description["KeySchema"])
                indexes = [
                    (tuple(k["AttributeName"] for k in index["KeySchema"]), index["Projection"])
                    for index in description.get("GlobalSecondaryIndexes", [])
                ]
                self._known[table] = (keys, indexes)
            return self._known[table]


def _projected(item: Item | None, keys: tuple[str, ...], table_keys: tuple[str, ...], projection: Any) -> Item | None:
    if not item or not all(k in item for k in keys):
        return None  # not in the index
    if projection["ProjectionType"] == "ALL":
        return item
    kept = set(keys) | set(table_keys) | set(projection.get("NonKeyAttributes", []))
    return {k: v for k, v in item.items() if k in kept}


def index_write_units(
    before: Item | None, after: Item | None, shapes: tuple[tuple[str, ...], list[tuple[tuple[str, ...], Any]]]
) -> int:
    """The writes a change from ``before`` to ``after`` makes to the table's global secondary indexes."""
    table_keys, indexes = shapes
    units = 0
    for keys, projection in indexes:
        old = _projected(before, keys, table_keys, projection)
        new = _projected(after, keys, table_keys, projection)
        if old is None and new is None:
            continue
        if old is not None and new is not None and all(old[k] == new[k] for k in keys):
            if old != new:
                units += write_units(max(item_size(old), item_size(new)))
            continue
        units += (write_units(item_size(old)) if old is not None else 0) + (
            write_units(item_size(new)) if new is not None else 0
        )
    return units


# The bus archive's pattern (infra/bus.py): ES Loyalty's events and the return path's.
ARCHIVED_SOURCES = frozenset({BUS_SOURCE, INBOUND_SOURCE})
STORAGE_OVERHEAD_BYTES = 100  # DynamoDB's per item and per index entry (storage, not capacity)


def stored_size(item: Item | None, shapes: tuple[tuple[str, ...], list[tuple[tuple[str, ...], Any]]]) -> int:
    """The bytes DynamoDB bills storage for: the item and each index entry it has, with overhead."""
    if not item:
        return 0
    table_keys, indexes = shapes
    size = item_size(item) + STORAGE_OVERHEAD_BYTES
    for keys, projection in indexes:
        entry = _projected(item, keys, table_keys, projection)
        if entry is not None:
            size += item_size(entry) + STORAGE_OVERHEAD_BYTES
    return size


class AwsMeter:
    """Install, run the handlers, ``attach`` a DynamoDB client to read items with, read ``usage``.
    Until a client is attached, requests are counted but not sized (the stack starting up)."""

    def __init__(self) -> None:
        self._peek: Any = None
        self._shapes: TableShapes | None = None
        self._config_table: str | None = None
        self._lock = threading.Lock()
        self._pending = threading.local()
        self.usage = Usage()
        # (handler, service, operation) -> requests, since installed and never reset (warm-ups too):
        # what each function asked of AWS, which its IAM policy must allow.
        self.calls_by_function: Counter[tuple[str, str, str]] = Counter()

    def attach(self, peek: Any, *, config_table: str | None = None) -> None:
        self._peek, self._shapes, self._config_table = peek, TableShapes(peek), config_table

    def unmetered(self, session: Any) -> Any:
        """``session`` with the meter's hooks taken off (a client of the meter's own)."""
        session.events.unregister("before-parameter-build", self._before)
        session.events.unregister("before-send", self._sending)
        session.events.unregister("after-call", self._after)
        return session

    def reset(self) -> Usage:
        with self._lock:
            done, self.usage = self.usage, Usage()
        return done

    @contextmanager
    def installed(self) -> Iterator[AwsMeter]:
        """Meter every boto3 session created inside the block (the handlers create their own)."""
        from concurrent.futures import ThreadPoolExecutor

        import boto3.session
        import httpx

        original = boto3.session.Session.__init__
        original_submit = ThreadPoolExecutor.submit
        original_send = httpx.Client.send
        meter = self

        def send(client: Any, *args: Any, **kwargs: Any) -> Any:
            waits = current_waits.get()
            started = time.perf_counter()
            try:
                return original_send(client, *args, **kwargs)
            finally:
                if waits is not None:  # a handler's call to a provider (the stack's own calls are not timed)
                    with waits.lock:
                        waits.provider.append((started, time.perf_counter()))
                    connector = connector_of(current_function.get())
                    request = args[0] if args else kwargs.get("request")
                    if connector:
                        endpoint = provider_endpoint(connector, request.url.path if request is not None else "")
                        with meter._lock:
                            meter.usage.provider_calls[connector] += 1
                            meter.usage.provider_endpoints[(connector, endpoint)] += 1

        def submit(executor: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
            return original_submit(executor, contextvars.copy_context().run, fn, *args, **kwargs)

        def init(session: Any, *args: Any, **kwargs: Any) -> None:
            original(session, *args, **kwargs)
            session.events.register("before-parameter-build", meter._before)
            session.events.register("before-send", meter._sending)
            session.events.register("after-call", meter._after)

        boto3.session.Session.__init__ = init
        ThreadPoolExecutor.submit = submit  # type: ignore[method-assign]
        httpx.Client.send = send  # type: ignore[method-assign,assignment]
        try:
            yield self
        finally:
            boto3.session.Session.__init__ = original
            ThreadPoolExecutor.submit = original_submit  # type: ignore[method-assign]
            httpx.Client.send = original_send  # type: ignore[method-assign]

    # --- hooks ---------------------------------------------------------------------------------

    def _before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        started = time.perf_counter()
        service = model.service_model.service_name
        before = None
        if service == "dynamodb" and self._peek is not None:
            before = self._images_before(model.name, params)
        self._pending.call = (dict(params), before)
        self._pending.sent_at = None
        _waited(current_waits.get(), started)

    def _sending(self, **_: Any) -> None:
        if getattr(self._pending, "sent_at", None) is None:  # the first attempt: retries are the call's time
            self._pending.sent_at = time.perf_counter()

    def _after(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        started = time.perf_counter()
        params, before = getattr(self._pending, "call", ({}, None))
        self._pending.call = ({}, None)
        service, operation = model.service_model.service_name, model.name
        waits = current_waits.get()
        sent_at = getattr(self._pending, "sent_at", None)
        if waits is not None and sent_at is not None:
            with waits.lock:
                waits.aws.append((f"{service}.{operation}", (sent_at, started)))
        try:
            self._account(http_response, parsed, params, before, service, operation)
        finally:
            _waited(waits, started)

    def _account(
        self,
        http_response: Any,
        parsed: dict[str, Any],
        params: dict[str, Any],
        before: Any,
        service: str,
        operation: str,
    ) -> None:
        usage = Usage()
        usage.calls[(service, operation)] += 1
        ok = http_response.status_code < 300
        bill: Callable[..., None] | None = getattr(self, f"_bill_{service.replace('-', '_')}", None)
        if bill is not None and self._shapes is not None:
            bill(usage, operation, params, parsed, ok, before)
        with self._lock:
            self.usage.add(usage)
            self.calls_by_function[(current_function.get(), service, operation)] += 1

    # --- DynamoDB ------------------------------------------------------------------------------

    def _key(self, table: str, item: Mapping[str, Any]) -> Item:
        assert self._shapes is not None
        keys, _ = self._shapes.get(table)
        return {k: item[k] for k in keys if k in item}

    def _key_name(self, table: str, item: Mapping[str, Any]) -> str:
        return json.dumps(self._key(table, item), sort_keys=True)

    def _get(self, table: str, key: Item) -> Item | None:
        found: Item | None = self._peek.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        return found

    def _images_before(self, operation: str, params: dict[str, Any]) -> Any:
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            table = params["TableName"]
            key = self._key(table, params["Item"]) if operation == "PutItem" else params["Key"]
            return self._get(table, key)
        if operation == "BatchWriteItem":
            images = {}
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    item = request.get("PutRequest", {}).get("Item") or request.get("DeleteRequest", {}).get("Key")
                    key = self._key(table, item)
                    images[(table, json.dumps(key, sort_keys=True))] = self._get(table, key)
            return images
        return None

    def _write(self, usage: Usage, table: str, before: Item | None, after: Item | None, written: bool) -> None:
        assert self._shapes is not None
        shapes = self._shapes.get(table)
        key = self._key(table, after or before or {})
        units = write_units(max(item_size(before), item_size(after)))
        if written:
            units += index_write_units(before, after, shapes)
        usage.units["dynamodb.write_unit"] += units
        usage.write_units_by_purpose[purpose(table, key, self._config_table)] += units
        if written:
            stored = stored_size(after, shapes) - stored_size(before, shapes)
            usage.stored_bytes_by_purpose[purpose(table, key, self._config_table)] += stored

    def _read(
        self, usage: Usage, table: str, items: list[Item], missing: list[Item], consistent: bool, one: bool
    ) -> None:
        """``missing``: the keys looked up and not found (GetItem, BatchGetItem), each billed at the minimum."""
        if one:  # a query or scan: its items' sizes together, rounded up once
            units = read_units(sum(item_size(i) for i in items), consistent=consistent)
            usage.units["dynamodb.read_unit"] += units
            usage.read_units_by_purpose[purpose(table, items[0] if items else {}, self._config_table)] += units
            return
        for item in items:
            units = read_units(item_size(item), consistent=consistent)
            usage.units["dynamodb.read_unit"] += units
            usage.read_units_by_purpose[purpose(table, item, self._config_table)] += units
        for key in missing:
            units = read_units(0, consistent=consistent)
            usage.units["dynamodb.read_unit"] += units
            usage.read_units_by_purpose[f"{purpose(table, key, self._config_table)}: absent items"] += units

    def _bill_dynamodb(
        self, usage: Usage, operation: str, params: dict[str, Any], parsed: dict[str, Any], ok: bool, before: Any
    ) -> None:
        if operation == "PutItem":
            self._write(usage, params["TableName"], before, params["Item"] if ok else before, ok)
        elif operation == "UpdateItem":
            table = params["TableName"]
            self._write(usage, table, before, self._get(table, params["Key"]) if ok else before, ok)
        elif operation == "DeleteItem":
            self._write(usage, params["TableName"], before, None if ok else before, ok)
        elif operation == "BatchWriteItem" and ok:
            unprocessed = {
                (
                    table,
                    json.dumps(
                        self._key(table, r.get("PutRequest", {}).get("Item") or r["DeleteRequest"]["Key"]),
                        sort_keys=True,
                    ),
                )
                for table, requests in (parsed.get("UnprocessedItems") or {}).items()
                for r in requests
            }
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    put = request.get("PutRequest", {}).get("Item")
                    key = self._key(table, put or request["DeleteRequest"]["Key"])
                    name = (table, json.dumps(key, sort_keys=True))
                    if name not in unprocessed:
                        self._write(usage, table, before.get(name), put, True)
        elif operation == "GetItem" and ok:
            item = parsed.get("Item")
            self._read(
                usage,
                params["TableName"],
                [item] if item else [],
                [] if item else [params["Key"]],
                bool(params.get("ConsistentRead")),
                one=False,
            )
        elif operation == "BatchGetItem" and ok:
            for table, request in params["RequestItems"].items():
                found = (parsed.get("Responses") or {}).get(table, [])
                left = (parsed.get("UnprocessedKeys") or {}).get(table, {}).get("Keys", [])
                answered = {self._key_name(table, i) for i in [*found, *left]}
                missing = [k for k in request["Keys"] if self._key_name(table, k) not in answered]
                self._read(usage, table, found, missing, bool(request.get("ConsistentRead")), one=False)
        elif operation in ("Query", "Scan") and ok:
            self._read(
                usage, params["TableName"], parsed.get("Items", []), [], bool(params.get("ConsistentRead")), one=True
            )
        elif operation == "TransactWriteItems" and ok:  # transactions bill every item twice
            for entry in params["TransactItems"]:
                ((_, request),) = entry.items()
                size = item_size(request.get("Item") or request.get("Key"))
                usage.units["dynamodb.write_unit"] += 2 * write_units(size)
                usage.write_units_by_purpose[
                    purpose(request["TableName"], request.get("Item") or request["Key"], self._config_table)
                ] += 2 * write_units(size)

    # --- EventBridge, SQS, S3, Secrets Manager -------------------------------------------------

    def _bill_events(self, usage: Usage, operation: str, params: dict[str, Any], *_: Any) -> None:
        if operation != "PutEvents":
            return
        for entry in params["Entries"]:
            size = 14 + sum(len(str(entry.get(k, "")).encode()) for k in ("Source", "DetailType", "Detail"))
            size += sum(len(r.encode()) for r in entry.get("Resources", []))
            usage.units["eventbridge.event"] += chunks_64k(size)
            if entry.get("Source") in ARCHIVED_SOURCES:
                usage.archived_bytes += size

    def _bill_sqs(self, usage: Usage, operation: str, params: dict[str, Any], parsed: dict[str, Any], *_: Any) -> None:
        if operation == "SendMessage":
            size = len(params["MessageBody"].encode())
        elif operation == "SendMessageBatch":
            size = sum(len(e["MessageBody"].encode()) for e in params["Entries"])
        elif operation == "ReceiveMessage":
            messages = parsed.get("Messages", [])
            if not messages:  # an idle queue's polling: a fixed monthly cost (report.py), not one per event
                usage.empty_receives += 1
                return
            size = sum(len(m["Body"].encode()) for m in messages)
            for message in messages:  # a first receive of what a rule put there: EventBridge's SendMessage
                if message.get("Attributes", {}).get("ApproximateReceiveCount") == "1" and _from_bus(message["Body"]):
                    usage.bus_deliveries += 1
                    usage.units["sqs.request"] += chunks_64k(len(message["Body"].encode()))
        else:
            size = 0
        usage.units["sqs.request"] += chunks_64k(size)

    def _bill_s3(self, usage: Usage, operation: str, *_: Any) -> None:
        writes = ("Put", "Copy", "Post", "List", "Create", "Complete", "Upload")
        usage.units["s3.put" if operation.startswith(writes) else "s3.get"] += 1

    def _bill_secretsmanager(self, usage: Usage, operation: str, *_: Any) -> None:
        usage.units["secretsmanager.call"] += 1
