"""How long a handler's AWS requests take in AWS, where the local stack's moto takes far longer.

On this machine a DynamoDB request to moto (its server in a process of its own, on the two cores the
handlers and the sender also use) took tens of milliseconds under load; in AWS, from a Lambda function in
the table's region, a few. A function is billed for its duration, so ``dig cost`` prices each
invocation at its own time as measured, its provider calls as the simulators answered them, and the
time it waited on AWS at these latencies instead of moto's (overlapping requests counted once).

UNVERIFIED assumptions, not AWS's figures: AWS documents only DynamoDB's "single-digit millisecond"
performance (https://aws.amazon.com/dynamodb/); the rest are round figures at the high end of what
production traces of in-region SDK calls commonly show. They are one table, to be replaced by X-Ray's
subsegment durations of a deployed stack.
"""

from __future__ import annotations

# seconds per request, by "service.Operation", else by service
AWS_REQUEST_SECONDS: dict[str, float] = {
    "dynamodb": 0.010,
    "dynamodb.BatchWriteItem": 0.025,
    "dynamodb.BatchGetItem": 0.020,
    "dynamodb.Query": 0.015,
    "dynamodb.TransactWriteItems": 0.025,
    "sqs": 0.020,
    "events": 0.040,
    "s3": 0.040,
    "secretsmanager": 0.030,
    "stepfunctions": 0.040,
    "lambda": 0.040,
}
DEFAULT_REQUEST_SECONDS = 0.040
# A Lambda function gets one vCPU's worth of CPU at 1,769 MB, a share below it
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html); this machine's core is
# taken for one vCPU, so a function's own (CPU) time stretches by 1,769 / its memory below that.
FULL_VCPU_MB = 1769


def request_seconds(call: str) -> float:
    """The assumed in-region latency of one request, ``call`` as "service.Operation"."""
    service = call.split(".", 1)[0]
    return AWS_REQUEST_SECONDS.get(call, AWS_REQUEST_SECONDS.get(service, DEFAULT_REQUEST_SECONDS))


def cpu_stretch(memory_mb: int) -> float:
    return max(1.0, FULL_VCPU_MB / memory_mb)
