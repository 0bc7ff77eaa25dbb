"""The kit is a connector's only door into DIG: a connector imports dig_connector_kit and dig_contracts
(and its own package), never db, the API, the CLI or the local stack, nor another connector."""

from __future__ import annotations

import ast
import functools
import typing
from pathlib import Path

import pytest

from dig_connector_kit.lambda_entry import Kit

CONNECTORS = Path(__file__).resolve().parents[2] / "src" / "connectors"
DIG_PACKAGES = frozenset({"db", "dig_api", "dig_cli", "dig_local", "dig_cost", "dig_connector_kit", "dig_contracts"})
A_CONNECTOR_MAY_IMPORT = frozenset({"dig_connector_kit", "dig_contracts"})


def imported_modules(source: str) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.extend([(node.lineno, node.module)])
    return found


def refused_imports(connector: str, source: str) -> list[str]:
    refused = []
    for line, module in imported_modules(source):
        top = module.split(".")[0]
        if top in DIG_PACKAGES - A_CONNECTOR_MAY_IMPORT or top == "tests":
            refused.append(f"line {line}: {module}")
        elif top == "connectors" and module.split(".")[1:2] != [connector]:
            refused.append(f"line {line}: {module} (another connector)")
    return refused


def test_the_rule_refuses_db_and_the_core_and_other_connectors_and_allows_the_kit() -> None:
    source = (
        "import json\nfrom db.contacts import MemberContact\nimport dig_api.handler\n"
        "from connectors.marketo.client import x\nfrom connectors.acme.mapping import y\n"
        "from dig_connector_kit.ports import MemberContact\nfrom dig_contracts.events import EventType\n"
        "from tests.fakes import FakePublisher\n"
    )
    assert refused_imports("acme", source) == [
        "line 2: db.contacts",
        "line 3: dig_api.handler",
        "line 4: connectors.marketo.client (another connector)",
        "line 8: tests.fakes",
    ]


@pytest.mark.parametrize("path", sorted(CONNECTORS.rglob("*.py")), ids=lambda p: str(p.relative_to(CONNECTORS)))
def test_no_file_of_a_connector_imports_past_the_kit(path: Path) -> None:
    connector = path.relative_to(CONNECTORS).parts[0]
    assert refused_imports(connector, path.read_text()) == []


def test_every_property_the_kit_offers_is_typed_with_a_port_or_a_concrete_type() -> None:
    hints = {}
    for name, member in vars(Kit).items():
        getter = member.func if isinstance(member, functools.cached_property) else getattr(member, "fget", None)
        if getter is not None:
            hints[name] = typing.get_type_hints(getter, globalns=_kit_namespace()).get("return")
    assert {"audit", "watermarks", "operations", "call_log", "contacts", "feeds", "limiter"} <= set(hints)
    untyped = sorted(name for name, hint in hints.items() if hint in (None, typing.Any))
    assert untyped == []


def _kit_namespace() -> dict[str, object]:
    import boto3
    import httpx

    from db.table import Table
    from dig_connector_kit import lambda_entry

    return {**vars(lambda_entry), "boto3": boto3, "httpx": httpx, "Table": Table, "DynamoDBClient": object}
