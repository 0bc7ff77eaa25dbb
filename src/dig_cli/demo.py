"""``dig local --demo`` (``make run``): one event of each type through the local stack, then the
audit trail and the requests each provider's local double received."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from dig_contracts.events import EventType
from dig_contracts.examples import all_examples
from dig_contracts.registry import installed_connectors

FINAL = {"DELIVERED", "FAILED", "SKIPPED"}


def local_token() -> str:
    from dig_local.resources import local_token as mint_local

    return mint_local("demo")


def run_demo(url: str, console: Console, timeout_seconds: float = 60) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {local_token()}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        demo_contacts(http, console, timeout_seconds)
        posted: list[tuple[str, str]] = []
        for event_type, event in all_examples().items():
            answer = http.post("/v1/events", json=event)
            console.print(f"POST /v1/events {event_type.value:<22} -> {answer.status_code} {answer.text}")
            if answer.status_code in (200, 202):
                posted.append((event_type.value, answer.json()["messageId"]))

        subscribers = {t.value: {m.name for m in installed_connectors() if t in m.event_types} for t in EventType}
        deadline = time.monotonic() + timeout_seconds
        records: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            records = [http.get(f"/v1/messages/{message_id}").json() for _, message_id in posted]
            if all(_final(r) >= subscribers[r["eventType"]] for r in records):
                break
            time.sleep(0.5)

        table = Table(title="Audit trail (GET /v1/messages/{messageId})")
        for column in ("event type", "messageId", "connector", "status", "attempts", "notes / last error"):
            table.add_column(column)
        for record in records:
            for delivery in record.get("deliveries") or [{"connector": "-", "status": "PENDING", "attempts": 0}]:
                detail = delivery.get("lastError") or "; ".join(delivery.get("notes") or [])
                table.add_row(
                    record["eventType"],
                    record["messageId"][:8] + "...",
                    delivery["connector"],
                    delivery["status"],
                    str(delivery["attempts"]),
                    detail[:80],
                )
        console.print(table)
        demo_file(http, console, timeout_seconds)

        for connector in sorted(http.get("/_local/stack").json()["simulators"]):
            calls = Table(title=f"Requests the {connector} simulator received (GET /_sim/{connector}/requests)")
            for column in ("call", "status", "body"):
                calls.add_column(column)
            for request in http.get(f"/_sim/{connector}/requests").json():
                calls.add_row(request["call"], str(request["status"]), json.dumps(request["body"])[:110])
            console.print(calls)
        return records


def demo_file(http: httpx.Client, console: Console, timeout_seconds: float) -> None:
    """A small events file, one bad line in it, as `dig files upload` sends it: declared, uploaded
    straight to the local S3, processed by the local file driver; then its summary."""
    import tempfile
    import uuid
    from pathlib import Path

    from dig_cli.files import Uploader, describe, render
    from dig_contracts.examples import example_event

    run = uuid.uuid4().hex[:6]
    lines = [json.dumps(example_event("MEMBER_PROFILE_UPDATE", eventId=f"demo-file-{run}-{n}")) for n in range(1, 6)]
    lines.insert(2, '{"eventId": "broken line"')
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "demo-events.jsonl"
        path.write_text("\n".join(lines) + "\n")
        declaration = describe(path, kind="events", name=None, on_bytes=lambda _: None)
        with httpx.Client(timeout=30) as storage:
            uploader = Uploader(http, storage)
            declared = uploader.declare(declaration)
            console.print(f"\nPOST /v1/files ({len(lines)} lines, one of them broken) -> {declared['fileId']}")
            uploader.upload(path, declared["upload"], lambda _: None)
            view = uploader.wait(declared["fileId"], timeout_seconds, lambda _: None, interval=0.5)
            report = storage.get(view["report"]["url"]).text if view.get("report") else None
    render(view, report)


def demo_contacts(http: httpx.Client, console: Console, timeout_seconds: float) -> None:
    """ES Loyalty's daily memberAccounts extract for the two example members, first: a points transfer's
    other member (M-100002) is mailed at the address it brings (the member contact store)."""
    import tempfile
    from pathlib import Path

    from dig_cli.files import Uploader, describe

    rows = "memberId,email,locale,LastUpdated\nM-100001,ada@example.com,en-CA,2026-11-20T05:00:00Z\n"
    rows += "M-100002,grace@example.com,fr-CA,2026-11-20T05:00:00Z\n"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "memberAccounts.csv"
        path.write_text(rows)
        declaration = describe(path, kind="extract", name="memberAccounts", on_bytes=lambda _: None)
        with httpx.Client(timeout=30) as storage:
            uploader = Uploader(http, storage)
            declared = uploader.declare(declaration)
            uploader.upload(path, declared["upload"], lambda _: None)
            view = uploader.wait(declared["fileId"], timeout_seconds, lambda _: None, interval=0.5)
    console.print(f"POST /v1/files (memberAccounts extract, 2 members' contacts) -> {view['status']}")


def _final(record: dict[str, Any]) -> set[str]:
    return {d["connector"] for d in record.get("deliveries") or [] if d["status"] in FINAL}
