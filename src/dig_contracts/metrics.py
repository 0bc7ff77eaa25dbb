"""Every metric DIG's code emits, in one place: the handlers emit them by these names, the CDK
dashboard and alarms read them by these names (an infrastructure test holds the two together).

Namespace ``DIG``; one dimension, ``service`` (Powertools' default): ``dig-api`` or
``dig-connector-<name>``.
"""

from __future__ import annotations

from enum import StrEnum

NAMESPACE = "DIG"
SERVICE_DIMENSION = "service"
API_SERVICE = "dig-api"


def connector_service(connector: str) -> str:
    return f"dig-connector-{connector}"


class ApiMetric(StrEnum):
    EVENTS_ACCEPTED = "EventsAccepted"
    EVENTS_DUPLICATE = "EventsDuplicate"
    EVENTS_REJECTED = "EventsRejected"  # batch entries refused (each also counted by reason)
    EVENTS_SYNCHRONOUS = "EventsSynchronous"
    CALLBACKS_ACCEPTED = "CallbacksAccepted"
    WEBHOOKS_ACCEPTED = "WebhooksAccepted"  # providers' webhooks verified and kept (the return path)
    WEBHOOKS_ANSWERED = "WebhooksAnswered"  # webhooks their connector answered (verification connector)
    SERVER_ERRORS = "ServerErrors"


FILES_SERVICE = "dig-files"


class FileMetric(StrEnum):
    FILES_COMPLETED = "FilesCompleted"
    FILES_COMPLETED_WITH_ERRORS = "FilesCompletedWithErrors"
    FILES_FAILED = "FilesFailed"  # refused at validation, or chunks that failed after their retries
    FILE_LINES_ACCEPTED = "FileLinesAccepted"
    FILE_LINES_REJECTED = "FileLinesRejected"


def rejected_metric(code: str) -> str:
    """A refusal by its error code (VALIDATION_FAILED -> RejectedValidationFailed)."""
    return "Rejected" + "".join(part.title() for part in code.split("_"))


class ConnectorMetric(StrEnum):
    MESSAGES_DELIVERED = "MessagesDelivered"
    MESSAGES_FAILED = "MessagesFailed"
    MESSAGES_SKIPPED = "MessagesSkipped"
    MESSAGES_PENDING = "MessagesPending"  # a transient failure, back to the queue
    MESSAGES_UNREADABLE = "MessagesUnreadable"
    MESSAGES_REPLAYED = "MessagesReplayed"
    MESSAGES_SENT_AGAIN = "MessagesSentAgain"
    # Sent back to wait with a delay, not failed: a provider's daily quota spent (Marketo), a mail waiting for
    # the member's address (Optimove), a payee not yet payable (Tipalti).
    MESSAGES_HELD = "MessagesHeld"
    BATCH_SIZE = "BatchSize"
    DELIVERY_ATTEMPTS = "DeliveryAttempts"
    PROVIDER_CALLS = "ProviderCalls"
    PROVIDER_THROTTLED = "ProviderThrottled"  # 429
    PROVIDER_SERVER_ERRORS = "ProviderServerErrors"  # 5xx, timeouts, network errors
    PROVIDER_AUTH_REFUSED = "ProviderAuthRefused"  # 401 / 403: no retry will mend it
    LATE_FAILURES = "LateFailures"  # failed by the provider's callback after it accepted them

    CALLBACK_RESULTS_UNREADABLE = "CallbackResultsUnreadable"
    CALLBACK_RESULTS_OVERDUE = "CallbackResultsOverdue"

    # The return path (dig_contracts.inbound): webhooks read, inbound events emitted, and what a
    # provider said that matched no member DIG knows (counted, never guessed).
    WEBHOOKS_READ = "WebhooksRead"
    INBOUND_EMITTED = "InboundEventsEmitted"
    INBOUND_UNMATCHED = "InboundUnmatched"


class JobMetric(StrEnum):
    """What a connector's scheduled job (manifest: ``scheduled``) emits, under the connector's service."""

    JOB_LATE = "JobLate"  # its day not complete past its deadline (a provider's readiness time)
    JOB_INPUT_MISSING = "JobInputMissing"  # an input it expected did not arrive
