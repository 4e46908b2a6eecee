"""The reader under concurrent load, at smoke size: ``bench/load.py --smoke`` against dynalite.

50 clients send requests back to back for 2 s through ``featuresql serve`` (keep-alive
HTTP) and to the Lambda handler in process (API Gateway v2 events); every answer must be a
200 with the values in DuckDB. Timings are printed by the benchmark, never asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from dynalite_server import dynalite_installed, install_dir

pytestmark = pytest.mark.dynalite

REPO_ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 50


def test_load_smoke_has_no_errors(tmp_path: Path) -> None:
    if not dynalite_installed():
        pytest.fail(f"dynalite is not installed in {install_dir()}: run 'bash ci/dynalite.sh install'")
    summary = tmp_path / "load.json"
    # 50 clients connecting at once: socketserver's default listen backlog (5) reset some of them
    command = [
        sys.executable,
        str(REPO_ROOT / "bench" / "load.py"),
        "--smoke",
        "--clients",
        str(CLIENTS),
        "--json",
        str(summary),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(summary.read_text())
    for mode in ("serve", "handler"):
        assert figures[mode]["errors"] == {}, (mode, figures[mode]["first_errors"])
        kinds = figures[mode]["latency_ms"]
        # every kind of request was sent and answered (each answer checked against DuckDB)
        assert all(kinds[kind]["requests"] > 0 for kind in ("post_1", "post_10", "get_10")), kinds
        assert figures[mode]["clients"] == CLIENTS
