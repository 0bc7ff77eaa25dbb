"""The database module: table definitions (shared by the CDK app and the local stack), the audit
trail and the connector configuration store."""
