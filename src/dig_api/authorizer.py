"""The API Gateway TOKEN authorizer: verifies the bearer JWT and answers an IAM policy.

API Gateway caches the answer per token for every route, so the policy lists each route the
token's scopes allow: ``events:write`` for the POST routes, ``events:read`` for the GET routes.
An invalid token raises ``Unauthorized`` (API Gateway answers 401); a valid token gets a policy
that denies what its scopes do not cover (403).
"""

from __future__ import annotations

import os
import time
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from db.revocations import DynamoRevocations, Revocations
from dig_api.auth import MAX_TOKEN_HOURS, READ_SCOPE, WRITE_SCOPE, InvalidToken, KeySet, Principal, verify
from dig_contracts import environment as env
from dig_contracts import snapstart

logger = Logger(service="dig-authorizer")
SECRET_MAX_AGE_SECONDS = 300
# A revocation takes effect within a minute: this, plus API Gateway's cache of answers (infra/api.py).
REVOCATIONS_MAX_AGE_SECONDS = 30
_revocations: tuple[float, Revocations] | None = None


@cache
def _secrets_provider() -> Any:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider()


def load_keys() -> KeySet:
    secret = _secrets_provider().get(os.environ[env.SIGNING_KEY_SECRET_ARN], max_age=SECRET_MAX_AGE_SECONDS)
    return KeySet.from_secret(str(secret))


@cache
def _revocation_store() -> DynamoRevocations:
    import boto3

    return DynamoRevocations(boto3.client("dynamodb"), os.environ[env.CONFIG_TABLE_NAME])


def load_revocations(now: float | None = None) -> Revocations:
    """The revocation list, read at most every REVOCATIONS_MAX_AGE_SECONDS. If it cannot be read, the
    last list read stands; with none read yet, the error stands (no token is let through unchecked)."""
    global _revocations
    moment = now if now is not None else time.monotonic()
    if _revocations is not None and moment - _revocations[0] < REVOCATIONS_MAX_AGE_SECONDS:
        return _revocations[1]
    try:
        _revocations = (moment, _revocation_store().read())
    except Exception:
        if _revocations is None:
            raise
        logger.exception("revocation list unreadable; the last one read stands")
    return _revocations[1]


def _refresh() -> None:
    global _revocations
    _secrets_provider.cache_clear()
    _revocation_store.cache_clear()
    _revocations = None


def policy_for(principal: Principal, method_arn: str) -> dict[str, Any]:
    """arn:aws:execute-api:region:account:apiId/stage/METHOD/path -> statements over that API stage."""
    api_stage = "/".join(method_arn.split("/")[:2])
    # Methods no route takes reach the API for any valid token, so that it answers 405, not 403.
    allowed: list[str] = [f"{api_stage}/{method}/v1/*" for method in ("PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")]
    if WRITE_SCOPE in principal.scopes:
        allowed.append(f"{api_stage}/POST/v1/*")
    if READ_SCOPE in principal.scopes:
        allowed.append(f"{api_stage}/GET/v1/*")
    statements = [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": allowed}]
    answer: dict[str, Any] = {
        "principalId": principal.client_id,
        "policyDocument": {"Version": "2012-10-17", "Statement": statements},
        "context": {"clientId": principal.client_id, "scopes": " ".join(sorted(principal.scopes))},
    }
    prefix = os.environ.get(env.USAGE_KEY_PREFIX)
    if prefix:  # API Gateway throttles this client on its own usage-plan key (infra/api.py)
        answer["usageIdentifierKey"] = prefix + principal.client_id
    return answer


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    header = str(event.get("authorizationToken") or "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        logger.info("refused: no bearer token")
        raise Exception("Unauthorized")
    try:
        principal = verify(
            token,
            load_keys(),
            issuer=os.environ[env.JWT_ISSUER],
            audience=os.environ[env.JWT_AUDIENCE],
            max_lifetime_seconds=int(os.environ.get(env.JWT_MAX_LIFETIME_SECONDS, MAX_TOKEN_HOURS * 3600)),
            revocations=load_revocations(),
        )
    except InvalidToken as error:
        logger.info("refused: invalid token", extra={"reason": str(error)})
        raise Exception("Unauthorized") from None
    logger.info("authorized", extra={"clientId": principal.client_id})
    return policy_for(principal, str(event["methodArn"]))


# SnapStart (dig_contracts.snapstart): the secrets client built while Lambda snapshots; after a restore
# it and the revocation list are built and read again.
snapstart.prepare(warm=_secrets_provider, refresh=_refresh)
