"""One suite, run unchanged on DuckDB, Snowflake (fakesnow) and BigQuery (emulator).

The same example project, the same raw rows, the same runs: every engine must
produce the same tables, the same incremental results and the same training
extracts (doubles to 1e-9 relative), and its window values must equal the
brute-force oracle's. The raw rows are generated once on DuckDB by the example
project's own hook and loaded into each engine through its adapter.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from engines import Engine, canonical_rows, differences, write_profile
from oracle import Macro, WindowModelSpec, expected_rows, row_differences
from projects import SMALL_VARS, copy_example, run_models, window_features, write_project
from sqlglot import exp

from featuresql.context import Context
from featuresql.errors import CompileError
from featuresql.run.planning import RunOptions

NOW = datetime(2026, 7, 1, 6, tzinfo=UTC)
RAW_TABLES = ("users", "transactions", "balance_events")
NO_HOOK = ("project.yml", 'on_run_start:\n  - "{{ create_demo_data() }}"', "on_run_start: []")


def table_rows(context: Context, name: str) -> list[dict[str, Any]]:
    """A model's table, ordered by its keys and time, then every other column."""
    model = context.compiled.models[name]
    rows = canonical_rows(context.query(exp.select("*").from_(model.relation.copy())))
    first = [*model.settings.keys, model.settings.timestamp or ""]
    return sorted(rows, key=lambda row: [_sortable(row.get(c)) for c in [*first, *sorted(row)]])


def _sortable(value: Any) -> tuple[bool, str]:
    return (value is None, "" if value is None else f"{value!r:>40}")


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The example project built on DuckDB: its raw tables and every model's rows."""
    folder = tmp_path_factory.mktemp("reference")
    project = copy_example(folder / "project")
    write_profile(project, {"type": "duckdb", "path": str(folder / "reference.duckdb"), "schema": "features"})
    with Context(project, variables=SMALL_VARS) as context:
        run_models(context, now=NOW)
        raw = {name: context.query(f"select * from raw.{name}") for name in RAW_TABLES}
        models = {name: table_rows(context, name) for name in context.compiled.models}
        spine = _spine(raw["transactions"])
        extract = canonical_rows(context.extract(spine, EXTRACT_FEATURES).table)
    return {"raw": raw, "models": models, "spine": spine, "extract": extract}


# Snowflake: the database that first received the raw rows (through the adapter's load). Later
# tests copy them from there with CREATE TABLE AS, in milliseconds: fakesnow takes about 10 s
# to insert them again.
_raw_database: dict[str, str] = {}


def engine_project(engine: Engine, folder: Path, raw: dict[str, pa.Table]) -> Path:
    """The example project on ``engine``, in a namespace of its own, with the reference raw rows."""
    project = copy_example(folder / "project", [NO_HOOK])
    write_profile(project, engine.target(folder))
    with Context(project, variables=SMALL_VARS) as context:
        adapter = context.adapter
        adapter.ensure_schema("raw")
        seed = _raw_database.get(engine.name)
        for name, data in raw.items():
            if seed is None:
                adapter.load_table(exp.table_(name, db="raw"), data)
            else:
                copy = exp.select("*").from_(exp.table_(name, db="raw", catalog=seed))
                adapter.execute(
                    exp.Create(this=exp.table_(name, db="raw"), kind="TABLE", replace=True, expression=copy)
                )
        if engine.name == "snowflake" and seed is None:
            _raw_database["snowflake"] = context.target_config.database
    return project


# -- the example project end to end ---------------------------------------------------------


def test_example_project_builds_the_same_tables(engine, tmp_path, reference):
    project = engine_project(engine, tmp_path, reference["raw"])
    with Context(project, variables=SMALL_VARS) as context:
        run_models(context, now=NOW)
        for name, expected in reference["models"].items():
            problems = differences(table_rows(context, name), expected)
            assert not problems, f"{engine.name}: model {name} differs from DuckDB:\n" + "\n".join(problems)


def test_incremental_runs_equal_one_full_build(engine, tmp_path, reference):
    project = engine_project(engine, tmp_path, reference["raw"])
    with Context(project, variables=SMALL_VARS) as context:
        for days_before in (40, 9, 0):  # a first run, then two incremental ones
            run_models(context, now=NOW - timedelta(days=days_before))
        run_models(context, now=NOW)  # a rerun of the same range changes nothing
        for name in ("user_transactions", "merchant_transactions", "user_spend_ratios"):
            problems = differences(table_rows(context, name), reference["models"][name])
            assert not problems, f"{engine.name}: incremental {name} differs:\n" + "\n".join(problems)
        intervals = context.query("select lo, hi from featuresql.intervals where model = 'user_transactions'")
        assert intervals.num_rows >= 3


