"""``dig config``: validate, push and show connector configurations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from dig_cli.console import console, errors

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Connector configuration, versioned in the configuration table."
)


def _validate(connector: str, file: Path) -> dict[str, object]:
    try:
        document = json.loads(file.read_text())
    except (OSError, ValueError) as error:
        errors.print(f"dig: cannot read {file}: {error}")
        raise typer.Exit(2) from None
    from dig_contracts.registry import ConnectorRegistryError, config_parser, find_connector

    try:
        parse = config_parser(find_connector(connector))
    except ConnectorRegistryError as error:
        errors.print(f"dig: {error}")
        raise typer.Exit(2) from None
    if parse is None:
        errors.print(f"dig: the {connector} connector takes no configuration")
        raise typer.Exit(2)
    try:
        parse(document)
    except ValueError as error:  # the connector's own error, listing its problems where it can
        errors.print(f"{file} is not a valid {connector} configuration:", style="bold red")
        for problem in getattr(error, "problems", None) or [str(error)]:
            errors.print(f"  - {problem}")
        raise typer.Exit(1) from None
    return document


@app.command("validate")
def validate(
    file: Annotated[Path, typer.Argument(help="Configuration file (JSON)")],
    connector: Annotated[
        str | None, typer.Option(help="Connector the file configures (needed when several are installed)")
    ] = None,
) -> None:
    """Check a configuration file without storing it."""
    if connector is None:
        from dig_contracts.registry import installed_connectors

        names = [m.name for m in installed_connectors()]
        if len(names) != 1:
            from dig_cli.main import UsageError

            raise UsageError(
                f"say which connector the file configures: --connector NAME (installed: {', '.join(names)})"
            )
        connector = names[0]
    _validate(connector, file)
    console.print(f"{file}: a valid {connector} configuration")


@app.command("push")
def push(
    connector: Annotated[str, typer.Argument(help="Connector name, e.g. optimove")],
    file: Annotated[Path, typer.Argument(help="Configuration file (JSON)")],
    stack: Annotated[str | None, typer.Option(help="Deployed stack name (e.g. Dig-dev)")] = None,
    region: Annotated[str | None, typer.Option(help="AWS region of the stack")] = None,
    local: Annotated[bool, typer.Option(help="The running local stack")] = False,
    local_url: Annotated[str | None, typer.Option(help="URL of the local stack (default: the running one)")] = None,
) -> None:
    """Validate FILE and store it as the next version of CONNECTOR's configuration."""
    from dig_cli.target import resolve

    document = _validate(connector, file)
    target = resolve(stack=stack, region=region, local=local, local_url=local_url)
    version = target.config_store().push(connector, document, pushed_by=target.identity())
    console.print(f"{connector} configuration version {version.version} is live (connectors reload it within a minute)")


@app.command("show")
def show(
    connector: Annotated[str, typer.Argument(help="Connector name, e.g. optimove")],
    stack: Annotated[str | None, typer.Option(help="Deployed stack name (e.g. Dig-dev)")] = None,
    region: Annotated[str | None, typer.Option(help="AWS region of the stack")] = None,
    local: Annotated[bool, typer.Option(help="The running local stack")] = False,
    local_url: Annotated[str | None, typer.Option(help="URL of the local stack (default: the running one)")] = None,
    history: Annotated[bool, typer.Option(help="List every version instead")] = False,
) -> None:
    """Print the live configuration of CONNECTOR (or its version history)."""
    from dig_cli.target import resolve

    target = resolve(stack=stack, region=region, local=local, local_url=local_url)
    store = target.config_store()
    if history:
        for version in store.history(connector):
            console.print(f"v{version.version}  {version.pushedAt}  {version.pushedBy}")
        return
    current = store.current(connector)
    if current is None:
        errors.print(f"dig: no configuration for {connector}; push one with dig config push {connector} FILE")
        raise typer.Exit(1)
    # The document alone on stdout, so that `dig config show optimove > file.json` round-trips.
    errors.print(f"{connector} v{current.version}, pushed {current.pushedAt} by {current.pushedBy}")
    print(json.dumps(current.document, indent=2, sort_keys=True))
