"""Fixes to moto (5.2) for the local stack, which moves thousands of messages: without them
ReceiveMessage costs about 1 ms per message *in the queue* (1.3 s per call at a depth of 1,000),
PutEvents about 4 ms per entry a rule matches, and the whole stack stalls behind them.

- SQS: for each message it returns, ReceiveMessage checks the retention period through
  get_queue_attributes, which computes every attribute of the queue, ApproximateNumberOfMessages
  included (a walk over all its messages), twice per attribute asked for.
- SQS: each visibility check calls moto's unix_time_millis, which computes the epoch through
  datetime arithmetic (about 16 us), several times per queued message on every receive.
- EventBridge: delivering an event to a target compiles the same eight JSONPath expressions
  (the default input paths) with jsonpath_ng's parser, about 0.5 ms each, every time.
- The server: to route each request to a service, under a lock that every request takes, it lists
  and stats moto's two hundred package directories and then tries the URL patterns of every
  service; the answer for a host never changes.
- Every request: finding the account's backend takes moto's global backend lock and then checks that
  the service's backend dictionary is registered with ``not in`` over a list of every service's
  dictionary, which compares dictionaries by content: three quarters of a PutItem. Once an account's
  backend exists and the dictionary is registered, both answers stay true (the local stack never
  resets moto).

- SQS: each message sent (EventBridge's deliveries to a queue included) reads the queue's attributes
  for one flag, and computing them walks every message of the queue three times (the approximate
  counts): a cost that grows with the queue's depth. A send never reads the counts; while one runs,
  they are left out.
- DynamoDB: every conditional write lexes its condition expression again, a fifth of a PutItem; the
  tokens of one expression text never change, so they are kept per text. Parsing it is another
  two fifths: the parsed condition (read-only operators over the item) is kept per expression, names
  and values, which repeat across the items of a batch (the same lease owner, the same second).
- SQS: deleting a message walks the whole queue twice, to find it and to rebuild the list without it,
  for each entry of a DeleteMessageBatch: a batch is deleted in one walk instead, under the lock
  that sending takes (moto's own delete does not take it, and can drop a message sent meanwhile).
- SQS: a long poll that found nothing waits on the queue's condition, and every message sent wakes it
  to ask whether any message is visible: moto answers by listing every visible message of the queue,
  under the lock the sender needs, for each send. The question is asked of the newest messages first
  (the one just sent, when it woke the poll) and stops at the first visible one: the same answer.
- SQS: each ReceiveMessage lists the queue's visible messages, asking every message the clock twice
  (visible, not delayed): the list is made with one reading of the clock, a fifth of the time, which
  a connector's poller gathering a thousand messages, ten a receive, pays a hundred times a batch.
- DynamoDB: a Query sorts every item of the table and then keeps those of the partition asked for:
  on the table's own key, that partition's items are all it needs to look at; on an index, the items
  whose index key matches are all it needs to sort.

Each replacement answers exactly what the original answers. The local stack applies them in its moto
process before it serves; nothing in a Lambda function imports this module.
"""

from __future__ import annotations

import collections
import datetime
import functools
import inspect
import json
import threading
import time
from collections.abc import Callable
from typing import Any

_applied = False


def _unix_time(dt: datetime.datetime | None = None) -> float:
    if dt is None:
        return time.time()
    return (dt - datetime.datetime(1970, 1, 1)).total_seconds()


def _unix_time_millis(dt: datetime.datetime | None = None) -> float:
    return _unix_time(dt) * 1000.0


def _within_retention_period(self: Any, queue_name: str, message: Any) -> bool:
    queue = self.get_queue(queue_name)
    return bool(int(queue.message_retention_period) + message.sent_timestamp / 1000 > time.time())


def _remembering_backends(get_backend_for_host: Callable[[Any, str | None], Any]) -> Callable[[Any, str | None], Any]:
    def get(self: Any, host: str | None) -> Any:
        known: dict[str | None, Any] = self.__dict__.setdefault("_dig_backend_for_host", {})
        if host not in known:
            known[host] = get_backend_for_host(self, host)
        return known[host]

    return get


