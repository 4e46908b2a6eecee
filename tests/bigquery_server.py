"""Start the local BigQuery emulator (``ci/bigquery_emulator.sh``) for tests.

Stdlib only; ``google.cloud.bigquery`` is imported lazily by :func:`bigquery_client`.

    with running_bigquery_emulator(tmp_path / "bq") as endpoint:
        client = bigquery_client(endpoint)
        client.query("SELECT 1").result()

The emulator accepts any project id (each one becomes a DuckLake catalog in the data dir);
``--project`` only sets the one created at start-up.
"""

from __future__ import annotations

import contextlib
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import server_process

if TYPE_CHECKING:
    from google.cloud import bigquery

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "ci" / "bigquery_emulator.sh"
PROJECT = "featuresql-test"


@dataclass(frozen=True)
class BigQueryEndpoint:
    api_endpoint: str  # e.g. "http://127.0.0.1:40123"; pass as client_options["api_endpoint"]
    grpc_port: int  # BigQuery Storage Read API (insecure gRPC) on 127.0.0.1
    project: str
    log_path: Path


def emulator_venv() -> Path:
    """Where ``ci/bigquery_emulator.sh install`` puts the emulator (same default as the script)."""
    default = Path.home() / ".cache" / "featuresql" / "bigquery-emulator"
    return Path(os.environ.get("FEATURESQL_BIGQUERY_VENV", default))


def emulator_installed() -> bool:
    return (emulator_venv() / ".installed-v1").is_file()


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via an http_proxy


def _answers(url: str) -> bool:
    try:
        with _DIRECT.open(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def running_bigquery_emulator(
    data_dir: Path, project: str = PROJECT, *, ports: tuple[int, int] | None = None
) -> Iterator[BigQueryEndpoint]:
    """Run the emulator on two loopback ports (free ones, or ``ports``: HTTP and gRPC) with its data in
    ``data_dir``; stop it on exit.

    Reusing a ``data_dir`` keeps datasets and tables from the earlier run: with the
    earlier ``ports`` too, that is a restart its clients do not notice.
    """
    if not emulator_installed():
        raise RuntimeError(
            f"BigQuery emulator not installed in {emulator_venv()}; run: bash ci/bigquery_emulator.sh install"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "emulator.log"
    grpc: list[int] = []

    def command(port: int) -> list[str]:
        grpc[:] = [ports[1] if ports else server_process.free_port()]
        return ["bash", str(SCRIPT), "serve", str(port), str(grpc[0]), str(data_dir), "--project", project]

    def answers(port: int) -> bool:
        return _answers(f"http://127.0.0.1:{port}/bigquery/v2/projects")

    process, port = server_process.start("BigQuery emulator", command, log_path, answers, ports[0] if ports else None)
    try:
        yield BigQueryEndpoint(
            api_endpoint=f"http://127.0.0.1:{port}", grpc_port=grpc[0], project=project, log_path=log_path
        )
    finally:
        server_process.stop(process)


def bigquery_client(endpoint: BigQueryEndpoint) -> bigquery.Client:
    """A ``google.cloud.bigquery.Client`` talking to the emulator, with anonymous credentials.

    Results: call ``to_arrow(create_bqstorage_client=False)`` / ``to_dataframe(create_bqstorage_client=False)``,
    else the client tries Google's real BigQuery Storage host.
    """
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(
        project=endpoint.project,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=endpoint.api_endpoint),
    )
