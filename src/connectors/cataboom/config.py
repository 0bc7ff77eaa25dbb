"""The CataBoom connector's configuration: each campaign (game) DIG issues plays for, its win levels'
points, whether its links carry a signed launch token; the launch token's claims and lifetime.
Stored versioned in the configuration table (``dig config push cataboom FILE``), validated here.
Credentials and tokens are not here: they are in the connector's secret (manifest SECRET_ID)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dig_connector_kit.config import ConfigError as ConfigError  # re-exported: the parser raises it
from dig_connector_kit.config import validate_config
from dig_connector_kit.ratelimit import RateLimit

Points = Annotated[int, Field(gt=0, le=100_000_000)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Campaign(Strict):
    # CataBoom's winlevel ("1" the top prize; 1-4 standard) -> the points ES Loyalty credits for it.
    winLevels: dict[str, Points] = Field(min_length=1)
    reason: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="What ES Loyalty's points ledger says, before the win level"
    )
    signedLaunch: bool = Field(default=False, description="Each link carries a launch token (t=) DIG checks once")

    @field_validator("winLevels")
    @classmethod
    def _levels(cls, value: dict[str, int]) -> dict[str, int]:
        wrong = sorted(level for level in value if not (level.isdigit() and 1 <= int(level) <= 99))
        if wrong:
            raise ValueError(f"win levels are CataBoom's '1' to '99' ('0' is a loss, never points): {wrong}")
        return value


class Launch(Strict):
    """The launch token (a JWT): UNVERIFIED as ES Loyalty's guide describes it (its JWT details are not
    public); these are DIG's, configurable: HS256 with the secret's ``launchKey``."""

    algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    issuer: Annotated[str, Field(min_length=1, max_length=200)] = "dig"
    audiencePrefix: Annotated[str, Field(max_length=64)] = "cataboom:"
    minutes: int = Field(default=15, ge=1, le=43_200, description="How long a launch token is good for")


class CataBoomConfig(Strict):
    schemaVersion: Literal[1] = 1
    campaigns: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")], Campaign] = Field(min_length=1)
    launch: Launch = Launch()
    # How long DIG remembers a member's reference and plays after the award (or its expiry): a writeback
    # for an older play is refused as an unknown account.
    accountRetentionDays: int = Field(default=90, ge=1, le=730)
    limits: RateLimit = RateLimit(requests=10, perSeconds=1)  # CataBoom publishes no limit


def parse_config(document: Any) -> CataBoomConfig:
    """Validate a configuration document; ConfigError lists every problem with its path."""
    return validate_config(CataBoomConfig, document)
