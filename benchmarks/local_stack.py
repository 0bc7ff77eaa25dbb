"""5,000 MEMBER_PROFILE_UPDATE events for 5,000 members (issue #28's measure), end to end through
`dig local` running Optimove and Marketo: posted to the API in batches of 500, through moto's EventBridge and SQS, to
the connector and the simulator (50 requests per 10 s). Two ends: the simulator's receipt of the last update
(issue #28's "through the batch route to the simulator"), and every one DELIVERED in the audit trail, which
also waits for Optimove's result callbacks (through the API and the bus to the connector's immediate lane)."""

from __future__ import annotations

import collections
import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from connectors.optimove.client import MAX_CUSTOMERS_PER_UPDATE
from db.records import iso, utc_now

REPO = Path(__file__).resolve().parents[1]
DIG = str(Path(sys.executable).parent / "dig")
WAIT_SECONDS = 1800  # after the last batch is accepted, for every message to be DELIVERED or FAILED


@contextlib.contextmanager
def local_stack(connectors: str | None = None) -> Iterator[tuple[subprocess.Popen[str], httpx.Client]]:
    """`dig local` on a free port, and a client on its API with a bearer token; stopped afterwards.
    ``connectors``: the ones it runs (DIG_CONNECTORS), else every installed one."""
    environment = dict(os.environ)
    if connectors:
        environment["DIG_CONNECTORS"] = connectors
    process = subprocess.Popen(
        [DIG, "local", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        env=environment,
    )
    assert process.stdout is not None
    url = None
    while url is None:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("dig local did not start")
        found = re.search(r"ready at (http://\S+)", line)
        url = found.group(1) if found else None
    # Keep reading what it prints: a full pipe would block the local stack on its next log line.
    threading.Thread(target=collections.deque, args=(process.stdout, 0), name="drain", daemon=True).start()
    try:
        token = subprocess.run([DIG, "local", "token"], capture_output=True, text=True, check=True).stdout.strip()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as http:
            yield process, http
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def run(events: int = 5_000, batch: int = 500, connectors: str | None = "optimove,marketo") -> dict[str, Any]:
    """``connectors``: the stack's (DIG_CONNECTORS), by default the two a program starts with, as `dig cost`
    and the latency benchmark run: every other connector's pollers would share this machine's two cores."""
    with local_stack(connectors) as (_, http):
        # The members exist in the simulated Optimove, as ES Loyalty's members do in a tenant's.
        http.post("/_sim/optimove/customers", json={"customers": [f"M-{i:06d}" for i in range(events)]})
        started = time.perf_counter()
        started_at = time.time()  # the simulator stamps each request it receives with time.time()
        ids: list[str] = []
        for start in range(0, events, batch):
            documents = [
                {
                    "eventId": f"local-bench-{i}",
                    "eventType": "MEMBER_PROFILE_UPDATE",
                    "occurredAt": "2026-11-21T12:00:00Z",
                    "memberId": f"M-{i:06d}",
                    "data": {"profile": {"firstName": f"Name{i}", "city": "Ottawa"}},
                }
                for i in range(start, min(start + batch, events))
            ]
            results = http.post("/v1/events/batch", json={"events": documents}).json()["results"]
            ids.extend(r["messageId"] for r in results if r["status"] == "accepted")
        accepted_at = time.perf_counter()
        count = _final_counter(http, days={iso(utc_now())[:10]})
        deadline = time.monotonic() + WAIT_SECONDS
        delivered = failed = 0
        # Two cheap questions (the day's count item, the sparse FAILED partition), twice a second, until
        # every accepted event is accounted for; Optimove's result callbacks may still be on their way.
        while time.monotonic() < deadline:
            delivered, failed = count()
            if delivered + failed >= len(ids):
                break
            time.sleep(0.5)
        finished = time.perf_counter()
        requests = http.get("/_sim/optimove/requests").json()
        updates = [r for r in requests if r["call"] == "UpdateCustomerAttributes" and r["status"] == 200]
        received = sum(len((r.get("body") or {}).get("CustomerNewAttributesValuesList") or []) for r in updates)
        to_simulator = max((r["at"] for r in updates), default=started_at) - started_at
        return {
            "events": events,
            "accepted": len(ids),
            "delivered": delivered,
            "failed": failed,
            "ingest_seconds": round(accepted_at - started, 1),
            "ingest_events_per_second": round(len(ids) / (accepted_at - started)),
            "received_by_simulator": received,
            "to_simulator_seconds": round(to_simulator, 1),
            "to_simulator_events_per_second": round(received / to_simulator) if to_simulator > 0 else None,
            "end_to_end_seconds": round(finished - started, 1),
            "end_to_end_events_per_second": round(delivered / (finished - started)),
            "optimove_calls": sum(1 for r in requests if r["call"] == "UpdateCustomerAttributes"),
            # Each call's customers and when the simulator received it: a last small call is a partial batch that
            # waited out the coalescing lane's window (20 s).
            "calls_received": [
                {
                    "seconds": round(r["at"] - started_at, 1),
                    "customers": len(r["body"]["CustomerNewAttributesValuesList"]),
                }
                for r in updates
            ],
            "fewest_calls": math.ceil(events / MAX_CUSTOMERS_PER_UPDATE),
            "http_429": sum(1 for r in requests if r["status"] == 429),
        }


def _aws_client(stack: dict[str, Any], service: str) -> Any:
    """A client on the local stack's moto, from what /_local/stack describes."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=stack["awsEndpoint"],
        region_name=stack["region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def _final_counter(http: httpx.Client, days: set[str]) -> Callable[[], tuple[int, int]]:
    """Counts DELIVERED deliveries from the connector's daily counts (a delivered one is in no index:
    db.audit) and FAILED ones with the status index; ``days`` grows with the run, in case it crosses
    midnight UTC. A few requests, not a GET per message."""
    from db.counters import DELIVERED_COUNT, SK, counts_pk

    stack = http.get("/_local/stack").json()
    client = _aws_client(stack, "dynamodb")

    def delivered() -> int:
        total = 0
        for day in sorted(days):
            key = {"pk": {"S": counts_pk("optimove", day)}, "sk": {"S": SK}}
            item = client.get_item(TableName=stack["auditTable"], Key=key, ConsistentRead=True).get("Item", {})
            total += int(item.get(DELIVERED_COUNT, {}).get("N", "0"))
        return total

    def failed() -> int:
        total = 0
        for day in sorted(days):
            request: dict[str, Any] = {
                "TableName": stack["auditTable"],
                "IndexName": "byConnectorStatus",
                "KeyConditionExpression": "gsiStatusPk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": f"DELIVERY#optimove#FAILED#{day}"}},
                "Select": "COUNT",
            }
            while True:
                answer = client.query(**request)
                total += answer["Count"]
                if "LastEvaluatedKey" not in answer:
                    break
                request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return total

    def count() -> tuple[int, int]:
        days.add(iso(utc_now())[:10])
        return delivered(), failed()

    return count


if __name__ == "__main__":
    arguments = sys.argv[1:]
    print(
        json.dumps(
            run(int(arguments[0]) if arguments else 5_000, **({"connectors": arguments[1]} if arguments[1:] else {})),
            indent=2,
        )
    )
