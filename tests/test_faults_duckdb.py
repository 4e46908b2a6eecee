"""Faults on the embedded target: `extract` and `sync` killed at named points, a DuckDB file held by another process.

Each test works on a copy of one project built once (as in ``test_sync``: three
online models, the local SQLite store) and compares what the commands leave
with an uninterrupted extract and sync of the same project. ``test_run_safety``
kills ``run`` itself at every point of a batch's transaction.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cli_process
import duckdb
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from conftest import CliResult
from engines import canonical_rows, differences
from featuresql.adapters.local_store import LocalStore
from featuresql.adapters.store import WriteResult
from online_stores import LOCAL, assert_same_items
from online_stores import sync as sync_counts
from projects import DATABASE, ONLINE_EDITS, SMALL_VARS, built_example, copy_example
from test_run_safety import assert_same_tables, tables

from featuresql.context import Context
from featuresql.errors import ExecutionError
from featuresql.online.stores import open_store
from featuresql.online.sync import run_sync
from featuresql.serving.tables import Item, StoreUnavailable

pytestmark = pytest.mark.duckdb

NOW = datetime(2026, 6, 30, 5, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=2)
FEATURES = "user_transactions,merchant_transactions.count_7d,user_profile"
SYNC_NOW = NOW.strftime("%Y-%m-%dT%H:%M:%S")


def sync(project: Path) -> dict[str, tuple[int, int, int]]:
    return sync_counts(project, NOW, variables=SMALL_VARS)


def extract_args(out: str) -> tuple[str, ...]:
    return ("extract", "--spine", "../spine.parquet", "--features", FEATURES, "--out", out)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The built project (never changed), its spine file, and an uninterrupted extract and sync of it."""
    folder = tmp_path_factory.mktemp("faults")
    project = built_example(folder / "built", ONLINE_EDITS, now=LATER)
    with duckdb.connect(str(project / DATABASE), read_only=True) as connection:
        spine = connection.sql(
            "select user_id, merchant_id, ts + interval 90 minute as ts, transaction_id % 2 as label "
            "from raw.transactions qualify row_number() over (order by hash(transaction_id)) <= 400 "
            "order by ts, transaction_id"
        ).to_arrow_table()
    pq.write_table(spine, folder / "spine.parquet")
    synced = folder / "synced"
    shutil.copytree(project, synced)
    sync(synced)
    with Context(project, variables=SMALL_VARS) as context:
        extract = context.extract(str(folder / "spine.parquet"), FEATURES).table
    return {"project": project, "tables": tables(project), "extract": extract, "items": LOCAL.items(synced)}


def copy_of(reference: dict[str, Any], tmp_path: Path) -> Path:
    """The built project in this test's folder, beside the spine file its extracts read."""
    shutil.copy(reference["project"].parent / "spine.parquet", tmp_path / "spine.parquet")
    return Path(shutil.copytree(reference["project"], tmp_path / "p"))


def assert_clean_failure(result: CliResult, exit_code: int, *phrases: str) -> None:
    """A one-line red error with the given exit code, no traceback."""
    assert result.exit_code == exit_code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr_lines if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    for phrase in phrases:
        assert phrase in errors[0], errors[0]


# -- extract killed ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("point", "out"),
    [
        ("extract_before_rename", "training.parquet"),
        ("extract_before_rename", "training.csv"),
        ("extract_staged", "table:training"),
    ],
)
def test_a_killed_extract_leaves_no_output_and_the_next_equals_an_uninterrupted_one(
    tmp_path: Path, reference: dict[str, Any], point: str, out: str
) -> None:
    project = copy_of(reference, tmp_path)
    cli_process.kill(cli_process.pause_at(project, point, *extract_args(out)))
    if out.startswith("table:"):
        with duckdb.connect(str(project / DATABASE), read_only=True) as connection:
            assert not connection.execute("select * from duckdb_tables() where table_name = 'training'").fetchall()
    else:
        assert not (project / out).exists()  # whole or not at all: only the hidden partial file may remain

    result = cli_process.run(project, *extract_args(out))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert_same_rows(_extracted(project, out, reference["extract"].schema), reference["extract"])
    assert sorted(p.name for p in project.iterdir() if p.name.startswith(".")) == []  # the partial file is gone
    with duckdb.connect(str(project / DATABASE), read_only=True) as connection:
        assert not connection.execute("select * from duckdb_tables() where temporary").fetchall()


