"""The same data gives the same tables bit for bit: whatever the threads, batches, runs or full refresh.

The example project is built on DuckDB in several ways: with 1, 2 and 4 DuckDB
threads (the profile's ``threads``), with 4 models at a time (``--threads``), in
daily batches, by a schedule of incremental runs, and by a full refresh after
them. Every model table must hash the same, doubles compared by their bit
patterns. Its inputs are integers and decimals, which featuresql aggregates
exactly (``featuresql.sql.windows``: "Deterministic values"); the drift this
pins was ``amount_stddev_30d`` (stddev of a decimal(12,2)) changing in its last
bit on a third of the rows when DuckDB's parallel aggregation merged double
partial states in another order.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from engines import write_profile
from projects import SMALL_VARS, copy_example, duckdb_profile, write_project
from sqlglot import exp

from featuresql.context import Context
from featuresql.run.planning import RunOptions
from featuresql.sql.windows import WindowFeature

pytestmark = pytest.mark.duckdb

NOW = datetime(2026, 6, 30, tzinfo=UTC)
# 40 days of demo data keep daily batches quick; 20,000 transactions over them put tens of
# events in a user's 30-day window, where the drift showed.
VARIABLES = {**SMALL_VARS, "demo_days": 40}
DAILY_BATCHES = ("project.yml", "  data_delay: 0s\n", "  data_delay: 0s\n  batch_size: 1\n")


@dataclass(frozen=True)
class Build:
    """One way to build the example project."""

    duckdb_threads: int
    models_at_once: int = 1  # `featuresql run --threads`
    daily_batches: bool = False
    days_before: tuple[int, ...] = (0,)  # a run at NOW minus each, in turn: incremental after the first
    full_refresh: bool = False  # then a full refresh at NOW


REFERENCE = Build(duckdb_threads=1)
BUILDS = {
    "2 threads": Build(duckdb_threads=2),
    "4 threads, 4 models at a time": Build(duckdb_threads=4, models_at_once=4),
    "daily batches, 4 threads": Build(duckdb_threads=4, daily_batches=True),
    "incremental runs, 4 threads": Build(duckdb_threads=4, days_before=(25, 9, 1, 0)),
    "full refresh after incremental runs": Build(duckdb_threads=4, days_before=(25, 9, 1, 0), full_refresh=True),
}


def build_digests(folder: Path, build: Build) -> dict[str, str]:
    """Build the example project in ``folder`` as ``build`` says; every model table's digest."""
    project = copy_example(folder, [DAILY_BATCHES] if build.daily_batches else [])
    write_profile(project, {"type": "duckdb", "path": str(folder / "build.duckdb"), "threads": build.duckdb_threads})
    with Context(project, variables=VARIABLES) as context:
        runs = [(NOW - timedelta(days=days), RunOptions()) for days in build.days_before]
        runs += [(NOW, RunOptions(full_refresh=True))] if build.full_refresh else []
        for now, options in runs:
            result = context.run(now=now, options=options, threads=build.models_at_once)
            assert result.ok, [(r.model, r.message) for r in result.results if r.status != "success"]
        return {name: table_digest(context, model.relation) for name, model in context.compiled.models.items()}


def table_digest(context: Context, relation: exp.Table) -> str:
    """A digest of a table's column names and types and of its rows in order, doubles by their bits."""
    table: pa.Table = context.query(f"select * from {relation.sql('duckdb')} order by all")
    digest = hashlib.sha256(str(table.schema).encode())
    for row in table.to_pylist():
        digest.update(repr([_exact(value) for value in row.values()]).encode())
    return digest.hexdigest()


def _exact(value: Any) -> Any:
    return struct.pack("<d", value).hex() if isinstance(value, float) else value


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return build_digests(tmp_path_factory.mktemp("reference"), REFERENCE)


@pytest.mark.parametrize("name", BUILDS)
def test_every_build_gives_the_same_tables_bit_for_bit(name: str, reference: dict[str, str], tmp_path: Path) -> None:
    digests = build_digests(tmp_path, BUILDS[name])
    assert digests.keys() == reference.keys()
    differing = sorted(model for model in reference if digests[model] != reference[model])
    assert not differing, f"{name}: these tables differ from a one-thread build: {differing}"


def test_the_example_project_has_a_spread_of_an_exact_input(tmp_path: Path) -> None:
    """The builds above exercise variance/stddev of a decimal, the case that used to drift."""
    with Context(copy_example(tmp_path), variables=VARIABLES) as context:
        features = [f for m in context.compiled.models.values() for f in m.features]
    assert any(f.function.startswith(("stddev", "variance")) and f.exact_input for f in features)


# -- which inputs are exact ---------------------------------------------------------------

EVENT_COLUMNS = {
    "user_id": "bigint",
    "ts": "timestamp",
    "amount": "decimal(12,2)",
    "price": "double",
    "kind": "varchar",
}


def only_feature(folder: Path, macro: str, source: str = "{{ source('raw', 'events') }}") -> WindowFeature:
    """The one feature of a window model ``select user_id, ts, {{ <macro> }} from <source>``."""
    model = f"{{{{ config(entity='user', timestamp='ts') }}}}\nselect user_id, ts, {{{{ {macro} }}}}\nfrom {source}\n"
    root = write_project(
        folder,
        "exactness",
        entities={"user": {"user_id": "bigint"}},
        tables={"events": {"event_time": "ts", "columns": [{"name": n, "type": t} for n, t in EVENT_COLUMNS.items()]}},
        models={"m": model},
        profile=duckdb_profile(folder / "unused.duckdb"),
    )
    with Context(root) as context:
        (feature,) = context.compiled.models["m"].features
    return feature


@pytest.mark.parametrize(
    ("expression", "exact"),
    [
        ("amount", True),
        ("user_id", True),
        ("price", False),
        ("amount * 2 + user_id - 1", True),
        ("-abs(coalesce(amount, 0))", True),
        ("case when kind = 'refund' then -amount else amount end", True),
        ("case when kind = 'refund' then 1 else 0 end", True),
        ("cast(price as decimal(18, 4))", True),
        ("cast(amount as double)", False),
        ("amount / 3", False),  # DuckDB divides in double, whatever sqlglot infers
        ("amount * 1.5", False),  # 1.5 is a FLOAT64 on BigQuery
        ("round(amount, 1)", False),  # a function: its type is the engine's to say
        ("(select max(price) from raw.events)", False),
    ],
)
def test_integer_and_decimal_inputs_take_the_exact_path(tmp_path: Path, expression: str, exact: bool) -> None:
    feature = only_feature(tmp_path, f"window_stddev(\"{expression}\", windows=['1d'], name='v')")
    assert feature.exact_input is exact
    assert feature.family == ("frame" if exact else "spread")


def test_a_column_of_a_subquery_is_not_taken_for_exact(tmp_path: Path) -> None:
    """sqlglot types the subquery's ``amount`` as decimal(12,2); DuckDB divides it in double."""
    source = "(select user_id, ts, amount / 3 as amount from {{ source('raw', 'events') }}) as e"
    assert not only_feature(tmp_path, "window_variance('amount', windows=['1d'])", source).exact_input
