"""The DIG API Lambda: routes, the HTTP shape of each answer, and error mapping. Rules live in
dig_api.ingest; this module only translates between HTTP and that logic."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import warnings
from collections import Counter
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import AwareDatetime, BeforeValidator

from db.records import iso, utc_now
from dig_api import dependencies
from dig_api.dependencies import providers
from dig_api.errors import (
    ApiError,
    ErrorBody,
    ErrorDetail,
    Forbidden,
    InvalidJson,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    validation_details,
)
from dig_api.files.service import FileDeclaration, FileDeclared, FileList, FileView
from dig_api.ingest import (
    EVENT_TAGS,
    Caller,
    IngestStatus,
    card_paths,
    check_event_size,
    check_nesting,
)
from dig_api.models import (
    BatchEntry,
    BatchRequest,
    BatchResponse,
    InboundEventsPage,
    IngestResponse,
    MessageResponse,
    SyncDelivery,
    SyncResponse,
)
from dig_contracts import snapstart
from dig_contracts.bus import CallbackDetail
from dig_contracts.callbacks import verify as verify_callback
from dig_contracts.events import EnvelopeFields, LoyaltyEvent
from dig_contracts.files import MULTIPART_THRESHOLD_BYTES
from dig_contracts.metrics import API_SERVICE, NAMESPACE, ApiMetric, rejected_metric
from dig_contracts.pan import mask_card_numbers, mask_card_numbers_in

# A request that counts nothing (every GET) would have Powertools warn "No application metrics" each time.
warnings.filterwarnings("ignore", message="No application metrics to publish")
logger = Logger(service="dig-api")
metrics = Metrics(namespace=NAMESPACE, service=API_SERVICE)
INGEST_METRICS = {
    IngestStatus.ACCEPTED: ApiMetric.EVENTS_ACCEPTED,
    IngestStatus.DUPLICATE: ApiMetric.EVENTS_DUPLICATE,
    IngestStatus.REJECTED: ApiMetric.EVENTS_REJECTED,
}
# Patch only what this function calls: the default patches every library X-Ray knows, importing httpx.
tracer = Tracer(service="dig-api", patch_modules=("botocore",))
app = APIGatewayRestResolver(
    enable_validation=True, response_validation_error_http_code=HTTPStatus.INTERNAL_SERVER_ERROR
)

CONNECTOR = re.compile(r"^[a-z][a-z0-9]{1,30}$")
# A Lambda synchronous invocation carries at most 6 MB; keep a margin for API Gateway's envelope.
MAX_REQUEST_BYTES = 5_800_000
ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("POST", re.compile(r"^/v1/events$")),
    ("POST", re.compile(r"^/v1/events/batch$")),
    ("POST", re.compile(r"^/v1/sync/events$")),
    ("POST", re.compile(r"^/v1/callbacks/[^/]+/[^/]+$")),
    ("GET", re.compile(r"^/v1/messages/[^/]+$")),
    ("GET", re.compile(r"^/v1/events/(?!batch$)[^/]+$")),
    ("GET", re.compile(r"^/v1/openapi\.json$")),
    ("POST", re.compile(r"^/v1/files$")),
    ("GET", re.compile(r"^/v1/files$")),
    ("GET", re.compile(r"^/v1/files/[^/]+$")),
    ("POST", re.compile(r"^/v1/inbound/[^/]+/[^/]+$")),
    ("GET", re.compile(r"^/v1/inbound-events$")),
)
# Providers' webhooks: verified by their source's rule (dig_api.inbound), in whatever content type the
# provider sends (Marketo's may be form-encoded); their connector reads the body.
INBOUND_PATH = re.compile(r"^/v1/inbound/[^/]+/[^/]+$")


def json_response(description: str, model: type[Any]) -> Any:
    return {"description": description, "content": {"application/json": {"model": model}}}


# The error answers each route can give; dig_api.openapi adds those every route shares (401, 403, 405,
# 429, 500) with an example and Retry-After where it is sent.
ERROR_DESCRIPTIONS = {
    400: "The body is not valid JSON, or nests deeper than 32 levels",
    401: "Missing or invalid bearer token",
    403: "The token does not allow this route (or its client is not registered, or the WAF blocked it)",
    404: "No such message, event, file, route, or cursor (`after`)",
    405: "The method is not allowed on this route (Allow lists those that are)",
    409: "Another request is delivering this eventId right now; retry after Retry-After seconds",
    413: "The event or batch is too large (as posted, or as it would be stored)",
    415: "The body is not JSON",
    422: "The request does not match its schema, or holds a card number",
    429: "Too many requests from this client; retry later",
    500: "An unexpected error; the requestId identifies it in the logs",
    503: "The bus or the audit table is unavailable; retry after Retry-After seconds",
}


def error_responses(*statuses: int) -> dict[int, Any]:
    return {status: json_response(ERROR_DESCRIPTIONS[status], ErrorBody) for status in statuses}


POST_ERRORS = error_responses(400, 413, 415, 422, 503)
EVENT_ERRORS = error_responses(400, 409, 413, 415, 422, 503)
READ_ERRORS = error_responses(404, 503)


def _rfc3339(value: object) -> object:
    """A query's timestamp as RFC 3339 text only: pydantic would read "0.5" as seconds since 1970."""
    if isinstance(value, str) and not RFC3339.match(value):
        raise ValueError("must be an RFC 3339 timestamp with an offset, e.g. 2026-12-01T00:00:00Z")
    return value


RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]


def caller() -> Caller:
    event = app.current_event
    context = event.request_context
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    client_id = authorizer.get("clientId") or authorizer.get("principalId") or context.identity.user_arn
    return Caller(request_id=context.request_id, client_id=client_id, source_ip=context.identity.source_ip)


@app.post(
    "/v1/events",
    summary="Submit one ES Loyalty event",
    description="Validates the event, records it in the audit trail and puts it on the bus. "
    "The same eventId again answers 200 with status 'duplicate' and the original messageId.",
    responses={
        202: json_response("Accepted: recorded and on the bus", IngestResponse),
        200: json_response("Duplicate: the original messageId", IngestResponse),
        **EVENT_ERRORS,
    },
    tags=["events"],
)
def post_event(event: Annotated[LoyaltyEvent, Body()]):
    assert isinstance(event, EnvelopeFields)
    accepted = providers.ingest().ingest(event, app.current_event.decoded_body or "", caller())
    metrics.add_metric(name=INGEST_METRICS[accepted.status], unit=MetricUnit.Count, value=1)
    status = HTTPStatus.ACCEPTED if accepted.status is IngestStatus.ACCEPTED else HTTPStatus.OK
    return _json(status, IngestResponse(messageId=accepted.message_id, status=accepted.status.value))


@app.post(
    "/v1/events/batch",
    summary="Submit up to 500 events",
    description="One result per input entry, in input order. A bad entry rejects only itself; an entry the "
    "bus could not take is 'rejected' with code SERVICE_UNAVAILABLE and retryable=true, never 'accepted'.",
    responses={200: json_response("One result per entry", BatchResponse), **POST_ERRORS},
    tags=["events"],
)
def post_batch(batch: Annotated[BatchRequest, Body()]):
    results = providers.ingest().ingest_body_batch(batch.events, app.current_event.decoded_body or "", caller())
    entries = [
        BatchEntry(
            index=result.index,
            eventId=result.event_id,
            status=result.status.value,
            messageId=result.message_id,
            error=result.error.info() if result.error else None,
            retryable=(result.error.status >= 500 or result.error.status == 409) if result.error else None,
        )
        for result in results
    ]
    # One value per status, not one per event: EMF takes at most 100 values per metric and line.
    for status, count in Counter(result.status for result in results).items():
        metrics.add_metric(name=INGEST_METRICS[status], unit=MetricUnit.Count, value=count)
    for code, count in Counter(result.error.code for result in results if result.error).items():
        metrics.add_metric(name=rejected_metric(code), unit=MetricUnit.Count, value=count)
    return _json(HTTPStatus.OK, BatchResponse(results=entries))


