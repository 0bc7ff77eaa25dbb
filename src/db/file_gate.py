"""How many files are processed at once: a first-in, first-out semaphore in the audit table.

  pk FILES#GATE, sk GATE: next (the next ticket), waiting {fileId: [ticket, since]}, running {fileId: since},
  version (every change is conditioned on it)

A file takes a ticket when its upload is first validated; it is admitted when fewer than the cap
are running and no file waiting holds an older ticket; its slot is given back when it ends (finish,
refused at validation, or a failure caught by the state machine). A slot or a place in line older
than STALE_SECONDS (the state machine's own timeout) belongs to an execution that died: it is freed.
Hand-written: no library offers an ordered semaphore on DynamoDB, and this one is a few conditioned writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from db.table import Table, from_item, is_conditional_failure

KEY = {"pk": {"S": "FILES#GATE"}, "sk": {"S": "GATE"}}
STALE_SECONDS = 24 * 3600
ATTEMPTS = 20


class FileGate:
    def __init__(self, table: Table, *, limit: int, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._limit = limit
        self._clock = clock

    def admit(self, file_id: str) -> bool:
        """Whether ``file_id`` may be processed now; if not, it holds its place in line."""
        for _ in range(ATTEMPTS):
            gate = self._read()
            now = int(self._clock())
            running = {f: s for f, s in gate["running"].items() if now - int(s) < STALE_SECONDS}
            waiting = {f: w for f, w in gate["waiting"].items() if now - int(w[1]) < STALE_SECONDS}
            if file_id in running:
                return True  # a retried step: it holds its slot already
            ticket = waiting[file_id][0] if file_id in waiting else gate["next"]
            waiting.setdefault(file_id, [ticket, now])
            first = min(waiting.values(), key=lambda w: int(w[0]))[0] == ticket
            admitted = first and len(running) < self._limit
            if admitted:
                del waiting[file_id]
                running[file_id] = now
            next_ticket = max(int(gate["next"]), int(ticket) + 1)
            if self._write(gate["version"], next_ticket, waiting, running):
                return admitted
        raise RuntimeError("the file gate kept changing under this admission; the step is retried")

    def release(self, file_id: str) -> None:
        for _ in range(ATTEMPTS):
            gate = self._read()
            if file_id not in gate["running"] and file_id not in gate["waiting"]:
                return
            running = {f: s for f, s in gate["running"].items() if f != file_id}
            waiting = {f: w for f, w in gate["waiting"].items() if f != file_id}
            if self._write(gate["version"], int(gate["next"]), waiting, running):
                return
        raise RuntimeError("the file gate kept changing under this release; the step is retried")

    def state(self) -> dict[str, Any]:
        return self._read()

    def _read(self) -> dict[str, Any]:
        item = self._table.call("get_item", Key=KEY, ConsistentRead=True).get("Item")
        plain = from_item(item) if item else {}
        return {
            "version": int(plain.get("version", 0)),
            "next": int(plain.get("next", 1)),
            "waiting": {f: [int(t), int(s)] for f, (t, s) in plain.get("waiting", {}).items()},
            "running": {f: int(s) for f, s in plain.get("running", {}).items()},
        }

    def _write(self, version: int, next_ticket: int, waiting: dict[str, Any], running: dict[str, int]) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._table.call(
                "update_item",
                Key=KEY,
                UpdateExpression="SET version = :new, #next = :next, waiting = :waiting, running = :running",
                ConditionExpression="version = :old" if version else "attribute_not_exists(pk)",
                ExpressionAttributeNames={"#next": "next"},
                ExpressionAttributeValues={
                    ":new": {"N": str(version + 1)},
                    **({":old": {"N": str(version)}} if version else {}),
                    ":next": {"N": str(next_ticket)},
                    ":waiting": {"M": {f: {"L": [{"N": str(t)}, {"N": str(s)}]} for f, (t, s) in waiting.items()}},
                    ":running": {"M": {f: {"N": str(s)} for f, s in running.items()}},
                },
            )
        except ClientError as error:
            if is_conditional_failure(error):
                return False
            raise
        return True
