"""Run a Lambda handler the way AWS Lambda runs it, on this machine.

Two pieces, standard library only:

* :class:`RuntimeApi` emulates the Lambda *Runtime API* (version 2018-06-01): the
  HTTP endpoints a runtime polls for invocations and posts results to. It serves
  on ``127.0.0.1:<free port>`` from a thread; ``invoke(event)`` queues an event
  and waits for the runtime's answer.
* ``lambda_function.running_lambda`` starts that emulator plus a real runtime
  process, ``python -m awslambdaric <module.handler>``, and yields a function to invoke.

What is emulated, following the Runtime API reference:

* ``GET  /2018-06-01/runtime/invocation/next`` long-polls for the next event and
  answers with the event body and the ``Lambda-Runtime-Aws-Request-Id``,
  ``-Deadline-Ms``, ``-Invoked-Function-Arn``, ``-Trace-Id`` headers (plus
  ``-Client-Context`` / ``-Cognito-Identity`` when given).
* ``POST /2018-06-01/runtime/invocation/{id}/response`` and ``.../{id}/error``
  (202). A response larger than Lambda's synchronous limit gets 413 and the
  invoke fails with ``Function.ResponseSizeTooLarge``.
* ``POST /2018-06-01/runtime/init/error`` (202): the pending invoke (and any
  later one) fails with the runtime's init error, e.g. ``Runtime.ImportModuleError``.

All sockets set ``TCP_NODELAY``: without it each invoke pays ~40-90 ms of Nagle
plus delayed-ACK stalls on loopback.
"""

from __future__ import annotations

import collections
import contextlib
import json
import re
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

API_PREFIX = "/2018-06-01/runtime"
NEXT_PATH = f"{API_PREFIX}/invocation/next"
INIT_ERROR_PATH = f"{API_PREFIX}/init/error"
_RESULT_PATH = re.compile(rf"^{API_PREFIX}/invocation/(?P<request_id>[^/]+)/(?P<kind>response|error)$")

# Lambda's synchronous response limit: 6 MiB (the service allows 100 bytes of slack).
MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100
DEFAULT_ACCOUNT = "123456789012"
EVENTS_DIR = Path(__file__).resolve().parent / "events"


def load_event(name: str) -> dict[str, Any]:
    """Load a recorded event shape from ``tests/events/<name>.json``."""
    path = EVENTS_DIR / (name if name.endswith(".json") else f"{name}.json")
    event: dict[str, Any] = json.loads(path.read_text())
    return event


class InvokeTimeout(TimeoutError):
    """The caller's wait for an invoke ran out (the runtime may still be working)."""


@dataclass(frozen=True)
class InvokeResult:
    """What a synchronous Invoke returns.

    ``payload`` is the function's response parsed as JSON (or the raw text when it
    is not JSON); on a function error it is the error object
    (``errorMessage``/``errorType``/``requestId``/``stackTrace``) and
    ``function_error`` is ``"Unhandled"``, like the ``X-Amz-Function-Error``
    header of the real Invoke API.
    """

    request_id: str
    payload: Any
    raw: bytes
    content_type: str | None
    function_error: str | None
    duration_s: float
    """Wall time of the invoke call, queueing included."""
    runtime_s: float | None = None
    """Time between handing the event to the runtime and its answer (None if never handed over)."""
    error_type_header: str | None = None
    """``Lambda-Runtime-Function-Error-Type`` as posted by the runtime, if any."""

    @property
    def ok(self) -> bool:
        return self.function_error is None

    @property
    def error_type(self) -> str | None:
        if self.ok or not isinstance(self.payload, dict):
            return None
        value = self.payload.get("errorType")
        return str(value) if value is not None else None

    @property
    def error_message(self) -> str | None:
        if self.ok or not isinstance(self.payload, dict):
            return None
        value = self.payload.get("errorMessage")
        return str(value) if value is not None else None


