"""What every connector shares: the inbound message, the outcome a connector reports for it, and
the runtime that turns an SQS batch into deliveries, audit records and batchItemFailures.

A connector implements ``Connector.deliver`` and nothing else of this plumbing.
"""
