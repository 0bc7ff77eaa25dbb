"""Where the running local stacks listen, so that every ``--local`` command finds one without being
told its port: ``dig local`` notes its URL here while it runs (a small JSON file, one entry per
process), and removes it when it stops."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

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


def _read() -> dict[str, str]:
    try:
        entries = json.loads(state_path().read_text())
    except (OSError, ValueError):
        return {}
    return (
        {pid: url for pid, url in entries.items() if pid.isdigit() and _alive(int(pid))}
        if isinstance(entries, dict)
        else {}
    )


def _write(entries: dict[str, str]) -> None:
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(entries))
    temporary.replace(path)  # atomic: a reader never sees half a file


def remember(url: str, pid: int | None = None) -> None:
    entries = _read()
    entries[str(pid or os.getpid())] = url
    _write(entries)


def forget(pid: int | None = None) -> None:
    entries = _read()
    if entries.pop(str(pid or os.getpid()), None) is not None:
        with contextlib.suppress(OSError):
            _write(entries)


def running_url() -> str | None:
    """The URL of the most recently started local stack that still runs."""
    entries = _read()
    return entries[max(entries, key=int)] if entries else None