def _decode_payload(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


@dataclass
class PendingInvoke:
    request_id: str
    body: bytes
    function_timeout_s: float
    client_context: str | None
    cognito_identity: str | None
    tenant_id: str | None
    submitted_at: float = field(default_factory=time.perf_counter)
    dispatched_at: float | None = None
    deadline_epoch_ms: int | None = None
    done: threading.Event = field(default_factory=threading.Event)
    result: InvokeResult | None = None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the runtime reuses one connection
    disable_nagle_algorithm = True  # StreamRequestHandler sets TCP_NODELAY on the accepted socket
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> None:
        headers = dict(headers or {})
        if body:
            headers.setdefault("Content-Type", "application/json")
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _send_json(self, status: int, obj: Mapping[str, Any]) -> None:
        self._send(status, json.dumps(obj).encode())

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        api = self.server.api
        if self.path != NEXT_PATH:
            self._send_json(404, {"errorType": "NotFound", "errorMessage": f"unknown path {self.path}"})
            return
        api._note_next()
        pending = api._take_next()
        if pending is None:  # shutting down
            self.close_connection = True
            self._send_json(503, {"errorType": "ShuttingDown", "errorMessage": "runtime API is closing"})
            return
        pending.dispatched_at = time.perf_counter()
        pending.deadline_epoch_ms = int((time.time() + pending.function_timeout_s) * 1000)
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": pending.request_id,
            "Lambda-Runtime-Deadline-Ms": str(pending.deadline_epoch_ms),
            "Lambda-Runtime-Invoked-Function-Arn": api.function_arn,
            "Lambda-Runtime-Trace-Id": _trace_id(),
        }
        if pending.client_context is not None:
            headers["Lambda-Runtime-Client-Context"] = pending.client_context
        if pending.cognito_identity is not None:
            headers["Lambda-Runtime-Cognito-Identity"] = pending.cognito_identity
        if pending.tenant_id is not None:
            headers["Lambda-Runtime-Aws-Tenant-Id"] = pending.tenant_id
        try:
            self._send(200, pending.body, headers)
        except OSError:  # the runtime went away while long-polling: give the event to the next one
            pending.dispatched_at = None
            api._requeue(pending)
            self.close_connection = True

    def do_POST(self) -> None:
        api = self.server.api
        body = self._read_body()
        if self.path == INIT_ERROR_PATH:
            api._record_init_error(body, self.headers.get("Lambda-Runtime-Function-Error-Type"))
            self._send_json(202, {"status": "OK"})
            return
        match = _RESULT_PATH.match(self.path)
        if match is None:
            self._send_json(404, {"errorType": "NotFound", "errorMessage": f"unknown path {self.path}"})
            return
        status, reply = api._record_result(
            match["request_id"],
            is_error=match["kind"] == "error",
            body=body,
            content_type=self.headers.get("Content-Type"),
            error_type=self.headers.get("Lambda-Runtime-Function-Error-Type"),
        )
        self._send_json(status, reply)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    api: RuntimeApi

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the runtime process went away mid-connection (it was stopped or crashed)
        super().handle_error(request, client_address)


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


