"""The DIG API module: the REST front door for ES Loyalty (handler), its authorizer, and the ingest
logic that records each event in the audit trail and puts it on the EventBridge bus."""
