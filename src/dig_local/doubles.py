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

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Protocol

ENTRY_POINT_GROUP = "dig.local_doubles"


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection instead of answering (the call was performed)


class ProviderDouble(Protocol):
    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        """``path`` relative to /_sim/<connector>."""
        ...


@dataclass(frozen=True)
class LocalDouble:
    connector: str
    secret: Mapping[str, str]  # what the double accepts as credentials (the connector's secret, locally)
    settings: Callable[[str], dict[str, str]]  # the double's base URL -> the connector's settings
    make: Callable[[Mapping[str, Any]], ProviderDouble]  # the sample configuration -> a running double
    buckets: tuple[str, ...] = ()  # the provider's S3 buckets, made in the local stack's S3 (a feed's destination)


def installed_doubles(entry_points: Iterable[Any] | None = None) -> dict[str, LocalDouble]:
    found = metadata.entry_points(group=ENTRY_POINT_GROUP) if entry_points is None else entry_points
    doubles: dict[str, LocalDouble] = {}
    for entry in found:
        double = entry.load()
        if not isinstance(double, LocalDouble) or double.connector != entry.name:
            raise RuntimeError(f"entry point {entry.name} = {entry.value} ({ENTRY_POINT_GROUP}) is not its LocalDouble")
        doubles[entry.name] = double
    return doubles