class RuntimeApi:
    """A Lambda Runtime API endpoint for one function, served from a background thread."""

    def __init__(
        self,
        *,
        function_name: str = "featuresql-serving",
        region: str = "us-east-1",
        account_id: str = DEFAULT_ACCOUNT,
        function_timeout_s: float = 30.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.function_name = function_name
        self.region = region
        self.function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        self.function_timeout_s = function_timeout_s
        self._cond = threading.Condition()
        self._queue: collections.deque[PendingInvoke] = collections.deque()
        self._pending: dict[str, PendingInvoke] = {}
        self._closing = False
        self.init_error: dict[str, Any] | None = None
        self.init_error_type: str | None = None
        self.ready_at: float | None = None
        """perf_counter() of the first ``next`` poll since the last :meth:`reset_runtime_state`."""
        self._server = _Server((host, 0), _Handler)
        self._server.api = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="lambda-runtime-api", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """``host:port``, the value of ``AWS_LAMBDA_RUNTIME_API``."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    # -- caller side ---------------------------------------------------------

    def submit(
        self,
        event: Any,
        *,
        client_context: Mapping[str, Any] | None = None,
        cognito_identity: Mapping[str, Any] | None = None,
        tenant_id: str | None = None,
        request_id: str | None = None,
    ) -> PendingInvoke:
        """Queue one invocation; the runtime picks it up with its next ``GET .../next``."""
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        pending = PendingInvoke(
            request_id=request_id or str(uuid.uuid4()),
            body=body,
            function_timeout_s=self.function_timeout_s,
            client_context=json.dumps(client_context) if client_context is not None else None,
            cognito_identity=json.dumps(cognito_identity) if cognito_identity is not None else None,
            tenant_id=tenant_id,
        )
        with self._cond:
            if self._closing:
                raise RuntimeError("runtime API is closed")
            self._pending[pending.request_id] = pending
            if self.init_error is not None:
                self._fail_with_init_error(pending)
            else:
                self._queue.append(pending)
                self._cond.notify()
        return pending

    def wait(
        self,
        pending: PendingInvoke,
        timeout: float,
        *,
        check: Callable[[PendingInvoke], InvokeResult | None] | None = None,
        poll_s: float = 0.02,
    ) -> InvokeResult:
        """Wait for ``pending``; ``check`` may end the wait early with a result of its own."""
        limit = time.perf_counter() + timeout
        while not pending.done.wait(min(poll_s, max(0.0, limit - time.perf_counter()))):
            if check is not None:
                forced = check(pending)
                if forced is not None:
                    self.complete(pending, forced)
                    break
            if time.perf_counter() >= limit:
                raise InvokeTimeout(f"invoke {pending.request_id} not answered within {timeout:.1f}s")
        assert pending.result is not None
        return pending.result

    def invoke(self, event: Any, timeout: float | None = None, **kwargs: Any) -> InvokeResult:
        """Queue ``event`` and wait for the runtime's response or error."""
        pending = self.submit(event, **kwargs)
        return self.wait(pending, self.function_timeout_s + 5.0 if timeout is None else timeout)

    def complete(self, pending: PendingInvoke, result: InvokeResult) -> bool:
        """Finish ``pending`` with ``result`` unless it already finished; True if this call finished it."""
        with self._cond:
            if pending.done.is_set():
                return False
            with contextlib.suppress(ValueError):
                self._queue.remove(pending)
            self._pending.pop(pending.request_id, None)  # later posts for this id get 400, as for any unknown id
            pending.result = result
            pending.done.set()
            return True

    def error_result(self, pending: PendingInvoke, error_type: str, message: str) -> InvokeResult:
        """An ``Unhandled`` error result for ``pending`` shaped like the ones the Lambda service makes."""
        payload = {"errorType": error_type, "errorMessage": message}
        return InvokeResult(
            request_id=pending.request_id,
            payload=payload,
            raw=json.dumps(payload).encode(),
            content_type="application/json",
            function_error="Unhandled",
            duration_s=time.perf_counter() - pending.submitted_at,
            runtime_s=None if pending.dispatched_at is None else time.perf_counter() - pending.dispatched_at,
        )

    def reset_runtime_state(self) -> None:
        """Forget the previous runtime process (its init error and readiness) before starting another."""
        with self._cond:
            self.init_error = None
            self.init_error_type = None
            self.ready_at = None

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            for pending in list(self._pending.values()):
                if not pending.done.is_set():
                    pending.result = self.error_result(pending, "Runtime.ApiClosed", "runtime API closed")
                    pending.done.set()
            self._pending.clear()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RuntimeApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- runtime side (called from the HTTP handler threads) -----------------

    def _note_next(self) -> None:
        with self._cond:
            if self.ready_at is None:
                self.ready_at = time.perf_counter()
            self._cond.notify_all()

    def _take_next(self) -> PendingInvoke | None:
        with self._cond:
            while not self._queue and not self._closing:
                self._cond.wait()
            if self._closing:
                return None
            return self._queue.popleft()

    def _requeue(self, pending: PendingInvoke) -> None:
        with self._cond:
            if not pending.done.is_set():
                self._queue.appendleft(pending)
                self._cond.notify()

    def _record_result(
        self, request_id: str, *, is_error: bool, body: bytes, content_type: str | None, error_type: str | None
    ) -> tuple[int, dict[str, str]]:
        with self._cond:
            pending = self._pending.get(request_id)
        if pending is None or pending.dispatched_at is None:
            return 400, {"errorType": "InvalidRequestID", "errorMessage": f"unknown request id {request_id}"}
        if pending.done.is_set():
            return 403, {"errorType": "InvalidStateTransition", "errorMessage": "invocation already finished"}
        now = time.perf_counter()
        if not is_error and len(body) > MAX_RESPONSE_BYTES:
            self.complete(
                pending,
                self.error_result(
                    pending,
                    "Function.ResponseSizeTooLarge",
                    f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
                ),
            )
            return 413, {
                "errorType": "RequestEntityTooLarge",
                "errorMessage": f"Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
            }
        result = InvokeResult(
            request_id=request_id,
            payload=_decode_payload(body),
            raw=body,
            content_type=content_type,
            function_error="Unhandled" if is_error else None,
            duration_s=now - pending.submitted_at,
            runtime_s=now - pending.dispatched_at,
            error_type_header=error_type,
        )
        self.complete(pending, result)
        return 202, {"status": "OK"}

    def _record_init_error(self, body: bytes, error_type: str | None) -> None:
        payload = _decode_payload(body)
        with self._cond:
            self.init_error = payload if isinstance(payload, dict) else {"errorMessage": str(payload)}
            self.init_error_type = error_type
            waiting = list(self._queue)
            self._queue.clear()
            for pending in waiting:
                self._fail_with_init_error(pending)
            self._cond.notify_all()

    def _fail_with_init_error(self, pending: PendingInvoke) -> None:
        # Caller holds self._cond.
        assert self.init_error is not None
        raw = json.dumps(self.init_error).encode()
        self._pending.pop(pending.request_id, None)
        pending.result = InvokeResult(
            request_id=pending.request_id,
            payload=dict(self.init_error),
            raw=raw,
            content_type="application/json",
            function_error="Unhandled",
            duration_s=time.perf_counter() - pending.submitted_at,
            error_type_header=self.init_error_type,
        )
        pending.done.set()


# ---------------------------------------------------------------------------
