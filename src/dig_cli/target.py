"""Where a ``dig`` command acts: a deployed stack (resolved from its CloudFormation outputs with the
operator's AWS credentials) or the running local stack (resolved from its /_local/stack page)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import typer


@dataclass
class Target:
    session: Any
    audit_table: str
    config_table: str
    region: str
    queues: dict[str, str] = field(default_factory=dict)  # connector -> queue URL (the coalescing lane's)
    immediate_queues: dict[str, str] = field(default_factory=dict)  # connector -> its immediate lane's queue URL
    dead_letter_queues: dict[str, str] = field(default_factory=dict)
    rule_target_dead_letter_queues: dict[str, str] = field(default_factory=dict)
    local: bool = False
    endpoint_url: str | None = None
    stack: str | None = None  # the deployed stack's name (its alarms' names start with it)
    url: str | None = None  # the local stack's URL
    api_url: str | None = None  # where ES Loyalty posts (the local stack's URL, or the stack's ApiUrl)
    files_bucket: str | None = None
    files_state_machine: str | None = None  # deployed: its ARN (dig files retry starts an execution)
    file_arrivals_queue: str | None = None  # local: the file driver's queue stands in for StartExecution
    signing_secret_arn: str | None = None  # a JWT stack: dig mints a token for its own upload
    jwt_issuer: str | None = None
    jobs: dict[str, str] = field(default_factory=dict)  # "<connector>.<job>" -> its function's name (deployed)

    def where(self) -> str:
        """The target as the options of a command to run next."""
        return "--local" if self.local else f"--stack {self.stack}"

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)

    def dynamodb(self) -> Any:
        return self.client("dynamodb")

    def sqs(self) -> Any:
        return self.client("sqs")

    def config_store(self) -> Any:
        from db.config_store import DynamoConfigStore

        return DynamoConfigStore(self.dynamodb(), self.config_table)

    def identity(self) -> str:
        if self.local:
            return f"local:{os.environ.get('USER', 'developer')}"
        try:
            return str(self.client("sts").get_caller_identity()["Arn"])
        except Exception:
            return os.environ.get("USER", "unknown")


def resolve(*, stack: str | None, region: str | None, local: bool, local_url: str | None) -> Target:
    if local == bool(stack):
        from dig_cli.main import UsageError

        raise UsageError("say where: --local for the local stack, or --stack NAME [--region R] for a deployed one")
    if local:
        from dig_cli.local_state import running_url

        url = local_url or running_url()
        if url is None:
            typer.echo("dig: no local stack is running; start one with `dig local` (or pass --local-url URL)", err=True)
            raise typer.Exit(1)
        return _local(url)
    assert stack is not None
    return _deployed(stack, region)


def _local(url: str) -> Target:
    import boto3
    import httpx

    try:
        description = httpx.get(f"{url.rstrip('/')}/_local/stack", timeout=5).json()
    except httpx.HTTPError:
        typer.echo(f"dig: no local stack answers at {url}; start one with `dig local` (or pass --local-url)", err=True)
        raise typer.Exit(1) from None
    session = boto3.session.Session(
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - moto accepts any credentials
        region_name=description["region"],
    )
    return Target(
        session=session,
        audit_table=description["auditTable"],
        config_table=description["configTable"],
        region=description["region"],
        queues={name: c["queueUrl"] for name, c in description["connectors"].items()},
        immediate_queues={
            name: c["immediateQueueUrl"] for name, c in description["connectors"].items() if c.get("immediateQueueUrl")
        },
        dead_letter_queues={name: c["deadLetterQueueUrl"] for name, c in description["connectors"].items()},
        rule_target_dead_letter_queues={
            name: c["ruleTargetDeadLetterQueueUrl"] for name, c in description["connectors"].items()
        },
        local=True,
        endpoint_url=description["awsEndpoint"],
        url=url,
        api_url=url,
        files_bucket=description.get("filesBucket"),
        file_arrivals_queue=description.get("fileArrivalsQueueUrl"),
    )


def stack_outputs(stack: str, region: str | None) -> tuple[Any, dict[str, str]]:
    """A session for the stack's region, and the stack's CloudFormation outputs."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    session = boto3.session.Session(region_name=region)
    try:
        described = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    except (ClientError, BotoCoreError) as error:
        typer.echo(f"dig: cannot read stack {stack}: {error}", err=True)
        raise typer.Exit(1) from None
    return session, {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def _deployed(stack: str, region: str | None) -> Target:
    session, outputs = stack_outputs(stack, region)
    queues = {
        k.removesuffix("QueueUrl").lower(): v
        for k, v in outputs.items()
        if k.endswith("QueueUrl") and "DeadLetter" not in k and not k.endswith("ImmediateQueueUrl")
    }
    immediate_queues = {
        k.removesuffix("ImmediateQueueUrl").lower(): v for k, v in outputs.items() if k.endswith("ImmediateQueueUrl")
    }
    dlqs = {
        k.removesuffix("DeadLetterQueueUrl").lower(): v
        for k, v in outputs.items()
        if k.endswith("DeadLetterQueueUrl") and "RuleTarget" not in k
    }
    rule_target_dlqs = {
        k.removesuffix("RuleTargetDeadLetterQueueUrl").lower(): v
        for k, v in outputs.items()
        if k.endswith("RuleTargetDeadLetterQueueUrl")
    }
    return Target(
        session=session,
        audit_table=outputs["AuditTableName"],
        config_table=outputs["ConfigTableName"],
        region=session.region_name,
        queues=queues,
        immediate_queues=immediate_queues,
        dead_letter_queues=dlqs,
        rule_target_dead_letter_queues=rule_target_dlqs,
        stack=stack,
        api_url=outputs.get("ApiUrl"),
        files_bucket=outputs.get("FilesBucketName"),
        files_state_machine=outputs.get("FilesStateMachineArn"),
        signing_secret_arn=outputs.get("SigningKeySecretArn"),
        jwt_issuer=outputs.get("JwtIssuer"),
        jobs=_jobs(outputs),
    )


def _jobs(outputs: dict[str, str]) -> dict[str, str]:
    """OptimoveFeedJobFunctionName -> {"optimove.feed": name}."""
    import re

    found = {}
    for key, value in outputs.items():
        matched = re.fullmatch(r"([A-Z][a-z0-9]+)([A-Z][a-z0-9]+)JobFunctionName", key)
        if matched:
            found[f"{matched[1].lower()}.{matched[2].lower()}"] = value
    return found
