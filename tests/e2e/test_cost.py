"""`dig cost` end to end: its own local stack, the real handlers, every AWS request metered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_dig_cost_prices_the_batch_route_from_what_the_handlers_actually_asked_of_aws() -> None:
    dig = str(Path(sys.executable).parent / "dig")
    done = subprocess.run(
        [dig, "cost", "--events", "300", "--json"], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert (report["route"], report["accepted"]) == ("batch", 300)
    lines = {(line["component"], line["detail"]): line for line in report["lines"]}
    # One record per event: the item and its two index entries (byMember, byEventType), under 1 KB each.
    assert lines[("DynamoDB writes", "audit: message records")]["per_event"] == 3
    # One delivery per event (MEMBER_PROFILE_UPDATE reaches Optimove only): the item and its status entry.
    assert lines[("DynamoDB writes", "audit: delivery records")]["per_event"] == 2
    # One entry per event, and Optimove's result callbacks (one per coalesced call) go on the bus too.
    assert 1 <= lines[("EventBridge", "PutEvents entries (64 KB chunks)")]["per_event"] < 1.05
    assert 1 <= lines[("SQS", "rules' deliveries to connector queues")]["per_event"] < 1.05
    # One POST per 500 events, plus Optimove's result callbacks: far below one API request per event.
    assert lines[("API Gateway", "REST requests (posts and provider callbacks)")]["per_event"] < 0.05
    assert report["requests_per_event"]["events.PutEvents"] < 0.11  # 10 entries a call, and the callbacks
    total = sum(line["usd_per_million"] for line in report["lines"])
    assert abs(report["totalUsdPerMillion"] - total) < 0.01
    assert 0 < report["auditTrailShare"] < 1
