"""`dig connector new NAME`: a connector that lints, passes its own tests and its contract suite, and
synthesizes into the template with its function, queue and rule, touching nothing of the core."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dig_cli.connector_new import ScaffoldRefused, scaffold
from tests.infra.conftest import REPO, synthesize


def a_repository(tmp_path: Path) -> Path:
    """A DIG repository as a new connector's author has it (its pyproject, its src/connectors/)."""
    (tmp_path / "src" / "connectors").mkdir(parents=True)
    for package in (REPO / "src").iterdir():  # the core, as beside it (ruff tells first-party imports by them)
        if package.is_dir() and package.name != "connectors" and not package.name.endswith(".egg-info"):
            (tmp_path / "src" / package.name).symlink_to(package)
    (tmp_path / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
    return tmp_path


def run(*command: str, cwd: Path, path: Path) -> subprocess.CompletedProcess[str]:
    # The scaffolded package joins the `connectors` namespace package from its own src/.
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, check=False, env={"PYTHONPATH": str(path), "PATH": ""}
    )


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = a_repository(tmp_path_factory.mktemp("repo"))
    scaffold("acme", repo)
    return repo


def test_it_writes_the_connector_and_its_two_entry_points(scaffolded: Path) -> None:
    written = sorted(str(p.relative_to(scaffolded / "src" / "connectors" / "acme")) for p in _files(scaffolded))
    assert {"manifest.py", "config.py", "sample_config.json", "mapping.py", "delivery.py", "client.py", "handler.py",
            "local/__init__.py", "local/simulator.py", "tests/test_connector.py", "tests/conftest.py",
            "tests/fixtures/events_request.json", "tests/fixtures/events_response.json"} <= set(written)  # fmt: skip
    pyproject = (scaffolded / "pyproject.toml").read_text()
    assert 'acme = "connectors.acme.manifest:MANIFEST"' in pyproject.split('[project.entry-points."dig.connectors"]')[1]
    assert 'acme = "connectors.acme.local:LOCAL_DOUBLE"' in pyproject.split("dig.local_doubles")[1]
    assert not (scaffolded / "src" / "connectors" / "acme" / "client.py").read_text().count("{{")


def test_its_own_tests_and_the_contract_suite_pass_from_its_folder(scaffolded: Path) -> None:
    done = run(
        sys.executable, "-m", "pytest", "src/connectors/acme", "-q", "-p", "no:cacheprovider",
        cwd=scaffolded, path=scaffolded / "src",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    assert "9 passed" in done.stdout


@pytest.mark.parametrize("name", ["acme", "loyaltypartnerplatform2026x"])
def test_it_passes_the_repositorys_lint_whatever_the_names_length(tmp_path: Path, name: str) -> None:
    repo = a_repository(tmp_path)
    scaffold(name, repo)
    folder = f"src/connectors/{name}"
    run(sys.executable, "-m", "ruff", "format", "--quiet", folder, cwd=repo, path=repo / "src")  # as the command does
    checked = run(sys.executable, "-m", "ruff", "check", folder, cwd=repo, path=repo / "src")
    assert checked.returncode == 0, checked.stdout


def test_the_synthesized_template_holds_its_function_queue_and_rule(
    scaffolded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dig_contracts import registry

    monkeypatch.syspath_prepend(str(scaffolded / "src"))
    import connectors

    monkeypatch.setattr(connectors, "__path__", [*connectors.__path__, str(scaffolded / "src" / "connectors")])
    from connectors.acme.manifest import MANIFEST  # type: ignore[import-not-found]

    installed = registry.installed_connectors()
    monkeypatch.setattr("infra.stack.installed_connectors", lambda: (*installed, MANIFEST))
    template = json.loads((synthesize(tmp_path) / "Dig-dev.template.json").read_text())
    acme = {name: r for name, r in template["Resources"].items() if name.startswith("Acme")}
    kinds = sorted(r["Type"] for r in acme.values())
    assert kinds.count("AWS::Lambda::Function") == 1
    assert kinds.count("AWS::SQS::Queue") == 3  # its queue, its dead-letter queue, its rule target's
    [rule] = [r for r in acme.values() if r["Type"] == "AWS::Events::Rule"]
    assert rule["Properties"]["EventPattern"]["detail-type"] == ["MEMBER_REGISTRATION", "MEMBER_TIER"]
    [function] = [r for r in acme.values() if r["Type"] == "AWS::Lambda::Function"]
    assert function["Properties"]["Handler"] == "connectors.acme.handler.lambda_handler"
    assert _environment(function)["ACME_API_BASE_URL"] == "https://api.acme.example"


@pytest.mark.parametrize(
    ("name", "refusal"),
    [
        ("Acme", "lower-case letters and digits"),
        ("a", "lower-case letters and digits"),
        ("optimove", "src/connectors/optimove exists already"),
    ],
)
def test_a_name_it_cannot_use_is_refused_saying_why(tmp_path: Path, name: str, refusal: str) -> None:
    repo = a_repository(tmp_path)
    (repo / "src" / "connectors" / "optimove").mkdir()
    with pytest.raises(ScaffoldRefused, match=refusal):
        scaffold(name, repo)
    assert (repo / "pyproject.toml").read_text() == (REPO / "pyproject.toml").read_text()


def _files(repo: Path) -> list[Path]:
    return [
        p for p in (repo / "src" / "connectors" / "acme").rglob("*") if p.is_file() and "__pycache__" not in p.parts
    ]


def _environment(function: dict[str, Any]) -> dict[str, Any]:
    return dict(function["Properties"]["Environment"]["Variables"])
