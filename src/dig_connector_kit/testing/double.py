"""The shared base of a provider's local double (its simulator): what every double serves in one shape
under ``/_sim/<connector>/``, so an operator, a test and the next connector's author meet one control
surface:

  GET    /requests   every provider call: method, path, call, headers (secrets redacted), body, and
                     the status answered, or "dropped" when the connection was closed instead
  DELETE /requests   clears the log
  POST   /faults     {"status": 502, "rate": 0.3, "calls": ["leads.json"], "mode": "fail" | "lose-answer" |
                     "slow", "drop": false, "delay": 45}; "lose-answer": the call is performed, then
                     answered ``status`` (504 by default) or, with "drop": true, the connection closes
                     without an answer; "slow": the call is performed and answered after "delay"
                     seconds (a client whose read timeout is shorter loses the answer); "times": the
                     number of calls it hits, then it clears. A provider may take more keys (Marketo:
                     "code", an error code in a 200 body)
  DELETE /faults     clears the fault

A subclass names its calls (``call_name``), serves them (``serve``), may add control routes of its
own (``control``), and passes each provider call through ``faulted`` where its provider would fail.
The local stack serves it; ``mock_transport`` serves it to an ``httpx.Client`` in unit tests, no socket.
"""

from __future__ import annotations

import dataclasses
import json
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode

import httpx

FAULT_MODES = ("fail", "lose-answer", "slow")
# Header names whose values never reach the request log (lower case); a double adds its own.
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "cookie", "proxy-authorization"})
REDACTED = "[redacted]"
MAX_DELAY_SECONDS = 300


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection instead of answering (the call was performed)
    delay_seconds: float = 0.0  # how long the answer takes (the call was performed)
    text: str | None = None  # a text/plain answer instead of ``body`` as JSON (CataBoom's play link)

    def content(self) -> tuple[bytes, str]:
        """The answer's bytes and content type, as served."""
        if self.text is not None:
            return self.text.encode(), "text/plain; charset=utf-8"
        return (b"" if self.body is None else json.dumps(self.body).encode()), "application/json"


class ProviderDouble(Protocol):
    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        """``path`` relative to /_sim/<connector>, with its query string."""
        ...


@dataclass(frozen=True)
class LocalDouble:
    """How the local stack runs a connector's double (entry point group ``dig.local_doubles``)."""

    connector: str
    secret: Mapping[str, Any]  # what the double accepts as credentials (the connector's secret, locally)
    settings: Callable[[str], dict[str, str]]  # the double's base URL -> the connector's settings
    make: Callable[[Mapping[str, Any]], ProviderDouble]  # the sample configuration -> a running double
    buckets: tuple[str, ...] = ()  # the provider's S3 buckets, made in the local stack's S3 (a feed's destination)
    # The secrets of the connector's jobs (ScheduledJob.secrets) the double accepts, by their environment name.
    job_secrets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # What GET /_local/stack shows of it besides (the secret ES Loyalty's double verifies DIG's webhooks with).
    stack_details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Fault:
    status: int | None  # None: the double's own default (a provider code may stand instead)
    rate: float = 1.0
    calls: frozenset[str] | None = None  # None: every call
    lose_answer: bool = False
    drop: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)  # the provider's own keys (Marketo's "code")
    slow_seconds: float = 0.0  # mode "slow": the answer comes this long after the call
    times: int | None = None  # how many calls it hits before it clears itself (None: until DELETE)

    @classmethod
    def from_document(cls, spec: Mapping[str, Any]) -> Fault:
        mode = spec.get("mode", "fail")
        if mode not in FAULT_MODES:
            raise ValueError(f"mode must be one of {FAULT_MODES}")
        rate = float(spec.get("rate", 1.0))
        if not 0 <= rate <= 1:
            raise ValueError("rate must be between 0 and 1")
        calls = spec.get("calls")
        if calls is not None and not (isinstance(calls, list) and all(isinstance(c, str) for c in calls)):
            raise ValueError("calls must be a list of call names")
        status = spec.get("status")
        delay = float(spec.get("delay", 0))
        if mode == "slow" and not 0 < delay <= MAX_DELAY_SECONDS:
            raise ValueError(f"mode slow needs a delay of 0 to {MAX_DELAY_SECONDS} seconds")
        times = spec.get("times")
        if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
            raise ValueError("times must be a whole number of calls, at least 1")
        known = {"status", "rate", "calls", "mode", "drop", "delay", "times"}
        return cls(
            status=int(status) if status is not None else None,
            rate=rate,
            calls=frozenset(calls) if calls else None,
            lose_answer=mode == "lose-answer",
            drop=bool(spec.get("drop", False)),
            extra={k: v for k, v in spec.items() if k not in known},
            slow_seconds=delay if mode == "slow" else 0.0,
            times=times,
        )


