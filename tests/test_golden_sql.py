"""Golden compiled SQL for every model of the example project on DuckDB, Snowflake and BigQuery.

The statements a run executes are compiled with a fixed ``now`` and compared with
``tests/golden/<dialect>/<model>.sql`` (in the style of sqlglot's optimizer
fixtures). After an intended change, rewrite them and review the diff:

    FEATURESQL_UPDATE_GOLDEN=1 python -m pytest tests/test_golden_sql.py

Two more checks keep the golden files honest:
- a static scan of the Snowflake and BigQuery statements for constructs those
  engines reject (DuckDB spellings leaking through the generators);
- the DuckDB golden SQL is executed on generated data and must produce exactly
  the tables `featuresql run` produces (sqlglot's ``check_file`` idea), and its
  window values must match a brute-force SQL over the raw events.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import os
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
import sqlglot
from click.testing import CliRunner

from featuresql.compile.compiler import compile_project
from featuresql.compile.portability import INVALID, code_only
from featuresql.project.loader import load_project
from featuresql.run.statements import build_statements

REPO_ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
DIALECTS = ("duckdb", "snowflake", "bigquery")
NOW = datetime(2026, 7, 1, tzinfo=UTC)
SCHEMA = "features"
UPDATE = os.environ.get("FEATURESQL_UPDATE_GOLDEN") == "1"
# the models with tables: an on-demand model runs no statement (tests/test_on_demand.py covers it)
MODELS = sorted(compile_project(load_project(REPO_ROOT), target_type="duckdb", schema=SCHEMA).models)


@functools.cache
def compiled_statements(dialect: str) -> dict[str, list[str]]:
    """Every model's statements rendered for ``dialect``, in dependency order."""
    project = load_project(REPO_ROOT)  # reads the example project, writes nothing
    compiled = compile_project(project, target_type=dialect, schema=SCHEMA)
    return {
        name: [statement.sql(dialect, pretty=True) for statement in build_statements(model, dialect, now=NOW)]
        for name, model in compiled.models.items()
    }


def golden_text(dialect: str, model: str) -> str:
    return ";\n\n".join(compiled_statements(dialect)[model]) + ";\n"


def golden_path(dialect: str, model: str) -> Path:
    return GOLDEN / dialect / f"{model}.sql"


# -- golden files ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_golden_sql(dialect, model):
    path = golden_path(dialect, model)
    actual = golden_text(dialect, model)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.is_file(), f"{path} is missing: run with FEATURESQL_UPDATE_GOLDEN=1 and review it"
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=str(path.relative_to(REPO_ROOT)),
                tofile="compiled now",
            )
        )
        pytest.fail(f"compiled SQL differs from the golden file (FEATURESQL_UPDATE_GOLDEN=1):\n{diff}")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_no_stale_golden_files(dialect):
    folder = GOLDEN / dialect
    stale = sorted(p.name for p in folder.glob("*.sql") if p.stem not in MODELS)
    if UPDATE:
        for name in stale:
            (folder / name).unlink()
        return
    assert not stale, f"golden files without a model in the example project: {stale}"


def test_golden_sql_does_not_depend_on_the_clock():
    """Compiling twice with the same ``now`` gives the same text (no hidden datetime.now())."""
    compiled_statements.cache_clear()
    first = compiled_statements("duckdb")
    compiled_statements.cache_clear()
    assert compiled_statements("duckdb") == first


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_compiled_sql_parses_back_in_its_dialect(dialect, model):
    for statement in compiled_statements(dialect)[model]:
        parsed = sqlglot.parse(statement, read=dialect)
        assert len(parsed) == 1 and parsed[0] is not None


