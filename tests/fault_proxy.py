"""A fault-injecting HTTP proxy in front of DynamoDB Local: DynamoDB's failures, on the wire.

DynamoDB Local never throttles, cancels a transaction for a conflict, leaves keys
unprocessed or stalls, so the tests put this proxy (threaded, stdlib only, on
127.0.0.1) between boto3 and the server and point the online store's
``endpoint_url`` at it. Each request is matched against the rules by its
``X-Amz-Target`` operation; a matching rule's fault answers in the server's
place, or changes what reaches it or comes back, with the error shapes DynamoDB
sends:

    with FaultProxy(dynamodb_port) as proxy:
        proxy.add("TransactWriteItems", throttle(), nth={1, 2, 3, 4})
        proxy.add("TransactWriteItems", drop(), rate=0.2)   # a seeded fraction of them
        ... endpoint_url=proxy.url ...

Faults: ``error`` (any status and ``__type``: throttling, 500s), ``cancel`` (a
``TransactionCanceledException`` whose reasons name retryable failures; nothing
is written), ``delay`` (forwarded late: past the client's read timeout, the
client retries while the first request still arrives), ``hold`` (forwarded only
when the test releases it), ``drop`` (the connection closes with no answer,
before or after forwarding: a lost request or a lost response), and
``unprocessed`` (``BatchGetItem``: forwarded, then keys moved to
``UnprocessedKeys`` as DynamoDB does under load). When the server is down the
proxy drops the connection, as a refused connection looks to a pooled client.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOST = "127.0.0.1"
PREFIX = "com.amazonaws.dynamodb.v20120810#"
UPSTREAM_TIMEOUT = 60.0


@dataclass
class Exchange:
    """One request through the proxy: what it asked for, and what the fault did with it."""

    operation: str
    number: int  # the n-th request of this operation (1-based)
    body: bytes
    status: int | None = None  # the status sent back (None: no answer)
    forwarded: bool = False
    upstream: tuple[int, bytes] | None = None  # the server's answer, when forwarded


# A fault gets the exchange and a ``forward`` callable (-> the server's status and body),
# and returns the status and body to answer with, or None to close the connection unanswered.
Answer = tuple[int, bytes] | None
Fault = Callable[[Exchange, Callable[[], tuple[int, bytes]]], Answer]


@dataclass
class Rule:
    operation: str
    fault: Fault
    nth: Collection[int] = ()  # the matching operation's request numbers
    rate: float = 0.0  # or this fraction of its requests (the proxy's seeded RNG)
    hits: list[Exchange] = field(default_factory=list)  # the requests it applied to

    @property
    def applied(self) -> int:
        return len(self.hits)


def _error_body(code: str, message: str, **extra: Any) -> bytes:
    return json.dumps({"__type": PREFIX + code, "message": message, **extra}).encode()


def error(status: int, code: str, message: str = "injected by the fault proxy") -> Fault:
    """Answer ``status`` with DynamoDB's error ``code`` (``ThrottlingException``, ``InternalServerError``...)."""
    return lambda exchange, forward: (status, _error_body(code, message))


def throttle(code: str = "ThrottlingException") -> Fault:
    return error(400, code, "Rate of requests exceeds the allowed throughput.")


def internal_error() -> Fault:
    return error(500, "InternalServerError", "Internal server error")


def cancel(*reasons: str) -> Fault:
    """Cancel a ``TransactWriteItems`` unwritten: item ``n`` gets ``reasons[n % len(reasons)]`` (``None``: fine)."""

    def fault(exchange: Exchange, forward: Callable[[], tuple[int, bytes]]) -> Answer:
        count = len(json.loads(exchange.body)["TransactItems"])
        codes = [reasons[n % len(reasons)] for n in range(count)]
        message = f"Transaction cancelled, please refer cancellation reasons for specific reasons [{', '.join(codes)}]"
        body = _error_body(
            "TransactionCanceledException", message, CancellationReasons=[{"Code": code} for code in codes]
        )
        return 400, body

    return fault