def test_backfill_of_a_range_leaves_the_table_unchanged(engine, tmp_path, reference):
    project = engine_project(engine, tmp_path, reference["raw"])
    with Context(project, variables=SMALL_VARS) as context:
        run_models(context, now=NOW)
        start, end = datetime(2026, 5, 1), datetime(2026, 5, 20)
        result = context.run(("user_transactions",), now=NOW, options=RunOptions(start=start, end=end))
        assert result.ok
        problems = differences(table_rows(context, "user_transactions"), reference["models"]["user_transactions"])
        assert not problems, "\n".join(problems)


# -- training extracts ----------------------------------------------------------------------

EXTRACT_FEATURES = ("user_transactions", "merchant_transactions.count_7d", "user_profile")


def _spine(transactions: pa.Table) -> pa.Table:
    """Transactions' users and merchants at times around them: on boundaries, before data, unknown."""
    rows = transactions.select(["user_id", "merchant_id", "ts"]).to_pylist()
    chosen = random.Random(7).sample(rows, 150)
    spine = []
    for number, row in enumerate(chosen):
        ts = row["ts"]
        if number % 5 == 0:
            ts = ts.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)  # on a boundary
        spine.append({**row, "ts": ts, "label": number % 2})
    spine.append({"user_id": 10**9, "merchant_id": 1, "ts": datetime(2026, 6, 1), "label": 0})  # unknown user
    spine.append({"user_id": 1, "merchant_id": 1, "ts": datetime(2020, 1, 1), "label": 1})  # before any data
    spine.append({"user_id": 2, "merchant_id": 3, "ts": None, "label": 0})  # no time: every feature NULL
    spine.append(dict(spine[0]))  # a duplicate row
    schema = pa.schema(
        [("user_id", pa.int64()), ("merchant_id", pa.int64()), ("ts", pa.timestamp("us")), ("label", pa.int64())]
    )
    return pa.Table.from_pylist(spine, schema=schema)


def test_extract_returns_the_same_training_set(engine, tmp_path, reference):
    project = engine_project(engine, tmp_path, reference["raw"])
    with Context(project, variables=SMALL_VARS) as context:
        run_models(context, now=NOW)
        result = context.extract(reference["spine"], EXTRACT_FEATURES)
    problems = differences(canonical_rows(result.table), reference["extract"])
    assert not problems, f"{engine.name}: extract differs from DuckDB:\n" + "\n".join(problems)


def test_extract_past_the_computed_state_is_null_and_counted(engine, tmp_path, reference):
    """A run ten days before the reference's: rows needing later boundaries are NULL, the rest the reference's."""
    project = engine_project(engine, tmp_path, reference["raw"])
    earlier = NOW - timedelta(days=10)
    end = datetime.combine(earlier.date() + timedelta(days=1), datetime.min.time())  # the day after its last boundary
    with Context(project, variables=SMALL_VARS) as context:
        run_models(context, now=earlier)
        result = context.extract(reference["spine"], EXTRACT_FEATURES)
    windows = ("user_transactions__", "merchant_transactions__")
    expected = [
        {c: None if c.startswith(windows) and row["ts"] is not None and row["ts"] >= end else v for c, v in row.items()}
        for row in reference["extract"]
    ]
    past = sum(1 for row in reference["extract"] if row["ts"] is not None and row["ts"] >= end)
    assert past > 0
    assert result.uncomputed == {"user_transactions": past, "merchant_transactions": past}
    problems = differences(canonical_rows(result.table), expected)
    assert not problems, f"{engine.name}: extract differs:\n" + "\n".join(problems)


def test_extract_from_a_local_file_to_a_local_file(engine, tmp_path, reference):
    import pyarrow.parquet as pq

    project = engine_project(engine, tmp_path, reference["raw"])
    spine, out = tmp_path / "spine.parquet", tmp_path / "training.parquet"
    pq.write_table(reference["spine"], spine)
    with Context(project, variables=SMALL_VARS) as context:
        run_models(context, now=NOW)
        context.extract(str(spine), EXTRACT_FEATURES, out=out)  # loaded into the warehouse, joined there
    problems = differences(canonical_rows(pq.read_table(out)), reference["extract"])
    assert not problems, f"{engine.name}: extract differs from DuckDB:\n" + "\n".join(problems)


