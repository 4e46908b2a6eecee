"""`featuresql run` as a scheduler uses it: killed at any point, run twice at once, dry runs, logs.

Every test runs the CLI as a separate process on a copy of the example project
(small demo data, ``user_transactions`` batched by 5 days from a start date,
``--now`` fixed) and compares the resulting tables with an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from cli_process import command, environment
from conftest import CliResult
from featuresql.adapters.duckdb import DuckDBAdapter, DuckDBTarget
from projects import copy_example

from featuresql.errors import ExecutionError
from featuresql.run import locks
from featuresql.run.intervals import merge
from featuresql.run.state import ensure_tables

pytestmark = pytest.mark.duckdb

NOW = "2026-07-02T06:00:00"
BATCHED = (
    "features/user_transactions.sql",
    "grain='1 day', online=true",
    "grain='1 day', online=true, start='2026-04-01', batch_size=5",
)
MODELS = (
    "advance_labels",
    "advance_training",
    "merchant_transactions",
    "user_balances",
    "user_profile",
    "user_spend_ratios",
    "user_transactions",
)
DATABASE = Path("target") / "cash_advance.duckdb"


def run_cli(project: Path, *args: str, **env: str) -> CliResult:
    done = subprocess.run(
        command("run", "--now", NOW, *args),
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        env=environment(**env),
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


def spawn(project: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    """``featuresql run --now NOW *args`` started in the background."""
    return subprocess.Popen(
        command("run", "--now", NOW, *args),
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(**env),
    )


def tables(project: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every model's rows, sorted by their exact (non-double) values."""
    with duckdb.connect(str(project / DATABASE), read_only=True) as connection:
        return {m: sorted(connection.execute(f"select * from main.{m}").fetchall(), key=_exact_part) for m in MODELS}


def _exact_part(row: tuple[Any, ...]) -> str:
    return repr(tuple(v for v in row if not isinstance(v, float)))


def assert_same_tables(actual: dict[str, list[tuple[Any, ...]]], expected: dict[str, list[tuple[Any, ...]]]) -> None:
    """Equal, doubles within 1e-9 relative (1e-9 absolute near zero).

    DuckDB sums doubles in parallel, in an order that varies between runs, so their
    last bits may differ, and a spread of equal values comes out as 0 or 1e-14;
    integers, decimals, strings and times are compared exactly.
    """
    assert actual.keys() == expected.keys()
    for model in expected:
        assert len(actual[model]) == len(expected[model]), model
        for got, want in zip(actual[model], expected[model], strict=True):
            same = all(
                math.isclose(g, w, rel_tol=1e-9, abs_tol=1e-9)
                if isinstance(w, float) and isinstance(g, float)
                else g == w
                for g, w in zip(got, want, strict=True)
            )
            assert same, f"{model}: {got} != {want}"


def intervals(project: Path) -> list[tuple[int, int]]:
    with duckdb.connect(str(project / DATABASE), read_only=True) as connection:
        rows = connection.execute(
            "select lo, hi from featuresql.intervals where model = 'user_transactions'"
        ).fetchall()
    return [(int(lo), int(hi)) for lo, hi in rows]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[Any, ...]]]:
    project = copy_example(tmp_path_factory.mktemp("baseline") / "p", [BATCHED])
    result = run_cli(project)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "batch 19/19" in result.stdout  # 2026-04-01 to 2026-07-02 in batches of 5 days
    return tables(project)


POINTS = [
    "before_batch:1",
    "before_batch:7",
    "after_delete:3",
    "before_commit:1",
    "before_commit:12",
    "after_commit:5",
    "after_commit:19",
]


@pytest.mark.parametrize("point", POINTS)
def test_a_run_killed_anywhere_is_finished_by_the_next_run(
    tmp_path: Path, baseline: dict[str, list[tuple[Any, ...]]], point: str
) -> None:
    project = copy_example(tmp_path / "p", [BATCHED])
    process = spawn(project, FEATURESQL_PAUSE_AT=point)
    assert process.stderr is not None
    line = process.stderr.readline()
    assert f"paused at {point.split(':')[0]}" in line, line
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    result = run_cli(project)  # the killed run's lock is stale: its process is gone
    assert result.exit_code == 0, result.stdout + result.stderr
    assert_same_tables(tables(project), baseline)
    spans = intervals(project)
    assert len(merge(spans)) == 1 and sum(hi - lo for lo, hi in spans) == merge(spans)[0][1] - merge(spans)[0][0]


