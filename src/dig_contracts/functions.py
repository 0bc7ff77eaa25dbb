"""The DIG core's Lambda functions: handler and memory, read by the CDK app (infra/) and by `dig cost`,
which prices each function's measured duration at its configured memory. Connectors name theirs in
their manifests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FunctionSpec:
    handler: str
    memory_mb: int


# Its time is mostly waiting on DynamoDB and EventBridge, which more memory does not shorten: at 512 MB its
# own time (about 0.2 ms an event on a full vCPU) stretches 3.45x, and a second costs half as much
# (`dig cost`, issue #28: 45% fewer GB-seconds at 1 M a month; SnapStart caches half the snapshot).
API = FunctionSpec("dig_api.handler.lambda_handler", 512)
# Checks an HMAC-signed token and its claims: 256 MB is plenty, and SnapStart caches (bills) less.
AUTHORIZER = FunctionSpec("dig_api.authorizer.lambda_handler", 256)
# Reading, hashing and decoding the whole upload: a full vCPU (1,769 MB) and Lambda's 15 minutes.
FILE_VALIDATE = FunctionSpec("dig_api.files.handler.validate_handler", 1769)
FILE_BATCH = FunctionSpec("dig_api.files.handler.batch_handler", 1024)
FILE_FINISH = FunctionSpec("dig_api.files.handler.finish_handler", 1024)
CORE_FUNCTIONS = (API, AUTHORIZER, FILE_VALIDATE, FILE_BATCH, FILE_FINISH)

# X-Ray on the request path: API Gateway decides for each request by the stack's sampling rule (infra/
# observability.py), and the API function follows its decision. No reservoir: X-Ray's default records
# the first request each second, which at a program's rate of one event every few seconds is every one
# (issue #28). A function an SQS queue invokes samples by Lambda's own rule in Active mode (no setting
# changes it) or follows the upstream's decision in PassThrough.
API_TRACE_RESERVOIR_PER_SECOND = 0
API_TRACE_FIXED_RATE = 0.05
# So the connectors' queue-fed functions pass the upstream's decision through by default (context
# queueTracing): "Active" would trace nearly every invocation of a program sending a few a second.
QUEUE_TRACING_DEFAULT = "PassThrough"
