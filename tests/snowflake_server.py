"""A local fakesnow server for tests that drive the real Snowflake connector.

fakesnow (a Snowflake imitation on DuckDB) pins sqlglot and duckdb versions of
its own, so it runs from its own virtual environment, made by
``bash ci/fakesnow_server.sh install``, as an HTTP server that the real
``snowflake-connector-python`` talks to with ``protocol="http"``. Stdlib only:
the server's packages are never imported here.

    with running_fakesnow(tmp_path) as endpoint:
        conn = snowflake.connector.connect(**endpoint.connect_kwargs(database="DB", schema="S"))
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVER_SCRIPT = REPO_ROOT / "ci" / "fakesnow_server.sh"
HOST = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 40


def fakesnow_venv() -> Path:
    """Where ``ci/fakesnow_server.sh install`` puts fakesnow's virtual environment."""
    default = Path.home() / ".cache" / "featuresql" / "fakesnow"
    return Path(os.environ.get("FEATURESQL_FAKESNOW_VENV") or default)


def fakesnow_installed() -> bool:
    """Whether the install step has completed (its marker file exists)."""
    return (fakesnow_venv() / ".featuresql-installed").is_file()


@dataclass(frozen=True)
class SnowflakeEndpoint:
    """A running fakesnow server: where it listens and how to connect to it."""

    host: str
    port: int
    log_path: Path
    db_dir: Path | None = None

    def connect_kwargs(
        self,
        database: str | None = None,
        schema: str | None = None,
        nop_regexes: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Keyword arguments for ``snowflake.connector.connect`` to this server.

        fakesnow accepts any account, user and password. A database and schema
        given here are created on login if missing (and the session uses them).
        Statements matching one of ``nop_regexes`` (case-insensitive) succeed
        without running: eg ``[r"^ALTER SESSION"]``, which fakesnow cannot run.
        """
        kwargs: dict[str, Any] = {
            "account": "fakesnow",
            "user": "fake",
            "password": "snow",
            "host": self.host,
            "port": self.port,
            "protocol": "http",
            # no telemetry requests to a server that has nowhere to send them
            "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False}
            | ({"nop_regexes": list(nop_regexes)} if nop_regexes else {}),
            # fakesnow answers HTTP 500 to SQL it fails on unexpectedly, and the
            # connector retries (re-sends the statement) until network_timeout
            # runs out: 1 s makes that one retry. It bounds retries only, not a
            # query's run time (the socket read timeout, 60 s, does that).
            "login_timeout": 10,
            "network_timeout": 1,
        }
        if database is not None:
            kwargs["database"] = database
        if schema is not None:
            kwargs["schema"] = schema
        return kwargs


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _log_tail(log_path: Path) -> str:
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-LOG_TAIL_LINES:]) or "(empty log)"


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server's process group: SIGTERM (a clean shutdown), then SIGKILL."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _start(data_dir: Path, db_dir: Path | None) -> tuple[subprocess.Popen[bytes], int, Path]:
    """Start the server on a free port and wait until it accepts connections."""
    log_path = data_dir / "fakesnow.log"
    for attempt in range(3):
        port = _free_port()
        command = ["bash", str(SERVER_SCRIPT), "serve", str(port)]
        if db_dir is not None:
            command.append(str(db_dir))
        with log_path.open("ab") as log:
            log.write(f"== {' '.join(command)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                start_new_session=True,  # own process group, stopped as a whole
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if _accepts(port):
                return process, port, log_path
            time.sleep(0.1)
        _stop(process)
        tail = _log_tail(log_path)
        # another process may have taken the port between choosing and binding it
        if process.returncode is not None and "address already in use" in tail.lower() and attempt < 2:
            continue
        state = f"exited with {process.returncode}" if process.returncode is not None else "timed out"
        raise RuntimeError(
            f"fakesnow server on {HOST}:{port} did not start ({state}; "
            f"limit {START_TIMEOUT:.0f}s). Log {log_path}:\n{tail}"
        )
    raise AssertionError("unreachable")


@contextmanager
def running_fakesnow(data_dir: Path, db_dir: Path | None = None) -> Iterator[SnowflakeEndpoint]:
    """Run a fakesnow server for the duration of the block.

    ``data_dir`` receives the server's log (``fakesnow.log``). Databases live in
    memory, or with ``db_dir`` in files ``db_dir/<DATABASE>.db`` that a later
    server on the same ``db_dir`` sees again (after a login with that database,
    or ``CREATE DATABASE IF NOT EXISTS``, attaches the file).
    """
    if not fakesnow_installed():
        raise RuntimeError(f"fakesnow is not installed in {fakesnow_venv()}: run 'bash ci/fakesnow_server.sh install'")
    data_dir.mkdir(parents=True, exist_ok=True)
    process, port, log_path = _start(data_dir, db_dir)
    try:
        yield SnowflakeEndpoint(host=HOST, port=port, log_path=log_path, db_dir=db_dir)
    finally:
        _stop(process)
