"""On-demand expressions on Snowflake and BigQuery: the extract's SQL computes the reader's values.

The reader evaluates on-demand features as DuckDB does. An extract on Snowflake (the real
connector on fakesnow) or BigQuery (the real client on the emulator) runs the same SQL
written for that engine by ``featuresql.compile.on_demand_engines``. A corpus of
expressions, generated from a fixed seed over the supported subset (arithmetic on
integers, decimals and doubles, rounding, CASE, COALESCE, NULLIF, comparisons, IN,
BETWEEN, three-valued logic, strings), is evaluated by each engine over a table of typed
rows (NULLs, zeros, signs, large values) and by the reader's evaluator: every value must
agree exactly (decimals equal, doubles bit for bit), and an error in one must be an error
in the other. Expressions refused for an engine at compile time are left out of its run,
and the test checks that they are few.

Two emulator faults are set apart, each named in ``EMULATOR_FAULTS`` with the evidence: the
comparison never passes them as agreements.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlglot
from click.testing import CliRunner
from engines import bigquery_settings, snowflake_settings, write_profile
from projects import write_project
from sqlglot import exp
from test_expressions import same

from featuresql.cli.main import cli as command
from featuresql.compile.on_demand_engines import check_engine, engine_expression
from featuresql.context import Context
from featuresql.serving.expressions import EvaluationError, evaluate
from featuresql.serving.manifest import Manifest
from featuresql.serving.reader import Reader
from featuresql.serving.tables import open_table
from featuresql.sql import dialects
from featuresql.sql.expressions import UnsupportedExpression, compile_expression

TYPES = {"a": "BIGINT", "b": "DECIMAL(18,2)", "c": "DOUBLE", "i": "INTEGER", "d": "DECIMAL(4,1)", "f": "BOOLEAN"}
TYPES |= {"s": "VARCHAR"}
ARROW = {"a": pa.int64(), "b": pa.decimal128(18, 2), "c": pa.float64(), "i": pa.int32(), "d": pa.decimal128(4, 1)}
ARROW |= {"f": pa.bool_(), "s": pa.string()}
ROWS = [
    {"a": None, "b": None, "c": None, "i": None, "d": None, "f": None, "s": None},
    {"a": 0, "b": Decimal("0.00"), "c": 0.0, "i": 0, "d": Decimal("0.0"), "f": False, "s": ""},
    {"a": 1, "b": Decimal("12.34"), "c": 2.5, "i": 3, "d": Decimal("1.5"), "f": True, "s": "abc"},
    {"a": -7, "b": Decimal("-5.50"), "c": -1.25, "i": -4, "d": Decimal("-99.9"), "f": True, "s": "É"},
    {"a": 123456, "b": Decimal("99999.99"), "c": 1e10, "i": 1000, "d": Decimal("0.5"), "f": False, "s": "a b "},
    {"a": 2**40, "b": Decimal("0.01"), "c": 0.1, "i": -1, "d": Decimal("99.9"), "f": None, "s": "ba"},
    {"a": -(2**31), "b": Decimal("-0.01"), "c": -0.0, "i": 46341, "d": Decimal("-0.5"), "f": True, "s": " a "},
    {"a": 9, "b": Decimal("1000000.00"), "c": 3.0e-5, "i": 7, "d": Decimal("2.5"), "f": False, "s": None},
]
# Emulator faults, not engine semantics: set apart, never counted as agreement.
EMULATOR_FAULTS = {
    # The emulator's NUMERIC overflows far inside BigQuery's 29 integer digits:
    # CAST('0.125' AS NUMERIC) * 20322783.5136 fails with "Integer Overflow".
    "bigquery": ("Integer Overflow",),
    # fakesnow answers LTRIM(' a ') and RTRIM(' a ') with 'a' (both sides trimmed; Snowflake
    # trims one): so the corpus sent to it leaves LTRIM and RTRIM out.
    "snowflake": (),
}
# The emulator types a CASE (IF, COALESCE, NULLIF) over NUMERIC branches with the scale of a ROUND
# among them, and casts every branch to it: CASE WHEN ROUND(b, 1) > b THEN ROUND(b, 1) ELSE b END is
# 12.3 for b = 12.34 while the condition alone is false (BigQuery's NUMERIC has one scale, 9). The
# corpus sent to it leaves out a ROUND inside such a choice.
CHOICES = (exp.Case, exp.If, exp.Coalesce, exp.Nullif)


def corpus(seed: int = 5, size: int = 320) -> list[str]:
    """Expressions over the columns of ``TYPES``, the same every run."""
    draw = random.Random(seed)
    leaves = ["a", "b", "c", "i", "d", "0", "1", "-3", "2.50", "0.125", "7"]

    def number(depth: int) -> str:
        if depth == 0 or draw.random() < 0.3:
            return draw.choice(leaves)
        x, y = number(depth - 1), number(depth - 1)
        forms = [f"({x} + {y})", f"({x} - {y})", f"({x} * {y})", f"({x} / {y})", f"({x} // {y})", f"({x} % {y})"]
        forms += [f"abs({x})", f"round({x}, 1)", f"coalesce({x}, {y})", f"nullif({x}, {y})", f"greatest({x}, {y})"]
        forms += [f"case when {x} > {y} then {x} else {y} end", f"sqrt(abs({x}))", f"log(abs({x}) + 1)"]
        return draw.choice(forms)

    def condition() -> str:
        x, y = number(2), number(2)
        forms = [f"({x} > {y})", f"({x} = {y})", f"({x} between {y} and 100)", f"({x} in (1, 2, {y}))"]
        forms += [f"({x} is distinct from {y})", f"(f and {x} < {y})", f"(f or {x} >= {y})", "(not f)"]
        return draw.choice(forms)

    def text() -> str:
        x, y = draw.choice(["s", "'ab'", "''", "'É'"]), draw.choice(["s", "'x'", "' a '"])
        forms = [f"({x} || {y})", f"concat({x}, {y})", f"trim({y})", f"ltrim({y})", f"rtrim({y})"]
        forms += [f"substring({x}, 2)", f"substring({y}, 1, 2)", f"coalesce({x}, {y})", f"length({x})"]
        forms += [f"({x} like '%b')", f"({x} = {y})", f"({x} < {y})", f"nullif({x}, {y})"]
        return draw.choice(forms)

    found: dict[str, None] = {}
    while len(found) < size:
        found[draw.choice([number(3), number(3), condition(), text()])] = None
    return list(found)


CORPUS = corpus()


@pytest.fixture(params=("snowflake", "bigquery"))
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """An adapter of a fresh namespace on the engine, with the rows loaded as ``raw.row_values``."""
    name = request.param
    request.applymarker(getattr(pytest.mark, name))
    endpoint = request.getfixturevalue("fakesnow_server" if name == "snowflake" else "bigquery_server")
    settings = snowflake_settings(endpoint) if name == "snowflake" else bigquery_settings(endpoint)
    (tmp_path / "project.yml").write_text("name: corpus\ndialect: duckdb\n")
    write_profile(tmp_path, settings)
    with Context(tmp_path) as context:
        adapter = context.adapter
        adapter.ensure_schema("raw")
        schema = pa.schema([("id", pa.int64()), *ARROW.items()])
        rows = [{"id": number, **row} for number, row in enumerate(ROWS)]
        adapter.load_table(exp.table_("row_values", db="raw"), pa.Table.from_pylist(rows, schema))
        yield name, adapter


def accepted(sql: str, engine: str) -> exp.Expr | None:
    """The expression as an extract on ``engine`` writes it; None when refused (for the reader or the engine)."""
    parsed = sqlglot.parse_one(sql, read="duckdb")
    try:
        compile_expression(parsed, TYPES)
        check_engine(parsed, engine)
    except UnsupportedExpression:
        return None
    if engine == "snowflake" and any(isinstance(n, exp.Trim) and n.args.get("position") for n in parsed.walk()):
        return None  # fakesnow's LTRIM/RTRIM fault (EMULATOR_FAULTS)
    if engine == "bigquery" and any(r.find_ancestor(*CHOICES) for r in parsed.find_all(exp.Round)):
        return None  # the emulator's CASE scale fault (CHOICES)
    return engine_expression(dialects.float_division(parsed, "duckdb", engine), engine)


def reader_value(sql: str, row: dict[str, Any]) -> tuple[str, Any]:
    program = compile_expression(sqlglot.parse_one(sql, read="duckdb"), TYPES)
    try:
        return "value", evaluate(program, row)
    except EvaluationError as exc:
        return "error", str(exc)


def engine_values(adapter: Any, expressions: list[exp.Expr], rows: list[int]) -> dict[int, list[tuple[str, Any]]]:
    """Each row's values of ``expressions`` on the engine: one query for all, then narrower ones to
    place an error (a failed query fails every row it reads)."""
    table = exp.table_("row_values", db="raw")
    columns = [exp.alias_(e, f"v{n}") for n, e in enumerate(expressions)]
    query = exp.select(exp.column("id"), *columns).from_(table).where(exp.column("id").isin(*rows))
    try:
        found = adapter.fetch_arrow(query).to_pylist()
    except Exception as exc:  # the engine's error: split until it is one expression on one row
        if len(expressions) > 1:
            half = len(expressions) // 2
            left, right = (
                engine_values(adapter, expressions[:half], rows),
                engine_values(adapter, expressions[half:], rows),
            )
            return {row: left[row] + right[row] for row in rows}
        if len(rows) > 1:
            return {row: engine_values(adapter, expressions, [row])[row] for row in rows}
        return {rows[0]: [("error", str(exc).splitlines()[0])]}
    return {r["id"]: [("value", r[f"v{n}"]) for n in range(len(expressions))] for r in found}


def test_the_corpus_computes_the_readers_values(warehouse: Any) -> None:
    engine, adapter = warehouse
    chosen = [(sql, written) for sql in CORPUS if (written := accepted(sql, engine)) is not None]
    readable = [sql for sql in CORPUS if _readable(sql)]
    assert len(chosen) >= 150, f"only {len(chosen)} of {len(readable)} expressions run on {engine}"
    assert len(chosen) >= 0.6 * len(readable)  # the engine refuses few of what the reader takes
    values = engine_values(adapter, [written for _, written in chosen], list(range(len(ROWS))))
    differences, faults = [], 0
    for number, row in enumerate(ROWS):
        for (sql, written), theirs in zip(chosen, values[number], strict=True):
            ours = reader_value(sql, row)
            if theirs[0] == "error" and any(fault in theirs[1] for fault in EMULATOR_FAULTS[engine]):
                faults += 1
                continue
            agree = ours[0] == theirs[0] and (ours[0] == "error" or _same(ours[1], theirs[1]))
            if not agree:
                differences.append(f"{sql} -> {written.sql(engine)} on row {number}: reader {ours}, {engine} {theirs}")
    assert not differences, f"{len(differences)} differences:\n" + "\n".join(differences[:20])
    assert faults <= 0.01 * len(chosen) * len(ROWS), faults


def _readable(sql: str) -> bool:
    try:
        compile_expression(sqlglot.parse_one(sql, read="duckdb"), TYPES)
    except UnsupportedExpression:
        return False
    return True


def _same(ours: Any, theirs: Any) -> bool:
    """Equal values: a decimal equals the engine's decimal or exact integer, a double is bit for bit
    but for the sign of a zero (fakesnow stores -0.0 as 0.0; SQL compares them equal)."""
    if isinstance(ours, float) and isinstance(theirs, float) and ours == 0.0 == theirs:
        return True
    if isinstance(ours, Decimal) and isinstance(theirs, Decimal | int) and not isinstance(theirs, bool):
        return ours == theirs
    if isinstance(ours, int) and isinstance(theirs, Decimal):
        return Decimal(ours) == theirs
    return same(ours, theirs)


# -- end to end: a stored DECIMAL read through sync, on each engine --------------------------------

BALANCES = pa.table(
    {
        "user_id": pa.array([1, 2, 3, 4], pa.int64()),
        "ts": pa.array([datetime(2026, 1, 1)] * 4, pa.timestamp("us")),
        "balance": pa.array([Decimal("0.4567"), Decimal("1234.5"), Decimal("-0.0001"), None], pa.decimal128(12, 4)),
        "visits": pa.array([3, 0, 7, None], pa.int64()),
    }
)
ON_DEMAND = (
    "{{ config(kind='on_demand', request={'amount': 'decimal(12,2)'}) }}\n"
    "select request.amount / nullif(balances.balance, 0) as ratio,\n"
    "    balances.balance * request.amount + balances.visits as weighted,\n"
    "    balances.balance > request.amount as above\n"
    "from {{ ref('balances') }}\n"
)


def test_stored_decimals_keep_their_scale_through_sync(engine: Any, tmp_path: Path) -> None:
    """The reader types a stored DECIMAL(12,4) by its real scale on each engine (Snowflake's schema says
    NUMBER, BigQuery's NUMERIC: both bare), so it answers what the extract computes there."""
    snapshot = (
        "{{ config(entity='user', timestamp='ts', online=true) }}\n"
        "select user_id, ts, balance, visits from {{ source('raw', 'balances') }}\n"
    )
    project = write_project(
        tmp_path / "decimals",
        "decimals",
        entities={"user": {"user_id": "bigint"}},
        tables={"balances": {}},
        models={"balances": snapshot, "scaled": ON_DEMAND},
        profile=engine.target(tmp_path),
        dialect=None,
    )
    with Context(project) as context:
        context.adapter.ensure_schema("raw")
        context.adapter.load_table(exp.table_("balances", db="raw"), BALANCES)
    runner = CliRunner()
    for args in (["run"], ["sync", "--now", "2026-01-02"]):
        result = runner.invoke(command, ["--project-dir", str(project), *args])
        assert result.exit_code == 0, result.output
    import featuresql

    spine = pa.table(
        {
            "user_id": pa.array([1, 2, 3, 4], pa.int64()),
            "ts": pa.array([datetime(2026, 1, 2)] * 4, pa.timestamp("us")),
            "amount": pa.array(
                [Decimal("150.00"), Decimal("0.01"), Decimal("-2.50"), Decimal(1)], pa.decimal128(12, 2)
            ),
        }
    )
    offline = featuresql.extract(spine, ["scaled"], project_dir=project).to_pylist()
    manifest = Manifest.load(project / "target" / "online" / "dev" / "manifest.json")
    reader = Reader(manifest, open_table(manifest.store), clock=lambda: datetime(2026, 1, 2, tzinfo=UTC).timestamp())
    entities = [{"user_id": row["user_id"], "amount": str(row["amount"])} for row in spine.to_pylist()]
    status, body = reader.answer({"features": ["scaled"], "entities": entities})
    assert status == 200, body
    online = json.loads(body, parse_float=Decimal)["results"]
    assert offline[0]["scaled__ratio"] == pytest.approx(150 / 0.4567, rel=1e-12)  # the scale kept, not 0.4567 -> 0
    for row, result in zip(offline, online, strict=True):
        for name in ("scaled__ratio", "scaled__weighted", "scaled__above"):
            ours, theirs = result["features"][name], row[name]
            if isinstance(theirs, float):
                assert float(ours) == pytest.approx(theirs, rel=1e-15), (name, row, result)  # the engines' doubles
            else:
                assert ours == theirs, (name, row, result)
