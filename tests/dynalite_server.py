"""Start dynalite (``ci/dynalite.sh``), a DynamoDB imitation on Node.js, for tests and benchmarks.

Stdlib only. dynalite is started on 127.0.0.1 only, so unlike DynamoDB Local it
needs no private network namespace::

    with running_dynalite(tmp_path / "dynalite") as endpoint:
        boto3.client("dynamodb", endpoint_url=endpoint.endpoint_url, region_name=endpoint.region, ...)

It serves the reader's calls (BatchGetItem) and plain writes (PutItem,
BatchWriteItem), but not TransactWriteItems or UpdateTimeToLive, which
``featuresql sync`` uses against DynamoDB: ``bench/dynalite_store.py`` writes
sync's items with BatchWriteItem instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import server_process
from dynamodb_server import REGION, DynamoEndpoint, _answers

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "ci" / "dynalite.sh"


def install_dir() -> Path:
    """Where ``ci/dynalite.sh install`` puts dynalite (same default as the script)."""
    default = Path.home() / ".cache" / "featuresql" / "dynalite"
    return Path(os.environ.get("FEATURESQL_DYNALITE_DIR") or default)


def dynalite_installed() -> bool:
    """Whether ``ci/dynalite.sh install`` installed the version it pins (the script's own test)."""
    pinned = re.search(r"^PACKAGE_VERSION=(\S+)$", SCRIPT.read_text(), re.MULTILINE)
    marker = install_dir() / ".featuresql-installed"
    module = install_dir() / "node_modules" / "dynalite" / "index.js"
    if pinned is None or not marker.is_file() or not module.is_file():
        return False
    return marker.read_text().strip() == f"dynalite@{pinned[1]}"


@contextmanager
def running_dynalite(log_dir: Path, data_path: Path | None = None) -> Iterator[DynamoEndpoint]:
    """Run dynalite on a free loopback port for the duration of the block.

    In memory, or in the LevelDB folder ``data_path``; ``log_dir`` receives the
    server's log (``dynalite.log``). It accepts any credentials.
    """
    if not dynalite_installed():
        raise RuntimeError(f"dynalite is not installed in {install_dir()}: run 'bash ci/dynalite.sh install'")
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "dynalite.log"
    extra = [str(data_path)] if data_path is not None else []
    process, port = server_process.start(
        "dynalite", lambda port: ["bash", str(SCRIPT), "serve", str(port), *extra], log_path, _answers
    )
    try:
        yield DynamoEndpoint(
            endpoint_url=f"http://{server_process.HOST}:{port}", region=REGION, port=port, log_path=log_path
        )
    finally:
        server_process.stop(process)


__all__ = ["dynalite_installed", "running_dynalite"]
