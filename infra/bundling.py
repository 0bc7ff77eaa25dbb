"""Lambda code and dependencies, built without Docker.

Dependencies: ``pip install --platform`` of requirements/lambda.txt for the Lambda runtime and
architecture into a layer directory, cached under .build/ by the lock file's hash. Function code:
only the packages a function imports, copied from src/ (no simulator, CLI or local stack code
ever ships in a Lambda).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
BUILD = REPO / ".build"
LOCK = REPO / "requirements" / "lambda.txt"

RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
PIP_PYTHON_VERSION = "3.14"
PIP_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
# Every function needs the shared contracts, the audit trail and the connector kit.
CORE_PACKAGES = ("dig_contracts", "db", "dig_connector_kit")


def dependencies_directory() -> Path:
    """The layer's content (``python/...``), built once per lock file."""
    digest = hashlib.sha256(LOCK.read_bytes() + f"{PIP_PYTHON_VERSION}{PIP_PLATFORMS}".encode()).hexdigest()[:16]
    root = BUILD / "layers" / digest
    marker = BUILD / "layers" / f"{digest}.complete"
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        platforms = [arg for platform in PIP_PLATFORMS for arg in ("--platform", platform)]
        completed = subprocess.run(  # noqa: S603 - a fixed pip command on the repository's own lock file
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *platforms,
                "--implementation",
                "cp",
                "--python-version",
                PIP_PYTHON_VERSION,
                "--only-binary=:all:",
                "--no-compile",
                "--no-deps",
                "--target",
                str(root / "python"),
                "-r",
                str(LOCK),
            ],
            check=False,
            capture_output=True,
            text=True,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"pip could not build the Lambda dependencies:\n{completed.stderr[-3000:]}")
        marker.touch()
    return root


def dependencies_layer(scope: Construct, construct_id: str) -> lambda_.LayerVersion:
    return lambda_.LayerVersion(
        scope,
        construct_id,
        code=lambda_.Code.from_asset(str(dependencies_directory())),
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[ARCHITECTURE],
        description="DIG runtime dependencies (requirements/lambda.txt)",
    )


def function_code(name: str, packages: tuple[str, ...]) -> lambda_.Code:
    """An asset holding only ``packages`` (dotted names) and the core packages."""
    target = BUILD / "functions" / name
    shutil.rmtree(target, ignore_errors=True)
    for package in dict.fromkeys((*CORE_PACKAGES, *packages)):
        parts = package.split(".")
        shutil.copytree(
            SRC.joinpath(*parts),
            target.joinpath(*parts),
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "sample_*.json"),
        )
    return lambda_.Code.from_asset(str(target))
