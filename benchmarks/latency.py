"""What a member waits for (issue #30's baseline): single events posted at a paced rate through `dig local`
(the manifests' own batching windows), half redemptions and half registrations, each timed from the API's
answer to the simulated Optimove's receipt of its transactional mail (by UniqueMessageID) or its
real-time event (by customer); and, for the other side of the trade, a burst of profile updates and the
UpdateCustomerAttributes calls it took against the fewest possible (1,000 customers a call).

    python -m benchmarks.latency [events] [per_second]
"""

from __future__ import annotations

import json
import math
import sys
import time
import uuid
from typing import Any

from benchmarks.local_stack import local_stack
from dig_contracts.examples import example_event

CUSTOMERS_PER_CALL = 1000


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
    }


def burst(http: Any, updates: int) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    members = [f"BURST-{run}-{i:05d}" for i in range(updates)]
    http.post("/_sim/optimove/customers", json={"customers": members})
    http.delete("/_sim/optimove/requests")
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
        time.sleep(1)
    return {"updates": updates, "calls": calls, "fewest_calls": math.ceil(updates / CUSTOMERS_PER_CALL)}


def run(events: int = 150, per_second: float = 5.0, updates: int = 5000) -> dict[str, Any]:
    with local_stack() as (_, http):
        return {"paced": paced(http, events, per_second), "burst": burst(http, updates)}


if __name__ == "__main__":
    arguments = sys.argv[1:]
    print(json.dumps(run(int(arguments[0]) if arguments else 150, float(arguments[1]) if len(arguments) > 1 else 5.0)))
