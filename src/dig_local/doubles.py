"""Local test doubles: each connector's stand-in for its provider, found the way its manifest is
(an entry point), so that the local stack names no provider. A connector's distribution declares::

    [project.entry-points."dig.local_doubles"]
    marketo = "connectors.marketo.local:LOCAL_DOUBLE"

The double lives in the connector's ``local`` subpackage, which the Lambda build leaves out.
The local stack serves each double under ``/_sim/<connector>``, seeds Secrets Manager (moto) with
the secret it accepts, points the connector's settings at it, and pushes the connector's sample
configuration.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import metadata
from typing import Any

from dig_connector_kit.testing.double import Answer, LocalDouble, ProviderDouble

__all__ = ["ENTRY_POINT_GROUP", "Answer", "LocalDouble", "ProviderDouble", "installed_doubles"]

ENTRY_POINT_GROUP = "dig.local_doubles"


def installed_doubles(entry_points: Iterable[Any] | None = None) -> dict[str, LocalDouble]:
    found = metadata.entry_points(group=ENTRY_POINT_GROUP) if entry_points is None else entry_points
    doubles: dict[str, LocalDouble] = {}
    for entry in found:
        double = entry.load()
        if not isinstance(double, LocalDouble) or double.connector != entry.name:
            raise RuntimeError(f"entry point {entry.name} = {entry.value} ({ENTRY_POINT_GROUP}) is not its LocalDouble")
        doubles[entry.name] = double
    return doubles
