"""Lambda code and dependencies, built without Docker.

Dependencies: ``pip install --platform`` of requirements/lambda.txt for the Lambda runtime and
architecture into a layer directory, cached under .build/ by the lock file's hash. Function code:
only the packages a function imports, copied from src/ (no simulator, CLI or local stack code
ever ships in a Lambda).

Bytecode: Lambda's code directories are read-only, so a module shipped without its ``.pyc`` is
compiled again at every cold start (about 0.7 s more for the API handler, botocore being most of
it). A ``.pyc`` is only read by the Python minor version that wrote it, so it takes an interpreter
of the runtime's version: ``python3.14`` on PATH, or the one ``DIG_LAMBDA_PYTHON`` names. Without
one the code still deploys and works, and the synth says what the cold starts will cost.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from aws_cdk import Annotations
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / ".build"
LOCK = REPO / "requirements" / "lambda.txt"

RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
PIP_PYTHON_VERSION = "3.14"
PIP_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
# Every function needs the shared contracts, the audit trail and the connector kit.
CORE_PACKAGES = ("dig_contracts", "db", "dig_connector_kit")
NEVER_SHIPPED = ("local", "tests", "testing")
BYTECODE_PYTHON_VARIABLE = "DIG_LAMBDA_PYTHON"
# Where Lambda puts a layer's and a function's files: the paths tracebacks show.
LAYER_ROOT = "/opt/python"
FUNCTION_ROOT = "/var/task"


@functools.cache
def bytecode_python() -> str | None:
    """An interpreter of the Lambda runtime's Python version to compile bytecode with, or None.

    ``DIG_LAMBDA_PYTHON`` when set (it must then be that version; ``none`` ships no bytecode), else
    ``python3.14`` on PATH."""
    configured = os.environ.get(BYTECODE_PYTHON_VARIABLE)
    if configured == "none":
        return None
    found = shutil.which(configured or f"python{PIP_PYTHON_VERSION}")
    if found is None:
        if configured:
            raise RuntimeError(f"{BYTECODE_PYTHON_VARIABLE}={configured}: no such executable")
        return None
    answer = subprocess.run(  # noqa: S603 - the interpreter the developer configured or has on PATH
        [found, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=False,
    )
    version = answer.stdout.strip()
    if version != PIP_PYTHON_VERSION:
        if configured:
            raise RuntimeError(
                f"{BYTECODE_PYTHON_VARIABLE}={configured} is Python {version or '(did not run)'}; "
                f"the Lambda runtime is Python {PIP_PYTHON_VERSION}, and only its own version reads a .pyc"
            )
        return None
    return found


def compile_bytecode(directory: Path, deployed_at: str, python: str) -> None:
    """Write every module's .pyc next to it, as ``python`` would at first import.

    Hash-based and unchecked: the deployed source never changes, and the files come out the same on
    every build (no timestamps, and the paths are the ones Lambda uses), so assets keep their hash.
    """
    completed = subprocess.run(  # noqa: S603 - compileall of our own build directory
        [
            python,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            "-s",
            str(directory),
            "-p",
            deployed_at,
            str(directory),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"compileall failed in {directory} ({BYTECODE_PYTHON_VARIABLE}=none builds without bytecode):\n"
            f"{(completed.stdout + completed.stderr)[-3000:]}"
        )


# Lambda's limit on a function's code and layers together, unzipped.
UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024


def dependencies_directory(lock: Path = LOCK, unused: tuple[str, ...] = ()) -> Path:
    """A layer's content (``python/...``) from ``lock``, without the ``unused`` globs, built once per
    lock file."""
    python = bytecode_python()
    flavour = f"{PIP_PYTHON_VERSION}{PIP_PLATFORMS}{'+bytecode' if python else ''}{unused}"
    digest = hashlib.sha256(lock.read_bytes() + flavour.encode()).hexdigest()[:16]
    root = BUILD / "layers" / digest
    marker = BUILD / "layers" / f"{digest}.complete"
    if not marker.exists():
        # One build at a time per layer: a second synth (the infra tests' other worker) waits for the first
        # and takes its build, rather than downloading and compiling the same 150 MB again.
        with _exclusive(_made(BUILD / "layers") / f"{digest}.lock"):
            if not marker.exists():
                _build_layer(lock, unused, python, root, marker)
    return root


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    import fcntl

    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_layer(lock: Path, unused: tuple[str, ...], python: str | None, final_root: Path, marker: Path) -> None:
    """Built aside, then moved into place whole: a synth reading a layer never sees it half built."""
    root = Path(tempfile.mkdtemp(prefix=f"{final_root.name}-", dir=final_root.parent))
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
            "--require-hashes",  # the lock's hashes: what was reviewed is what ships
            "--target",
            str(root / "python"),
            "-r",
            str(lock),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"pip could not build the Lambda dependencies:\n{completed.stderr[-3000:]}")
    for pattern in unused:
        for path in (root / "python").glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    if python:
        compile_bytecode(root / "python", LAYER_ROOT, python)
    # Never remove what is in place: a synth may be reading it (only a whole build is ever moved there).
    try:
        root.rename(final_root)
    except OSError:  # a synth outside the lock (an older checkout's) moved an identical build first
        shutil.rmtree(root, ignore_errors=True)
    marker.touch()


def unzipped_bytes(*directories: Path) -> int:
    return sum(f.stat().st_size for d in directories for f in d.rglob("*") if f.is_file())


def requirements_layer(
    scope: Construct, construct_id: str, lock: Path, description: str, unused: tuple[str, ...] = ()
) -> tuple[lambda_.LayerVersion, Path]:
    """A layer of a function's own (a scheduled job's heavier dependencies), and its directory."""
    directory = dependencies_directory(lock, unused)
    layer = lambda_.LayerVersion(
        scope,
        construct_id,
        code=lambda_.Code.from_asset(str(directory)),
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[ARCHITECTURE],
        description=description[:256],
    )
    return layer, directory


def check_unzipped_size(name: str, *directories: Path) -> int:
    """Lambda refuses a function whose code and layers exceed 250 MB unzipped: say so at synth."""
    size = unzipped_bytes(*directories)
    if size > UNZIPPED_LIMIT_BYTES:
        raise ValueError(
            f"{name}: its code and layers are {size / 2**20:.0f} MB unzipped; Lambda allows 250 MB. "
            "Leave out what the function does not import (infra/bundling.py)."
        )
    return size


def dependencies_layer(scope: Construct, construct_id: str) -> lambda_.LayerVersion:
    if bytecode_python() is None:
        Annotations.of(scope).add_warning_v2(
            "@dig/bundling:no-bytecode",
            f"No Python {PIP_PYTHON_VERSION} found to compile bytecode with (python{PIP_PYTHON_VERSION} on PATH or "
            f"{BYTECODE_PYTHON_VARIABLE}): the functions deploy and work, but every cold start compiles the modules "
            "it imports, about 0.7 s more for the API. Deploy from a machine that has it.",
        )
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
    return lambda_.Code.from_asset(str(function_directory(name, packages)))


def package_directory(package: str) -> Path:
    """Where ``package`` is imported from: src/ for DIG's own, anywhere for a connector installed apart."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"{package} is not an importable package")
    return Path(next(iter(spec.submodule_search_locations)))


def _made(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@functools.cache
def functions_build_root() -> Path:
    """This process's own directory of function code (CDK copies each into the cloud assembly): two
    synths at once, parallel tests, never copy into or remove each other's."""
    root = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=_made(BUILD / "functions")))
    atexit.register(shutil.rmtree, root, True)
    return root


def function_directory(name: str, packages: tuple[str, ...]) -> Path:
    target = functions_build_root() / name
    shutil.rmtree(target, ignore_errors=True)
    for package in dict.fromkeys((*CORE_PACKAGES, *packages)):
        parts = package.split(".")
        shutil.copytree(
            package_directory(package),
            target.joinpath(*parts),
            # Never shipped: a connector's ``local`` double and ``tests``, the kit's ``testing`` module.
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "sample_*.json", *NEVER_SHIPPED),
        )
    python = bytecode_python()
    if python:
        compile_bytecode(target, FUNCTION_ROOT, python)
    return target
