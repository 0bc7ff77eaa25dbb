"""The local stack: moto's server on loopback, in a process of its own, holding the tables, bus,
rules and queues; one HTTP server on loopback for the local API Gateway and the Optimove simulator;
a poller per connector."""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from dig_connector_kit.settings import connector_variable
from dig_contracts import environment as env
from dig_contracts import functions
from dig_contracts.manifest import ConnectorManifest, Lane, webhook_sources
from dig_contracts.metrics import NAMESPACE
from dig_contracts.registry import installed_connectors, sample_config
from dig_local import resources
from dig_local.doubles import ProviderDouble, installed_doubles
from dig_local.file_driver import FileDriver
from dig_local.gateway import LocalGateway
from dig_local.poller import QueuePoller, local_window

logger = logging.getLogger(__name__)
MANIFESTS: tuple[ConnectorManifest, ...] = installed_connectors()
SAMPLE_CONFIGS = {m.name: Path(str(found)) for m in MANIFESTS if (found := sample_config(m)) is not None}
STAGE = "local"
LOCAL_IMMEDIATE_POLLERS = 2


def load_handler(dotted: str) -> Any:
    """A Lambda handler by its dotted path, as the local stack invokes it (metrics discarded)."""
    module, _, name = dotted.rpartition(".")
    return _discarding_metrics(getattr(importlib.import_module(module), name), dotted)


# (handler, metric name): every custom metric a handler emitted, which CloudWatch would bill by the month
# (`dig cost` prices them).
EMITTED_METRICS: set[tuple[str, str]] = set()


