"""`make bench`: every benchmark, printed as JSON. (About 35 minutes: the runs through dig local dominate.)"""

from __future__ import annotations

import json
import sys

from benchmarks import api, connector_throughput, feed, files, latency, local_stack, pan


def main() -> None:
    results = {
        "api": api.run(),
        "connector_throughput": connector_throughput.run(),
        "local_stack_end_to_end": local_stack.run(),
        # What a member waits for, at 5 events a second, and what a burst of updates costs in calls.
        "member_latency": latency.run(),
        "files": files.run(),
        "optimove_feed": feed.run(),
        "card_number_rule": pan.run(),
    }
    json.dump(results, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
