"""The file-processing state machine's Lambda functions: one per step (dig_api.files.processing)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from dig_api.dependencies import providers
from dig_contracts.files import FileStatus, file_id_from_key
from dig_contracts.metrics import FILES_SERVICE, NAMESPACE, FileMetric

logger = Logger(service=FILES_SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=FILES_SERVICE)
tracer = Tracer(service=FILES_SERVICE, patch_modules=("botocore",))
FINAL_METRICS = {
    FileStatus.COMPLETED.value: FileMetric.FILES_COMPLETED,
    FileStatus.COMPLETED_WITH_ERRORS.value: FileMetric.FILES_COMPLETED_WITH_ERRORS,
    FileStatus.FAILED.value: FileMetric.FILES_FAILED,
}


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def validate_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Input: the S3 "Object Created" event the rule starts the execution with (or an operator's
    ``dig files retry``, with ``rerun``)."""
    result = providers.file_steps().validate(event["detail"]["object"]["key"], rerun=bool(event.get("rerun")))
    if not result["proceed"] and result.get("reason", "").isupper():  # refused at validation
        metrics.add_metric(name=FileMetric.FILES_FAILED, unit=MetricUnit.Count, value=1)
    return result


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def batch_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Input: the Distributed Map's batch, ``{"Items": [chunk, ...], "BatchInput": {...}}``."""
    return providers.file_steps().process(event["Items"], event["BatchInput"])


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def finish_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # After a failed validation step the state machine knows the upload's key, not yet the file's id.
    file_id = event.get("fileId") or file_id_from_key(event["uploadKey"])
    result = providers.file_steps().finish(file_id, event.get("mapError"))
    metric = FINAL_METRICS.get(result.get("status") or "")
    if metric is not None and "lines" in result:
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
        metrics.add_metric(name=FileMetric.FILE_LINES_ACCEPTED, unit=MetricUnit.Count, value=result["accepted"])
        metrics.add_metric(name=FileMetric.FILE_LINES_REJECTED, unit=MetricUnit.Count, value=result["rejected"])
    return result
