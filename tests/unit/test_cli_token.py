"""`dig token` and `dig local token`: tokens the authorizer accepts."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from dig_api.auth import READ_SCOPE, WRITE_SCOPE, KeySet, verify
from dig_cli.main import app
from dig_local.resources import LOCAL_ISSUER, LOCAL_SIGNING_KEY

runner = CliRunner()
SIGNING = {"kid": "k1", "key": "deployed-signing-key-" + "q" * 40}


@pytest.fixture
def deployed_stack() -> Iterator[None]:
    with mock_aws():
        secret = boto3.client("secretsmanager").create_secret(Name="dig-signing", SecretString=json.dumps(SIGNING))
        template = {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {
                "SigningKeySecretArn": {"Value": secret["ARN"]},
                "JwtIssuer": {"Value": "dig-dev"},
            },
        }
        boto3.client("cloudformation").create_stack(StackName="Dig-dev", TemplateBody=json.dumps(template))
        yield


def test_dig_token_mints_a_token_for_the_deployed_stacks_key(deployed_stack: None) -> None:
    result = runner.invoke(app, ["token", "--stack", "Dig-dev", "--region", "us-east-1", "--client", "es-loyalty"])
    assert result.exit_code == 0, result.output
    principal = verify(
        result.stdout.strip(), KeySet.from_secret(json.dumps(SIGNING)), issuer="dig-dev", audience="dig-api"
    )
    assert principal.client_id == "es-loyalty"
    assert principal.scopes == {WRITE_SCOPE, READ_SCOPE}


def test_dig_local_token_is_accepted_by_a_default_local_stack() -> None:
    result = runner.invoke(app, ["local", "token", "--read-only"])
    assert result.exit_code == 0, result.output
    principal = verify(
        result.stdout.strip(),
        KeySet.from_secret(json.dumps(LOCAL_SIGNING_KEY)),
        issuer=LOCAL_ISSUER,
        audience="dig-api",
    )
    assert principal.scopes == {READ_SCOPE}


def test_dig_token_cannot_mint_beyond_the_stacks_maximum(deployed_stack: None) -> None:
    result = runner.invoke(app, ["token", "--stack", "Dig-dev", "--region", "us-east-1", "--hours", "48"])
    assert result.exit_code != 0
    assert "at most 24 hours" in str(result.exception) + result.output


def test_dig_revoke_needs_one_thing_to_revoke() -> None:
    result = runner.invoke(app, ["revoke", "--local"])
    assert result.exit_code != 0
    assert "--token TOKEN, or --client" in str(result.exception) + result.output
