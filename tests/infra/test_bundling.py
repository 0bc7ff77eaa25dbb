"""Bytecode for the Lambda runtime: found, compiled reproducibly, refused when it would be ignored."""

from __future__ import annotations

import importlib.util
import marshal
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import bundling


@pytest.fixture(autouse=True)
def fresh_discovery(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    discover = bundling.bytecode_python
    monkeypatch.delenv(bundling.BYTECODE_PYTHON_VARIABLE, raising=False)
    discover.cache_clear()
    yield
    discover.cache_clear()


def fake_interpreter(directory: Path, name: str, version: str) -> Path:
    """An executable that answers the version question the way a real interpreter would."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_python_of_the_runtimes_version_on_path_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = fake_interpreter(tmp_path / "bin", f"python{bundling.PIP_PYTHON_VERSION}", bundling.PIP_PYTHON_VERSION)
    monkeypatch.setenv("PATH", str(found.parent))
    assert bundling.bytecode_python() == str(found)


def test_without_one_nothing_is_compiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert bundling.bytecode_python() is None


def test_one_on_path_that_is_another_version_is_passed_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    impostor = fake_interpreter(tmp_path / "bin", f"python{bundling.PIP_PYTHON_VERSION}", "3.11")
    monkeypatch.setenv("PATH", str(impostor.parent))
    assert bundling.bytecode_python() is None


def test_a_configured_interpreter_of_another_version_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(bundling.BYTECODE_PYTHON_VARIABLE, sys.executable)
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    with pytest.raises(RuntimeError, match=rf"DIG_LAMBDA_PYTHON=.* is Python {running}; .* Python 3\.14"):
        bundling.bytecode_python()


def test_none_builds_without_bytecode_whatever_is_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = fake_interpreter(tmp_path / "bin", f"python{bundling.PIP_PYTHON_VERSION}", bundling.PIP_PYTHON_VERSION)
    monkeypatch.setenv("PATH", str(found.parent))
    monkeypatch.setenv(bundling.BYTECODE_PYTHON_VARIABLE, "none")
    assert bundling.bytecode_python() is None


def test_a_configured_interpreter_that_does_not_exist_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(bundling.BYTECODE_PYTHON_VARIABLE, "/nowhere/python3.14")
    with pytest.raises(RuntimeError, match="no such executable"):
        bundling.bytecode_python()


def build(root: Path) -> Path:
    package = root / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text("def where():\n    raise RuntimeError('here')\n")
    bundling.compile_bytecode(root, bundling.FUNCTION_ROOT, sys.executable)
    return package / "__pycache__" / f"mod.{sys.implementation.cache_tag}.pyc"


def test_bytecode_is_hash_based_unchecked_and_names_the_deployed_path(tmp_path: Path) -> None:
    pyc = build(tmp_path / "a").read_bytes()
    assert pyc[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # hash-based, source not checked
    code = marshal.loads(pyc[16:])  # noqa: S302 - the file this test just compiled
    assert code.co_filename == "/var/task/pkg/mod.py"  # what a traceback in Lambda shows


def test_two_builds_give_the_same_bytes_so_assets_keep_their_hash(tmp_path: Path) -> None:
    assert build(tmp_path / "one").read_bytes() == build(tmp_path / "two").read_bytes()


def test_a_module_that_does_not_compile_fails_the_build_naming_it(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def (:\n")
    with pytest.raises(RuntimeError, match=r"DIG_LAMBDA_PYTHON=none builds without bytecode[\s\S]*broken\.py"):
        bundling.compile_bytecode(tmp_path, bundling.FUNCTION_ROOT, sys.executable)


def test_function_code_ships_a_pyc_for_every_module_when_an_interpreter_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stand-in for python3.14: the running interpreter, whose .pyc tag the assertion expects.
    monkeypatch.setattr(bundling, "bytecode_python", lambda: sys.executable)
    monkeypatch.setattr(bundling, "functions_build_root", lambda: tmp_path)
    bundling.function_code("api", ("dig_api",))
    asset = tmp_path / "api"
    modules = {p.relative_to(asset).with_suffix("") for p in asset.rglob("*.py")}
    compiled = {
        p.parent.parent.relative_to(asset) / p.name.removesuffix(f".{sys.implementation.cache_tag}.pyc")
        for p in asset.rglob("__pycache__/*.pyc")
    }
    assert Path("dig_api/handler") in modules
    assert compiled == modules


def test_a_function_over_lambdas_unzipped_limit_stops_the_synth_with_a_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra import bundling

    (tmp_path / "layer").mkdir()
    (tmp_path / "layer" / "big.so").write_bytes(b"x" * 3000)
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "handler.py").write_bytes(b"y" * 100)
    monkeypatch.setattr(bundling, "UNZIPPED_LIMIT_BYTES", 4000)
    assert bundling.check_unzipped_size("feed job", tmp_path / "layer", tmp_path / "code") == 3100
    monkeypatch.setattr(bundling, "UNZIPPED_LIMIT_BYTES", 3000)
    with pytest.raises(ValueError, match=r"feed job: its code and layers are 0 MB unzipped; Lambda allows 250 MB"):
        bundling.check_unzipped_size("feed job", tmp_path / "layer", tmp_path / "code")