class _Tally:
    """A count the handlers' threads add to and `dig cost` takes whole (itertools.count cannot be reset)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self, amount: int) -> None:
        with self._lock:
            self.value += amount

    def reset(self) -> int:
        with self._lock:
            value, self.value = self.value, 0
            return value


# The bytes of the metric documents (CloudWatch's embedded metric format) the handlers would have printed:
# deployed, one an invocation that emitted any, ingested by CloudWatch Logs and billed so (`dig cost`).
EMF_BYTES = _Tally()


def emf_document_bytes(dotted: str) -> int:
    """The size of the document Powertools prints for the metrics added so far (its flush: compact JSON).
    The metric set is shared by the threads' handlers, so one may count another's metric: an estimate."""
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics.exceptions import SchemaValidationError

    parts = dotted.split(".")
    service = parts[1] if parts[0] == "connectors" and len(parts) > 2 else parts[0]
    try:
        document = Metrics(namespace=NAMESPACE, service=service).serialize_metric_set()
    except SchemaValidationError:  # another thread's handler flushed them first
        return 0
    return len(json.dumps(document, separators=(",", ":")).encode()) + 1  # and its newline


def _discarding_metrics(handler: Callable[[Any, Any], Any], dotted: str = "") -> Callable[[Any, Any], Any]:
    """Locally, metrics go nowhere (POWERTOOLS_METRICS_DISABLED). Powertools 3.37 then neither prints
    nor clears them at the end of an invocation, and prints them to stdout anyway once one metric
    holds 100 values; clearing after each invocation keeps the terminal clean and memory flat. Their
    names are kept (EMITTED_METRICS)."""
    from aws_lambda_powertools import Metrics

    @functools.wraps(handler)
    def invoke(event: Any, context: Any) -> Any:
        try:
            return handler(event, context)
        finally:
            metrics = Metrics()  # the metric set is shared by every Metrics instance
            names = list(metrics.metric_set)  # a copy at once: other threads' handlers add to it
            EMITTED_METRICS.update((dotted, name) for name in names)
            if names:
                EMF_BYTES.add(emf_document_bytes(dotted))
            metrics.clear_metrics()

    return invoke


class LocalStack:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        retry_delay_seconds: int = 2,
        manifests: tuple[ConnectorManifest, ...] = MANIFESTS,
        quiet: bool = True,
        check_interval_seconds: float = 60.0,
        file_concurrency: int = 4,
        batching_window_seconds: float | None = None,
        wrap_handler: Callable[[str, Any], Any] | None = None,
        coalescing_pollers_as_aws: bool = False,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.retry_delay_seconds = retry_delay_seconds
        self.manifests = manifests
        self.quiet = quiet
        self.doubles = installed_doubles()
        self.simulators: dict[str, ProviderDouble] = {}
        self.resources: resources.LocalResources | None = None
        self.pollers: list[QueuePoller] = []
        self.file_driver: FileDriver | None = None
        self.file_concurrency = file_concurrency
        # None: each connector's manifest's window, as its event source mapping batches in AWS.
        self.batching_window_seconds = batching_window_seconds
        self.coalescing_pollers_as_aws = coalescing_pollers_as_aws  # local_pollers
        # Around every handler the stack invokes, by its dotted path (`dig cost` times them).
        self._wrap_handler = wrap_handler
        self._moto: subprocess.Popen[str] | None = None
        self._server: BaseWSGIServer | None = None
        self._server_thread: threading.Thread | None = None
        self.url = ""
        self.aws_endpoint = ""
        self.check_interval_seconds = check_interval_seconds
        self._stopping = threading.Event()
        self._periodic: list[threading.Thread] = []  # the schedules' stand-ins
        self._job_handlers: dict[str, tuple[Any, Any]] = {}
        self._job_lock = threading.Lock()
        # A connector's settings set before start (a real provider's URLs): that provider, no local double.
        self._user_settings = {s.env: os.environ[s.env] for m in manifests for s in m.settings if os.environ.get(s.env)}

    def _load(self, dotted: str) -> Any:
        handler = load_handler(dotted)
        return handler if self._wrap_handler is None else self._wrap_handler(dotted, handler)

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> str:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per request
        # The file driver runs map children side by side on one boto3 client (in AWS each has its own
        # Lambda): the pool then drops connections it cannot keep, which is no fault.
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)

        self.aws_endpoint = self._start_moto()
        self._configure_process()

        import boto3

        session = boto3.session.Session(region_name=resources.LOCAL_REGION)
        secrets = {name: dict(double.secret) for name, double in self.doubles.items()}
        for double in self.doubles.values():  # secrets of a connector's jobs, by their environment name
            secrets.update({env_name: dict(value) for env_name, value in double.job_secrets.items()})
        self.resources = resources.create(session, list(self.manifests), stage=STAGE, secrets=secrets)
        s3 = session.client("s3")
        for double in self.doubles.values():
            for bucket in double.buckets:
                s3.create_bucket(Bucket=bucket)
        self._seed_configuration(session)

        # Bind first: the simulator's URLs, which the connector is configured with, need the port.
        gateway = _Deferred()
        self._server = make_server(self.host, self.requested_port, gateway, threaded=True)
        self.url = f"http://{self.host}:{self._server.server_port}"
        self._configure_handlers()
        self._job_handlers = self._jobs()
        self._job_lock = threading.Lock()
        gateway.target = self._gateway()
        self._server_thread = threading.Thread(target=self._server.serve_forever, name="gateway", daemon=True)
        self._server_thread.start()
        for name, connector in self.resources.connectors.items():
            for lane in connector.manifest.lanes:  # an event source mapping per lane, one handler
                queue_url, queue_arn = connector.lane_queue(lane.name)
                for _ in range(local_pollers(lane, as_aws=self.coalescing_pollers_as_aws)):
                    poller = QueuePoller(
                        sqs=session.client("sqs"),
                        queue_url=queue_url,
                        queue_arn=queue_arn,
                        handler=self._load(connector.manifest.handler),
                        manifest=connector.manifest,
                        lane=lane,
                        region=resources.LOCAL_REGION,
                        retry_delay_seconds=self.retry_delay_seconds,
                        batching_window_seconds=self.batching_window_seconds,
                    )
                    poller.start()
                    self.pollers.append(poller)
                logger.info("polling %s (%s lane)", name, lane.name)
        self.file_driver = FileDriver(
            sqs=session.client("sqs"),
            s3=session.client("s3"),
            queue_url=self.resources.file_arrivals_queue_url,
            bucket=self.resources.files_bucket,
            validate=self._load(functions.FILE_VALIDATE.handler),
            batch=self._load(functions.FILE_BATCH.handler),
            finish=self._load(functions.FILE_FINISH.handler),
            concurrency=self.file_concurrency,
        )
        self.file_driver.start()
        self._periodic = [threading.Thread(target=self._check_periodically, name="scheduled-checks", daemon=True)]
        if self._job_handlers:
            self._periodic.append(
                threading.Thread(target=self._run_jobs_periodically, name="scheduled-jobs", daemon=True)
            )
        for thread in self._periodic:
            thread.start()
        return self.url

    def stop(self) -> None:
        self._stopping.set()
        for poller in self.pollers:
            poller.stop()
        if self.file_driver is not None:
            self.file_driver.stop()
        for poller in self.pollers:
            poller.join(timeout=10)
        if self.file_driver is not None:
            self.file_driver.join(timeout=10)  # before moto's server goes: it may be receiving
        for thread in self._periodic:
            thread.join(timeout=10)
        if self._server is not None:
            self._server.shutdown()
        if self._moto is not None:
            self._stop_moto(self._moto)

    def _start_moto(self) -> str:
        """moto's server in a process of its own (dig_local.moto_process): its endpoint URL."""
        from dig_local.moto_process import READY_PREFIX

        self._moto = subprocess.Popen(  # noqa: S603 - this interpreter, a module of this package
            [sys.executable, "-m", "dig_local.moto_process", "--host", self.host],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._moto.stdout is not None
        line = self._moto.stdout.readline()
        if not line.startswith(READY_PREFIX):
            self._stop_moto(self._moto)
            raise RuntimeError(f"moto's server did not start: {line.strip() or 'no output'}")
        return f"http://{line.removeprefix(READY_PREFIX).strip()}"

    @staticmethod
    def _stop_moto(process: subprocess.Popen[str]) -> None:
        if process.stdin is not None:
            process.stdin.close()  # moto_process stops at the end of its input
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()

    # --- wiring -------------------------------------------------------------------------------

    def _configure_process(self) -> None:
        """The environment Lambda would give the handlers, pointed at moto."""
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.aws_endpoint,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": resources.LOCAL_REGION,
                "AWS_REGION": resources.LOCAL_REGION,
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": "WARNING" if self.quiet else "INFO",
            }
        )
        os.environ.pop("AWS_PROFILE", None)

    def _configure_handlers(self) -> None:
        assert self.resources is not None
        environment = {
            env.AUDIT_TABLE_NAME: self.resources.audit_table,
            env.CONFIG_TABLE_NAME: self.resources.config_table,
            env.EVENT_BUS_NAME: self.resources.bus_name,
            env.SIGNING_KEY_SECRET_ARN: self.resources.signing_secret_arn,
            env.JWT_ISSUER: resources.LOCAL_ISSUER,
            env.JWT_AUDIENCE: "dig-api",
            env.CALLBACK_KEY_SECRET_ARN: self.resources.callback_key_secret_arn,
            env.DIG_CALLBACK_URL: f"{self.url}/v1/callbacks",
            env.FILES_BUCKET_NAME: self.resources.files_bucket,
            env.INBOUND_SOURCES: json.dumps(
                webhook_sources(self.manifests, lambda secret: secret.default_name, lambda m: f"local:{m.sync_handler}")
            ),
        }
        for name, connector in self.resources.connectors.items():
            environment.update(connector.environment)
            window = local_window(connector.manifest.max_batching_window_seconds, self.batching_window_seconds)
            environment[connector_variable(env.COALESCING_WINDOW_SECONDS, name)] = str(window)
        for name in self.simulators:
            environment.update(self.doubles[name].settings(f"{self.url}/_sim/{name}"))
        environment.update(self._user_settings)
        os.environ.update(environment)

    def _seed_configuration(self, session: Any) -> None:
        """Each connector's sample configuration, and its local double unless a real provider was named."""
        from db.config_store import DynamoConfigStore

        assert self.resources is not None
        store = DynamoConfigStore(session.client("dynamodb"), self.resources.config_table)
        for manifest in self.manifests:
            sample = SAMPLE_CONFIGS.get(manifest.name)
            document = json.loads(sample.read_text()) if sample is not None else {}
            if sample is not None:
                store.push(manifest.name, document, pushed_by="dig local (sample)")
            double = self.doubles.get(manifest.name)
            if double is not None and not any(s.env in self._user_settings for s in manifest.settings):
                self.simulators[manifest.name] = double.make(document)

    def _gateway(self) -> LocalGateway:
        self._wire_synchronous_flow()
        routes = {"/_local/stack": self._describe, "/_local/jobs/": self._job_route}
        for name in self.simulators:
            routes[f"/_sim/{name}"] = functools.partial(self._simulator_route, name)
        return LocalGateway(
            stage=STAGE,
            api_handler=self._load(functions.API.handler),
            authorizer=self._load(functions.AUTHORIZER.handler),
            routes=routes,
        )

    def _wire_synchronous_flow(self) -> None:
        """In AWS the API invokes each connector's sync function; here it calls the handler directly."""
        from dig_api import dependencies
        from dig_api.sync import DirectInvoker, SyncConnector, SyncService

        connectors = [
            SyncConnector(m.name, f"local:{m.sync_handler}", frozenset(t.value for t in m.event_types))
            for m in self.manifests
            if m.sync_handler
        ]
        handlers = {m.name: _sync_entry_point(m.sync_handler) for m in self.manifests if m.sync_handler}

        def local_sync_service() -> SyncService:
            ingest = dependencies.providers.ingest()
            return SyncService(ingest, ingest.audit, DirectInvoker(handlers), connectors)

        dependencies.providers.sync = cache(local_sync_service)

        # Connector-verified webhooks (dig_api.inbound.InboundService.answer): the sync handler, in process.
        entry_points = {f"local:{m.sync_handler}": handlers[m.name] for m in self.manifests if m.sync_handler}
        inbound = dependencies.providers.inbound

        def local_inbound_service() -> Any:
            service = inbound()
            service.invoke_with(lambda function, payload: entry_points[function](payload))
            return service

        dependencies.providers.inbound = cache(local_inbound_service)

    def _describe(self, request: Request) -> Response:
        assert self.resources is not None
        body = {
            **self.resources.describe(),
            "awsEndpoint": self.aws_endpoint,
            "url": self.url,
            "simulators": sorted(self.simulators),
        }
        for name in self.simulators:
            body.update(self.doubles[name].stack_details)
        return Response(json.dumps(body), content_type="application/json")

    def _simulator_route(self, name: str, request: Request) -> Response:
        query = request.query_string.decode()
        answer = self.simulators[name].handle(
            request.method,
            request.path.removeprefix(f"/_sim/{name}") + (f"?{query}" if query else ""),
            dict(request.headers.items()),
            request.get_data(),
        )
        if answer.delay_seconds:  # a "slow" fault: the answer takes this long
            time.sleep(answer.delay_seconds)
        if answer.drop:  # the call was performed; the connection closes without an answer
            connection = request.environ.get("werkzeug.socket")
            if connection is not None:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        body, content_type = answer.content()
        return Response(body, status=answer.status, headers=answer.headers, content_type=content_type)

    def _jobs(self) -> dict[str, tuple[Any, Any]]:
        """Each connector's scheduled jobs by "<connector>/<job>": the job and its (wrapped) handler."""
        return {f"{m.name}/{job.name}": (job, self._load(job.handler)) for m in self.manifests for job in m.scheduled}

    def _job_route(self, request: Request) -> Response:
        """POST /_local/jobs/<connector>/<job>: the job's handler with the request's event, as
        `dig feed run --stack` invokes its function (stands in for Lambda's Invoke)."""
        from dig_local.lambda_context import LocalContext

        found = self._job_handlers.get(request.path.removeprefix("/_local/jobs/").strip("/"))
        if found is None or request.method != "POST":
            return Response(json.dumps({"error": "no such job"}), status=404, content_type="application/json")
        job, handler = found
        event = json.loads(request.get_data() or b"{}")
        try:
            with self._job_lock:  # one invocation at a time, as the schedule and an operator would
                answer = handler(event, LocalContext(job.name, job.timeout_seconds, job.memory_mb))
        except Exception as error:
            logger.exception("job %s failed", job.name)
            body = {"error": f"{type(error).__name__}: {error}"}
            return Response(json.dumps(body), status=500, content_type="application/json")
        return Response(json.dumps(answer, default=str), content_type="application/json")

    def _run_jobs_periodically(self) -> None:
        """Stands in for each job's EventBridge Scheduler schedule."""
        from dig_local.lambda_context import LocalContext

        due = {name: time.monotonic() + job.every_minutes * 60 for name, (job, _) in self._job_handlers.items()}
        while not self._stopping.wait(5):
            for name, (job, handler) in self._job_handlers.items():
                if time.monotonic() >= due[name]:
                    due[name] = time.monotonic() + job.every_minutes * 60
                    with contextlib.suppress(Exception), self._job_lock:  # logged by the handler
                        handler({}, LocalContext(job.name, job.timeout_seconds, job.memory_mb))

    def _check_periodically(self) -> None:
        """Stands in for each callback connector's schedule: the periodic check record on its queue."""
        import boto3

        from dig_contracts.bus import SCHEDULED_CHECK

        assert self.resources is not None
        sqs = boto3.session.Session(region_name=resources.LOCAL_REGION).client("sqs")
        queues = [c.queue_url for c in self.resources.connectors.values() if c.manifest.checks_results]
        while not self._stopping.wait(self.check_interval_seconds):
            for queue_url in queues:
                with contextlib.suppress(Exception):  # the stack may be stopping
                    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(SCHEDULED_CHECK))


def _sync_entry_point(dotted: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    from dig_local.lambda_context import LocalContext

    target = load_handler(dotted)
    return lambda request: target(request, LocalContext("sync", 25))


def local_pollers(lane: Lane, *, as_aws: bool = False) -> int:
    """Invocations at once: the immediate lane's as the event source mapping runs them (a message waiting
    behind another's delivery is what the lane exists to avoid), capped for this machine's two cores;
    the coalescing lane's one, whose window gathers what comes meanwhile into the same batch. ``as_aws``
    (``dig cost``): the coalescing lane's batches gathered at once as AWS gathers at the least, its
    maximum concurrency (AWS starts with five, and never goes below two; a lane's maximum concurrency
    caps the invocations), so that a low rate's batches are no larger than AWS would make them."""
    if lane.name == "immediate":
        return min(lane.max_concurrency, LOCAL_IMMEDIATE_POLLERS)
    return lane.max_concurrency if as_aws else 1


class _Deferred:
    """A WSGI app that forwards to one set once the server is bound."""

    target: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.target(environ, start_response)
