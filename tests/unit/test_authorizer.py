"""Bearer JWTs: issuer, audience, expiry, signature; and the policy API Gateway caches per token."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest

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