def _known_accounts(create: Callable[[Any, str], None]) -> Callable[[Any, str], None]:
    def ensure(self: Any, account_id: str) -> None:
        if dict.__contains__(self, account_id) and self.__dict__.get("_dig_registered"):
            return
        create(self, account_id)
        self.__dict__["_dig_registered"] = True

    return ensure


_SENDS = threading.local()
_COUNTS = (
    "approximate_number_of_messages",
    "approximate_number_of_messages_delayed",
    "approximate_number_of_messages_not_visible",
)


class _QueueWithoutCounts:
    """A queue as Queue.attributes reads it, its message counts left out."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue

    def __getattr__(self, name: str) -> Any:
        return 0 if name in _COUNTS else getattr(self._queue, name)


def _attributes_while_sending(read: Callable[[Any], dict[str, Any]]) -> property:
    def attributes(self: Any) -> dict[str, Any]:
        if getattr(_SENDS, "depth", 0):
            return read(_QueueWithoutCounts(self))
        return read(self)

    return property(attributes)


def _sending(send: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(send)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        _SENDS.depth = getattr(_SENDS, "depth", 0) + 1
        try:
            return send(*args, **kwargs)
        finally:
            _SENDS.depth -= 1

    return wrapped


def _lexed_once(lex: Callable[[Any], Any]) -> Callable[[Any], Any]:
    known: dict[str, tuple[Any, ...]] = {}

    def cached(self: Any) -> Any:
        expression = self.condition_expression
        nodes = known.get(expression)
        if nodes is None:
            nodes = tuple(lex(self))  # the parser's later passes build new nodes; these stay as lexed
            if len(known) < 4096:
                known[expression] = nodes
        return collections.deque(nodes)

    return cached


def _parsed_once(parse: Callable[..., Any]) -> Callable[..., Any]:
    known: dict[str, Any] = {}

    def cached(expression: str | None, names: Any, values: Any) -> Any:
        key = json.dumps([expression, names, values], sort_keys=True)
        found = known.get(key)
        if found is None:
            found = parse(expression, names, values)  # an invalid expression raises, and is not kept
            if len(known) >= 4096:
                known.clear()
            known[key] = found
        return found

    return cached


def _delete_message_batch(self: Any, queue_name: str, receipts: list[dict[str, Any]]) -> Any:
    from moto.sqs.models import Message

    queue = self.get_queue(queue_name)
    wanted = {r["ReceiptHandle"] for r in receipts}
    found: set[str] = set()
    with queue._messages_lock:
        kept: list[Message] = []
        for message in queue._messages:
            handles = message.all_receipt_handles
            hit = wanted.intersection(handles)
            if hit:
                found.update(hit)
                queue.pending_messages.discard(message)
                queue.deleted_messages.update(handles)
            else:
                kept.append(message)
        queue._messages = kept
    success, errors = [], []
    for receipt in receipts:
        handle = receipt["ReceiptHandle"]
        if handle in found or handle in queue.deleted_messages:
            success.append(receipt["Id"])
        else:
            errors.append(
                {
                    "Id": receipt["Id"],
                    "SenderFault": True,
                    "Code": "ReceiptHandleIsInvalid",
                    "Message": f'The input receipt handle "{handle}" is not a valid receipt handle.',
                }
            )
    return success, errors


def _visible(message: Any, now: float) -> bool:
    """moto's Message.visible and not Message.delayed, at one reading of the clock."""
    return bool(now > message.visible_at and now >= message.delayed_until)


def _visible_messages(self: Any) -> list[Any]:
    now = _unix_time_millis()
    return [m for m in self._messages if _visible(m, now)]


def _wait_for_messages(self: Any, timeout: int) -> None:
    def any_visible() -> bool:
        now = _unix_time_millis()
        return any(_visible(m, now) for m in reversed(self._messages))

    with self._messages_lock:
        self._messages_lock.wait_for(any_visible, timeout=timeout)


def _delete_message(self: Any, queue_name: str, receipt_handle: str) -> None:
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    _, errors = _delete_message_batch(self, queue_name, [{"Id": "0", "ReceiptHandle": receipt_handle}])
    if errors:
        raise ReceiptHandleIsInvalid()