@app.post(
    "/v1/sync/events",
    summary="Deliver one event now, synchronously",
    description="Records the event like POST /v1/events, then invokes each subscribed connector directly and "
    "answers every connector's result within the API's timeout. A connector that fails is recorded FAILED, "
    "replayable; the same eventId again answers its recorded deliveries with status 'duplicate'.",
    responses={200: json_response("Each connector's result", SyncResponse), **EVENT_ERRORS},
    tags=["events"],
)
def post_sync_event(event: Annotated[LoyaltyEvent, Body()]):
    assert isinstance(event, EnvelopeFields)
    answer = providers.sync().deliver(event, app.current_event.decoded_body or "", caller())
    metrics.add_metric(name=ApiMetric.EVENTS_SYNCHRONOUS, unit=MetricUnit.Count, value=1)
    return _json(
        HTTPStatus.OK,
        SyncResponse(
            messageId=answer.message_id,
            status="duplicate" if answer.duplicate else "completed",
            deliveries=[SyncDelivery(**d) for d in answer.deliveries],
        ),
    )


MAX_UNREADABLE_CALLBACK_CHARS = 200_000  # an EventBridge entry holds 256 KB


@app.post("/v1/callbacks/<connector>/<callId>", include_in_schema=False)
def post_callback(connector: str, callId: str):
    """A provider's asynchronous results, to a URL the connector signed (no bearer token: the
    provider cannot hold one). Put on the bus for that connector; answered 202."""
    key = providers.callback_key()
    given = app.current_event.get_query_string_value("sig", "") or ""
    expires = app.current_event.get_query_string_value("exp", "") or ""
    if key is None or not CONNECTOR.match(connector) or not verify_callback(key, connector, callId, expires, given):
        raise Forbidden("the callback URL is not one DIG signed, or it has expired")
    raw = app.current_event.decoded_body or ""
    try:
        payload: Any = mask_card_numbers_in(json.loads(raw))  # masked before anything keeps it
    except ValueError:
        # Kept as received and answered 2xx all the same: the provider would only send it again, and
        # the connector keeps it with the call's log and counts it (CallbackResultsUnreadable).
        payload = mask_card_numbers(raw[:MAX_UNREADABLE_CALLBACK_CHARS])
        logger.warning("callback body is not JSON", extra={"connector": connector, "callId": callId})
    detail = CallbackDetail(
        connector=connector,
        callId=callId,
        payload=payload,
        receivedAt=iso(utc_now()),
        receiptId=app.current_event.request_context.request_id,
    )
    providers.ingest().accept_callback(detail)
    metrics.add_metric(name=ApiMetric.CALLBACKS_ACCEPTED, unit=MetricUnit.Count, value=1)
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body='{"status":"accepted"}')


@app.post("/v1/inbound/<connector>/<source>", include_in_schema=False)
def post_inbound(connector: str, source: str):
    """A provider's webhook (no bearer token: the provider cannot hold one). Verified as its connector's
    manifest declares, kept, and handed to the connector; answered 202. A source its connector answers
    (verification connector) gets the connector's answer."""
    from dig_api.inbound import WebhookRequest

    current = app.current_event
    raw = current.decoded_body or ""
    headers = {k.lower(): v for k, v in (current.headers or {}).items()}
    request = WebhookRequest(
        connector=connector,
        source=source,
        body=raw.encode() if isinstance(raw, str) else raw,
        headers=headers,
        query=dict(current.query_string_parameters or {}),
        request_id=current.request_context.request_id,
        content_type=headers.get("content-type"),
    )
    service = providers.inbound()
    if service.answered_by_connector(connector, source):
        answer = service.answer(request)  # the connector's answer, in its provider's shape
        metrics.add_metric(name=ApiMetric.WEBHOOKS_ANSWERED, unit=MetricUnit.Count, value=1)
        return Response(status_code=answer.status, content_type=answer.contentType, body=answer.body)
    receipt = service.receive(request)
    metrics.add_metric(name=ApiMetric.WEBHOOKS_ACCEPTED, unit=MetricUnit.Count, value=1)
    body = json.dumps({"status": "accepted", "receiptId": receipt.receiptId})
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=body)


