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

    @property
    def null_ordering(self) -> str:
        """Where NULLs sort when ORDER BY says nothing: sqlglot's ``NULL_ORDERING`` of the dialect."""
        return str(Dialect.get_or_raise(self.name).NULL_ORDERING)


def _call(name: str, *arguments: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=list(arguments))


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
