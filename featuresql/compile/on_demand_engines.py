"""On-demand expressions on Snowflake and BigQuery, with the reader's (DuckDB's) results.

The reader evaluates on-demand features as DuckDB does (``featuresql.serving.expressions``),
so an extract on another engine must compute the same values. sqlglot transpiles the
syntax; where the engines' semantics differ, the SQL is rewritten here, or the construct
is refused at compile time for that target. Each rule comes from the corpus run on the
engines (``tests/test_on_demand_engines.py``):

- one-argument ``LOG`` is base 10 in DuckDB, the natural logarithm elsewhere: written ``LOG(10, x)``;
- BigQuery reads ``2.50`` as a FLOAT64, DuckDB as an exact DECIMAL(3,2): written ``CAST('2.50'
  AS NUMERIC)``;
- BigQuery's ``/`` fails on a zero divisor where DuckDB's gives IEEE infinities and NaN:
  written ``IEEE_DIVIDE``, which does the same (the dividend is a double already);
- refused on both: ``//`` and ``%``, whose rounding and sign rules differ from DuckDB's on
  decimals and doubles, and ``LOWER``/``UPPER`` (DuckDB's per-code-point case mapping, not
  checked against theirs: the emulators are not the engines' Unicode tables); on BigQuery
  also ``GREATEST`` and ``LEAST`` (NULL there when any
  argument is NULL; DuckDB skips NULLs; Snowflake's ``*_IGNORE_NULLS`` match DuckDB); and on
  both, the time functions, intervals and time literals (unchecked there so far); comparing
  time columns is allowed.

Known and left as they are (README, On-demand features): a division by zero on
Snowflake fails the extract where the reader answers infinity or NaN; an integer
overflow DuckDB refuses (a 32-bit INTEGER product) may be a value on engines whose
integers are 64-bit.
"""

from __future__ import annotations

from sqlglot import exp

from featuresql.sql.expressions import UnsupportedExpression

_CASES = "DuckDB (the reader) maps each code point's case on its own (ß to ẞ), the engine's mapping is unchecked"
_TIMES = "time arithmetic is checked against DuckDB (the reader) only, not yet against this engine"
_TIME_FUNCTIONS: tuple[type[exp.Expr], ...] = (exp.Interval, exp.DateDiff, exp.Extract, exp.TimestampTrunc)
_TIME_FUNCTIONS += (exp.DateTrunc, exp.Year, exp.Month, exp.Day)
_TIME_TYPES = (exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPNTZ, exp.DataType.Type.DATE)
_REFUSED: dict[str, dict[type[exp.Expr], str]] = {
    "snowflake": {
        exp.IntDiv: "its rounding differs from DuckDB's (the reader's) on Snowflake",
        exp.Mod: "its sign and type rules differ from DuckDB's (the reader's) on Snowflake",
        exp.Lower: _CASES,
        exp.Upper: _CASES,
    },
    "bigquery": {
        exp.IntDiv: "its rounding differs from DuckDB's (the reader's) on BigQuery",
        exp.Mod: "its sign and type rules differ from DuckDB's (the reader's) on BigQuery",
        exp.Greatest: "BigQuery's is NULL when any argument is NULL, DuckDB's (the reader's) skips NULLs",
        exp.Least: "BigQuery's is NULL when any argument is NULL, DuckDB's (the reader's) skips NULLs",
        exp.Lower: _CASES,
        exp.Upper: _CASES,
    },
}


def check_engine(expression: exp.Expr, dialect: str) -> None:
    """Refuse what ``dialect`` cannot compute as the reader does (``UnsupportedExpression``)."""
    refused = _REFUSED.get(dialect, {})
    if refused:
        refused = refused | dict.fromkeys(_TIME_FUNCTIONS, _TIMES)
    for node in expression.walk():
        reason = refused.get(type(node))
        if reason is None and refused and isinstance(node, exp.Cast) and node.to.is_type(*_TIME_TYPES):
            reason = _TIMES
        if reason is not None:
            sql = node.sql("duckdb")
            raise UnsupportedExpression(sql, f"{sql} cannot be used in an on-demand feature on {dialect}: {reason}")


def engine_expression(expression: exp.Expr, dialect: str) -> exp.Expr:
    """``expression`` (DuckDB's semantics) rewritten so ``dialect`` computes the reader's values."""

    def rewrite(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Log) and node.args.get("expression") is None:
            return exp.Log(this=exp.Literal.number(10), expression=node.this)
        if dialect != "bigquery":
            return node
        if isinstance(node, exp.Literal) and not node.is_string and "." in node.this and "e" not in node.this.lower():
            return exp.cast(exp.Literal.string(node.this), exp.DataType.build("NUMERIC", dialect="bigquery"))
        if isinstance(node, exp.Div):
            return exp.Anonymous(this="IEEE_DIVIDE", expressions=[node.this, node.expression])
        return node

    # sqlglot's transform does not descend into a node it replaced: repeat until nothing changes
    # (every rule is idempotent), so nested divisions and logarithms are rewritten too
    rewritten, previous = expression.copy(), None
    while previous is None or rewritten != previous:
        previous, rewritten = rewritten, rewritten.transform(rewrite)
    return rewritten
