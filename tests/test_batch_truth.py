"""Batch truth between builds: extracts stop where the computed state stops, no history without data.

Every expectation comes from the raw events through the oracle (``tests/oracle.py``,
with a run far in the future standing for a complete table), never from our own
output: a spine row that needs a boundary the model has not computed (after the
last run, in a gap, in a chained model built before its window model ran again, in
an ``as_of_join`` model) is NULL and counted; everything else is exact.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_process import run as run_cli
from oracle import Macro, WindowModelSpec, expected_rows, row_differences, same_value, window_values_at
from projects import SMALL_VARS, copy_example, duckdb_profile, load_rows, run_models, window_features, write_project

import featuresql
from featuresql.context import Context
from featuresql.errors import ConfigError

pytestmark = pytest.mark.duckdb

DAY = 86400
SCHEMA = pa.schema(
    [("user_id", pa.int64()), ("ts", pa.timestamp("us")), ("amount", pa.float64()), ("category", pa.string())]
)
MACROS = (Macro("count", None, (DAY, 7 * DAY)), Macro("sum", "amount", (7 * DAY,)))
SPEC = WindowModelSpec(tuple(f for m in MACROS for f in m.features()), DAY)
FEATURES = tuple(f.name for f in SPEC.features)
WINDOW_SQL = (
    "{{ config(entity='user', timestamp='ts', grain='1d') }}\n"
    f"select user_id, ts,\n    {window_features(MACROS)}\nfrom {{{{ source('raw', 'events') }}}}\n"
)
CHAINED_SQL = (
    "{{ config(entity='user', timestamp='ts') }}\nselect user_id, ts, count_7d * 2 as double_7d from {{ ref('w') }}\n"
)
TRAINING_SQL = "select * from {{ as_of_join(source('raw', 'labels'), ['w.count_7d']) }}\n"
COMPLETE = datetime(2030, 1, 1, tzinfo=UTC)  # a run this late stands for the complete table


def day(d: int, hour: int = 0, *, microsecond: int = 0) -> datetime:
    return datetime(2024, 1, 1, hour, microsecond=microsecond) + timedelta(days=d - 1)


def ev(user: int, when: datetime, amount: float = 1.0) -> dict[str, Any]:
    return {"user_id": user, "ts": when, "amount": amount, "category": "a"}


EVENTS = [ev(1, day(d, 10), float(d)) for d in range(1, 21)] + [ev(2, day(d, 3), 2.5) for d in (2, 3, 9, 15, 16)]


class Project:
    """A throwaway DuckDB project: ``w`` (a window model), ``s`` (chained on ``w``), ``t`` (an as_of_join)."""

    def __init__(self, root: Path, labels: Sequence[tuple[int, datetime]] = ()):
        self.root = root
        self.database = root / "t.duckdb"
        write_project(
            root,
            "truth",
            entities={"user": {"user_id": "bigint"}},
            tables={
                "events": {"event_time": "ts"},
                "labels": {"columns": [{"name": "user_id", "type": "bigint"}, {"name": "ts", "type": "timestamp"}]},
            },
            models={"w": WINDOW_SQL, "s": CHAINED_SQL, "t": TRAINING_SQL},
            profile=duckdb_profile(self.database),
        )
        self.load_labels(labels)

    def load(self, events: Sequence[dict[str, Any]]) -> None:
        load_rows(self.database, "raw.events", events, SCHEMA)

    def load_labels(self, labels: Sequence[tuple[int, datetime]]) -> None:
        schema = pa.schema([("user_id", pa.int64()), ("ts", pa.timestamp("us"))])
        load_rows(self.database, "raw.labels", [{"user_id": u, "ts": t} for u, t in labels], schema)

    def run(self, now: datetime, *select: str, **options: Any) -> None:
        with Context(self.root) as context:
            run_models(context, now=now.replace(tzinfo=UTC), select=select, **options)

    def extract(self, spine: Any, features: Sequence[str], **options: Any) -> Any:
        with Context(self.root) as context:
            return context.extract(spine, list(features), **options)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.database), read_only=True) as connection:
            return connection.execute(sql).fetchall()


def truth(user: int, at: datetime, events: Sequence[dict[str, Any]] = EVENTS) -> dict[str, Any]:
    """The window features of ``user`` at ``at`` over every event: a complete table's answer."""
    return window_values_at(SPEC, events, user, at, COMPLETE)


