"""``featuresql serve``: the reader behind a local HTTP server (stdlib only).

``POST /features`` with the JSON request, or ``GET /features?user_id=1&features=...``;
``GET /health`` answers ``{"status": "ok"}``. The answers are exactly the
Lambda handler's. ``POST /push`` pushes records of a source table to the store
(``featuresql.serving.push_requests``), as the push Lambda does for API Gateway.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from featuresql.serving.push_requests import answer_push
from featuresql.serving.reader import Reader

MAX_BODY_BYTES = 6 * 1024 * 1024  # Lambda's own limit on a request payload
IDLE_SECONDS = 60  # a keep-alive connection idle this long is closed


def make_server(reader: Reader, host: str = "127.0.0.1", port: int = 8080) -> ThreadingHTTPServer:
    """A server (not yet serving) answering with ``reader``; port 0 picks a free port."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as API Gateway clients use
        # The headers and the body go out in two writes: with Nagle's algorithm the body waits
        # for the client's delayed ACK of the headers, about 40 ms on every keep-alive answer.
        disable_nagle_algorithm = True
        timeout = IDLE_SECONDS  # an idle keep-alive connection gives its thread back

        def do_POST(self) -> None:
            length = self._content_length()
            if length is None:  # answered already; the connection closes (the body's end is unknown)
                return
            body = self.rfile.read(length)  # read even when unused, or keep-alive reads it as the next request
            path = urlsplit(self.path).path
            if path == "/push":
                return self._send(*answer_push(reader.manifest, reader.table, body))
            if path not in ("/", "/features"):
                return self._send(404, _message(404, f"no such path {self.path}: POST /features or /push"))
            self._send(*reader.answer_body(body))

        def _content_length(self) -> int | None:
            """The body's length, or None after answering a request whose body cannot be read."""
            text = self.headers.get("Content-Length") or "0"
            if self.headers.get("Transfer-Encoding"):
                self._send(411, _message(411, "send the request body with a Content-Length"), close=True)
            elif not (text.isascii() and text.isdigit()):
                self._send(400, _message(400, f"invalid Content-Length {text!r}"), close=True)
            elif int(text) > MAX_BODY_BYTES:
                self._send(413, _message(413, f"the request is over {MAX_BODY_BYTES} bytes"), close=True)
            else:
                return int(text)
            return None

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/health":
                return self._send(200, '{"status": "ok"}')
            if url.path not in ("/", "/features"):
                return self._send(404, _message(404, f"no such path {url.path}: GET /features?<keys>&features=..."))
            self._send(*reader.answer_query(parse_qs(url.query)))

        def _send(self, status: int, body: str, *, close: bool = False) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if close:
                self.send_header("Connection", "close")  # also makes the server close it after this answer
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: a load test would flood the terminal

    return _Server((host, port), Handler)


class _Server(ThreadingHTTPServer):
    """A thread per connection; many clients connecting at once wait in the backlog, not refused."""

    daemon_threads = True  # an open keep-alive connection never keeps the process from exiting
    request_queue_size = 128  # socketserver's default of 5 drops connection attempts under load


def _message(status: int, text: str) -> str:
    return json.dumps({"error": {"status": status, "message": text}})