def test_extract_from_a_spine_table_in_the_warehouse(engine, tmp_path, reference):
    project = engine_project(engine, tmp_path, reference["raw"])
    with Context(project, variables=SMALL_VARS) as context:
        run_models(context, now=NOW)
        context.adapter.load_table(exp.table_("spine", db="features"), reference["spine"])
        result = context.extract("features.spine", EXTRACT_FEATURES, out="table:features.training")
        assert result.rows == reference["spine"].num_rows
        stored = canonical_rows(context.query("select * from features.training"))
    key = ["user_id", "merchant_id", "ts", "label"]
    ordered = sorted(reference["extract"], key=lambda r: [_sortable(r[c]) for c in [*key, *sorted(r)]])
    stored.sort(key=lambda r: [_sortable(r[c]) for c in [*key, *sorted(r)]])
    assert not differences(stored, ordered)


# -- window values against the brute-force oracle ------------------------------------------

DAY, HOUR = 86400, 3600
# Windows spelled in hours ('24h', '72h'), as a user may write them.
ORACLE_MACROS = tuple(
    replace(macro, spellings=tuple(f"{window // HOUR}h" for window in macro.windows))
    for macro in (
        Macro("count", None, (DAY, 3 * DAY)),
        Macro("count", "amount", (DAY,)),
        Macro("sum", "amount", (2 * DAY,)),
        Macro("avg", "amount", (2 * DAY,)),
        Macro("min", "amount", (DAY,)),
        Macro("max", "amount", (3 * DAY,)),
        Macro("variance", "amount", (2 * DAY,)),
        Macro("stddev_pop", "amount", (2 * DAY,)),
        Macro("count_distinct", "category", (3 * DAY,)),
        Macro("first", "amount", (2 * DAY,)),
        Macro("last", "category", (DAY,)),
    )
)
ORACLE_NOW = datetime(2024, 1, 12, 3, tzinfo=UTC)