def spine_of(rows: Sequence[tuple[int, datetime]]) -> pa.Table:
    return pa.table({"user_id": [r[0] for r in rows], "ts": pa.array([r[1] for r in rows], pa.timestamp("us"))})


def assert_features(table: pa.Table, expected: Sequence[dict[str, Any] | None], model: str = "w") -> None:
    """Each row's features equal ``expected`` (None: every feature NULL)."""
    problems = []
    for number, (row, want) in enumerate(zip(table.to_pylist(), expected, strict=True)):
        for name in FEATURES:
            value = None if want is None else want[name]
            if not same_value(row[f"{model}__{name}"], value):
                problems.append(f"row {number} {row['ts']} {name}: got {row[f'{model}__{name}']!r}, expected {value!r}")
    assert not problems, "\n".join(problems)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path / "p", labels=[(1, day(5)), (1, day(15)), (2, day(10, 12))])


# -- 1. extracts past the computed state -----------------------------------------------------


def test_spine_rows_after_the_last_run_are_null_and_counted(project: Project, tmp_path: Path) -> None:
    project.load(EVENTS)
    project.run(day(10), "w")
    rows = [(1, day(5)), (1, day(10)), (1, day(10, 23)), (1, day(11)), (2, day(15)), (2, day(1))]
    result = project.extract(spine_of(rows), ["w"])
    # The run at day 10 computed every boundary up to day 10: spine times before day 11 read it.
    assert_features(result.table, [truth(u, t) if t < day(11) else None for u, t in rows])
    assert result.uncomputed == {"w": 2}
    assert result.warnings == (
        "model 'w': 2 spine rows are past what was computed (its state covers spine times up to 2024-01-11); "
        "their features are NULL: run `featuresql run --select w` to compute them",
    )
    out = tmp_path / "strict.parquet"
    with pytest.raises(ConfigError, match=r"^model 'w': 2 spine rows are past what was computed .* without --strict"):
        project.extract(spine_of(rows), ["w"], out=out, strict=True)
    assert not out.exists()  # refused before anything was written

    project.run(day(20), "w")
    result = project.extract(spine_of(rows), ["w"], strict=True)
    assert_features(result.table, [truth(u, t) for u, t in rows])
    assert result.uncomputed == {} and result.warnings == ()


def test_a_gap_in_the_state_is_null_where_its_windows_reach(project: Project) -> None:
    project.load(EVENTS)
    project.run(day(3), "w")  # computes up to day 3
    project.run(day(20), "w", start=day(12), end=day(16))  # a backfill of days 12..15 only: a gap from day 4
    rows = [(1, day(2)), (1, day(3, 12)), (1, day(4)), (1, day(8)), (1, day(13)), (1, day(15, 23)), (1, day(16))]
    result = project.extract(spine_of(rows), ["w"])
    # The backfilled boundaries 12..15 vouch for nothing: the 7-day windows there reach into the gap.
    assert_features(result.table, [truth(1, day(2)), truth(1, day(3, 12)), None, None, None, None, None])
    assert result.uncomputed == {"w": 5}


def test_a_later_island_reads_its_own_boundaries_not_rows_from_before_the_gap(project: Project) -> None:
    # User 3's only event is on day 2; its expiry rows fall in a gap that is never computed.
    events = [ev(3, day(2, 10), 5.0), *(ev(1, day(k, 10)) for k in range(1, 25))]
    project.load(events)
    project.run(day(3), "w", "s")
    project.run(day(30), "w", "s", start=day(12), end=day(25))  # boundaries 12..24, vouched from day 19 on
    result = project.extract(spine_of([(3, day(22)), (3, day(24))]), ["w", "s"])
    assert_features(result.table, [truth(3, day(22), events), truth(3, day(24), events)])
    # The chained s has no horizon: past the gap its latest row is day 3's, so it vouches for nothing there.
    assert [row["s__double_7d"] for row in result.table.to_pylist()] == [None, None]
    assert result.uncomputed == {"s": 2}


