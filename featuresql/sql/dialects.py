"""SQL constructs whose spelling differs per engine, each built in one place.

Everything else featuresql generates is dialect-neutral sqlglot AST rendered by
sqlglot's generators. The per-engine facts these constructs read are data in
``featuresql.sql.engines`` (an unknown dialect is an error there, never a silent
DuckDB spelling). Keep a new difference here, next to its siblings, with the
reason it exists.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TypeVar

from sqlglot import exp

from featuresql.sql.engines import MICROS, engine
from featuresql.times import utc

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
    return engine(dialect).epoch_micros(timestamp)


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
    return engine(dialect).from_epoch_seconds(seconds)


def utc_timestamp(zoned: exp.Expr, dialect: str) -> exp.Expr:
    """A zoned timestamp as the engine's event-time type (zone-less UTC; BigQuery: TIMESTAMP)."""
    return engine(dialect).as_utc(zoned)


def timestamp_literal(value: datetime, dialect: str) -> exp.Expr:
    """A UTC timestamp constant of the engine's event-time type; naive datetimes are read as UTC."""
    text = utc(value).strftime("%Y-%m-%d %H:%M:%S.%f")
    return exp.cast(exp.Literal.string(text), event_time_type(dialect))


def seconds_literal(seconds: int, dialect: str) -> exp.Expr:
    """The UTC timestamp constant of whole epoch seconds (an interval bound), of the event-time type."""
    return timestamp_literal(datetime.fromtimestamp(seconds, UTC), dialect)


def time_in_span(time: exp.Expr, lo: int | None, hi: int, dialect: str) -> exp.Expr:
    """``lo <= time < hi`` for epoch seconds ``lo`` and ``hi`` (no lower bound when ``lo`` is None)."""
    upper = time.copy() < seconds_literal(hi, dialect)
    return upper if lo is None else exp.and_(time.copy() >= seconds_literal(lo, dialect), upper)


def event_time_type(dialect: str) -> exp.DataType:
    """The type of event times and boundaries: a zone-less UTC TIMESTAMP, except on BigQuery."""
    return exp.DataType.build(engine(dialect).event_time)


def widen(column: exp.Expr, dialect: str) -> exp.Expr:
    """An integer or decimal column as the engine's widest exact number, its scale kept.

    Sums of squares are computed on it: they overflow (with an error, never silently)
    only past 38 digits on DuckDB and Snowflake, 29 before the point on BigQuery.
    """
    return engine(dialect).widen(column)


def ordered(expression: exp.Expr, dialect: str, *, desc: bool = False) -> exp.Ordered:
    """An ORDER BY key over non-NULL values, written without a NULLS clause on every engine.

    sqlglot compares the key's null ordering with the target's default and warns (or
    adds NULLS FIRST/LAST) when they differ, so the key states the dialect's default,
    as sqlglot records it.
    """
    nulls_first = {
        "nulls_are_small": not desc,
        "nulls_are_large": desc,
        "nulls_are_last": False,
    }[engine(dialect).null_ordering]
    return exp.Ordered(this=expression, desc=desc or None, nulls_first=nulls_first)


def float_division(expression: E, read: str, write: str) -> E:
    """Give ``/`` of a model written for DuckDB the same result type on the target.

    DuckDB's ``/`` always returns DOUBLE, for integers and decimals alike, where
    Snowflake returns a fixed-point NUMBER (``3 / 7`` is 0.428571) and BigQuery
    NUMERIC for NUMERIC operands; sqlglot copies ``/`` unchanged. So the dividend
    becomes DOUBLE on those targets, and a ratio of decimal sums agrees to the last
    digits on every engine (tests/test_conformance.py, ``user_spend_ratios``).
    """
    if not engine(read).division_is_double or engine(write).division_is_double:
        return expression
    double = exp.DataType.build("DOUBLE")
    for division in list(expression.find_all(exp.Div)):
        dividend = division.this
        if not (isinstance(dividend, exp.Cast) and dividend.to.is_type(*exp.DataType.REAL_TYPES)):
            division.set("this", exp.cast(dividend, double))
    return expression
