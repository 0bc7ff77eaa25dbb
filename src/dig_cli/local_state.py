"""Where the running local stacks listen, so that every ``--local`` command finds one without being
told its port: ``dig local`` notes its URL here while it runs (a small JSON file, one entry per
process), and removes it when it stops."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

STATE_ENV = "DIG_LOCAL_STATE"


def state_path() -> Path:
    configured = os.environ.get(STATE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "dig" / "local-stacks.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def _read() -> dict[str, dict[str, Any]]:
    """pid -> {"url", "started"}, for the processes that still run."""
    try:
        entries = json.loads(state_path().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(entries, dict):
        return {}
    return {
        pid: entry
        for pid, entry in entries.items()
        if pid.isdigit() and isinstance(entry, dict) and "url" in entry and _alive(int(pid))
    }


def _write(entries: dict[str, dict[str, Any]]) -> None:
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(entries))
    temporary.replace(path)  # atomic: a reader never sees half a file


def remember(url: str, pid: int | None = None) -> None:
    entries = _read()
    entries[str(pid or os.getpid())] = {"url": url, "started": time.time()}
    _write(entries)


def forget(pid: int | None = None) -> None:
    entries = _read()
    if entries.pop(str(pid or os.getpid()), None) is not None:
        with contextlib.suppress(OSError):
            _write(entries)


def running_url() -> str | None:
    """The URL of the most recently started local stack that still runs (by start time: process ids
    wrap around)."""
    entries = _read()
    if not entries:
        return None
    return str(max(entries.values(), key=lambda entry: float(entry.get("started", 0)))["url"])