def test_the_api_returns_the_counts_and_warns(project: Project) -> None:
    project.load(EVENTS)
    project.run(day(10), "w")
    spine = spine_of([(1, day(9)), (1, day(12))])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = featuresql.extract(spine, "w.count_7d", project_dir=project.root)
    assert [str(w.message) for w in caught if w.category is featuresql.UncomputedRowsWarning] == [
        "model 'w': 1 spine row is past what was computed (its state covers spine times up to 2024-01-11); "
        "their features are NULL: run `featuresql run --select w` to compute them"
    ]
    assert json.loads(table.schema.metadata[b"featuresql.uncomputed"]) == {"w": 1}
    assert table.column("w__count_7d").to_pylist() == [truth(1, day(9))["count_7d"], None]


def test_the_cli_warns_and_strict_fails_without_writing(project: Project) -> None:
    project.load(EVENTS)
    project.run(day(10), "w")
    pq.write_table(spine_of([(1, day(9)), (1, day(12))]), project.root / "labels.parquet")
    done = run_cli(
        project.root, "extract", "--spine", "labels.parquet", "-f", "w", "--out", "out.parquet", variables=None
    )
    assert done.exit_code == 0, done.stderr
    assert "Warning: model 'w': 1 spine row is past what was computed" in done.stderr
    strict = run_cli(
        project.root,
        "extract",
        "--spine",
        "labels.parquet",
        "-f",
        "w",
        "--out",
        "s.parquet",
        "--strict",
        variables=None,
    )
    assert strict.exit_code != 0 and "model 'w': 1 spine row is past what was computed" in strict.stderr
    assert not (project.root / "s.parquet").exists()


def test_a_chained_model_stops_where_its_window_models_stood_when_it_was_built(project: Project) -> None:
    project.load(EVENTS)
    project.run(day(10))
    project.run(day(20), "w")  # w moves on; s still holds w's rows up to day 10
    rows = [(1, day(9)), (1, day(15))]
    result = project.extract(spine_of(rows), ["s"])
    assert result.table.column("s__double_7d").to_pylist() == [2 * truth(1, day(9))["count_7d"], None]
    assert result.uncomputed == {"s": 1}
    project.run(day(20))
    result = project.extract(spine_of(rows), ["s"])
    assert result.table.column("s__double_7d").to_pylist() == [2 * truth(1, t)["count_7d"] for _, t in rows]
    assert result.uncomputed == {}


def test_an_as_of_join_model_gets_null_past_the_state(project: Project) -> None:
    project.load(EVENTS)
    project.run(day(10))
    got = sorted(project.query("select user_id, ts, w__count_7d from main.t"))
    labels = sorted([(1, day(5)), (1, day(15)), (2, day(10, 12))])
    assert got == [(u, t, truth(u, t)["count_7d"] if t < day(11) else None) for u, t in labels]


# -- 4. no history without data ------------------------------------------------------------


def test_a_first_run_on_an_empty_source_records_nothing(project: Project, tmp_path: Path) -> None:
    project.load([])
    project.run(day(10), "w")
    assert project.query("select count(*) from featuresql.intervals where model = 'w'") == [(0,)]
    assert project.query("select count(*) from main.w") == [(0,)]
    loaded = [ev(1, day(1, 5)), ev(1, day(5, 5), 3.0), ev(2, day(10, 5), 4.0)]
    project.load(loaded)
    project.run(day(11), "w")
    expected = expected_rows(SPEC, loaded, day(11).replace(tzinfo=UTC))
    with duckdb.connect(str(project.database), read_only=True) as connection:
        actual = connection.sql("select * from main.w order by user_id, ts").to_arrow_table().to_pylist()
    assert len(actual) == 6
    problems = row_differences(actual, expected, "user_id", "ts")
    assert not problems, "\n".join(problems)


