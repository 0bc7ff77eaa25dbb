"""Bearer JWTs: issuer, audience, expiry, signature; and the policy API Gateway caches per token."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest

from db.revocations import DynamoRevocations, Revocations
from dig_api import authorizer
from dig_api.auth import READ_SCOPE, WRITE_SCOPE, InvalidToken, KeySet, SigningKey, mint, verify
from dig_local.gateway import allows

KEYS = KeySet(
    current=SigningKey("k2", "current-key-" + "x" * 40), previous=SigningKey("k1", "previous-key-" + "y" * 40)
)
ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/dev/POST/v1/events"


def token(**changes: Any) -> str:
    return mint(KEYS, client_id="es-loyalty", issuer="dig-dev", audience="dig-api", **changes)


def test_a_valid_token_names_its_client_and_scopes() -> None:
    principal = verify(token(), KEYS, issuer="dig-dev", audience="dig-api")
    assert principal.client_id == "es-loyalty"
    assert principal.scopes == {WRITE_SCOPE, READ_SCOPE}


def test_a_token_signed_with_the_previous_key_stays_valid_during_rotation() -> None:
    old = mint(KeySet(current=KEYS.previous), client_id="c", issuer="dig-dev", audience="dig-api")  # type: ignore[arg-type]
    assert verify(old, KEYS, issuer="dig-dev", audience="dig-api").client_id == "c"


@pytest.mark.parametrize(
    "bad",
    [
        lambda: token(now=time.time() - 13 * 3600),  # expired
        lambda: mint(KEYS, client_id="c", issuer="someone-else", audience="dig-api"),
        lambda: mint(KEYS, client_id="c", issuer="dig-dev", audience="another-api"),
        lambda: mint(
            KeySet(current=SigningKey("k2", "forged-" + "z" * 40)), client_id="c", issuer="dig-dev", audience="dig-api"
        ),
        lambda: jwt.encode(
            {"sub": "c", "iss": "dig-dev", "aud": "dig-api", "exp": time.time() + 60}, "", algorithm="none"
        ),
        lambda: "not-a-jwt",
    ],
)
def test_invalid_tokens_are_refused(bad: Any) -> None:
    with pytest.raises(InvalidToken):
        verify(bad(), KEYS, issuer="dig-dev", audience="dig-api")


def test_the_policy_allows_what_the_scopes_cover_and_nothing_else() -> None:
    read_only = verify(token(scopes=(READ_SCOPE,)), KEYS, issuer="dig-dev", audience="dig-api")
    policy = authorizer.policy_for(read_only, ARN)
    assert policy["principalId"] == "es-loyalty"
    assert policy["context"] == {"clientId": "es-loyalty", "scopes": READ_SCOPE}
    document = policy["policyDocument"]
    assert allows(document, "arn:aws:execute-api:us-east-1:123456789012:abc123/dev/GET/v1/messages/m-1")
    assert not allows(document, ARN)
    # A method no route takes reaches the API, which answers 405 rather than the gateway's 403.
    assert allows(document, "arn:aws:execute-api:us-east-1:123456789012:abc123/dev/DELETE/v1/events")
    everything = authorizer.policy_for(verify(token(), KEYS, issuer="dig-dev", audience="dig-api"), ARN)
    assert allows(everything["policyDocument"], ARN)
    assert not allows(
        everything["policyDocument"], "arn:aws:execute-api:us-east-1:123456789012:other/dev/POST/v1/events"
    )


def test_the_handler_answers_unauthorized_for_a_missing_or_bad_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_ISSUER", "dig-dev")
    monkeypatch.setenv("JWT_AUDIENCE", "dig-api")
    monkeypatch.setattr(authorizer, "load_keys", lambda: KEYS)
    monkeypatch.setattr(authorizer, "load_revocations", lambda: Revocations())
    from tests.apigw import FakeLambdaContext

    for header in ("", "Basic abc", "Bearer nope"):
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            authorizer.lambda_handler({"authorizationToken": header, "methodArn": ARN}, FakeLambdaContext())
    answer = authorizer.lambda_handler(
        {"authorizationToken": f"Bearer {token()}", "methodArn": ARN}, FakeLambdaContext()
    )
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow"


def test_the_secret_format_is_read_with_an_optional_previous_key() -> None:
    keys = KeySet.from_secret(json.dumps({"kid": "k1", "key": "abc"}))
    assert keys.current == SigningKey("k1", "abc")
    assert keys.previous is None


# --- lifetime, revocation, per-client throttling (#21) --------------------------------------------


def test_a_token_living_longer_than_the_maximum_is_refused_and_cannot_be_minted() -> None:
    long_lived = jwt.encode(
        {
            "sub": "c",
            "iss": "dig-dev",
            "aud": "dig-api",
            "iat": int(time.time()),
            "exp": int(time.time()) + 25 * 3600,
            "jti": "j",
        },
        KEYS.current.key,
        algorithm="HS256",
        headers={"kid": KEYS.current.kid},
    )
    with pytest.raises(InvalidToken, match="longer than 86400"):
        verify(long_lived, KEYS, issuer="dig-dev", audience="dig-api")
    with pytest.raises(InvalidToken, match="longer than 3600"):
        verify(token(hours=2), KEYS, issuer="dig-dev", audience="dig-api", max_lifetime_seconds=3600)
    with pytest.raises(ValueError, match="at most 24 hours"):
        token(hours=25)


def test_a_token_without_a_jti_is_refused() -> None:
    claims = {"sub": "c", "iss": "dig-dev", "aud": "dig-api", "iat": int(time.time()), "exp": int(time.time()) + 60}
    bare = jwt.encode(claims, KEYS.current.key, algorithm="HS256", headers={"kid": KEYS.current.kid})
    with pytest.raises(InvalidToken):
        verify(bare, KEYS, issuer="dig-dev", audience="dig-api")


def test_a_revoked_token_and_a_revoked_clients_older_tokens_are_refused() -> None:
    first = token()
    jti = jwt.decode(first, options={"verify_signature": False})["jti"]
    revoked = Revocations(tokens={jti: int(time.time()) + 3600})
    with pytest.raises(InvalidToken, match="revoked"):
        verify(first, KEYS, issuer="dig-dev", audience="dig-api", revocations=revoked)
    assert verify(token(), KEYS, issuer="dig-dev", audience="dig-api", revocations=revoked).client_id == "es-loyalty"

    cutoff = int(time.time())
    client_revoked = Revocations(clients={"es-loyalty": cutoff})
    with pytest.raises(InvalidToken, match="revoked"):
        verify(token(now=cutoff - 60), KEYS, issuer="dig-dev", audience="dig-api", revocations=client_revoked)
    later = token(now=cutoff + 1)
    assert verify(later, KEYS, issuer="dig-dev", audience="dig-api", revocations=client_revoked)


def test_the_revocation_list_is_read_at_most_every_30_seconds_and_survives_a_failed_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: list[int] = []

    class Store:
        def read(self) -> Revocations:
            reads.append(1)
            if len(reads) > 1:
                raise RuntimeError("DynamoDB unavailable")
            return Revocations(tokens={"j": 1})

    monkeypatch.setattr(authorizer, "_revocation_store", lambda: Store())
    monkeypatch.setattr(authorizer, "_revocations", None)
    assert authorizer.load_revocations(now=100).tokens == {"j": 1}
    assert authorizer.load_revocations(now=129).tokens == {"j": 1}
    assert len(reads) == 1
    assert authorizer.load_revocations(now=131).tokens == {"j": 1}  # the read failed: the last list stands
    assert len(reads) == 2


def test_the_authorizer_names_the_clients_usage_plan_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USAGE_KEY_PREFIX", "dig-usage-dev-client-")
    principal = verify(token(), KEYS, issuer="dig-dev", audience="dig-api")
    assert authorizer.policy_for(principal, ARN)["usageIdentifierKey"] == "dig-usage-dev-client-es-loyalty"


def test_revocations_are_stored_merged_and_pruned_in_the_config_table() -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="config",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
            BillingMode="PAY_PER_REQUEST",
        )
        now = [1000.0]
        store = DynamoRevocations(client, "config", clock=lambda: now[0])
        assert store.read() == Revocations()
        store.revoke_token("a", 2000)
        store.revoke_client("partner")
        now[0] = 2500  # "a" has expired: dropped at the next write
        store.revoke_token("b", 9000)
        assert store.read() == Revocations(tokens={"b": 9000}, clients={"partner": 1000})
