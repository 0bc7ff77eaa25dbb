"""What a member waits for (issue #30): single events posted at a paced rate through `dig local` (the
manifests' own lanes and batching windows), half redemptions and half registrations, each timed from the
API's answer to the simulated Optimove's receipt of its transactional mail (by UniqueMessageID) or its
real-time event (by customer), and, for every other connector they reach (Marketo's campaign trigger),
to its delivery record (recorded just after the provider answered: an upper bound); after a warm-up of a
few events, so that the figures are the steady state's and not the first imports'. And, for the other
side of the trade, a burst of profile updates and the UpdateCustomerAttributes calls it took against the
fewest possible (1,000 customers a call).

    python -m benchmarks.latency [events] [per_second]
"""

from __future__ import annotations

import json
import math
import sys
import time
import uuid
from datetime import datetime
from typing import Any

from benchmarks.local_stack import local_stack
from connectors.optimove.client import MAX_CUSTOMERS_PER_UPDATE
from dig_contracts.examples import example_event


def percentiles(values: list[float]) -> dict[str, float | int]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)], 2)

    return {"n": len(ordered), "p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": round(ordered[-1], 2)}


def paced(http: Any, events: int, per_second: float) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    answered: dict[str, tuple[str, float]] = {}  # eventId -> (kind, when the API answered)
    message_ids: dict[str, str] = {}  # eventId -> messageId
    members = [f"LAT-{run}-{i:04d}" for i in range(events)]
    http.post("/_sim/optimove/customers", json={"customers": members})
    started = time.monotonic()
    for i, member in enumerate(members):
        time.sleep(max(0.0, started + i / per_second - time.monotonic()))
        kind = "REDEMPTION" if i % 2 == 0 else "MEMBER_REGISTRATION"
        event = example_event(kind, eventId=f"lat-{run}-{i}", memberId=member)
        answer = http.post("/v1/events", json=event)
        if answer.status_code == 202:
            answered[event["eventId"]] = (kind, time.time())
            message_ids[event["eventId"]] = answer.json()["messageId"]
    deadline = time.monotonic() + 120
    mails: dict[str, float] = {}
    realtime: dict[str, float] = {}
    while time.monotonic() < deadline:
        for request in http.get("/_sim/optimove/requests").json():
            body = request.get("body") or {}
            if request["call"] == "SendTransactionalMail" and request["status"] == 200:
                mails.setdefault(str(body.get("UniqueMessageID", "")).rsplit(":", 1)[-1], request["at"])
            elif request["call"] == "reportEvent" and request["status"] == 200:
                realtime.setdefault(str(body.get("cid")), request["at"])
        wanted_mails = [e for e, (k, _) in answered.items() if k == "REDEMPTION"]
        if all(e in mails for e in wanted_mails) and len(realtime) >= len(answered) - len(wanted_mails):
            break
        time.sleep(1)
    mail_waits = [mails[e] - at for e, (k, at) in answered.items() if k == "REDEMPTION" and e in mails]
    realtime_waits = [
        realtime[f"LAT-{run}-{int(e.rsplit('-', 1)[1]):04d}"] - at
        for e, (k, at) in answered.items()
        if k == "MEMBER_REGISTRATION" and f"LAT-{run}-{int(e.rsplit('-', 1)[1]):04d}" in realtime
    ]
    return {
        "events": events,
        "per_second": per_second,
        "mail_seconds": percentiles(mail_waits),
        "realtime_seconds": percentiles(realtime_waits),
        "recorded_seconds": recorded(http, answered, message_ids),
    }


def recorded(http: Any, answered: dict[str, tuple[str, float]], message_ids: dict[str, str]) -> dict[str, Any]:
    """Per connector and event type: from the API's answer to the delivery's record (DELIVERED)."""
    waits: dict[str, list[float]] = {}
    deadline = time.monotonic() + 120
    pending = dict(message_ids)
    while pending and time.monotonic() < deadline:
        for event_id, message_id in list(pending.items()):
            view = http.get(f"/v1/messages/{message_id}").json()
            deliveries = view.get("deliveries") or []
            if deliveries and all(d["status"] in ("DELIVERED", "SKIPPED", "FAILED") for d in deliveries):
                kind, at = answered[event_id]
                for d in deliveries:
                    if d["status"] == "DELIVERED":
                        waits.setdefault(f"{d['connector']} {kind}", []).append(
                            datetime.fromisoformat(d["updatedAt"].replace("Z", "+00:00")).timestamp() - at
                        )
                del pending[event_id]
        if pending:
            time.sleep(1)
    return {key: percentiles(values) for key, values in sorted(waits.items())}


def warm_up(http: Any) -> None:
    """A few events of each kind, delivered, before anything is timed: the local stack imports each
    handler's modules on its first invocation (seconds, on this machine), which no steady state pays."""
    paced(http, 6, 2.0)


def burst(http: Any, updates: int) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    members = [f"BURST-{run}-{i:05d}" for i in range(updates)]
    http.post("/_sim/optimove/customers", json={"customers": members})
    http.delete("/_sim/optimove/requests")
    started = time.monotonic()
    for start in range(0, updates, 500):
        documents = [
            example_event("MEMBER_PROFILE_UPDATE", eventId=f"burst-{run}-{i}", memberId=members[i])
            for i in range(start, min(start + 500, updates))
        ]
        http.post("/v1/events/batch", json={"events": documents})
    deadline = time.monotonic() + 300
    customers = 0
    calls = 0
    while time.monotonic() < deadline and customers < updates:
        requests = [r for r in http.get("/_sim/optimove/requests").json() if r["call"] == "UpdateCustomerAttributes"]
        calls = len(requests)
        customers = sum(len((r.get("body") or {}).get("CustomerNewAttributesValuesList") or []) for r in requests)
        time.sleep(0.2)
    seconds = time.monotonic() - started
    return {
        "updates": updates,
        "calls": calls,
        "fewest_calls": math.ceil(updates / MAX_CUSTOMERS_PER_UPDATE),
        # From the first post to the last update's receipt at the simulator: the local stack end to end.
        "seconds": round(seconds, 1),
        "per_second": round(customers / seconds, 1),
    }


# The connectors measured, and only they: on this two-core machine every other connector's invocations
# would take the CPU that, in AWS, each invocation has of its own.
CONNECTORS = "optimove,marketo"
# Marketo allows DIG 50 calls per 20 s (connectors/marketo/sample_config.json), and a redemption is a
# lead upsert, an activity and a campaign trigger of its own: 5 events a second need about 10 calls a
# second, which no lane can make. Its figures are taken at a pace that uses 40% of its quota (at 1 a
# second, 80%, the limiter's waits show in p99).
MARKETO_PER_SECOND = 0.5


def run(events: int = 150, per_second: float = 5.0, updates: int = 5000) -> dict[str, Any]:
    with local_stack(CONNECTORS) as (_, http):
        warm_up(http)
        return {
            "paced": paced(http, events, per_second),
            "paced_within_marketos_quota": paced(http, 40, MARKETO_PER_SECOND),
            "burst": burst(http, updates),
        }


if __name__ == "__main__":
    arguments = sys.argv[1:]
    print(json.dumps(run(int(arguments[0]) if arguments else 150, float(arguments[1]) if len(arguments) > 1 else 5.0)))
