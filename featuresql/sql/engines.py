"""The engines featuresql writes SQL for: one registry that every module reads.

An engine is a profiles.yml ``type``: its adapter (``module:Class``, imported
only when a target of that type opens) and what featuresql must know of its SQL
that sqlglot does not say. The list of engines, of project dialects and of the
dialects a type name is read in all come from here.

Dialect facts are data in two places, never ``if dialect ==`` ladders:

- what sqlglot keeps per dialect is read from sqlglot (``null_ordering``: where
  NULLs sort by default);
- what featuresql needs spelled exactly (epoch microseconds, a timestamp from
  epoch seconds, the event-time type, a zoned time as UTC) or knows of an
  engine's types (the result type of ``/``) is a field of ``Engine``. sqlglot
  transpiles these constructs, but not always to the same meaning: its
  ``UnixMicros`` is not a Snowflake function, and its ``UnixToTime`` gives DuckDB a
  zoned TIMESTAMPTZ where event times are zone-less.

How an engine widens an exact number (``widen``) is such a field too: sums of
squares of integers and decimals must not overflow a narrow type, and the widening
must keep the input's scale, which only the engine knows at run time.

A third-party adapter (entry point ``featuresql.adapters``) names one of these
dialects in its ``dialect`` attribute: featuresql writes that dialect's SQL for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from featuresql.errors import ConfigError, closest

MICROS = 1_000_000
Build = Callable[[exp.Expr], exp.Expr]


@dataclass(frozen=True)
class Engine:
    """One engine: its adapter and the exact spellings featuresql's SQL relies on."""

    name: str  # the profiles.yml ``type`` and the sqlglot dialect
    adapter: str  # ``module:Class`` of its WarehouseAdapter
    epoch_micros: Build  # whole microseconds since the epoch of a UTC timestamp
    from_epoch_seconds: Build  # a UTC timestamp of the event-time type from whole epoch seconds
    as_utc: Build  # a zoned timestamp as the event-time type
    event_time: str  # the type of event times and boundaries, as sqlglot names it
    division_is_double: bool  # ``/`` returns DOUBLE for integers and decimals alike (DuckDB)
    widen: Build  # an integer or decimal column as the engine's widest exact number, its scale kept

    @property
    def null_ordering(self) -> str:
        """Where NULLs sort when ORDER BY says nothing: sqlglot's ``NULL_ORDERING`` of the dialect."""
        return str(Dialect.get_or_raise(self.name).NULL_ORDERING)


def _call(name: str, *arguments: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=list(arguments))


def _times_wide_one(column: exp.Expr) -> exp.Expr:
    """``column * CAST(1 AS DECIMAL(38, 0))``: DECIMAL(38, s) for a DECIMAL(p, s) or an integer (s = 0).

    A CAST would have to name the scale, and the type sqlglot infers for an expression is
    not always the engine's; the product's type is, by the engine's own rules (precision
    38, the scales added). Its products then overflow only past 38 digits, with an error.
    """
    one = exp.cast(exp.Literal.number(1), exp.DataType.build("DECIMAL(38, 0)"))
    return exp.Mul(this=column, expression=one)


ENGINES: dict[str, Engine] = {
    engine.name: engine
    for engine in (
        Engine(
            name="duckdb",
            adapter="featuresql.adapters.duckdb:DuckDBAdapter",
            epoch_micros=lambda ts: exp.func("EPOCH_US", ts),
            from_epoch_seconds=lambda s: exp.func(
                "MAKE_TIMESTAMP", exp.Mul(this=exp.paren(s), expression=exp.Literal.number(MICROS))
            ),
            as_utc=lambda zoned: exp.AtTimeZone(this=zoned, zone=exp.Literal.string("UTC")),
            event_time="TIMESTAMP",
            division_is_double=True,
            widen=_times_wide_one,  # BIGINT * BIGINT overflows at 2^63, DECIMAL(12, 2) squared at 10^14
        ),
        Engine(
            name="snowflake",
            adapter="featuresql.adapters.snowflake:SnowflakeAdapter",
            # DATE_PART(EPOCH_MICROSECOND, ...) is exact; sqlglot's TimeToUnix would give seconds.
            epoch_micros=lambda ts: _call("DATE_PART", exp.var("EPOCH_MICROSECOND"), ts),
            from_epoch_seconds=lambda s: exp.func("TO_TIMESTAMP_NTZ", s, exp.Literal.number(0)),
            as_utc=lambda zoned: exp.cast(
                _call("CONVERT_TIMEZONE", exp.Literal.string("UTC"), zoned),
                exp.DataType.build("TIMESTAMP_NTZ", dialect="snowflake"),
            ),
            event_time="TIMESTAMP",
            division_is_double=False,  # NUMBER stays fixed-point: 3 / 7 is 0.428571
            # Every NUMBER computes with 38 digits already; the product only states it.
            widen=_times_wide_one,
        ),
        Engine(
            name="bigquery",
            adapter="featuresql.adapters.bigquery:BigQueryAdapter",
            epoch_micros=lambda ts: exp.func("UNIX_MICROS", ts),
            from_epoch_seconds=lambda s: exp.func("TIMESTAMP_SECONDS", s),
            as_utc=lambda zoned: zoned,  # BigQuery's TIMESTAMP is an instant already
            # BigQuery's TIMESTAMP is the zoned type (sqlglot spells it TIMESTAMPTZ), and its
            # DATETIME does not compare with TIMESTAMP columns, so TIMESTAMP it is there.
            event_time="TIMESTAMPTZ",
            division_is_double=False,  # NUMERIC / NUMERIC is NUMERIC
            # NUMERIC: 38 digits, 9 of them after the point, whatever the input's scale (an INT64
            # squared overflows at 2^63). A product is rounded to 9 decimals: exact up to scale 4.
            widen=lambda column: exp.cast(column, exp.DataType.build("DECIMAL")),
        ),
    )
}
DIALECTS: tuple[str, ...] = tuple(ENGINES)  # the dialects a project's SQL may be written in
DEFAULT_ENGINE = "duckdb"  # the embedded default target: a DuckDB file under target/


def engine(dialect: str) -> Engine:
    """The engine of a dialect; a ConfigError for one featuresql writes no SQL for."""
    found = ENGINES.get(dialect)
    if found is None:
        raise ConfigError(
            f"featuresql writes no SQL for dialect {dialect!r}{closest(dialect, list(ENGINES))}: "
            f"an adapter's dialect is one of {', '.join(ENGINES)}"
        )
    return found
