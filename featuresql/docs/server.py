"""``featuresql docs serve``: the generated site over HTTP (standard library ``http.server``).

It serves the files of ``target/docs/`` and nothing else, binds 127.0.0.1 unless
told otherwise, and sends ``Cache-Control: no-cache`` so a page reloaded after
``docs generate`` shows the new catalog.
"""

from __future__ import annotations

import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from featuresql.docs.site import INDEX
from featuresql.errors import ConfigError, FeaturesqlError


class DocsRequestHandler(SimpleHTTPRequestHandler):
    """Static files, quiet (no line per request), never cached."""

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def make_docs_server(folder: Path, host: str = "127.0.0.1", port: int = 8080) -> ThreadingHTTPServer:
    """A server of ``folder`` bound to ``host:port`` (0: any free port); call ``serve_forever``."""
    if not (folder / INDEX).is_file():
        raise ConfigError(f"no docs in {folder}: run `featuresql docs generate` first")
    handler = functools.partial(DocsRequestHandler, directory=str(folder))
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise FeaturesqlError(f"cannot listen on {host}:{port}: {exc.strerror}: pass another --port") from None
    server.daemon_threads = True
    return server


def server_url(server: ThreadingHTTPServer) -> str:
    """The address a browser opens (an IPv6 host in brackets)."""
    host, port = server.server_address[:2]
    host_text = str(host)
    return f"http://[{host_text}]:{port}/" if ":" in host_text else f"http://{host_text}:{port}/"