# -- constructs the warehouses reject ----------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("dialect", ["snowflake", "bigquery"])
def test_no_constructs_invalid_on_the_warehouse(dialect, model):
    problems = [
        f"{reason}: {found}"
        for statement in compiled_statements(dialect)[model]
        for reason, invalid in INVALID[dialect]
        if (found := invalid(code_only(statement))) is not None
    ]
    assert not problems, f"{dialect} {model} (see {golden_path(dialect, model).relative_to(REPO_ROOT)}):\n" + (
        "\n".join(problems)
    )


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("snowflake", "SELECT a // 2 FROM t"),
        ("snowflake", "SELECT * FROM a ASOF JOIN b ON a.k = b.k AND a.t >= b.t"),
        ("snowflake", "SELECT LAST_VALUE(x IGNORE NULLS) OVER (ORDER BY b) FROM t"),
        ("bigquery", "SELECT CAST(x AS INT)::TEXT FROM t"),
        (
            "bigquery",
            "SELECT SUM(x) OVER (ORDER BY ts RANGE BETWEEN INTERVAL 1 DAY PRECEDING AND CURRENT ROW) FROM t",
        ),
        ("bigquery", "SELECT a FROM t UNION SELECT a FROM u"),
        ("bigquery", "SELECT EPOCH_US(ts) % 10 FROM t"),
        ("bigquery", "SELECT COUNT(*) FILTER (WHERE x > 0) FROM t"),
    ],
)
def test_the_scan_catches_invalid_constructs(dialect, sql):
    assert any(invalid(code_only(sql)) is not None for _, invalid in INVALID[dialect])


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        (
            "snowflake",
            "SELECT a::INT, '50%' AS p FROM t QUALIFY ROW_NUMBER() OVER (ORDER BY a IS NULL) = 1",
        ),
        ("bigquery", "SELECT MOD(a, 2), 'a // b % c' AS s FROM t UNION ALL SELECT 1, '' FROM u"),
        (
            "bigquery",
            "SELECT LAST_VALUE(x IGNORE NULLS) OVER (ORDER BY b RANGE BETWEEN 6 PRECEDING AND CURRENT ROW)",
        ),
    ],
)
def test_the_scan_allows_valid_constructs(dialect, sql):
    assert not [reason for reason, invalid in INVALID[dialect] if invalid(code_only(sql)) is not None]


# -- the DuckDB golden SQL runs and means what `featuresql run` computes -------------------------

# Demo data that ends well before NOW (and before today), so the golden SQL (compiled
# at NOW) and `featuresql run` (at the real time) see every boundary.
EXECUTION_VARS = (
    "{demo_transactions: 20000, demo_users: 500, demo_balance_events: 2000, demo_merchants: 200, "
    "demo_days: 60, demo_end: '2026-03-01'}"
)


@pytest.fixture(scope="module")
def executed(tmp_path_factory, copy_example_to) -> Path:
    """The example project built by `featuresql run`, then the golden DuckDB SQL run beside it.

    `run` builds schema main; the golden statements build schema features from the same raw data.
    """
    from featuresql.cli.main import cli

    assert datetime.now(UTC) > datetime(2026, 4, 2, tzinfo=UTC), "the data must end before the clock"
    project = copy_example_to(tmp_path_factory.mktemp("golden") / "cash_advance")
    with contextlib.chdir(project):
        result = CliRunner().invoke(cli, ["--vars", EXECUTION_VARS, "run"], prog_name="featuresql")
    assert result.exit_code == 0, result.output
    database = project / "target" / "cash_advance.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute(f"CREATE SCHEMA {SCHEMA}")
        for model in compiled_statements("duckdb"):  # dependency order
            connection.execute(golden_path("duckdb", model).read_text(encoding="utf-8"))
    return database


def comparable_columns(connection, model: str) -> str:
    types = connection.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'main' and table_name = ? order by ordinal_position",
        [model],
    ).fetchall()
    return ", ".join(f"round({c}, 6) as {c}" if kind in ("DOUBLE", "FLOAT") else c for c, kind in types)


