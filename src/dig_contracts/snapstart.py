"""Lambda SnapStart for the functions that answer requests (the API, the authorizer, the connectors'
synchronous entry points): what they do at init, and what they make again after a restore.

With SnapStart, Lambda runs a version's init once, snapshots the execution environment and resumes
every new environment from that snapshot. Whatever init made is then shared by all of them, however
long after. So at init (``prepare``) a function imports its modules and builds its AWS clients, which
a snapshot keeps, but fetches no data; after each restore (``after_restore`` hooks, run before the
first request) it gets a fresh random seed, drops cached secrets and parameters, and builds its AWS
clients again: their credentials and connections are the snapshot's. The clients are rebuilt from a
shared botocore data loader (``session``), whose service models the snapshot holds: a few
milliseconds each instead of the tens that loading the models takes.

The hooks come from ``snapshot_restore_py``, which Lambda's Python runtimes include; without it (the
local stack, tests) nothing is registered and ``restore_hooks`` lists nothing.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from functools import cache
from typing import Any

INITIALIZATION_TYPE = "AWS_LAMBDA_INITIALIZATION_TYPE"  # set by Lambda: "snap-start" while it snapshots
SNAP_START = "snap-start"

Hook = Callable[[], Any]


def snapshotting() -> bool:
    """Whether this init is the one Lambda snapshots."""
    return os.environ.get(INITIALIZATION_TYPE) == SNAP_START


def after_restore(hook: Hook) -> Hook:
    """Run ``hook`` each time an environment resumes from the snapshot (in registration order)."""
    try:
        from snapshot_restore_py import register_after_restore
    except ImportError:  # not in Lambda, and not installed: nothing restores here
        return hook
    if hook not in restore_hooks():
        register_after_restore(hook)
    return hook


def restore_hooks() -> list[Hook]:
    """What runs after a restore, in order (for tests: the library keeps no public list)."""
    try:
        import snapshot_restore_py
    except ImportError:
        return []
    return [entry[0] for entry in snapshot_restore_py._after_restore_registry]


def prepare(warm: Hook, refresh: Hook) -> None:
    """At a function's init: ``refresh`` after every restore; and while Lambda snapshots, ``warm`` now
    (imports and clients, never data), so that the snapshot holds what the first request would build."""
    after_restore(reseed_and_forget)
    after_restore(refresh)
    if snapshotting():
        warm()


def reseed_and_forget() -> None:
    """Unique per environment again: the random generator (botocore's retry jitter, ours), and no
    secret or parameter cached from before the snapshot."""
    random.seed()
    from aws_lambda_powertools.utilities.parameters import clear_caches

    clear_caches()


@cache
def _data_loader() -> Any:
    import botocore.session

    return botocore.session.get_session().get_component("data_loader")


def session() -> Any:
    """A new boto3 session (credentials resolved afresh) sharing one loader of service models."""
    import boto3.session
    import botocore.session

    core = botocore.session.get_session()
    core.register_component("data_loader", _data_loader())
    return boto3.session.Session(botocore_session=core)
