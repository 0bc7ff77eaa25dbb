"""`make bench`: every benchmark, printed as JSON."""

from __future__ import annotations

import json
import sys

from benchmarks import connector_throughput


def main() -> None:
    results = {"connector_throughput": connector_throughput.run()}
    json.dump(results, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
