"""SQL constructs whose spelling differs per engine, each built in one place.

Everything else featuresql generates is dialect-neutral sqlglot AST rendered by
sqlglot's generators. Keep a new difference here, next to its siblings, with
the reason it exists.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TypeVar

from sqlglot import exp

MICROS = 1_000_000
E = TypeVar("E", bound=exp.Expr)
_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def identifier(name: str) -> exp.Identifier:
    """A column name as written by a user, quoted only when it must be.

    Plain lower-case names stay unquoted, so each engine resolves them its own way
    (Snowflake folds them to upper case, as it did when the table was created);
    names with capitals or other characters are quoted to keep them exact (sqlglot's
    generators quote reserved words by themselves).
    """
    return exp.to_identifier(name, quoted=not _PLAIN_NAME.fullmatch(name))


def epoch_micros(timestamp: exp.Expr, dialect: str) -> exp.Expr:
    """Whole microseconds since the Unix epoch (UTC) of a timestamp expression."""
    if dialect == "bigquery":
        return exp.func("UNIX_MICROS", timestamp)
    if dialect == "snowflake":
        # DATE_PART(EPOCH_MICROSECOND, ...) is exact; sqlglot's TimeToUnix would give seconds.
        return exp.Anonymous(this="DATE_PART", expressions=[exp.var("EPOCH_MICROSECOND"), timestamp])
    return exp.func("EPOCH_US", timestamp)


def floor_div(value: exp.Expr, divisor: int) -> exp.Expr:
    """Exact floor division of integers (rounding towards minus infinity on every engine).

    Engines disagree on integer division of negative numbers (DuckDB and
    BigQuery truncate), so subtract the non-negative remainder first: the
    division is then exact and any rounding mode agrees.
    """
    size = exp.Literal.number(divisor)
    remainder = exp.Mod(
        this=exp.paren(exp.Add(this=exp.Mod(this=value.copy(), expression=size), expression=size.copy())),
        expression=size.copy(),
    )
    return exp.IntDiv(this=exp.paren(exp.Sub(this=value, expression=remainder)), expression=size.copy())


def tile_index(timestamp: exp.Expr, grain_seconds: int, dialect: str) -> exp.Expr:
    """The epoch-aligned tile of ``grain_seconds`` that a timestamp falls in."""
    return floor_div(epoch_micros(timestamp, dialect), grain_seconds * MICROS)


def seconds_to_timestamp(seconds: exp.Expr, dialect: str) -> exp.Expr:
    """A UTC timestamp (zone-less where the engine has both) from whole epoch seconds."""
    if dialect == "bigquery":
        return exp.func("TIMESTAMP_SECONDS", seconds)
    if dialect == "snowflake":
        return exp.func("TO_TIMESTAMP_NTZ", seconds, exp.Literal.number(0))
    return exp.func("MAKE_TIMESTAMP", exp.Mul(this=exp.paren(seconds), expression=exp.Literal.number(MICROS)))


def utc_timestamp(zoned: exp.Expr, dialect: str) -> exp.Expr:
    """A zoned timestamp as the engine's event-time type (zone-less UTC; BigQuery: TIMESTAMP)."""
    if dialect == "bigquery":
        return zoned  # BigQuery's TIMESTAMP is an instant already
    if dialect == "snowflake":
        utc = exp.Anonymous(this="CONVERT_TIMEZONE", expressions=[exp.Literal.string("UTC"), zoned])
        return exp.cast(utc, exp.DataType.build("TIMESTAMP_NTZ", dialect="snowflake"))
    return exp.AtTimeZone(this=zoned, zone=exp.Literal.string("UTC"))


def timestamp_literal(value: datetime, dialect: str) -> exp.Expr:
    """A UTC timestamp constant of the engine's event-time type; naive datetimes are read as UTC."""
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    text = value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return exp.cast(exp.Literal.string(text), event_time_type(dialect))


def event_time_type(dialect: str) -> exp.DataType:
    """The type of event times and boundaries: a zone-less UTC TIMESTAMP, except on BigQuery.

    BigQuery's TIMESTAMP is the zoned type (sqlglot spells it TIMESTAMPTZ), and its
    DATETIME does not compare with TIMESTAMP columns, so TIMESTAMP it is there.
    """
    return exp.DataType.build("TIMESTAMPTZ" if dialect == "bigquery" else "TIMESTAMP")


def ordered(expression: exp.Expr, dialect: str, *, desc: bool = False) -> exp.Ordered:
    """An ORDER BY key over non-NULL values, written without a NULLS clause on every engine."""
    # sqlglot compares the key's null ordering with the target's default and warns
    # (or adds NULLS FIRST/LAST) when they differ, so state each engine's default.
    nulls_first = {"snowflake": desc, "bigquery": not desc}.get(dialect, False)
    return exp.Ordered(this=expression, desc=desc or None, nulls_first=nulls_first)


def float_division(expression: E, read: str, write: str) -> E:
    """Give ``/`` of a model written for DuckDB the same result type on the target.

    DuckDB's ``/`` always returns DOUBLE, for integers and decimals alike, where
    Snowflake returns a fixed-point NUMBER (``3 / 7`` is 0.428571) and BigQuery
    NUMERIC for NUMERIC operands; sqlglot copies ``/`` unchanged. So the dividend
    becomes DOUBLE on those targets, and a ratio of decimal sums agrees to the last
    digits on every engine (tests/test_conformance.py, ``user_spend_ratios``).
    """
    if read != "duckdb" or write == "duckdb":
        return expression
    double = exp.DataType.build("DOUBLE")
    for division in list(expression.find_all(exp.Div)):
        dividend = division.this
        if not (isinstance(dividend, exp.Cast) and dividend.to.is_type(*exp.DataType.REAL_TYPES)):
            division.set("this", exp.cast(dividend, double))
    return expression