def test_two_runs_at_once_one_waits_and_state_stays_whole(
    tmp_path: Path, baseline: dict[str, list[tuple[Any, ...]]]
) -> None:
    project = copy_example(tmp_path / "p", [BATCHED])
    first = spawn(project, FEATURESQL_PAUSE_AT="after_commit:2")
    assert first.stderr is not None
    assert "paused at after_commit" in first.stderr.readline()
    busy = run_cli(project)  # fails fast: the first holds the target
    assert busy.exit_code == 3, busy.stdout + busy.stderr
    assert f"is open in another process (PID {first.pid})" in busy.stderr
    assert "--lock-timeout" in busy.stderr and "Traceback" not in busy.stderr
    waiting = spawn(project, "--lock-timeout", "120")
    time.sleep(1.5)
    assert waiting.poll() is None  # still waiting for the first
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    out, err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, out + err
    assert_same_tables(tables(project), baseline)


def test_a_lock_row_of_a_live_run_blocks_with_its_name(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    """Warehouses other than DuckDB rely on the lock row alone: simulate a live holder."""
    project = copy_example(tmp_path / "p")
    assert run_cli(project).exit_code == 0
    with duckdb.connect(str(project / DATABASE)) as connection:
        connection.execute(
            "insert into featuresql.locks values ('cash_advance', 'abc123', ?, ?, now()::timestamp, now()::timestamp)",
            [os.getpid(), os.uname().nodename],
        )
    result = run_cli(project)
    assert result.exit_code == 3
    assert f"the target is in use by featuresql run abc123 (pid {os.getpid()} on" in result.stderr
    assert "pass --lock-timeout SECONDS" in result.stderr
    waited = run_cli(project, "--lock-timeout", "1")
    assert waited.exit_code == 3 and "still busy after waiting 1 s (--lock-timeout)" in waited.stderr, waited.stderr


def test_dry_run_prints_the_plan_and_changes_nothing(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "p", [BATCHED])
    assert run_cli(project).exit_code == 0
    before = tables(project)
    result = run_cli(project, "--dry-run", "--now", "2026-07-12T00:00:00", "-s", "user_transactions")
    assert result.exit_code == 0, result.stderr
    assert "-- user_transactions: incremental, 2 batches: [2026-07-03T00:00:00+00:00, 2026-07-08T00:00:00+00:00)" in (
        result.stdout
    )
    assert "DELETE FROM main.user_transactions" in result.stdout
    assert "INSERT INTO main.user_transactions" in result.stdout
    assert_same_tables(tables(project), before)
    assert len(intervals(project)) == 19


def test_json_log_and_artifacts(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "p", [BATCHED])
    result = run_cli(project, "--log-format", "json")
    assert result.exit_code == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    batches = [e for e in events if e["event"] == "batch_done" and e["model"] == "user_transactions"]
    assert len(batches) == 19 and batches[0]["interval"] == ["2026-04-01T00:00:00+00:00", "2026-04-06T00:00:00+00:00"]
    assert all(isinstance(e["rows"], int) and e["status"] == "success" for e in batches)
    assert events[-1]["event"] == "run_done" and events[-1]["status"] == "success"
    results = json.loads((project / "target" / "run_results.json").read_text())
    assert results["run_id"] == events[-1]["run_id"] and len(results["results"]) == 7
    manifest = json.loads((project / "target" / "manifest.json").read_text())
    transactions = manifest["models"]["user_transactions"]
    assert transactions["definition"] and transactions["keys"] == ["user_id"]


def test_a_failing_model_exits_1_and_is_logged(tmp_path: Path) -> None:
    failing = ("features/user_transactions.sql", "and amount > 0", "and amount > 0 and cast(status as integer) > 0")
    project = copy_example(tmp_path / "p", [failing])
    result = run_cli(project, "--log-format", "json")
    assert result.exit_code == 1
    done = [json.loads(line) for line in result.stdout.splitlines() if '"model_done"' in line]
    assert {"model": "user_transactions", "status": "error"}.items() <= next(
        e for e in done if e["model"] == "user_transactions"
    ).items()
    with duckdb.connect(str(project / DATABASE), read_only=True) as connection:
        query = "select status from featuresql.run_log where model = 'user_transactions'"
        logged = connection.execute(query).fetchall()
    assert logged == [("error",)]


@pytest.fixture
def duckdb_target(tmp_path: Path) -> Any:
    adapter = DuckDBAdapter(DuckDBTarget(path=str(tmp_path / "w.duckdb")), tmp_path)
    ensure_tables(adapter)
    yield adapter
    adapter.close()


def test_a_lock_that_cannot_be_released_says_so_and_the_run_s_own_error_wins(duckdb_target: Any) -> None:
    """The warehouse gone at the end of a run: the release fails with its own clear line,
    and never hides the error that ended the run (it used to replace it)."""
    released = r"the run finished, but its lock on the target could not be released"
    with pytest.raises(ExecutionError, match=released), locks.hold(duckdb_target, "p", "run1"):
        duckdb_target.execute("drop table featuresql.locks")
    ensure_tables(duckdb_target)
    with pytest.raises(ZeroDivisionError), locks.hold(duckdb_target, "p", "run2"):
        duckdb_target.execute("drop table featuresql.locks")
        raise ZeroDivisionError
