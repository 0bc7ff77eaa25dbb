"""Signed launches: a short-lived JWT a campaign's play links carry (``t=``), which DIG's authentication
webhook verifies once, as ES Loyalty's CataBoom guide describes the flow. The guide's JWT details are not
public (UNVERIFIED): the algorithm, issuer, audience prefix and lifetime are configuration (config.Launch);
the claims are DIG's: ``iss``, ``aud`` = prefix + campaign, ``sub`` = the member reference, ``aid`` = the
award id, ``jti``, ``iat``, ``exp``. PyJWT signs and checks them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import jwt

from connectors.cataboom.config import Launch

REQUIRED_CLAIMS = ("iss", "aud", "sub", "aid", "jti", "iat", "exp")


@dataclass(frozen=True)
class LaunchClaims:
    campaign: str
    account: str
    award_id: str
    jti: str
    expires_at: int


def issue(key: str, launch: Launch, campaign: str, account: str, award_id: str, now: int) -> str:
    claims = {
        "iss": launch.issuer,
        "aud": launch.audiencePrefix + campaign,
        "sub": account,
        "aid": award_id,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + launch.minutes * 60,
    }
    return jwt.encode(claims, key, algorithm=launch.algorithm)


class LaunchRefused(ValueError):
    """The token is not one DIG signed, is for no configured campaign, or has expired."""


def verify(token: str, key: str, launch: Launch, campaigns: Iterable[str], now: int) -> LaunchClaims:
    audiences = [launch.audiencePrefix + c for c in campaigns]
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[launch.algorithm],  # only the configured one: never "none", never another
            audience=audiences,
            issuer=launch.issuer,
            # Times are checked below against the connector's clock (a test's simulated one alike).
            options={"require": list(REQUIRED_CLAIMS), "verify_exp": False, "verify_iat": False},
        )
    except jwt.InvalidTokenError as error:
        raise LaunchRefused(f"the launch token is not valid: {error}") from None
    if not isinstance(claims["exp"], int) or claims["exp"] <= now:
        raise LaunchRefused("the launch token has expired")
    return LaunchClaims(
        campaign=str(claims["aud"]).removeprefix(launch.audiencePrefix),
        account=str(claims["sub"]),
        award_id=str(claims["aid"]),
        jti=str(claims["jti"]),
        expires_at=int(claims["exp"]),
    )
