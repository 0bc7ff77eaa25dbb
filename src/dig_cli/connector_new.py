"""``dig connector new NAME``: a working connector in ``src/connectors/NAME/``, written from the kit's
template (dig_cli/connector_template/): manifest, configuration model and sample, mapping, delivery on
the kit's transport, a local double on the shared base, fixtures, and tests (its own, and the kit's
contract suite), plus the two entry-point lines that make the core find it. Right after it,
``make test``, ``make synth`` and ``dig local`` include the new connector.
"""

from __future__ import annotations

import keyword
import re
import subprocess
import sys
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated

import typer

from dig_cli.console import console, errors
from dig_contracts.registry import installed_connectors

TEMPLATE_SUFFIX = ".tmpl"
NAME_RULE = re.compile(r"^[a-z][a-z0-9]{1,30}$")  # dig_contracts.manifest.ConnectorName
# The entry-point groups a connector declares (dig_contracts.registry, dig_local.doubles).
ENTRY_POINTS = (
    ('[project.entry-points."dig.connectors"]', '{name} = "connectors.{name}.manifest:MANIFEST"'),
    ('[project.entry-points."dig.local_doubles"]', '{name} = "connectors.{name}.local:LOCAL_DOUBLE"'),
)

connector_app = typer.Typer(no_args_is_help=True, help="Write a new connector from the kit's template.")


class ScaffoldRefused(ValueError):
    pass


def check_name(name: str, repo: Path) -> None:
    if not NAME_RULE.match(name):
        raise ScaffoldRefused(
            f"{name!r}: a connector's name is 2-31 lower-case letters and digits, starting with a letter"
        )
    if keyword.iskeyword(name):
        raise ScaffoldRefused(f"{name!r} is a Python keyword: the package could not be imported")
    if (repo / "src" / "connectors" / name).exists():
        raise ScaffoldRefused(f"src/connectors/{name} exists already")
    if name in {m.name for m in installed_connectors()}:
        raise ScaffoldRefused(f"a connector named {name!r} is installed already")


def render(text: str, name: str) -> str:
    return text.replace("{{NAME}}", name.upper()).replace("{{Name}}", name.title()).replace("{{name}}", name)


def _template_files(root: Traversable, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    found = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            if entry.name != "__pycache__":
                found.extend(_template_files(entry, (*prefix, entry.name)))
        elif entry.name.endswith(TEMPLATE_SUFFIX):
            found.append(((*prefix, entry.name.removesuffix(TEMPLATE_SUFFIX)), entry.read_text(encoding="utf-8")))
    return found


def add_entry_points(pyproject: Path, name: str) -> None:
    """The connector's two entry-point lines, each at the end of its group."""
    lines = pyproject.read_text(encoding="utf-8").splitlines()
    for header, line in ENTRY_POINTS:
        if header not in lines:
            raise ScaffoldRefused(f"{pyproject} has no {header} table")
        end = lines.index(header) + 1
        while end < len(lines) and lines[end].strip() and not lines[end].startswith("["):
            end += 1
        lines.insert(end, line.format(name=name))
    pyproject.write_text("\n".join(lines) + "\n", encoding="utf-8")


def scaffold(name: str, repo: Path) -> list[Path]:
    """Write the connector and its entry points; the files written."""
    check_name(name, repo)
    target = repo / "src" / "connectors" / name
    written = []
    for parts, text in _template_files(files("dig_cli").joinpath("connector_template")):
        path = target.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(text, name), encoding="utf-8")
        written.append(path)
    add_entry_points(repo / "pyproject.toml", name)
    return written


def _run(*command: str, repo: Path) -> bool:
    done = subprocess.run(command, cwd=repo, capture_output=True, text=True, check=False)  # noqa: S603 - our own tools
    if done.returncode != 0:
        errors.print(f"{' '.join(command[2:4])} did not finish:\n{done.stderr[-2000:]}")
    return done.returncode == 0


@connector_app.command("new")
def new_command(
    name: Annotated[str, typer.Argument(help="The connector's name: lower-case letters and digits, e.g. acme")],
    repo: Annotated[Path, typer.Option(help="The DIG repository to write into (default: here)")] = Path(),
    install: Annotated[bool, typer.Option(help="Register the entry points now (pip install -e . --no-deps)")] = True,
) -> None:
    """Write a working connector into src/connectors/NAME/ and register it."""
    repo = repo.resolve()
    if not (repo / "pyproject.toml").is_file() or not (repo / "src" / "connectors").is_dir():
        errors.print(f"{repo} is not a DIG repository (no pyproject.toml and src/connectors/)")
        raise typer.Exit(2)
    try:
        written = scaffold(name, repo)
    except ScaffoldRefused as refused:
        errors.print(str(refused))
        raise typer.Exit(2) from None
    target = repo / "src" / "connectors" / name
    # Lines whose length depends on the name are laid out as the repository's formatter would.
    _run(sys.executable, "-m", "ruff", "format", "--quiet", str(target), repo=repo)
    if install:
        _run(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "-e", str(repo), repo=repo)
    console.print(f"Wrote {len(written)} files into src/connectors/{name}/ and its two entry points in pyproject.toml.")
    console.print(
        "Next: replace the PLACEHOLDER facts in client.py and the samples in tests/fixtures/ with the provider's "
        f"documented ones; then make test (its tests: .venv/bin/pytest src/connectors/{name}), make synth, make run."
    )