@app.get(
    "/v1/inbound-events",
    summary="What providers told DIG, for ES Loyalty to pull",
    description="The inbound events (MEMBER_CONSENT_CHANGED, POINTS_AWARD_REQUESTED, PAYOUT_STATUS_CHANGED, "
    "GAME_PLAY_LINK_ISSUED), "
    "oldest first, each with the id DIG's webhooks carry as webhook-id (deduplicate on it). Pass the page's "
    "nextCursor as `after` for the next page; an empty page keeps the cursor: ask again later. Without `after`, "
    "the feed starts at `since` (default: a day ago; at most as far back as the audit trail keeps). For ES "
    "Loyalty deployments that cannot take DIG's signed webhooks.",
    responses={200: json_response("A page of inbound events", InboundEventsPage), **error_responses(404, 422, 503)},
    tags=["inbound"],
)
def get_inbound_events(
    after: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    since: Annotated[Timestamp | None, Query()] = None,
):
    page = providers.inbound().page(after, limit, since)
    # Absent fields left out, as the webhooks carry the same envelope.
    body = InboundEventsPage(events=page.events, nextCursor=page.nextCursor).model_dump_json(exclude_none=True)
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=body)


@app.get(
    "/v1/messages/<messageId>",
    summary="The audit record of a message",
    responses={200: json_response("The message and its deliveries", MessageResponse), **READ_ERRORS},
    tags=["messages"],
)
def get_message(messageId: Annotated[str, Path(max_length=64)]):
    view = providers.ingest().message(messageId)
    if view is None:
        raise NotFound("no such message")
    return _json(HTTPStatus.OK, MessageResponse.of(view))


@app.get(
    "/v1/events/<eventId>",
    summary="The audit record of a message, by ES Loyalty's eventId",
    responses={
        200: json_response("The message and its deliveries", MessageResponse),
        **READ_ERRORS,
        **error_responses(405),
    },
    tags=["messages"],
)
def get_event(eventId: Annotated[str, Path(max_length=128)]):
    if eventId == "batch":  # GET /v1/events/batch: the batch route takes POST only
        raise MethodNotAllowed("this method is not allowed on this route", headers={"Allow": "POST"})
    view = providers.ingest().message_for_event(eventId)
    if view is None:
        raise NotFound("no message for this eventId")
    return _json(HTTPStatus.OK, MessageResponse.of(view))


@app.post(
    "/v1/files",
    summary="Declare a batch file, and get where to upload it",
    description="Events (JSON lines, each an event envelope) or a named data extract (JSON lines or CSV with a "
    "header). The answer holds a presigned upload straight to S3: PUT, or MULTIPART above "
    f"{MULTIPART_THRESHOLD_BYTES // 1024**2} MiB. Processing starts when the upload completes; follow it with "
    "GET /v1/files/{fileId}. The same file declared again answers 200 with duplicate=true and its status.",
    responses={
        201: json_response("Declared: upload the file as the answer says", FileDeclared),
        200: json_response("Declared before: nothing to upload", FileDeclared),
        **POST_ERRORS,
    },
    tags=["files"],
)
def post_file(declaration: Annotated[FileDeclaration, Body()]):
    declared = providers.files().declare(declaration, caller())
    return _json(HTTPStatus.OK if declared.duplicate else HTTPStatus.CREATED, declared)


@app.get(
    "/v1/files",
    summary="Recent batch files, newest first",
    responses={200: json_response("Recent files", FileList), **error_responses(422, 503)},
    tags=["files"],
)
def list_files(limit: Annotated[int, Query(ge=1, le=100)] = 20):
    return _json(HTTPStatus.OK, providers.files().recent(limit))


@app.get(
    "/v1/files/<fileId>",
    summary="A batch file's status, counts, timings and rejected-lines report",
    responses={200: json_response("The file", FileView), **READ_ERRORS},
    tags=["files"],
)
def get_file(fileId: Annotated[str, Path(max_length=64)]):
    view = providers.files().view(fileId)
    if view is None:
        raise NotFound("no such file")
    return _json(HTTPStatus.OK, view)


@app.get("/v1/openapi.json", summary="This API's OpenAPI document", tags=["meta"], include_in_schema=False)
def get_openapi() -> Response[Any]:
    from dig_api.openapi import openapi_document

    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=openapi_document())


# --- errors ---------------------------------------------------------------------------------