def delay(seconds: float) -> Fault:
    """Forward after ``seconds`` (the client may have given up and retried meanwhile)."""

    def fault(exchange: Exchange, forward: Callable[[], tuple[int, bytes]]) -> Answer:
        time.sleep(seconds)
        return forward()

    return fault


def hold(release: threading.Event, forwarded: threading.Event | None = None, timeout: float = 120.0) -> Fault:
    """Forward only once ``release`` is set (then set ``forwarded``): a request that reaches the server late."""

    def fault(exchange: Exchange, forward: Callable[[], tuple[int, bytes]]) -> Answer:
        release.wait(timeout)
        answer = forward()
        if forwarded is not None:
            forwarded.set()
        return answer

    return fault


def drop(after_forwarding: bool = False) -> Fault:
    """Close the connection unanswered: the request lost, or (``after_forwarding``) only its answer."""

    def fault(exchange: Exchange, forward: Callable[[], tuple[int, bytes]]) -> Answer:
        if after_forwarding:
            forward()
        return None

    return fault


def unprocessed(fraction: float = 1.0) -> Fault:
    """``BatchGetItem``: forward, then report ``fraction`` of the found items' keys as unprocessed."""

    def fault(exchange: Exchange, forward: Callable[[], tuple[int, bytes]]) -> Answer:
        status, body = forward()
        if status != 200:
            return status, body
        answer = json.loads(body)
        request = json.loads(exchange.body)["RequestItems"]
        for table, items in answer.get("Responses", {}).items():
            cut = round(len(items) * fraction)
            moved, answer["Responses"][table] = items[:cut], items[cut:]
            if moved:
                keys = [{"pk": item["pk"]} for item in moved]
                kept = {k: v for k, v in request[table].items() if k != "Keys"}
                answer.setdefault("UnprocessedKeys", {})[table] = {**kept, "Keys": keys}
        return 200, json.dumps(answer).encode()

    return fault


@dataclass
class FaultProxy:
    """The proxy: ``url`` for clients, ``add`` rules, ``exchanges`` to see what happened."""

    upstream_port: int
    seed: int = 0
    rules: list[Rule] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((HOST, 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}"

    def add(self, operation: str, fault: Fault, *, nth: Collection[int] = (), rate: float = 0.0) -> Rule:
        """Apply ``fault`` to the ``nth`` requests of ``operation`` (from now on), or to ``rate`` of them."""
        with self._lock:
            start = self._counts[operation]
            rule = Rule(operation, fault, frozenset(start + n for n in nth), rate)
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def count(self, operation: str) -> int:
        with self._lock:
            return self._counts[operation]

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _match(self, operation: str, body: bytes) -> tuple[Exchange, Rule | None]:
        with self._lock:
            self._counts[operation] += 1
            exchange = Exchange(operation, self._counts[operation], body)
            self.exchanges.append(exchange)
            for rule in self.rules:
                if rule.operation == operation and (
                    exchange.number in rule.nth or (rule.rate and self._random.random() < rule.rate)
                ):
                    rule.hits.append(exchange)
                    return exchange, rule
        return exchange, None

    def _forward(self, exchange: Exchange, headers: dict[str, str]) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection(HOST, self.upstream_port, timeout=UPSTREAM_TIMEOUT)
        try:
            connection.request("POST", "/", body=exchange.body, headers=headers)
            response = connection.getresponse()
            answer = response.status, response.read()
        finally:
            connection.close()
        exchange.forwarded, exchange.upstream = True, answer
        return answer


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pooled connections expect

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            operation = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            exchange, rule = proxy._match(operation, body)

            def forward() -> tuple[int, bytes]:
                return proxy._forward(exchange, headers)

            try:
                answer = rule.fault(exchange, forward) if rule else forward()
            except OSError:  # the server is down: the client sees its connection go
                answer = None
            if answer is None:
                self.close_connection = True
                return
            status, payload = answer
            exchange.status = status
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("x-amz-crc32", str(zlib.crc32(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up waiting (a delayed or held answer)
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
