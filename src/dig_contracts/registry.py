"""The connectors installed with DIG, found by their manifests' entry points.

A connector's distribution declares its manifest in its own ``pyproject.toml``::

    [project.entry-points."dig.connectors"]
    marketo = "connectors.marketo.manifest:MANIFEST"

and the CDK app, the local stack and ``dig config`` find it once it is installed next to DIG:
nothing in the core names a connector. Lambda functions never look here; each is built for its own.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable
from importlib import metadata
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any, Protocol

from dig_contracts.manifest import ConnectorManifest

ENTRY_POINT_GROUP = "dig.connectors"
CONNECTORS_ENV = "DIG_CONNECTORS"  # the installed connectors one deployment or local stack runs; unset: all


class ConnectorRegistryError(RuntimeError):
    pass


class EntryPointLike(Protocol):
    name: str
    value: str

    def load(self) -> Any: ...


def installed_connectors(entry_points: Iterable[EntryPointLike] | None = None) -> tuple[ConnectorManifest, ...]:
    """Every installed connector's manifest, by name; or, when the environment names them in
    ``DIG_CONNECTORS`` (comma-separated), those only: what one deployment or local stack runs (a
    tenant without SFMC deploys no SFMC queue). ``entry_points`` replaces the installed ones."""
    found = metadata.entry_points(group=ENTRY_POINT_GROUP) if entry_points is None else entry_points
    manifests = _load(found)
    named = os.environ.get(CONNECTORS_ENV, "") if entry_points is None else ""
    chosen = [name.strip() for name in named.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(manifests))
    if unknown:
        listed = ", ".join(sorted(manifests)) or "none"
        named = ", ".join(unknown)
        raise ConnectorRegistryError(f"{CONNECTORS_ENV} names {named}, not installed (installed: {listed})")
    names = sorted(chosen or manifests)
    return tuple(manifests[name] for name in names)


def _load(found: Iterable[EntryPointLike]) -> dict[str, ConnectorManifest]:
    manifests: dict[str, ConnectorManifest] = {}
    for entry in found:
        where = f"entry point {entry.name} = {entry.value} ({ENTRY_POINT_GROUP})"
        try:
            manifest = entry.load()
        except Exception as error:
            raise ConnectorRegistryError(f"{where} does not load: {type(error).__name__}: {error}") from error
        if not isinstance(manifest, ConnectorManifest):
            raise ConnectorRegistryError(f"{where} is a {type(manifest).__name__}, not a ConnectorManifest")
        if manifest.name != entry.name:
            raise ConnectorRegistryError(f"{where} names the connector {manifest.name!r}; the two must match")
        if manifest.name in manifests:
            raise ConnectorRegistryError(f"two installed connectors are named {manifest.name!r}")
        manifests[manifest.name] = manifest
    return manifests


def find_connector(name: str, manifests: Iterable[ConnectorManifest] | None = None) -> ConnectorManifest:
    known = {m.name: m for m in (installed_connectors() if manifests is None else manifests)}
    if name not in known:
        listed = ", ".join(sorted(known)) or "none"
        raise ConnectorRegistryError(f"no connector named {name!r} is installed (installed: {listed})")
    return known[name]


def sample_config(manifest: ConnectorManifest) -> Traversable | None:
    """The sample configuration the connector ships (the local stack starts with it)."""
    if manifest.sample_config is None:
        return None
    package, _, resource = manifest.sample_config.partition(":")
    return files(package).joinpath(resource)


def config_parser(manifest: ConnectorManifest) -> Callable[[Any], object] | None:
    """The function that validates the connector's configuration document, raising on a bad one."""
    if manifest.config_parser is None:
        return None
    module, _, name = manifest.config_parser.rpartition(".")
    parser: Callable[[Any], object] = getattr(importlib.import_module(module), name)
    return parser


def member_erasure(manifest: ConnectorManifest) -> Callable[[Any, str], int] | None:
    """The function that erases a member from what the connector keeps (``dig member forget``), if any."""
    if manifest.member_erasure is None:
        return None
    module, _, name = manifest.member_erasure.function.rpartition(".")
    erase: Callable[[Any, str], int] = getattr(importlib.import_module(module), name)
    return erase


def requirement_locks(manifests: Iterable[ConnectorManifest] | None = None) -> list[tuple[str, str]]:
    """(source, lock) paths of every requirements lock the installed connectors and their jobs name,
    for ``make lock``: each lock is compiled from ``requirements.in`` in its directory."""
    from dig_contracts.manifest import REQUIREMENTS_SOURCE

    pairs: dict[str, str] = {}
    for manifest in installed_connectors() if manifests is None else manifests:
        for named in (manifest.requirements, *(job.requirements for job in manifest.scheduled)):
            if named is None:
                continue
            package, _, file = named.partition(":")
            lock = files(package).joinpath(file)
            pairs[str(lock)] = str(files(package).joinpath(REQUIREMENTS_SOURCE))
    return sorted((source, lock) for lock, source in pairs.items())


if __name__ == "__main__":  # make lock: one "source lock" line per lock
    for source, lock in requirement_locks():
        print(source, lock)