class ProviderSimulator(ABC):
    """A provider double's request log and faults; subclasses add the provider."""

    secret_headers: frozenset[str] = frozenset()
    # Query parameters that carry credentials (CataBoom's username and password): never in the request log.
    secret_query_parameters: frozenset[str] = frozenset()

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, seed: int = 7) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._random = random.Random(seed)  # noqa: S311 - which calls a fault hits, repeatably
        self.fault: Fault | None = None
        self.requests: list[dict[str, Any]] = []

    # --- what a subclass provides ------------------------------------------------------------------

    @abstractmethod
    def call_name(self, method: str, path: str) -> str | None:
        """The provider call ``method path`` is, or None (answered 404)."""

    @abstractmethod
    def serve(self, call: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Answer:
        """The provider's answer to a call (pass it through ``faulted`` where the provider fails)."""

    def control(self, method: str, path: str, body: bytes) -> Answer | None:
        """The double's own control routes (listings, seeding); None when ``path`` is none of them."""
        return None

    def check_fault(self, fault: Fault) -> None:
        """Refuse (ValueError) a fault this double cannot act out (by default it can act out any)."""
        return None

    def fault_answer(self, fault: Fault) -> Answer:
        """The answer of a call a "fail" fault hits (it is not performed)."""
        status = fault.status or 500
        return Answer(status, {"message": f"simulated fault {status}"})

    def lost_answer(self, fault: Fault) -> Answer:
        """The answer of a call a "lose-answer" fault hits (it was performed)."""
        return Answer(fault.status or 504, {"message": "simulated lost answer"}, drop=fault.drop)

    def loggable_body(self, call: str, body: bytes) -> Any:
        """A call's body as the request log shows it (a double whose calls carry secrets leaves them out)."""
        return _readable(body)

    def slow_call(self, call: str, seconds: float) -> None:
        """A "slow" fault hit ``call``, which is performed now and answered ``seconds`` later: a double
        whose provider misbehaves while a call is in flight (Marketo's duplicate leads) marks it here."""
        return None

    def log_extra(self, answer: Answer) -> dict[str, Any]:
        """Fields of the provider's own for a request's log entry."""
        return {}

    # --- the shared surface --------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        path, _, query = path.partition("?")
        shared = self._shared_control(method, path, body)
        if shared is not None:
            return shared
        own = self.control(method, path, body)
        if own is not None:
            return own
        call = self.call_name(method, path)
        if call is None:
            return Answer(404, {"message": f"no such endpoint: {method} {path}"})
        answer = self.serve(call, path, query, headers, body)
        self._log(method, path, call, headers, body, answer, query)
        return answer

    def faulted(self, call: str, perform: Callable[[], Answer]) -> Answer:
        """``perform`` the call, unless the fault set for it fails it; when the fault loses its
        answer, performed and then answered as lost."""
        with self._lock:
            fault = self.fault
            hit = (
                fault is not None
                and (fault.calls is None or call in fault.calls)
                and self._random.random() < fault.rate
            )
            if hit and fault is not None and fault.times is not None:
                left = fault.times - 1
                self.fault = dataclasses.replace(fault, times=left) if left else None
        if not hit or fault is None:
            return perform()
        if fault.slow_seconds:
            self.slow_call(call, fault.slow_seconds)
            answer = perform()
            answer.delay_seconds = fault.slow_seconds
            return answer
        if not fault.lose_answer:
            return self.fault_answer(fault)
        perform()
        return self.lost_answer(fault)

    def set_fault(self, fault: Fault | None) -> None:
        if fault is not None:
            self.check_fault(fault)
        with self._lock:
            self.fault = fault

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def logged(self, call: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if call is None or r["call"] == call]

    def _shared_control(self, method: str, path: str, body: bytes) -> Answer | None:
        if (method, path) == ("GET", "/requests"):
            return Answer(200, self.logged())
        if (method, path) == ("DELETE", "/requests"):
            self.clear_requests()
            return Answer(204)
        if (method, path) == ("DELETE", "/faults"):
            self.set_fault(None)
            return Answer(204)
        if (method, path) == ("POST", "/faults"):
            try:
                spec = json.loads(body or b"{}")
                if not isinstance(spec, dict):
                    raise ValueError("the body must be a JSON object")
                self.set_fault(Fault.from_document(spec))
            except (ValueError, TypeError) as error:
                return Answer(400, {"message": f"POST /faults: {error}", "expected": FAULT_DOCUMENT})
            return Answer(204)
        return None

    def _log(
        self,
        method: str,
        path: str,
        call: str,
        headers: Mapping[str, str],
        body: bytes,
        answer: Answer,
        query: str = "",
    ) -> None:
        secret = SECRET_HEADERS | self.secret_headers
        if self.secret_query_parameters and query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode([(k, REDACTED if k in self.secret_query_parameters else v) for k, v in pairs])
        entry = {
            "method": method,
            "path": path,
            "query": query,
            "call": call,
            "headers": {k: REDACTED if k.lower() in secret else v for k, v in headers.items()},
            "body": self.loggable_body(call, body),
            "status": "dropped" if answer.drop else answer.status,
            "at": time.time(),
            **self.log_extra(answer),
        }
        with self._lock:
            self.requests.append(entry)


FAULT_DOCUMENT = {"status": 502, "rate": 1.0, "calls": ["<call>"], "mode": "fail | lose-answer", "drop": False}


def _readable(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def mock_transport(
    double: ProviderDouble,
    *,
    on_call: Callable[[], None] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> httpx.MockTransport:
    """A double served to an ``httpx.Client`` with no socket: what the local stack serves over HTTP.
    ``on_call``: run on each call (a simulated clock's tick); ``sleep``: how a slow answer's delay
    passes (a simulated clock's), against the request's read timeout as httpx would apply it."""

    def handle(request: httpx.Request) -> httpx.Response:
        target = request.url.path + (f"?{request.url.query.decode()}" if request.url.query else "")
        answer = double.handle(request.method, target, dict(request.headers), request.content)
        if on_call is not None:
            on_call()
        if answer.delay_seconds:
            read_timeout = (request.extensions.get("timeout") or {}).get("read")
            waited = answer.delay_seconds if read_timeout is None else min(answer.delay_seconds, read_timeout)
            if sleep is not None:
                sleep(waited)
            if waited < answer.delay_seconds:
                raise httpx.ReadTimeout("timed out waiting for the answer", request=request)
        if answer.drop:  # performed, and the connection closed without an answer
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        content, content_type = answer.content()
        return httpx.Response(answer.status, content=content, headers={"content-type": content_type, **answer.headers})

    return httpx.MockTransport(handle)
