"""The batch-file flow: the memory of its steps against the file's size (in process, moto), and a
100,000-line events file through `dig local` (lines per second, the local stack's peak memory)."""

from __future__ import annotations

import gzip
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx

from benchmarks.local_stack import local_stack

FINAL = {"COMPLETED", "COMPLETED_WITH_ERRORS", "FAILED"}


def lines_of(count: int, prefix: str) -> bytes:
    return b"".join(
        json.dumps(
            {
                "eventId": f"{prefix}-{i}",
                "eventType": "MEMBER_PROFILE_UPDATE",
                "occurredAt": "2026-11-21T12:00:00Z",
                "memberId": f"M-{i:06d}",
                "data": {"profile": {"firstName": f"Name{i}", "city": "Ottawa"}},
            }
        ).encode()
        + b"\n"
        for i in range(count)
    )


def memory(sizes: tuple[int, ...] = (10_000, 100_000)) -> dict[str, Any]:
    """Peak Python memory of validating a gzip events file, and of one batch (1,000 lines) of it:
    streaming means neither grows with the file."""
    from moto import mock_aws
    from tests.files_harness import FileHarness

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    figures: dict[str, Any] = {}
    for size in sizes:
        with mock_aws():
            harness = FileHarness()
            harness.steps.chunk_lines = 500
            data = gzip.compress(lines_of(size, f"mem-{size}"))
            file_id = harness.declare(data, compression="gzip")
            harness.upload(file_id, data)
            tracemalloc.start()
            started = time.perf_counter()
            validation = harness.steps.validate(f"uploads/{file_id}")
            validate_seconds = time.perf_counter() - started
            _, validate_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            batch = harness.batches(validation)[0]
            started = time.perf_counter()
            harness.steps.process(batch, validation["batchInput"])
            batch_seconds = time.perf_counter() - started
            _, batch_peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        figures[f"{size}_lines"] = {
            "gzip_bytes": len(data),
            "validate_seconds": round(validate_seconds, 2),
            "validate_peak_mib": round(validate_peak / 2**20, 1),
            "one_batch_lines": sum(c["lines"] for c in batch),
            "one_batch_seconds_in_process_moto": round(batch_seconds, 2),
            "one_batch_peak_mib": round(batch_peak / 2**20, 1),
        }
    return figures


def local(lines: int = 100_000) -> dict[str, Any]:
    """A ``lines``-line events file uploaded to `dig local` as `dig files upload` does it."""
    from dig_cli.files import Uploader, describe

    with local_stack() as (process, api):
        api.post("/_sim/optimove/customers", json={"customers": [f"M-{i:06d}" for i in range(lines)]})
        with tempfile.TemporaryDirectory() as folder, httpx.Client(timeout=300) as storage:
            path = Path(folder) / "bench.jsonl.gz"
            path.write_bytes(gzip.compress(lines_of(lines, f"local-file-{time.time_ns()}")))
            uploader = Uploader(api, storage)
            declared = uploader.declare(describe(path, kind="events", name=None, on_bytes=lambda _: None))
            started = time.perf_counter()
            uploader.upload(path, declared["upload"], lambda _: None)
            view = uploader.wait(declared["fileId"], 7200, lambda _: None, interval=2)
            seconds = time.perf_counter() - started
        peak_kib = _peak_rss_kib(process.pid)
        return {
            "lines": lines,
            "status": view["status"],
            "accepted": view["counts"]["accepted"],
            "seconds": round(seconds, 1),
            "lines_per_second": round(view["counts"]["lines"] / seconds, 1),
            "local_stack_peak_rss_mib": round(peak_kib / 1024) if peak_kib else None,
        }


def _peak_rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def run() -> dict[str, Any]:
    return {"memory": memory(), "local_stack": local()}


if __name__ == "__main__":
    json.dump(run() if len(sys.argv) < 2 else {sys.argv[1]: globals()[sys.argv[1]]()}, sys.stdout, indent=2)
    print()