def test_an_extract_before_any_data_is_null_and_says_nothing_is_computed(project: Project) -> None:
    project.load([])
    project.run(day(10), "w")
    result = project.extract(spine_of([(1, day(5))]), ["w"])
    assert_features(result.table, [None])
    assert result.warnings == (
        "model 'w': 1 spine row is past what was computed (nothing is computed yet); "
        "their features are NULL: run `featuresql run --select w` to compute them",
    )


# -- 6. and 7. spine hygiene ----------------------------------------------------------------


@pytest.mark.parametrize("column", ["__featuresql_m0_recent", "__FEATURESQL_m0_latest", "__featuresql_row"])
def test_a_spine_column_named_like_the_joins_own_is_refused(project: Project, column: str) -> None:
    project.load(EVENTS)
    project.run(day(20), "w")
    spine = spine_of([(1, day(9))]).append_column(column, pa.array([day(30)], pa.timestamp("us")))
    with pytest.raises(ConfigError, match=rf"has a column named '{column}': names starting with '__featuresql_'"):
        project.extract(spine, ["w"])
    with duckdb.connect(str(project.database)) as connection:
        connection.register("incoming", spine)
        connection.execute("create table main.clash as select * from incoming")
    with pytest.raises(ConfigError, match=rf"spine table main.clash has a column named .{column.lower()}."):
        project.extract("main.clash", ["w"])


def test_nanosecond_spine_times_are_floored_in_the_api_and_the_cli(tmp_path: Path) -> None:
    project = Project(tmp_path / "p")
    before_1970 = datetime(1969, 12, 31, 10)
    project.load([ev(1, before_1970), ev(1, before_1970 + timedelta(hours=2)), ev(1, datetime(1970, 1, 1, 5))])
    project.run(datetime(1970, 1, 5), "w")
    # Half a microsecond before midnight is before midnight: the row of 1970-01-01 00:00 is not available yet.
    times = pd.to_datetime(
        ["1969-12-31 23:59:59.9999995", "1970-01-01 23:59:59.9999995", "1970-01-01 00:00:00"], format="ISO8601"
    )
    frame = pd.DataFrame({"user_id": [1, 1, 1], "ts": times})
    expected = [0, 2, 2]  # count_1d
    table = project.extract(frame, ["w.count_1d"]).table
    assert table.column("w__count_1d").to_pylist() == expected
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), project.root / "ns.parquet")
    done = run_cli(
        project.root, "extract", "--spine", "ns.parquet", "-f", "w.count_1d", "--out", "out.parquet", variables=None
    )
    assert done.exit_code == 0, done.stderr
    assert pq.read_table(project.root / "out.parquet").column("w__count_1d").to_pylist() == expected


# -- the same rule for sync ------------------------------------------------------------------


def test_sync_refuses_a_model_whose_state_does_not_reach_now(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "example")
    with Context(project, variables=SMALL_VARS) as context:
        run_models(context, now=datetime(2026, 6, 20, tzinfo=UTC))
    for model in ("user_transactions", "user_spend_ratios"):  # a window model, and a snapshot model chained on it
        done = run_cli(project, "sync", "--now", "2026-06-25T00:00:00", "--select", model)
        assert done.exit_code != 0
        assert (
            f"model '{model}' is not computed as of 2026-06-25 00:00:00 (its state covers spine times up to "
            f"2026-06-21): sync publishes only computed values: run `featuresql run --select {model}` first"
        ) in done.stderr
    assert not list((project / "target").glob("*online*")), "nothing may be written"
    done = run_cli(project, "sync", "--now", "2026-06-20T12:00:00")
    assert done.exit_code == 0, done.stderr