def _extracted(project: Path, out: str, schema: pa.Schema) -> pa.Table:
    if out.endswith(".parquet"):
        return pq.read_table(project / out)
    if out.endswith(".csv"):
        types = pcsv.ConvertOptions(column_types={field.name: field.type for field in schema})
        return pcsv.read_csv(project / out, convert_options=types)
    with duckdb.connect(str(project / DATABASE), read_only=True) as connection:
        return connection.sql("select * from main.training").to_arrow_table()


def assert_same_rows(actual: pa.Table, expected: pa.Table) -> None:
    """The same columns and types (nullability aside) and the same rows in the same order, doubles to 1e-9.

    Two builds of a table sum doubles in different orders (DuckDB sums in parallel).
    """
    assert [(f.name, f.type) for f in actual.schema] == [(f.name, f.type) for f in expected.schema]
    problems = differences(canonical_rows(actual), canonical_rows(expected))
    assert not problems, "\n".join(problems)


# -- sync killed (the local store; DynamoDB: test_faults_dynamodb) -------------------------


@pytest.mark.parametrize("point", ["sync_staged", "sync_mirrored:1", "sync_staged:2"])
def test_a_killed_sync_is_finished_by_the_next(tmp_path: Path, reference: dict[str, Any], point: str) -> None:
    project = copy_of(reference, tmp_path)
    cli_process.kill(cli_process.pause_at(project, point, "sync", "--now", SYNC_NOW))
    result = cli_process.run(project, "sync", "--now", SYNC_NOW)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert_same_items(LOCAL.items(project), reference["items"], rel_tol=1e-9)
    assert set(sync(project).values()) == {(0, 0, 0)}  # the mirror agrees with the store


class _FailingStore(LocalStore):
    """The local store in batches of 10 whose third write fails, as a store that stays throttled does."""

    batch_size = 10
    workers = 1

    def write_batch(self, items: Sequence[Item]) -> WriteResult:
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 3:
            raise StoreUnavailable("the store kept refusing writes: sync again")
        return super().write_batch(items)


def test_a_store_failing_mid_stream_is_the_error_reported(tmp_path: Path, reference: dict[str, Any]) -> None:
    """The rows still unread when a write fails must not hide the store's error behind the warehouse's
    (DuckDB: "connection has an open result" when the sync's temporary table is dropped)."""
    project = copy_of(reference, tmp_path)
    with Context(project, variables=SMALL_VARS) as context:
        plain = open_store(context)
        store = _FailingStore(plain.config, plain.table, project)
        with pytest.raises(ExecutionError, match="the store kept refusing writes"):
            run_sync(context, now=NOW, store=store)
    assert cli_process.run(project, "sync", "--now", SYNC_NOW).exit_code == 0
    assert_same_items(LOCAL.items(project), reference["items"], rel_tol=1e-9)


# -- the DuckDB file held by another process -----------------------------------------------

HOLD = "import duckdb, sys, time; held = duckdb.connect(sys.argv[1]); print('open', flush=True); time.sleep(600)"


def test_a_database_file_held_elsewhere_fails_each_command_cleanly_and_changes_nothing(
    tmp_path: Path, reference: dict[str, Any]
) -> None:
    (tmp_path / "spine.parquet").write_bytes((reference["project"].parent / "spine.parquet").read_bytes())
    project = copy_example(tmp_path / "p", ONLINE_EDITS)
    database = project / DATABASE
    database.parent.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(database)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        before = _digest(database)
        busy = f"is open in another process (PID {holder.pid})"
        run_now = LATER.strftime("%Y-%m-%dT%H:%M:%S")
        assert_clean_failure(cli_process.run(project, "run", "--now", run_now), 3, busy, "--lock-timeout")
        assert_clean_failure(cli_process.run(project, "sync", "--now", SYNC_NOW), 3, busy)
        assert_clean_failure(cli_process.run(project, *extract_args("training.parquet")), 3, busy)
        assert _digest(database) == before
        assert not (project / "training.parquet").exists() and not LOCAL.has_table(project)
    finally:
        cli_process.kill(holder)  # a holder that crashed: its lock goes with it

    assert cli_process.run(project, "run", "--now", run_now).exit_code == 0
    assert_same_tables(tables(project), reference["tables"])
    assert cli_process.run(project, "sync", "--now", SYNC_NOW).exit_code == 0
    assert_same_items(LOCAL.items(project), reference["items"], rel_tol=1e-9)
    assert cli_process.run(project, *extract_args("training.parquet")).exit_code == 0
    assert_same_rows(pq.read_table(project / "training.parquet"), reference["extract"])


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
