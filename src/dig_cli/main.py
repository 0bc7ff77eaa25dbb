"""``dig``: one command for developers and operators.

Exit codes: 0 success, 1 partial failure, 2 usage error. Errors are sentences, not tracebacks.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from dig_cli import config_commands, connector_new, cost, feed, files, local_state, operate, payouts, status
from dig_cli.console import console, errors

app = typer.Typer(no_args_is_help=True, add_completion=False, help="DIG: the Data Integration Gateway's command.")
local_app = typer.Typer(add_completion=False, help="The local stack: moto, the real handlers, an Optimove simulator.")
app.add_typer(local_app, name="local")
app.add_typer(config_commands.app, name="config")
app.add_typer(operate.audit_app, name="audit")
app.add_typer(operate.replay_app, name="replay")
app.add_typer(operate.dlq_app, name="dlq")
app.add_typer(operate.member_app, name="member")
app.add_typer(files.files_app, name="files")
app.add_typer(feed.feed_app, name="feed")
app.add_typer(payouts.payouts_app, name="payouts")
app.add_typer(connector_new.connector_app, name="connector")
app.command("status")(status.status_command)
app.command("cost")(cost.cost_command)


class UsageError(Exception):
    """A mistake in how the command was called (exit code 2)."""


@local_app.callback(invoke_without_command=True)
def local(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port of the local API (0: any free port)")] = 8080,
    demo: Annotated[
        bool, typer.Option(help="Post sample events, show their audit trail and Optimove requests")
    ] = False,
    retry_delay: Annotated[int, typer.Option(help="Seconds before a failed message is retried")] = 2,
    verbose: Annotated[bool, typer.Option(help="Show the handlers' logs")] = False,
    batching_window: Annotated[
        float | None,
        typer.Option(help="Seconds a connector's poller gathers a batch (default: its manifest's, as in AWS)"),
    ] = None,
) -> None:
    """Run the local stack in the foreground until Ctrl-C or SIGTERM."""
    if ctx.invoked_subcommand is not None:
        return
    from dig_local.stack import LocalStack

    stack = LocalStack(
        port=port, retry_delay_seconds=retry_delay, quiet=not verbose, batching_window_seconds=batching_window
    )
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    url = stack.start()
    local_state.remember(url)
    print(f"DIG local stack ready at {url} (AWS services at {stack.aws_endpoint}); Ctrl-C stops it", flush=True)
    try:
        if demo:
            from dig_cli.demo import run_demo
            from dig_cli.target import resolve

            run_demo(url, console)
            figures = status.gather(resolve(stack=None, region=None, local=True, local_url=url))
            console.print("\n`dig status --local`:")
            status.render(figures, status.verdict(figures), console)
            console.print(f"\nThe stack keeps serving at {url}. Try:")
            console.print(f'  curl -H "Authorization: Bearer $(dig local token)" {url}/v1/openapi.json', soft_wrap=True)
        stopping.wait()
    finally:
        local_state.forget()
        stack.stop()
        print("DIG local stack stopped", flush=True)


@local_app.command("token")
def local_token(
    client: Annotated[str, typer.Option(help="Client id (the token's subject)")] = "es-loyalty",
    hours: Annotated[float, typer.Option(help="Lifetime in hours")] = 12,
    read_only: Annotated[bool, typer.Option(help="Only the events:read scope")] = False,
) -> None:
    """Print a bearer token that a local stack with default settings accepts."""
    from dig_api.auth import READ_SCOPE
    from dig_local.resources import local_token as mint_local

    print(mint_local(client, scopes=(READ_SCOPE,) if read_only else None, hours=hours))


@app.command("token")
def token(
    stack: Annotated[str, typer.Option(help="Deployed stack name, e.g. Dig-dev")],
    region: Annotated[str | None, typer.Option(help="AWS region of the stack")] = None,
    client: Annotated[str, typer.Option(help="Client id (the token's subject)")] = "es-loyalty",
    hours: Annotated[float, typer.Option(help="Lifetime in hours")] = 12,
    read_only: Annotated[bool, typer.Option(help="Only the events:read scope")] = False,
) -> None:
    """Mint a bearer token for a deployed stack (needs read access to its signing-key secret)."""
    from dig_api.auth import ALL_SCOPES, MAX_TOKEN_HOURS, READ_SCOPE, KeySet, mint
    from dig_cli.target import stack_outputs

    session, outputs = stack_outputs(stack, region)
    if "SigningKeySecretArn" not in outputs:
        raise UsageError(f"stack {stack} uses IAM authentication (apiAuth=iam): sign requests with SigV4 instead")
    secret = session.client("secretsmanager").get_secret_value(SecretId=outputs["SigningKeySecretArn"])
    scopes = (READ_SCOPE,) if read_only else ALL_SCOPES
    keys = KeySet.from_secret(secret["SecretString"])
    max_hours = float(outputs.get("JwtMaxLifetimeHours", MAX_TOKEN_HOURS))
    try:
        minted = mint(
            keys,
            client_id=client,
            issuer=outputs["JwtIssuer"],
            audience="dig-api",
            scopes=scopes,
            hours=hours,
            max_hours=max_hours,
        )
    except ValueError as error:
        raise UsageError(str(error)) from None
    print(minted)


@app.command("revoke")
def revoke(
    token_text: Annotated[
        str | None, typer.Option("--token", help="A bearer token to refuse from now on (until it expires)")
    ] = None,
    client: Annotated[
        str | None, typer.Option(help="A client whose tokens issued until now are all refused (new ones work)")
    ] = None,
    stack: Annotated[str | None, typer.Option(help="Deployed stack name, e.g. Dig-dev")] = None,
    region: Annotated[str | None, typer.Option(help="AWS region of the stack")] = None,
    local: Annotated[bool, typer.Option(help="The running local stack (dig local)")] = False,
    local_url: Annotated[str | None, typer.Option(help="URL of the local stack")] = None,
) -> None:
    """Revoke a bearer token (by its jti) or every token a client holds. Takes effect within a minute
    (the authorizer's and API Gateway's caches, 30 s each). Needs write access to the config table."""
    import jwt

    from db.revocations import DynamoRevocations
    from dig_cli.target import resolve

    if bool(token_text) == bool(client):
        raise UsageError("say what to revoke: --token TOKEN, or --client CLIENT_ID")
    target = resolve(stack=stack, region=region, local=local, local_url=local_url)
    store = DynamoRevocations(target.dynamodb(), target.config_table)
    if token_text:
        try:
            claims = jwt.decode(token_text, options={"verify_signature": False})  # only to find its jti
        except jwt.PyJWTError:
            raise UsageError("that is not a JWT") from None
        if "jti" not in claims or "exp" not in claims:
            raise UsageError("that token has no jti or exp: the authorizer refuses it anyway")
        store.revoke_token(str(claims["jti"]), int(claims["exp"]))
        print(f"revoked token {claims['jti']} of client {claims.get('sub')}; refused within a minute")
    else:
        assert client is not None
        store.revoke_client(client)
        print(f"revoked every token client {client} holds; refused within a minute (mint it a new one)")


INTERRUPTED = 130  # Typer's exit code for Ctrl-C


def main() -> None:
    try:
        # Without standalone mode, Typer returns the code of an Exit instead of exiting with it.
        code = app(standalone_mode=False)
        if code == INTERRUPTED:
            errors.print("dig: interrupted; run the same command again to resume (nothing is sent twice)")
            sys.exit(1)
        if isinstance(code, int) and code:
            sys.exit(code)
    except UsageError as error:
        errors.print(f"dig: {error}")
        sys.exit(2)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        errors.print("dig: aborted")
        sys.exit(1)
    except KeyboardInterrupt:
        errors.print("dig: interrupted; run the same command again to resume (nothing is sent twice)")
        sys.exit(1)
    except Exception as error:  # usage errors, AWS errors: a sentence, not a traceback
        from typer import _click  # Typer's own copy of click: its exceptions are not click's

        if isinstance(error, _click.exceptions.UsageError):
            error.show()
            sys.exit(2)
        if isinstance(error, _click.exceptions.ClickException):
            error.show()
            sys.exit(error.exit_code)
        errors.print(f"dig: {type(error).__name__}: {error}")
        sys.exit(1)


if __name__ == "__main__":
    main()


__all__ = ["Path", "app", "main"]
