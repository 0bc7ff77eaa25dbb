"""Bearer tokens for the DIG API: HS256 JWTs signed with a key held in Secrets Manager.

The secret's value is JSON: ``{"kid": "k1", "key": "<random>"}``, optionally with
``"previous": {"kid": ..., "key": ...}`` while a rotation is under way, so that tokens signed with
the previous key stay valid until they expire.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from db.revocations import NONE as NO_REVOCATIONS
from db.revocations import Revocations

ALGORITHM = "HS256"
WRITE_SCOPE = "events:write"
READ_SCOPE = "events:read"
ALL_SCOPES = (WRITE_SCOPE, READ_SCOPE)
DEFAULT_TOKEN_HOURS = 12
MAX_TOKEN_HOURS = 24  # the authorizer refuses a token whose exp - iat is longer (JWT_MAX_LIFETIME_SECONDS)


def usage_key_prefix(stage: str) -> str:
    """A client's usage-plan key value is this prefix and its id (at least 20 characters, as API
    Gateway requires); the authorizer answers it so that API Gateway throttles each client alone."""
    return f"dig-usage-{stage}-client-"


class InvalidToken(Exception):
    """Missing, malformed, expired, or not signed by a current key."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    key: str


@dataclass(frozen=True)
class KeySet:
    current: SigningKey
    previous: SigningKey | None = None

    @classmethod
    def from_secret(cls, secret_string: str) -> KeySet:
        document = json.loads(secret_string)
        previous = document.get("previous")
        return cls(
            current=SigningKey(document["kid"], document["key"]),
            previous=SigningKey(previous["kid"], previous["key"]) if previous else None,
        )

    def by_kid(self, kid: str | None) -> SigningKey | None:
        for candidate in (self.current, self.previous):
            if candidate is not None and candidate.kid == kid:
                return candidate
        return None


@dataclass(frozen=True)
class Principal:
    client_id: str
    scopes: frozenset[str]


def mint(
    keys: KeySet,
    *,
    client_id: str,
    issuer: str,
    audience: str,
    scopes: tuple[str, ...] = ALL_SCOPES,
    hours: float = DEFAULT_TOKEN_HOURS,
    now: float | None = None,
    max_hours: float = MAX_TOKEN_HOURS,
) -> str:
    if not 0 < hours <= max_hours:
        raise ValueError(f"a token may live at most {max_hours:g} hours (the authorizer refuses longer ones)")
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": client_id,
        "scope": " ".join(scopes),
        "iat": issued,
        "exp": issued + int(hours * 3600),
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, keys.current.key, algorithm=ALGORITHM, headers={"kid": keys.current.kid})


def verify(
    token: str,
    keys: KeySet,
    *,
    issuer: str,
    audience: str,
    leeway_seconds: int = 30,
    max_lifetime_seconds: int = MAX_TOKEN_HOURS * 3600,
    revocations: Revocations = NO_REVOCATIONS,
) -> Principal:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise InvalidToken("malformed token") from error
    key = keys.by_kid(header.get("kid"))
    if key is None or header.get("alg") != ALGORITHM:
        raise InvalidToken("token not signed by a current key")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            leeway=leeway_seconds,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
        )
    except jwt.PyJWTError as error:
        raise InvalidToken(type(error).__name__) from error
    if int(claims["exp"]) - int(claims["iat"]) > max_lifetime_seconds:
        raise InvalidToken(f"token lives longer than {max_lifetime_seconds} seconds")
    if revocations.refuses(claims):
        raise InvalidToken("token revoked")
    return Principal(client_id=str(claims["sub"]), scopes=frozenset(str(claims.get("scope", "")).split()))