@pytest.mark.parametrize("model", MODELS)
def test_duckdb_golden_sql_produces_the_run_tables(executed, model):
    with duckdb.connect(str(executed), read_only=True) as connection:
        columns = {
            schema: connection.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, model],
            ).fetchall()
            for schema in ("main", SCHEMA)
        }
        assert columns["main"] == columns[SCHEMA]
        count = connection.execute(f"select count(*) from main.{model}").fetchone()[0]
        assert count > 0
        assert connection.execute(f"select count(*) from {SCHEMA}.{model}").fetchone()[0] == count
        select = comparable_columns(connection, model)
        for left, right in (("main", SCHEMA), (SCHEMA, "main")):
            extra = connection.execute(
                f"select count(*) from (select {select} from {left}.{model} "
                f"except all select {select} from {right}.{model})"
            ).fetchone()[0]
            assert extra == 0, f"{extra} rows of {left}.{model} are not in {right}.{model}"


BRUTE_FORCE_USER_TRANSACTIONS = """
with sample as (
    select * from {schema}.user_transactions order by hash(user_id, ts) limit 400
),
events as (
    select * from raw.transactions where status = 'settled' and amount > 0
)
select
    s.user_id,
    s.ts,
    {features}
from sample as s
left join events as e on e.user_id = s.user_id and e.ts < s.ts and e.ts >= s.ts - interval 30 day
group by all
order by s.user_id, s.ts
"""
BRUTE_FORCE = {
    "count_1d": "count(e.ts) filter (where e.ts >= s.ts - interval 1 day)",
    "count_7d": "count(e.ts) filter (where e.ts >= s.ts - interval 7 day)",
    "count_30d": "count(e.ts)",
    "amount_sum_1d": "sum(e.amount) filter (where e.ts >= s.ts - interval 1 day)",
    "amount_sum_7d": "sum(e.amount) filter (where e.ts >= s.ts - interval 7 day)",
    "amount_sum_30d": "sum(e.amount)",
    "amount_avg_7d": "avg(e.amount) filter (where e.ts >= s.ts - interval 7 day)",
    "amount_avg_30d": "avg(e.amount)",
    "amount_max_7d": "max(e.amount) filter (where e.ts >= s.ts - interval 7 day)",
    "amount_stddev_30d": "stddev_samp(e.amount)",
    "merchant_category_count_distinct_30d": "count(distinct e.merchant_category)",
    "amount_last_7d": (
        "first(e.amount order by e.ts desc, e.transaction_id desc, e.amount desc) "
        "filter (where e.ts >= s.ts - interval 7 day)"
    ),
}


def close(left: object, right: object) -> bool:
    if left is None or right is None:
        return left is right
    if isinstance(left, int | str) and isinstance(right, int | str):
        return left == right
    a, b = float(left), float(right)  # type: ignore[arg-type]
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


@pytest.mark.parametrize("schema", ["main", SCHEMA], ids=["featuresql_run", "golden_sql"])
def test_window_values_match_brute_force(executed, schema):
    features = ",\n    ".join(f"{sql} as {name}" for name, sql in BRUTE_FORCE.items())
    query = BRUTE_FORCE_USER_TRANSACTIONS.format(schema=schema, features=features)
    names = list(BRUTE_FORCE)
    with duckdb.connect(str(executed), read_only=True) as connection:
        connection.execute("SET TimeZone = 'UTC'")
        expected = connection.execute(query).fetchall()
        sample = (
            f"select user_id, ts, {', '.join(names)} from {schema}.user_transactions "
            "order by hash(user_id, ts) limit 400"
        )
        actual = connection.execute(f"select * from ({sample}) order by user_id, ts").fetchall()
    assert len(actual) == len(expected) == 400
    mismatches: dict[str, list[tuple[object, ...]]] = {}
    for want, got in zip(expected, actual, strict=True):
        assert want[:2] == got[:2]
        for index, name in enumerate(names, start=2):
            if not close(want[index], got[index]):
                mismatches.setdefault(name, []).append((*want[:2], got[index], want[index]))
    summary = {name: f"{len(rows)} rows, e.g. (user, ts, got, want) {rows[0]}" for name, rows in mismatches.items()}
    assert not mismatches, f"window values differ from brute force: {summary}"