_PARTITION = threading.local()


def _partition_query(query: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(query)

    @functools.wraps(query)
    def wrapped(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(self, hash_key, *args, **kwargs).arguments
        if arguments.get("index_name"):
            # An index query keeps the items whose index keys equal these: only they need sorting.
            _PARTITION.conditions = list(arguments.get("hash_key_conditions") or []) or None
        elif hash_key is not None and self.range_key_attr:
            _PARTITION.key = hash_key
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            _PARTITION.key = _PARTITION.conditions = None

    return wrapped


def _sort_key(item: Any) -> Any:
    return (item.hash_key, item.range_key) if item.range_key else item.hash_key


def _partition_items(all_items: Callable[[Any], list[Any]]) -> Callable[[Any], list[Any]]:
    def items(self: Any) -> list[Any]:
        key = getattr(_PARTITION, "key", None)
        if key is not None:
            return sorted(self.items.get(key, {}).values(), key=_sort_key)
        conditions = getattr(_PARTITION, "conditions", None)
        if conditions:
            # Copies first (list() of a dict view runs without letting another thread in): a handler's
            # write during this query otherwise changes the dict under the iteration (RuntimeError).
            stored = (
                i
                for part in list(self.items.values())
                for i in (list(part.values()) if self.range_key_attr else [part])
            )
            return sorted(
                (i for i in stored if all(i.attrs.get(a) and i.attrs.get(a) == v for a, v in conditions)),
                key=_sort_key,
            )
        return all_items(self)

    return items


def apply() -> None:
    """Patch moto's SQS and EventBridge models and its server's routing in this process (idempotent)."""
    global _applied
    if _applied:
        return
    import jsonpath_ng.ext
    from moto import backends
    from moto.core.base_backend import BackendDict
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.sqs import models

    modules = frozenset(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    DomainDispatcherApplication.get_backend_for_host = _remembering_backends(  # type: ignore[method-assign,assignment]
        DomainDispatcherApplication.get_backend_for_host
    )

    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.comparisons import ConditionExpressionParser, get_filter_expression
    from moto.dynamodb.models import table as dynamodb_table

    read_attributes = vars(models.Queue)["attributes"].fget
    models.Queue.attributes = _attributes_while_sending(read_attributes)  # type: ignore[method-assign,assignment]
    models.SQSBackend.send_message = _sending(models.SQSBackend.send_message)  # type: ignore[method-assign]
    models.SQSBackend.send_message_batch = _sending(models.SQSBackend.send_message_batch)  # type: ignore[method-assign]
    ConditionExpressionParser._lex_condition_expression = _lexed_once(  # type: ignore[method-assign,assignment]
        ConditionExpressionParser._lex_condition_expression
    )
    parsed_once = _parsed_once(get_filter_expression)
    dynamodb_models.get_filter_expression = parsed_once
    dynamodb_table.get_filter_expression = parsed_once
    models.SQSBackend.delete_message_batch = _delete_message_batch  # type: ignore[method-assign]
    models.SQSBackend.delete_message = _delete_message  # type: ignore[method-assign]
    models.Queue.wait_for_messages = _wait_for_messages  # type: ignore[method-assign]
    models.Queue.messages = property(_visible_messages)  # type: ignore[method-assign,assignment]
    dynamodb_table.Table.query = _partition_query(dynamodb_table.Table.query)  # type: ignore[method-assign]
    dynamodb_table.Table.all_items = _partition_items(dynamodb_table.Table.all_items)  # type: ignore[method-assign,assignment]
    BackendDict._create_account_specific_backend = _known_accounts(  # type: ignore[method-assign,assignment]
        BackendDict._create_account_specific_backend
    )
    models.unix_time = _unix_time
    models.unix_time_millis = _unix_time_millis
    models.SQSBackend.is_message_valid_based_on_retention_period = _within_retention_period  # type: ignore[method-assign]
    # moto.events.utils imports parse from jsonpath_ng.ext at each call: the cached one is found there.
    # A compiled expression is not changed by find(), so one per expression text serves every event.
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ng.ext.parse)
    _applied = True
