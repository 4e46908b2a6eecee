"""SQL constructs whose spelling differs per engine, each built in one place.

Everything else featuresql generates is dialect-neutral sqlglot AST rendered by
sqlglot's generators. Keep a new difference here, next to its siblings, with
the reason it exists.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlglot import exp

MICROS = 1_000_000


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
    # BigQuery's TIMESTAMP is the zoned type (sqlglot spells it TIMESTAMPTZ); its DATETIME
    # does not compare with TIMESTAMP columns. Elsewhere a zone-less UTC TIMESTAMP.
    kind = "TIMESTAMPTZ" if dialect == "bigquery" else "TIMESTAMP"
    return exp.cast(exp.Literal.string(text), exp.DataType.build(kind))


def ordered(expression: exp.Expr, dialect: str, *, desc: bool = False) -> exp.Ordered:
    """An ORDER BY key over non-NULL values, written without a NULLS clause on every engine."""
    # sqlglot compares the key's null ordering with the target's default and warns
    # (or adds NULLS FIRST/LAST) when they differ, so state each engine's default.
    nulls_first = {"snowflake": desc, "bigquery": not desc}.get(dialect, False)
    return exp.Ordered(this=expression, desc=desc or None, nulls_first=nulls_first)
