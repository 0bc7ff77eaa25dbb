"""The environment every connector function runs with: the variable names, once, and the typed
settings read from them. The CDK construct (infra/connector.py) and the local stack
(dig_local/resources.py) set these names; the kit's handlers read them through ``ConnectorSettings``.
A connector's own settings and secrets are named in its manifest."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from dig_contracts.callbacks import DEFAULT_VALIDITY_SECONDS, MAX_VALIDITY_SECONDS
from dig_contracts.environment import (
    AUDIT_FAILED_RETENTION_DAYS,
    AUDIT_RETENTION_DAYS,
    AUDIT_TABLE_NAME,
    CALLBACK_KEY_SECRET_ARN,
    COALESCING_WINDOW_SECONDS,
    CONFIG_TABLE_NAME,
    CONNECTOR_QUEUE_URL,
    CONTACT_RETENTION_DAYS,
    DIG_CALLBACK_URL,
    DIG_CALLBACK_VALIDITY_SECONDS,
    EVENT_BUS_NAME,
    MAX_RECEIVE_COUNT,
)

__all__ = [
    "AUDIT_FAILED_RETENTION_DAYS",
    "AUDIT_RETENTION_DAYS",
    "AUDIT_TABLE_NAME",
    "CALLBACK_KEY_SECRET_ARN",
    "COALESCING_WINDOW_SECONDS",
    "CONFIG_TABLE_NAME",
    "CONNECTOR_QUEUE_URL",
    "CONTACT_RETENTION_DAYS",
    "DIG_CALLBACK_URL",
    "DIG_CALLBACK_VALIDITY_SECONDS",
    "EVENT_BUS_NAME",
    "MAX_RECEIVE_COUNT",
    "ConnectorSettings",
    "connector_variable",
]


def connector_variable(name: str, connector: str) -> str:
    return f"{name}_{connector.upper()}"


class ConnectorSettings(BaseModel):
    """What the kit needs from the environment; a missing required one is a sentence naming it."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    audit_table: str = Field(alias=AUDIT_TABLE_NAME)
    config_table: str = Field(alias=CONFIG_TABLE_NAME)
    max_receive_count: int = Field(default=5, ge=1, alias=MAX_RECEIVE_COUNT)
    audit_retention_days: int = Field(default=30, ge=1, alias=AUDIT_RETENTION_DAYS)
    audit_failed_retention_days: int = Field(default=90, ge=1, alias=AUDIT_FAILED_RETENTION_DAYS)
    contact_retention_days: int = Field(default=400, ge=1, alias=CONTACT_RETENTION_DAYS)
    queue_url: str | None = Field(default=None, alias=CONNECTOR_QUEUE_URL)
    # What the coalescing lane waits to gather a batch (None: the manifest's, as deployed).
    coalescing_window_seconds: float | None = Field(default=None, ge=0, alias=COALESCING_WINDOW_SECONDS)
    callback_url: str | None = Field(default=None, alias=DIG_CALLBACK_URL)
    callback_validity_seconds: int = Field(
        default=DEFAULT_VALIDITY_SECONDS, ge=60, le=MAX_VALIDITY_SECONDS, alias=DIG_CALLBACK_VALIDITY_SECONDS
    )
    callback_key_secret_arn: str | None = Field(default=None, alias=CALLBACK_KEY_SECRET_ARN)
    # The bus a connector that emits inbound events (manifest: ``emits``) puts them on.
    event_bus: str | None = Field(default=None, alias=EVENT_BUS_NAME)

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, connector: str | None = None
    ) -> ConnectorSettings:
        """``connector``: a variable suffixed with its name (CONNECTOR_QUEUE_URL_MARKETO) wins, so that
        the local stack, which runs every connector in one process, can give each its own."""
        environ = os.environ if environ is None else environ
        found = {}
        for field in cls.model_fields.values():
            assert field.alias is not None
            own = environ.get(connector_variable(field.alias, connector)) if connector else None
            value = own or environ.get(field.alias)
            if value:
                found[field.alias] = value
        return cls.model_validate(found)

    def environment(self) -> dict[str, str]:
        """These settings as the environment variables a function is given."""
        return {
            field.alias: str(value)
            for name, field in type(self).model_fields.items()
            if field.alias and (value := getattr(self, name)) is not None
        }
