"""Synthesize the CDK app once per session (about 10 s) and share the template."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def synthesize(outdir: Path, **context: str) -> Path:
    from infra.app import build_app

    defaults = json.loads((REPO / "cdk.json").read_text())["context"]
    build_app(context={**defaults, **context}, outdir=str(outdir)).synth()
    return outdir


@pytest.fixture(scope="session")
def cloud_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def template(cloud_assembly: Path) -> dict[str, Any]:
    return json.loads((cloud_assembly / "Dig-dev.template.json").read_text())


@pytest.fixture(scope="session")
def resources(template: dict[str, Any]) -> Callable[[str], dict[str, dict[str, Any]]]:
    def of_type(kind: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}

    return of_type