def _events(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    start = datetime(2024, 1, 1)
    events = []
    for _ in range(count):
        ts = start + timedelta(seconds=rng.randrange(0, 10 * DAY))
        if rng.random() < 0.15:
            ts = ts.replace(hour=0, minute=0, second=0)  # exactly on a boundary
        events.append(
            {
                "user_id": rng.randrange(1, 8),
                "ts": ts,
                "amount": None if rng.random() < 0.1 else rng.randrange(-400, 4000) / 4,
                "category": rng.choice(["a", "b", "c", None]),
            }
        )
    return events


def oracle_project(engine: Engine, folder: Path, events: Sequence[dict[str, Any]]) -> Path:
    model = (
        "{{ config(entity='user', timestamp='ts', grain='1d') }}\n"
        f"select user_id, ts,\n    {window_features(ORACLE_MACROS)}\nfrom {{{{ source('raw', 'events') }}}}\n"
    )
    project = write_project(
        folder / "oracle",
        "oracle",
        entities={"user": {"user_id": "bigint"}},
        tables={"events": {"event_time": "ts"}},
        models={"m": model},
        profile=engine.target(folder),
        dialect=None,
    )
    schema = pa.schema(
        [("user_id", pa.int64()), ("ts", pa.timestamp("us")), ("amount", pa.float64()), ("category", pa.string())]
    )
    with Context(project) as context:
        context.adapter.ensure_schema("raw")
        context.adapter.load_table(exp.table_("events", db="raw"), pa.Table.from_pylist(list(events), schema))
    return project


@pytest.mark.parametrize("seed", [1, 2])
def test_window_values_equal_the_oracle(engine, tmp_path, seed):
    events = _events(300, seed)
    project = oracle_project(engine, tmp_path, events)
    with Context(project) as context:
        run_models(context, now=ORACLE_NOW)
        actual = table_rows(context, "m")
    features = tuple(f for m in ORACLE_MACROS for f in m.features())
    expected = expected_rows(WindowModelSpec(features, DAY), events, ORACLE_NOW)
    problems = row_differences(actual, expected, "user_id", "ts")
    assert not problems, f"{engine.name} differs from the oracle:\n" + "\n".join(problems[:20])


def test_undeclared_source_columns_are_read_from_the_warehouse(engine, tmp_path):
    project = oracle_project(engine, tmp_path, _events(20, 3))  # its sources.yml lists no columns
    (project / "features" / "typo.sql").write_text(
        "{{ config(entity='user', timestamp='ts') }}\nselect user_id, ts, amout from {{ source('raw', 'events') }}\n"
    )
    with Context(project) as context, pytest.raises(CompileError) as raised:
        context.run(now=ORACLE_NOW)
    assert "unknown column 'amout'" in raised.value.message and "did you mean amount?" in raised.value.message
    with Context(project, offline=True) as context:
        assert "typo" in context.compiled.models  # offline, nothing to check it against


def test_models_built_in_parallel_equal_the_serial_build(engine, tmp_path, reference):
    project = engine_project(engine, tmp_path, reference["raw"])
    with Context(project, variables=SMALL_VARS) as context:
        for now in (NOW - timedelta(days=9), NOW):  # a first build, then incremental transactions in parallel
            result = context.run(now=now, threads=3)  # each thread on its own connection or session
            assert result.ok, [(r.model, r.message) for r in result.results if r.status != "success"]
        for name in ("user_transactions", "merchant_transactions", "user_balances", "user_spend_ratios"):
            assert not differences(table_rows(context, name), reference["models"][name]), name


def test_sync_serves_what_the_extract_returns(engine, tmp_path, reference):
    """The mirror's SQL (full outer join, IS DISTINCT FROM, tolerances, DELETE/INSERT) on every engine:
    after a user's events are deleted and the models rebuilt (deletes), after a full refresh of the same
    data (nothing written), and into a wiped store (everything again)."""
    import json
    from decimal import Decimal

    from sqlglot import exp

    from featuresql.online.stores import open_store, read_manifest
    from featuresql.online.sync import run_sync
    from featuresql.run.planning import RunOptions
    from featuresql.serving.handler import reader_for

    project = engine_project(engine, tmp_path, reference["raw"])
    users = [*range(1, 501, 9), 10**9]
    spine = pa.table({"user_id": users, "ts": [NOW.replace(tzinfo=None)] * len(users)})
    with Context(project, variables=SMALL_VARS) as context:
        run_models(context, now=NOW)
        first = run_sync(context, now=NOW)
        assert all(m.written == m.changed > 100 for m in first.models), first
        again = run_sync(context, now=NOW)
        assert [(m.changed, m.written) for m in again.models] == [(0, 0)] * len(again.models)
        gone = exp.column("user_id").eq(exp.Literal.number(10))
        context.adapter.execute(exp.delete(exp.table_("transactions", db="raw"), where=gone))
        assert context.run(now=NOW, options=RunOptions(full_refresh=True)).ok
        after = run_sync(context, now=NOW)
        assert sum(m.deleted for m in after.models) > 0, after
        assert context.run(now=NOW, options=RunOptions(full_refresh=True)).ok  # the same data again
        rebuilt = run_sync(context, now=NOW)
        assert [m.written + m.deleted for m in rebuilt.models] == [0] * len(rebuilt.models), rebuilt
        store = open_store(context)
        store.teardown()  # a wiped store: the next sync finds no marker and fills it again
        refilled = run_sync(context, now=NOW)
        assert refilled.restart is not None and sum(m.written for m in refilled.models) > 0, refilled
        models = [m.model for m in first.models]
        offline = context.extract(spine, models).table
        reader = reader_for(read_manifest(context))
    reader.clock = NOW.timestamp
    status, body = reader.answer({"entities": {"user_id": users}, "features": models})
    assert status == 200, body
    online = json.loads(body, parse_float=Decimal)["results"]
    problems = [
        f"user {row['user_id']} {name}: online {result['features'][name]!r}, offline {row[name]!r}"
        for result, row in zip(online, offline.to_pylist(), strict=True)
        for name in result["features"]
        if not _same_number(result["features"][name], row[name])
    ]
    assert not problems, f"{engine.name}:\n" + "\n".join(problems[:20])


def _same_number(online: Any, offline: Any) -> bool:
    if online is None or offline is None:
        return online is offline
    if isinstance(offline, float) or isinstance(online, float):
        return abs(float(online) - float(offline)) <= 1e-9 * max(1.0, abs(float(offline)))
    return bool(online == offline)
