"""Stack parameters from CDK context (``-c key=value`` or cdk.json), each with a safe default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from constructs import Node

from dig_contracts import functions
from dig_contracts.callbacks import MAX_VALIDITY_SECONDS

# key: (default, description) -- the README's configuration table is generated from this list
CONTEXT: dict[str, tuple[str, str]] = {
    "stage": ("dev", "Deployment stage; names the stack (Dig-<stage>) and the API stage"),
    "apiAuth": ("jwt", "jwt (bearer JWT checked by a Lambda authorizer) or iam (SigV4)"),
    "apiThrottleRateLimit": ("100", "API Gateway stage throttling: steady requests per second"),
    "apiThrottleBurstLimit": ("200", "API Gateway stage throttling: burst"),
    "archiveRetentionDays": ("30", "Days the EventBridge archive keeps every event for bus replay"),
    "auditRetentionDays": ("30", "Days the audit trail keeps delivered and skipped messages"),
    "auditFailedRetentionDays": ("90", "Days it keeps failed and pending ones"),
    "logRetentionDays": ("30", "Days Lambda and API Gateway logs are kept"),
    "memberContactRetentionDays": (
        "400",
        "Days a member's contact data (email, locale) is kept after their last event",
    ),
    "fileRetentionDays": ("7", "Days the files bucket keeps uploads, their chunks, results and reports"),
    "fileMapConcurrency": (
        "4",
        "Batches of a file's lines processed at once (the Distributed Map's MaxConcurrency): see Batch files",
    ),
    "filesAtOnce": ("2", "Files processed at once; the others wait their turn, in the order they arrived"),
    "alarmEmail": ("", "Optional address subscribed to the alarm topic"),
    "callbackValidityHours": ("72", "How long a callback URL a connector gives a provider stays valid (at most 168)"),
    "tokenMaxHours": ("24", "Longest lifetime of a bearer token the authorizer accepts (exp - iat), in hours"),
    "clientRateLimit": ("50", "Per-client throttling (usage plan): steady requests per second for each client"),
    "clientBurstLimit": ("100", "Per-client throttling (usage plan): burst for each client"),
    "clients": ("es-loyalty", "Comma-separated client ids (the tokens' subjects), each throttled on its own"),
    "syncConcurrency": ("10", "Reserved concurrency of each connector's synchronous entry point"),
    "pointInTimeRecovery": (
        "true",
        "Point-in-time recovery of both tables (35 days of restores): true or false; false saves what `dig cost` "
        "prices as DynamoDB PITR",
    ),
    "queueTracing": (
        functions.QUEUE_TRACING_DEFAULT,
        "X-Ray on the connectors' queue-fed functions: PassThrough (traced only where an upstream trace is sampled) "
        "or Active (Lambda's own sampling: the first invocation each second and 5% of the rest, nearly all at a low "
        "rate); the API is traced by its 5% sampling rule either way",
    ),
    "snapStart": (
        "api",
        "SnapStart on the request path: api (the API and its authorizer), all (and each connector's synchronous entry "
        "point: a cold start off the synchronous flow, about $2 to $4 a month each) or none; true and false mean all "
        "and none",
    ),
}


@dataclass(frozen=True)
class Settings:
    stage: str
    api_auth: Literal["jwt", "iam"]
    api_throttle_rate: int
    api_throttle_burst: int
    archive_retention_days: int
    audit_retention_days: int
    audit_failed_retention_days: int
    log_retention_days: int
    alarm_email: str | None
    member_contact_retention_days: int = 400
    file_retention_days: int = 7
    file_map_concurrency: int = 4
    snap_start: Literal["api", "all", "none"] = "api"
    files_at_once: int = 2
    callback_validity_hours: int = 72
    token_max_hours: int = 24
    client_rate: int = 50
    client_burst: int = 100
    clients: tuple[str, ...] = ("es-loyalty",)
    sync_concurrency: int = 10
    point_in_time_recovery: bool = True
    queue_tracing: Literal["Active", "PassThrough"] = "PassThrough"

    @property
    def api_snap_start(self) -> bool:
        return self.snap_start != "none"

    @property
    def connector_snap_start(self) -> bool:
        return self.snap_start == "all"

    @property
    def stack_name(self) -> str:
        return f"Dig-{self.stage}"

    @classmethod
    def from_context(cls, node: Node) -> Settings:
        def get(key: str) -> str:
            value = node.try_get_context(key)
            return str(value) if value not in (None, "") else CONTEXT[key][0]

        auth = get("apiAuth")
        if auth not in ("jwt", "iam"):
            raise ValueError(f"context apiAuth must be jwt or iam, not {auth!r}")
        stage = get("stage")
        if not stage.replace("-", "").isalnum():
            raise ValueError(f"context stage must be letters, digits and dashes, not {stage!r}")
        snap_start = get("snapStart").lower()
        snap_start = {"true": "all", "false": "none"}.get(snap_start, snap_start)  # the values before "api"
        if snap_start not in ("api", "all", "none"):
            raise ValueError(f"context snapStart must be api, all or none (or true, false), not {snap_start!r}")
        pitr = get("pointInTimeRecovery").lower()
        if pitr not in ("true", "false"):
            raise ValueError(f"context pointInTimeRecovery must be true or false, not {pitr!r}")
        queue_tracing = get("queueTracing")
        if queue_tracing not in ("Active", "PassThrough"):
            raise ValueError(f"context queueTracing must be Active or PassThrough, not {queue_tracing!r}")
        return cls(
            stage=stage,
            api_auth=auth,  # type: ignore[arg-type]
            api_throttle_rate=int(get("apiThrottleRateLimit")),
            api_throttle_burst=int(get("apiThrottleBurstLimit")),
            archive_retention_days=int(get("archiveRetentionDays")),
            audit_retention_days=int(get("auditRetentionDays")),
            audit_failed_retention_days=int(get("auditFailedRetentionDays")),
            log_retention_days=int(get("logRetentionDays")),
            alarm_email=get("alarmEmail") or None,
            member_contact_retention_days=int(get("memberContactRetentionDays")),
            file_retention_days=int(get("fileRetentionDays")),
            file_map_concurrency=int(get("fileMapConcurrency")),
            snap_start=snap_start,  # type: ignore[arg-type]
            files_at_once=int(get("filesAtOnce")),
            callback_validity_hours=_callback_hours(get("callbackValidityHours")),
            token_max_hours=int(get("tokenMaxHours")),
            client_rate=int(get("clientRateLimit")),
            client_burst=int(get("clientBurstLimit")),
            clients=tuple(c.strip() for c in get("clients").split(",") if c.strip()),
            sync_concurrency=int(get("syncConcurrency")),
            point_in_time_recovery=pitr == "true",
            queue_tracing=queue_tracing,  # type: ignore[arg-type]
        )


def _callback_hours(value: str) -> int:
    hours = int(value)
    if not 1 <= hours <= MAX_VALIDITY_SECONDS // 3600:
        raise ValueError(f"context callbackValidityHours must be 1 to {MAX_VALIDITY_SECONDS // 3600}, not {hours}")
    return hours
