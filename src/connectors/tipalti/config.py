"""The Tipalti connector's configuration: what each program may pay (methods, currencies, a maximum per
payout), how long a payout waits for its payee to become payable, and the pace of calls. Stored
versioned in the configuration table (``dig config push tipalti FILE``), validated here."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dig_connector_kit.config import ConfigError as ConfigError  # re-exported: the parser raises it
from dig_connector_kit.config import validate_config
from dig_connector_kit.ratelimit import RateLimit
from dig_contracts.currencies import ISO_4217_CURRENCIES

DEFAULT_PROGRAM = "default"
Method = Literal["CASH", "PREPAID_CARD", "DIRECT_DEPOSIT"]
Amount = Annotated[str, Field(pattern=r"^\d{1,8}(\.\d{1,4})?$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProgramRules(Strict):
    """What a program may pay; a payout outside them is FAILED at once, nothing sent to Tipalti."""

    methods: list[Method] = Field(min_length=1)
    # Each currency the program pays in, with its largest single payout.
    maxAmount: dict[str, Amount] = Field(min_length=1)

    @field_validator("maxAmount")
    @classmethod
    def _currencies(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(c for c in value if c not in ISO_4217_CURRENCIES)
        if unknown:
            raise ValueError(f"not ISO 4217 currency codes: {', '.join(unknown)}")
        return value

    def refusal(self, method: str, amount: Decimal, currency: str) -> str | None:
        """Why a payout may not be sent, or None."""
        if method not in self.methods:
            return f"the program does not pay by {method} (configured: {', '.join(self.methods)})"
        ceiling = self.maxAmount.get(currency)
        if ceiling is None:
            return f"the program does not pay in {currency} (configured: {', '.join(sorted(self.maxAmount))})"
        if amount > Decimal(ceiling):
            return f"{amount} {currency} is above the program's maximum payout of {ceiling} {currency}"
        return None


class TipaltiConfig(Strict):
    schemaVersion: Literal[1] = 1
    entityType: Literal["INDIVIDUAL"] = "INDIVIDUAL"
    # By ES Loyalty's programId; "default" for events without one or programs not listed.
    programs: dict[str, ProgramRules] = Field(min_length=1)
    payeeReadyWithinHours: int = Field(
        default=72, ge=1, le=2160, description="How long a payout waits for its payee's onboarding, then FAILED"
    )
    holdMinutes: int = Field(
        default=15, ge=1, le=15, description="How often a held payout looks again (SQS: 15 at most)"
    )
    limits: RateLimit = RateLimit(requests=20, perSeconds=1)  # a connector README says 1,500 a minute: DIG keeps below

    def rules_for(self, program: str | None) -> ProgramRules | None:
        return self.programs.get(program or DEFAULT_PROGRAM) or self.programs.get(DEFAULT_PROGRAM)


def parse_config(document: Any) -> TipaltiConfig:
    """Validate a configuration document; ConfigError lists every problem with its path."""
    return validate_config(TipaltiConfig, document)
