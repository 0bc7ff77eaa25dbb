"""The price table `dig cost` uses: us-east-1 list prices, arm64, with the source of each.

Check them before quoting: AWS changes prices, and several here come from third-party summaries
(../shared/reference/aws-and-toolchain.md says which). Per-request prices are per single unit.
"""

from __future__ import annotations

from dataclasses import dataclass

REGION = "us-east-1"
AS_OF = "2026-11"
REFERENCE = "aws-and-toolchain.md (the repository's reference notes)"
# Prices no reference note confirms: AWS's public pricing pages as third-party summaries quote them.
UNVERIFIED = "UNVERIFIED: AWS pricing page as quoted by third-party summaries; check before quoting"


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str
    source: str


PER_UNIT: dict[str, Price] = {
    "dynamodb.write_unit": Price(0.625e-6, "write request unit (1 KB)", f"{REFERENCE}: on-demand, Nov 2024 cut"),
    "dynamodb.read_unit": Price(0.125e-6, "read request unit (4 KB strong, 2 x 4 KB eventual)", REFERENCE),
    "eventbridge.event": Price(1.00e-6, "custom event, per 64 KB chunk", REFERENCE),
    "sqs.request": Price(0.40e-6, "request, per 64 KB chunk", REFERENCE),
    "lambda.request": Price(0.20e-6, "invocation", REFERENCE),
    "lambda.gb_second": Price(0.0000133334, "GB-second, arm64", REFERENCE),
    "apigateway.request": Price(3.50e-6, "REST API request", REFERENCE),
    "waf.request": Price(0.60e-6, "web ACL request", "AWS WAF pricing page (not in the reference notes)"),
    "s3.put": Price(0.005e-3, "PUT, COPY, POST, LIST request", REFERENCE),
    "s3.get": Price(0.0004e-3, "GET and other request", REFERENCE),
    "secretsmanager.call": Price(0.05e-4, "API call", "AWS Secrets Manager pricing page ($0.05 per 10,000)"),
    "logs.gb": Price(0.50, "GB ingested", REFERENCE),
    "xray.trace": Price(5.00e-6, "trace recorded", REFERENCE),
    "stepfunctions.transition": Price(0.025e-3, "standard state transition", REFERENCE),
    "lambda.snapstart_cache_gb_second": Price(
        0.0000015, "GB-second a SnapStart version's snapshot is cached", f"{REFERENCE} (third-party summaries)"
    ),
    "dynamodb.storage_gb_month": Price(0.25, "GB-month stored, Standard table class", UNVERIFIED),
    "dynamodb.pitr_gb_month": Price(0.20, "GB-month of table size under point-in-time recovery", UNVERIFIED),
    "eventbridge.archive_gb": Price(0.10, "GB archived (processing)", UNVERIFIED),
    "eventbridge.archive_gb_month": Price(0.023, "GB-month of archive stored", UNVERIFIED),
    "logs.storage_gb_month": Price(0.03, "GB-month of log stored", UNVERIFIED),
    "lambda.snapstart_restore_gb": Price(
        0.00014, "GB restored from a snapshot (each new environment)", f"{REFERENCE} (third-party summaries)"
    ),
}
SECONDS_PER_MONTH = 730 * 3600

MONTHLY: dict[str, Price] = {
    # Billed per metric an alarm watches: a metric-math alarm over three metrics is three.
    "AWS::CloudWatch::Alarm": Price(0.10, "standard alarm metric per month", "Amazon CloudWatch pricing page"),
    "custom metric": Price(0.30, "custom metric per month (first 10,000)", "Amazon CloudWatch pricing page"),
    "secret outside the stack": Price(0.40, "secret per month", "AWS Secrets Manager pricing page"),
    "AWS::CloudWatch::Dashboard": Price(3.00, "dashboard per month", "Amazon CloudWatch pricing page"),
    "AWS::SecretsManager::Secret": Price(0.40, "secret per month", "AWS Secrets Manager pricing page"),
    "AWS::WAFv2::WebACL": Price(5.00, "web ACL per month", "AWS WAF pricing page"),
    "AWS::WAFv2::WebACL rule": Price(1.00, "rule per month", "AWS WAF pricing page"),
    "AWS::KMS::Key": Price(1.00, "customer managed key per month", "AWS KMS pricing page"),
}

# Not metered by request, modelled: X-Ray records the first request each second and 5% of the rest
# (the default sampling rule, which Lambda's active tracing applies per function): at a low rate nearly
# every invocation, at volume 5% of them (report.traced_share).
XRAY_SAMPLED = 0.05
XRAY_RESERVOIR_PER_SECOND = 1.0
# API Gateway's access log (infra/api.py: JSON with the standard fields): about this much a request.
ACCESS_LOG_BYTES = 400
SECONDS_PER_MONTH_EXACT = 30.42 * 86_400

# Free tiers, shown beside the report and never subtracted from it: what a new or small account pays less.
FREE_TIERS: tuple[tuple[str, str], ...] = (
    ("Lambda", "1,000,000 requests and 400,000 GB-seconds a month (always)"),
    ("DynamoDB", "25 GB stored (always)"),
    ("SQS", "1,000,000 requests a month (always)"),
    ("CloudWatch", "10 custom metrics, 10 alarm metrics, 5 GB of logs a month (always)"),
    ("X-Ray", "100,000 traces recorded a month (always)"),
    ("API Gateway", "1,000,000 REST requests a month (the first 12 months of an account)"),
    ("EventBridge", "none for custom events"),
)
# Lambda writes START, END and REPORT lines for every invocation: about 300 bytes together.
LAMBDA_PLATFORM_LOG_BYTES = 300
