"""Rows with a NULL entity key: left out of every model, counted in the run log, failed by `featuresql test`.

A window model over events some of which have a NULL ``user_id`` must equal the
brute-force oracle over the events that have a key (no row for a NULL key); a
snapshot model over the same events must hold exactly their keyed rows. Each
batch's run log row counts the NULL-key events of its own tiles, so an
incremental run does not count the history again; the built-in ``null_keys``
test fails naming the model, the key and the count, and passes once the model's
SQL filters them. On DuckDB, Snowflake (fakesnow) and BigQuery (emulator);
``compile``/``--dry-run`` agreement and composite keys on DuckDB.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from engines import Engine, canonical_rows
from oracle import Macro, WindowModelSpec, expected_rows, row_differences
from projects import duckdb_profile, window_features, write_project
from sqlglot import exp

from featuresql.context import Context
from featuresql.run.intervals import BEGINNING
from featuresql.run.planning import RunOptions
from featuresql.run.results import RunResult
from featuresql.run.statements import build_statements

DAY = 86400
T0 = datetime(2024, 1, 1)
FIRST_NOW = datetime(2024, 1, 8, 3, tzinfo=UTC)  # boundaries up to Jan 8: the events before Jan 8
LAST_NOW = datetime(2024, 1, 12, 3, tzinfo=UTC)  # then boundaries Jan 9 to 12: the events of Jan 8 to 11
MACROS = (
    Macro("count", None, (DAY, 2 * DAY)),
    Macro("sum", "amount", (2 * DAY,)),
    Macro("count_distinct", "category", (3 * DAY,)),
    Macro("last", "amount", (2 * DAY,)),
)
WINDOW = (
    "{{ config(entity='user', timestamp='ts', grain='1d', lookback=0) }}\n"
    f"select user_id, ts,\n    {window_features(MACROS)}\nfrom {{{{ source('raw', 'events') }}}}\n"
)
SNAPSHOT = (
    "{{ config(entity='user', timestamp='ts') }}\n"
    "select user_id, ts, amount, category\nfrom {{ source('raw', 'events') }}\n"
)
SCHEMA = pa.schema(
    [("user_id", pa.int64()), ("ts", pa.timestamp("us")), ("amount", pa.float64()), ("category", pa.string())]
)
ORDER = ("user_id", "ts", "amount", "category")


def _events(count: int, seed: int) -> list[dict[str, Any]]:
    """Events over Jan 1 to 12 of users 1 to 5; about one in six has a NULL user_id."""
    rng = random.Random(seed)
    return [
        {
            "user_id": None if rng.random() < 0.16 else rng.randrange(1, 6),
            "ts": T0 + timedelta(seconds=rng.randrange(0, 12 * DAY)),
            "amount": rng.randrange(-400, 4000) / 4,  # quarters: sums are exact on every engine
            "category": rng.choice(["a", "b", "c"]),
        }
        for _ in range(count)
    ]


EVENTS = _events(240, 19)


def _project(folder: Path, profile: dict[str, Any], events: Sequence[dict[str, Any]] = EVENTS) -> Path:
    project = write_project(
        folder / "nulls",
        "nulls",
        entities={"user": {"user_id": "bigint"}},
        tables={"events": {"event_time": "ts"}},
        models={"m": WINDOW, "s": SNAPSHOT},
        profile=profile,
        dialect=None,
    )
    with Context(project) as context:
        context.adapter.ensure_schema("raw")
        context.adapter.load_table(exp.table_("events", db="raw"), pa.Table.from_pylist(list(events), SCHEMA))
    return project


def _null_keys(lo: datetime | None, hi: datetime) -> int:
    """The events with a NULL key and ``lo <= ts < hi``, counted in plain Python."""
    return sum(1 for e in EVENTS if e["user_id"] is None and (lo is None or e["ts"] >= lo) and e["ts"] < hi)


def _note(count: int) -> str:
    return f"{count} rows with a NULL user_id excluded"


def _sorted(rows: Sequence[dict[str, Any]], order: Sequence[str]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda row: [(row[c] is None, row[c]) for c in order])


def _rows(context: Context, model: str, order: Sequence[str]) -> list[dict[str, Any]]:
    table = context.query(exp.select("*").from_(context.compiled.models[model].relation.copy()))
    return _sorted(canonical_rows(table), order)


def _run_log(context: Context, model: str) -> list[tuple[int | None, int | None, str]]:
    """(lo, hi, message) of each run log row of ``model``, oldest first."""
    query = f"select lo, hi, message from featuresql.run_log where model = '{model}' order by logged_at"
    return [(r["lo"], r["hi"], r["message"]) for r in canonical_rows(context.query(query))]


def _message(result: RunResult, model: str) -> str:
    found = next(r for r in result.results if r.model == model)
    assert found.status == "success", found.message  # a note, not a failure
    return found.message


def _seconds(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp())


def test_null_keys_are_left_out_and_each_batch_counts_its_own(engine: Engine, tmp_path: Path) -> None:
    assert None in {e["user_id"] for e in EVENTS}
    project = _project(tmp_path, engine.target(tmp_path))
    first, later = _null_keys(None, datetime(2024, 1, 8)), _null_keys(datetime(2024, 1, 8), datetime(2024, 1, 12))
    with Context(project) as context:
        result = context.run(now=FIRST_NOW)
        assert _message(result, "m") == _note(first)
        assert _message(result, "s") == _note(_null_keys(None, datetime(2025, 1, 1)))  # the whole query
        again = context.run(now=LAST_NOW)  # incremental: only the new batch's events
        assert _message(again, "m") == _note(later)
        log = _run_log(context, "m")
        window_rows = _rows(context, "m", ("user_id", "ts"))
        snapshot_rows = _rows(context, "s", ORDER)
        assert _message(context.run(now=LAST_NOW), "m") == ""  # up to date: nothing computed, nothing counted
        refreshed = context.run(now=LAST_NOW, options=RunOptions(full_refresh=True))
        assert _message(refreshed, "m") == _note(first + later)
        assert _rows(context, "m", ("user_id", "ts")) == window_rows
    jan9, jan13 = _seconds(datetime(2024, 1, 9)), _seconds(datetime(2024, 1, 13))
    assert log == [(BEGINNING, jan9, _note(first)), (jan9, jan13, _note(later))]
    features = tuple(f for m in MACROS for f in m.features())
    keyed = WindowModelSpec(features, DAY, where=lambda e: e["user_id"] is not None)
    problems = row_differences(window_rows, expected_rows(keyed, EVENTS, LAST_NOW), "user_id", "ts")
    assert not problems, f"{engine.name} differs from the oracle over the keyed events:\n" + "\n".join(problems[:20])
    assert all(row["user_id"] is not None for row in window_rows)
    assert snapshot_rows == _sorted([e for e in EVENTS if e["user_id"] is not None], ORDER)


def test_featuresql_test_fails_on_null_keys_until_the_model_filters_them(
    engine: Engine, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    project = _project(tmp_path, engine.target(tmp_path))
    ran = cli(project, "run", "--now", "2024-01-12T03:00:00")
    assert ran.exit_code == 0, ran.stdout + ran.stderr
    assert _note(_null_keys(None, datetime(2024, 1, 12))) in ran.stdout  # printed under the model's OK line

    tested = cli(project, "test")
    assert tested.exit_code == 1, tested.stdout + tested.stderr
    everything = _null_keys(None, datetime(2025, 1, 1))
    for model in ("m", "s"):
        assert f"{model}: {everything} input rows with a NULL user_id" in tested.stdout
    assert "`where user_id is not null`" in tested.stdout
    results = {r["test"]: r for r in _results(project)}
    assert {name: (r["status"], r["failures"]) for name, r in results.items() if "null_keys" in name} == {
        "null_keys_m": ("fail", everything),
        "null_keys_s": ("fail", everything),
    }
    assert results["availability_m"]["status"] == "pass"

    for name in ("m", "s"):  # the hint, followed
        path = project / "features" / f"{name}.sql"
        path.write_text(path.read_text() + "where user_id is not null\n")
    fixed = cli(project, "test")
    assert fixed.exit_code == 0, fixed.stdout + fixed.stderr
    assert {r["status"] for r in _results(project)} == {"pass"}


def _results(project: Path) -> list[dict[str, Any]]:
    document = json.loads((project / "target" / "run_results.json").read_text())
    results: list[dict[str, Any]] = document["results"]
    return results


@pytest.mark.duckdb
def test_compile_dry_run_and_run_create_the_snapshot_alike(tmp_path: Path) -> None:
    project = _project(tmp_path, duckdb_profile(tmp_path / "n.duckdb"))
    with Context(project) as context:
        compiled = build_statements(context.compiled.models["s"], context.dialect, LAST_NOW)
        planned = next(p for p in context.plan(now=LAST_NOW) if p.name == "s").statements
        assert [s.sql("duckdb") for s in planned] == [s.sql("duckdb") for s in compiled]
        assert "WHERE NOT user_id IS NULL" in compiled[0].sql("duckdb")
        context.write_compiled(["s"], LAST_NOW)
        run = context.run(("s",), now=LAST_NOW)
        assert run.ok and run.results[0].rows == sum(1 for e in EVENTS if e["user_id"] is not None)
    written = (project / "target" / "compiled" / "dev" / "s.sql").read_text()
    assert written == compiled[0].sql("duckdb", pretty=True) + ";\n"


@pytest.mark.duckdb
def test_a_composite_key_with_any_part_null_is_left_out(tmp_path: Path) -> None:
    events = [
        {"user_id": 1, "account_id": 10, "ts": datetime(2024, 1, 1, 5)},
        {"user_id": 1, "account_id": None, "ts": datetime(2024, 1, 1, 6)},
        {"user_id": None, "account_id": 10, "ts": datetime(2024, 1, 1, 7)},
        {"user_id": 2, "account_id": 20, "ts": datetime(2024, 1, 2, 7)},
    ]
    window = (
        "{{ config(entity='account', timestamp='ts', grain='1d') }}\n"
        "select user_id, account_id, ts, {{ window_count(windows=['1d']) }} from {{ source('raw', 'events') }}\n"
    )
    snapshot = "{{ config(entity='account', timestamp='ts') }}\nselect * from {{ source('raw', 'events') }}\n"
    project = write_project(
        tmp_path / "composite",
        "composite",
        entities={"account": {"user_id": "bigint", "account_id": "bigint"}},
        tables={"events": {"event_time": "ts"}},
        models={"w": window, "s": snapshot},
        profile=duckdb_profile(tmp_path / "c.duckdb"),
    )
    schema = pa.schema([("user_id", pa.int64()), ("account_id", pa.int64()), ("ts", pa.timestamp("us"))])
    with Context(project) as context:
        context.adapter.ensure_schema("raw")
        context.adapter.load_table(exp.table_("events", db="raw"), pa.Table.from_pylist(events, schema))
        result = context.run(now=datetime(2024, 1, 5, tzinfo=UTC))
        assert {r.model: r.message for r in result.results} == {
            "w": "2 rows with a NULL key (user_id, account_id) excluded",
            "s": "2 rows with a NULL key (user_id, account_id) excluded",
        }
        counted = context.query("select user_id, account_id, ts, count_1d from main.w order by all").to_pylist()
        kept = context.query("select user_id, account_id from main.s order by all").to_pylist()
    assert counted == [
        {"user_id": 1, "account_id": 10, "ts": datetime(2024, 1, 2), "count_1d": 1},
        {"user_id": 1, "account_id": 10, "ts": datetime(2024, 1, 3), "count_1d": 0},
        {"user_id": 2, "account_id": 20, "ts": datetime(2024, 1, 3), "count_1d": 1},
        {"user_id": 2, "account_id": 20, "ts": datetime(2024, 1, 4), "count_1d": 0},
    ]
    assert kept == [{"user_id": 1, "account_id": 10}, {"user_id": 2, "account_id": 20}]
