"""A connector's sample configuration, as its tests start from it (the one its manifest names)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dig_contracts.manifest import ConnectorManifest
from dig_contracts.registry import sample_config


def sample_config_path(manifest: ConnectorManifest) -> Path:
    found = sample_config(manifest)
    if found is None:
        raise LookupError(f"the {manifest.name} manifest names no sample_config")
    return Path(str(found))


def sample_config_document(manifest: ConnectorManifest) -> dict[str, Any]:
    """A fresh copy of the sample configuration, to change in a test."""
    return dict(json.loads(sample_config_path(manifest).read_text()))
