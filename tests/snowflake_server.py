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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import server_process

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVER_SCRIPT = REPO_ROOT / "ci" / "fakesnow_server.sh"
HOST = "127.0.0.1"


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


@contextmanager
def running_fakesnow(
    data_dir: Path, db_dir: Path | None = None, port: int | None = None
) -> Iterator[SnowflakeEndpoint]:
    """Run a fakesnow server for the duration of the block, on ``port`` (default: a free one).

    ``data_dir`` receives the server's log (``fakesnow.log``). Databases live in
    memory, or with ``db_dir`` in files ``db_dir/<DATABASE>.db`` that a later
    server on the same ``db_dir`` sees again (after a login with that database,
    or ``CREATE DATABASE IF NOT EXISTS``, attaches the file).
    """
    if not fakesnow_installed():
        raise RuntimeError(f"fakesnow is not installed in {fakesnow_venv()}: run 'bash ci/fakesnow_server.sh install'")
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "fakesnow.log"

    def command(port: int) -> list[str]:
        return ["bash", str(SERVER_SCRIPT), "serve", str(port), *([str(db_dir)] if db_dir is not None else [])]

    process, port = server_process.start("fakesnow server", command, log_path, server_process.accepts, port)
    try:
        yield SnowflakeEndpoint(host=HOST, port=port, log_path=log_path, db_dir=db_dir)
    finally:
        server_process.stop(process)
