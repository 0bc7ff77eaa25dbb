"""The Tipalti connector's configuration.

Which ES Loyalty events become which provider events, and which member values fill which of their
attributes. Stored versioned in the configuration table (``dig config push tipalti FILE``),
validated here."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dig_connector_kit.config import ConfigError as ConfigError  # re-exported: the parser raises it
from dig_connector_kit.config import validate_config
from dig_connector_kit.ratelimit import RateLimit
from dig_contracts.events import EventType

AttributeName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")]
COMMON_SOURCES = frozenset({"memberId", "eventId", "programId", "occurredAt", "locale"})
# The values each event type offers to attributes (mapping.source_values).
EVENT_SOURCES: dict[EventType, frozenset[str]] = {
    EventType.MEMBER_REGISTRATION: frozenset({"email", "firstName", "lastName", "enrollmentChannel"}),
    EventType.MEMBER_TIER: frozenset({"newTier", "previousTier"}),
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventMapping(Strict):
    eventName: str = Field(min_length=1, max_length=64)  # what the provider calls the event
    attributes: dict[AttributeName, str] = Field(default_factory=dict, max_length=50)


class TipaltiConfig(Strict):
    events: dict[EventType, EventMapping] = Field(min_length=1)
    limits: RateLimit = RateLimit(requests=100, perSeconds=10)  # PLACEHOLDER: the provider's documented limit

    @model_validator(mode="after")
    def _known_sources(self) -> TipaltiConfig:
        problems = []
        for event_type, mapping in self.events.items():
            offered = EVENT_SOURCES.get(event_type)
            if offered is None:
                problems.append(f"events.{event_type}: the connector does not deliver {event_type}")
                continue
            for attribute, source in mapping.attributes.items():
                if source not in offered | COMMON_SOURCES:
                    known = ", ".join(sorted(offered | COMMON_SOURCES))
                    problems.append(f"events.{event_type}.attributes.{attribute}: {source!r} is not one of {known}")
        if problems:
            raise ValueError("\n".join(problems))
        return self


def parse_config(document: Any) -> TipaltiConfig:
    """Validate a configuration document; ConfigError lists every problem with its path."""
    return validate_config(TipaltiConfig, document)
