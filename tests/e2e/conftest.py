"""One `dig local` process per session, on a free port, driven over HTTP like ES Loyalty would."""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dig_contracts.events import EventType
from dig_contracts.inbound import InboundEventType
from dig_contracts.registry import installed_connectors

# The local stacks these tests start note where they listen here, not in the developer's home.
os.environ.setdefault("DIG_LOCAL_STATE", os.path.join(tempfile.mkdtemp(prefix="dig-e2e-"), "local-stacks.json"))
# The connectors the shared stack (and every stack these tests start, `dig cost`'s too) runs: SFMC's tests
# start a stack of their own (test_sfmc.py), so that ten thousand file lines do not go to SFMC as well.
SHARED_CONNECTORS = "cataboom,esloyalty,marketo,optimove"
os.environ["DIG_CONNECTORS"] = SHARED_CONNECTORS
READY = re.compile(r"ready at (http://127\.0\.0\.1:\d+)")
FINAL = {"DELIVERED", "FAILED", "SKIPPED"}


# Which connectors each event type reaches: a message is final once each of them has recorded an end.
def subscribers() -> dict[str, set[str]]:
    """Which connectors each event type reaches in a stack of the connectors DIG_CONNECTORS names."""
    manifests = installed_connectors()
    return {t.value: {m.name for m in manifests if t in m.event_types} for t in (*EventType, *InboundEventType)}


SUBSCRIBERS = subscribers()


# Run last: it leaves 5,000 messages in the shared stack's tables, and moto answers an index query by
# scanning the whole table, so every test after it would wait longer for the same answers.
RUN_LAST = ("test_files.py::test_a_large_events_file",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: any(marker in item.nodeid for marker in RUN_LAST))


def delivery(record: dict[str, Any], connector: str = "optimove") -> dict[str, Any]:
    """One connector's delivery in a GET /v1/messages answer (an event type can reach several)."""
    [found] = [d for d in record["deliveries"] if d["connector"] == connector]
    return found


class LocalStackProcess:
    def __init__(self, url: str, process: subprocess.Popen[str], reaches: dict[str, set[str]] | None = None) -> None:
        self.url = url
        self.process = process
        self.reaches = reaches or SUBSCRIBERS
        token = subprocess.run(
            [str(Path(sys.executable).parent / "dig"), "local", "token"], capture_output=True, text=True, check=True
        ).stdout.strip()
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def post_event(self, event: dict[str, Any]) -> httpx.Response:
        return self.http.post("/v1/events", json=event)

    def wait_until(self, condition: Any, what: str, timeout: float = 90) -> Any:
        """Poll ``condition`` until it returns something truthy (never a fixed wait)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = condition()
            if found:
                return found
            time.sleep(0.3)
        raise AssertionError(f"not within {timeout} s: {what}")

    def wait_for_final(self, message_id: str, timeout: float = 90) -> dict[str, Any]:
        """The message once every connector it reaches has recorded an end."""

        def final() -> dict[str, Any] | None:
            record: dict[str, Any] = self.http.get(f"/v1/messages/{message_id}").json()
            ended = {d["connector"] for d in record.get("deliveries") or [] if d["status"] in FINAL}
            done = record.get("eventType") and ended >= self.reaches[record["eventType"]]
            return record if done else None

        return self.wait_until(final, f"message {message_id} final", timeout)

    def simulator_requests(self) -> list[dict[str, Any]]:
        return self.http.get("/_sim/optimove/requests").json()

    def existing_member(self, prefix: str = "M") -> str:
        """A new member id that the simulated Optimove already has (as its daily load would have it)."""
        member = f"{prefix}-{uuid.uuid4().hex[:10]}"
        assert self.http.post("/_sim/optimove/customers", json={"customers": [member]}).status_code == 204
        return member


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStackProcess]:
    yield from start_local_stack()


def start_local_stack(connectors: str = SHARED_CONNECTORS) -> Iterator[LocalStackProcess]:
    # A half-second batching window: tests wait on each delivery; the manifests' windows are longer.
    command = [
        str(Path(sys.executable).parent / "dig"),
        *("local", "--port", "0", "--retry-delay", "1", "--batching-window", "0.5"),
    ]
    environment = {**os.environ, "DIG_CONNECTORS": connectors}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
    assert process.stdout is not None
    url = None
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = READY.search(line)
        if match:
            url = match.group(1)
            break
    if url is None:
        process.kill()
        raise AssertionError("dig local did not start:\n" + "".join(seen))
    # Keep reading what it prints (and drop it): a full pipe would block the stack on its next line.
    threading.Thread(target=collections.deque, args=(process.stdout, 0), name="drain", daemon=True).start()
    previous = os.environ["DIG_CONNECTORS"]
    os.environ["DIG_CONNECTORS"] = connectors
    try:
        reaches = subscribers()
    finally:
        os.environ["DIG_CONNECTORS"] = previous
    stack = LocalStackProcess(url, process, reaches)
    try:
        yield stack
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def clean_faults(local_stack: LocalStackProcess) -> Iterator[None]:
    yield
    local_stack.http.delete("/_sim/optimove/faults")
