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
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from google.cloud import bigquery

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "ci" / "bigquery_emulator.sh"
PROJECT = "featuresql-test"
STARTUP_TIMEOUT = 60.0


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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via an http_proxy


def _answers(url: str) -> bool:
    try:
        with _DIRECT.open(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def running_bigquery_emulator(data_dir: Path, project: str = PROJECT) -> Iterator[BigQueryEndpoint]:
    """Run the emulator on two free loopback ports with its data in ``data_dir``; stop it on exit.

    Reusing a ``data_dir`` keeps datasets and tables from the earlier run.
    """
    if not emulator_installed():
        raise RuntimeError(
            f"BigQuery emulator not installed in {emulator_venv()}; run: bash ci/bigquery_emulator.sh install"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    port, grpc_port = _free_port(), _free_port()
    while grpc_port == port:
        grpc_port = _free_port()
    log_path = data_dir / "emulator.log"
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            ["bash", str(SCRIPT), "serve", str(port), str(grpc_port), str(data_dir), "--project", project],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group, so the whole group can be signalled
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _answers(f"{url}/bigquery/v2/projects"):
            if process.poll() is not None:
                raise RuntimeError(
                    f"BigQuery emulator exited with status {process.returncode}; log {log_path}:\n"
                    + _log_tail(log_path)
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"BigQuery emulator did not answer on {url} within {STARTUP_TIMEOUT:.0f} s; "
                    f"log {log_path}:\n" + _log_tail(log_path)
                )
            time.sleep(0.1)
        yield BigQueryEndpoint(api_endpoint=url, grpc_port=grpc_port, project=project, log_path=log_path)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


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