def _json(status: int, model: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    # Serialized here from the response model: valid by construction, so the routes declare their
    # response models for the OpenAPI document only, and Powertools does not validate them again.
    body = model.model_dump_json()
    return Response(status_code=int(status), content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


def request_id() -> str:
    try:
        return app.current_event.request_context.request_id or app.lambda_context.aws_request_id
    except Exception:  # no event context (a failure before routing)
        return "unknown"


def error_response(error: ApiError) -> Response[Any]:
    headers = dict(error.headers)
    if error.status >= 500:
        metrics.add_metric(name=ApiMetric.SERVER_ERRORS, unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=rejected_metric(error.code), unit=MetricUnit.Count, value=1)
    return _json(error.status, ErrorBody(error=error.info(), requestId=request_id()), headers)


@app.exception_handler(ApiError)
def handle_api_error(error: ApiError) -> Response[Any]:
    logger.info(
        "request refused",
        extra={"code": error.code, "status": error.status, "fields": [d.field for d in error.details]},
    )
    return error_response(error)


@app.exception_handler(RequestValidationError)
def handle_validation_error(error: RequestValidationError) -> Response[Any]:
    errors = error.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return handle_api_error(InvalidJson("the body is not valid JSON"))
    document = None
    with contextlib.suppress(ValueError):  # the body is not JSON: keys cannot be placed
        document = app.current_event.json_body
    found = card_paths(app.current_event.decoded_body or "")
    details = validation_details(errors, event_tags=EVENT_TAGS, document=document, card_paths=found)
    return handle_api_error(ValidationFailed("the request does not match its schema", details))


@app.exception_handler(RequestUnsupportedContentType)
def handle_content_type(_: RequestUnsupportedContentType) -> Response[Any]:
    return handle_api_error(UnsupportedMediaType("send the body as application/json"))


@app.not_found
def handle_not_found(_: Exception) -> Response[Any]:
    path = app.current_event.path
    allowed = sorted({method for method, pattern in ROUTES if pattern.match(path)})
    if app.current_event.http_method in allowed:
        # A route of this method, with an id the router could not read (a character it does not take):
        # no such message, event or file.
        return error_response(NotFound("no such message, event or file"))
    if allowed:
        error: ApiError = MethodNotAllowed(
            "this method is not allowed on this route", headers={"Allow": ", ".join(allowed)}
        )
    else:
        error = NotFound("no such route")
    return error_response(error)


@app.exception_handler(Exception)
def handle_unexpected(error: Exception) -> Response[Any]:
    logger.exception("unexpected error")
    return error_response(ApiError("an unexpected error occurred; the request id identifies it in the logs"))


# --- entry point ----------------------------------------------------------------------------


def precheck(event: dict[str, Any]) -> ApiError | None:
    """What must be refused before the body is parsed: a content type other than JSON, a body
    too large for the route. API Gateway has already authenticated the caller."""
    if event.get("httpMethod") != "POST" or INBOUND_PATH.match(event.get("path") or ""):
        return None
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    content_type = headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        return UnsupportedMediaType("send the body as application/json")
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
            raw.decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return InvalidJson("the body is not UTF-8 JSON")
        size = len(raw)
    else:
        raw = body.encode()
        size = len(raw)
    try:
        check_nesting(raw)
    except ApiError as error:
        return error
    if event.get("path") == "/v1/events/batch":
        if size > MAX_REQUEST_BYTES:
            return PayloadTooLarge(
                f"a batch may be at most {MAX_REQUEST_BYTES} bytes; this one is {size}",
                [ErrorDetail(field="(body)", rule=f"at most {MAX_REQUEST_BYTES} bytes")],
            )
        return None
    try:
        check_event_size(size)
    except ApiError as error:
        return error
    return None


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    refused = precheck(event)
    if refused is not None:
        body = ErrorBody(error=refused.info(), requestId=event.get("requestContext", {}).get("requestId", "unknown"))
        headers = {"Content-Type": "application/json", **refused.headers}
        return {
            "statusCode": refused.status,
            "headers": headers,
            "body": body.model_dump_json(),
            "isBase64Encoded": False,
        }
    return app.resolve(event, context)


# SnapStart (dig_contracts.snapstart): the services built while Lambda snapshots, rebuilt after a restore.
snapstart.prepare(warm=dependencies.warm, refresh=dependencies.refresh)
