"""Every environment variable DIG's functions read, named once. The CDK constructs set them, the local
stack sets them, the handlers read them (the connectors through dig_connector_kit.settings). A
connector's own settings and secrets are named in its manifest."""

# Shared by the API and the connectors.
AUDIT_TABLE_NAME = "AUDIT_TABLE_NAME"
AUDIT_RETENTION_DAYS = "AUDIT_RETENTION_DAYS"
AUDIT_FAILED_RETENTION_DAYS = "AUDIT_FAILED_RETENTION_DAYS"
CALLBACK_KEY_SECRET_ARN = "CALLBACK_KEY_SECRET_ARN"  # noqa: S105 - a variable's name

# The DIG API and its authorizer.
EVENT_BUS_NAME = "EVENT_BUS_NAME"
SYNC_CONNECTORS = "SYNC_CONNECTORS"
SIGNING_KEY_SECRET_ARN = "SIGNING_KEY_SECRET_ARN"  # noqa: S105 - a variable's name
JWT_ISSUER = "JWT_ISSUER"
JWT_AUDIENCE = "JWT_AUDIENCE"
JWT_MAX_LIFETIME_SECONDS = "JWT_MAX_LIFETIME_SECONDS"
USAGE_KEY_PREFIX = "USAGE_KEY_PREFIX"
# The connectors' webhook sources (manifest ``webhooks``), as JSON: how the API verifies each.
INBOUND_SOURCES = "INBOUND_SOURCES"

# The connectors.
CONFIG_TABLE_NAME = "CONFIG_TABLE_NAME"
MAX_RECEIVE_COUNT = "MAX_RECEIVE_COUNT"
CONTACT_RETENTION_DAYS = "CONTACT_RETENTION_DAYS"
CONNECTOR_QUEUE_URL = "CONNECTOR_QUEUE_URL"
# The coalescing lane's batching window as its event source mapping has it (the local stack's override included).
COALESCING_WINDOW_SECONDS = "COALESCING_WINDOW_SECONDS"
DIG_CALLBACK_URL = "DIG_CALLBACK_URL"
DIG_CALLBACK_VALIDITY_SECONDS = "DIG_CALLBACK_VALIDITY_SECONDS"

# The batch-file flow (the DIG API and its file-processing functions).
FILES_BUCKET_NAME = "FILES_BUCKET_NAME"
FILES_STATE_MACHINE_ARN = "FILES_STATE_MACHINE_ARN"
FILES_AT_ONCE = "FILES_AT_ONCE"
