"""The warehouse server stopped in the middle of `featuresql run`: fakesnow and the BigQuery emulator.

The run (a CLI process, the example project on a server that keeps its data in a
folder) pauses after a committed batch of ``user_transactions``; the server is
stopped, and the run goes on: it must fail with one clear line naming the model
and the target, a non-zero exit code and no traceback; on BigQuery within about
one ``job_retry_deadline_seconds`` (the client's own default is ten minutes).
The server is restarted on the same port and folder, and the next run must
finish the job: every table and the interval state equal the uninterrupted build
(on DuckDB, which the conformance suite holds every engine to).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any

import cli_process
import pyarrow as pa
import pytest
from bigquery_server import running_bigquery_emulator
from engines import bigquery_settings, differences, snowflake_settings, write_profile
from projects import SMALL_VARS, copy_example
from snowflake_server import running_fakesnow
from sqlglot import exp
from test_conformance import NO_HOOK, RAW_TABLES, table_rows

from featuresql.context import Context
from featuresql.run.intervals import merge

NOW = datetime(2026, 7, 1, 6)
BATCHED = (
    "features/user_transactions.sql",
    "grain='1 day', online=true",
    "grain='1 day', online=true, start='2026-05-01', batch_size=15",
)
STATE = "select lo, hi from featuresql.intervals where model = 'user_transactions'"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The raw rows, every model's rows and the interval state of an uninterrupted build on DuckDB."""
    folder = tmp_path_factory.mktemp("reference")
    project = copy_example(folder / "p", [BATCHED])
    write_profile(project, {"type": "duckdb", "path": str(folder / "reference.duckdb"), "schema": "features"})
    with Context(project, variables=SMALL_VARS) as context:
        assert context.run(now=NOW).ok
        raw = {name: context.query(f"select * from raw.{name}") for name in RAW_TABLES}
        models = {name: table_rows(context, name) for name in context.compiled.models}
        state = _spans(context.query(STATE))
    return {"raw": raw, "models": models, "state": state}


def _spans(table: pa.Table) -> list[tuple[int, int]]:
    return merge([(int(row["lo"]), int(row["hi"])) for row in table.to_pylist()])


Server = Callable[[Path, Path, Any], AbstractContextManager[Any]]  # (logs, data, endpoint to restart) -> endpoint


def _fakesnow(logs: Path, data: Path, previous: Any) -> AbstractContextManager[Any]:
    return running_fakesnow(logs, data, port=previous.port if previous else None)


def _bigquery(logs: Path, data: Path, previous: Any) -> AbstractContextManager[Any]:
    ports = (int(previous.api_endpoint.rpartition(":")[2]), previous.grpc_port) if previous else None
    return running_bigquery_emulator(data, ports=ports)


def _bigquery_settings(endpoint: Any) -> dict[str, Any]:
    # The deadline bounds each request BigQuery leaves unanswered (retries included), not a job's run time.
    return {**bigquery_settings(endpoint), "job_retry_deadline_seconds": BIGQUERY_DEADLINE}


BIGQUERY_DEADLINE = 10
SERVERS = {
    "snowflake": (_fakesnow, snowflake_settings, "Snowflake"),
    "bigquery": (_bigquery, _bigquery_settings, "BigQuery"),
}


@pytest.fixture(params=["snowflake", "bigquery"])
def engine(request: pytest.FixtureRequest) -> str:
    request.applymarker(getattr(pytest.mark, request.param))
    return str(request.param)


def test_a_warehouse_stopped_mid_run_fails_it_clearly_and_the_next_run_finishes(
    engine: str, tmp_path: Path, reference: dict[str, Any]
) -> None:
    start, settings_of, product = SERVERS[engine]
    logs, data, resume_file = tmp_path / "logs", tmp_path / "data", tmp_path / "resume"
    project = copy_example(tmp_path / "p", [BATCHED, NO_HOOK])
    with start(logs, data, None) as server:
        settings = settings_of(server)
        write_profile(project, settings)
        _load_raw(project, reference["raw"])
        paused = cli_process.pause_at(
            project,
            "after_commit:2",
            "run",
            "--now",
            NOW.isoformat(timespec="seconds"),
            "-s",
            "user_transactions",
            resume_file=resume_file,
        )
    began = time.monotonic()
    failed = cli_process.resume(paused, resume_file)
    output = failed.stdout + failed.stderr
    assert failed.exit_code != 0, output
    # the model's error, then the run's last word (the lock it could no longer release): both name the product
    errors = [line for line in failed.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and product in errors[0] and f"ERROR user_transactions\n      {product}" in output, output
    # Snowflake's connector cancels slow queries from timer threads of its own (connect_args.network_timeout),
    # which fail once the server is gone: their tracebacks are shown with --debug only.
    assert "Traceback" not in failed.stderr, failed.stderr
    if engine == "bigquery":
        assert "did not answer" in errors[0] and "job_retry_deadline_seconds" in errors[0], errors[0]
        assert time.monotonic() - began < BIGQUERY_DEADLINE + 30, output  # one deadline, not one per clean-up step

    with start(logs, data, server):
        finished = cli_process.run(project, "run", "--now", NOW.isoformat(timespec="seconds"))
        assert finished.exit_code == 0, finished.stdout + finished.stderr
        with Context(project, variables=SMALL_VARS) as context:
            for name, expected in reference["models"].items():
                problems = differences(table_rows(context, name), expected)
                assert not problems, f"{engine}: {name} differs after the restart:\n" + "\n".join(problems)
            assert _spans(context.query(STATE)) == reference["state"]


def _load_raw(project: Path, raw: dict[str, pa.Table]) -> None:
    with Context(project, variables=SMALL_VARS) as context:
        context.adapter.ensure_schema("raw")
        for name, rows in raw.items():
            context.adapter.load_table(exp.table_(name, db="raw"), rows)
