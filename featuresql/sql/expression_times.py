"""Timestamps and dates in on-demand expressions: compiling them (``featuresql.sql.expressions``).

DuckDB's rules, which the evaluator follows (``featuresql.serving.expression_times``):

- ``TIMESTAMP '2026-06-30 10:00:00'`` and ``DATE '2026-06-30'`` literals; ``CAST`` between
  TIMESTAMP and DATE (a timestamp's date; a date's midnight);
- ``x + INTERVAL n unit`` and ``x - INTERVAL n unit`` with an integer ``n`` and a unit from
  microsecond to year: months first, the day kept within the month (January 31 plus one
  month is February's last day); a DATE plus an interval is a TIMESTAMP;
- ``DATE_DIFF('unit', start, end)`` (``DATEDIFF``): the unit boundaries crossed from start
  to end: whole months, quarters and years by the calendar, weeks as whole 7-day spans,
  smaller units by flooring both times to the unit;
- ``EXTRACT(part FROM x)`` and ``YEAR``/``MONTH``/``DAY``: a BIGINT, but ``epoch`` (seconds
  as a DOUBLE); ``DATE_TRUNC('unit', x)``: a TIMESTAMP;
- comparisons of a DATE with a TIMESTAMP read the date as its midnight.

Times are UTC without a zone; the reader handles years 1 to 9999 (a result outside them
is an error there).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlglot import exp

Program = list[Any]  # [op, type, *arguments], as in featuresql.sql.expressions
Compile = Callable[[exp.Expr], Program]

TIME_KINDS = ("timestamp", "date")
# An interval's unit as (months, days, microseconds) per unit.
INTERVAL_UNITS = {
    "microsecond": (0, 0, 1),
    "millisecond": (0, 0, 1_000),
    "second": (0, 0, 1_000_000),
    "minute": (0, 0, 60_000_000),
    "hour": (0, 0, 3_600_000_000),
    "day": (0, 1, 0),
    "week": (0, 7, 0),
    "month": (1, 0, 0),
    "quarter": (3, 0, 0),
    "year": (12, 0, 0),
}
DIFF_UNITS = tuple(INTERVAL_UNITS)
EXTRACT_PARTS = (
    *("year", "quarter", "month", "day", "hour", "minute", "second", "millisecond", "microsecond"),
    *("dow", "isodow", "doy", "week", "epoch"),
)
TRUNC_UNITS = ("year", "quarter", "month", "week", "day", "hour", "minute", "second")


class TimeError(Exception):
    """A time construct outside the subset: ``construct`` and ``message`` as UnsupportedExpression's."""

    def __init__(self, construct: str, message: str):
        super().__init__(message)
        self.construct = construct
        self.message = message


def literal(node: exp.Cast, kind: str) -> Program:
    """``TIMESTAMP '...'`` or ``DATE '...'``, checked and written in ISO form."""
    text = node.this.this
    try:
        if kind == "date":
            return ["lit", "date", date.fromisoformat(text).isoformat()]
        value = datetime.fromisoformat(text)
    except ValueError:
        raise TimeError(node.sql("duckdb"), f"{text!r} is not a {kind.upper()} such as '2026-06-30 10:00:00'") from None
    if value.tzinfo is not None:
        raise TimeError(node.sql("duckdb"), f"{text!r} has a zone: on-demand timestamps are UTC without one")
    return ["lit", "timestamp", value.isoformat()]


def shift(node: exp.Add | exp.Sub, compile: Compile) -> Program | None:
    """``time ± INTERVAL n unit`` (None when neither side is an interval)."""
    interval = node.expression if isinstance(node.expression, exp.Interval) else None
    if interval is None:
        if isinstance(node.this, exp.Interval):
            raise TimeError(node.sql("duckdb"), f"{node.sql('duckdb')}: write the time first, then ± INTERVAL")
        return None
    value = _time(node.this, compile)
    count, unit = _interval(interval)
    sign = -1 if isinstance(node, exp.Sub) else 1
    months, days, micros = (sign * count * part for part in INTERVAL_UNITS[unit])
    return ["shift", "timestamp", value, months, days, micros]


def date_diff(node: exp.DateDiff, compile: Compile) -> Program:
    unit = _unit(node, node.args.get("unit"), DIFF_UNITS)
    start, end = _time(node.expression, compile), _time(node.this, compile)
    return ["date_diff", "int64", unit, start, end]


def extract(node: exp.Expr, compile: Compile, part: str | None = None) -> Program:
    """``EXTRACT(part FROM x)``, or ``YEAR(x)`` and the like with their ``part``."""
    if part is None:
        part = _unit(node, node.this, EXTRACT_PARTS)
        value = _time(node.expression, compile)
    else:
        value = _time(node.this, compile)
    return ["extract", "float" if part == "epoch" else "int64", part, value]


def truncate(node: exp.Expr, compile: Compile) -> Program:
    unit = _unit(node, node.args.get("unit"), TRUNC_UNITS)
    return ["trunc", "timestamp", unit, _time(node.this, compile)]


def cast(node: exp.Cast, kind: str, compile: Compile) -> Program:
    """CAST to TIMESTAMP or DATE: of a string literal (a literal), or between the two."""
    if isinstance(node.this, exp.Literal) and node.this.is_string:
        return literal(node, kind)
    value = compile(node.this)
    if value[1] not in (*TIME_KINDS, "null"):
        raise TimeError(
            node.sql("duckdb"), f"{node.sql('duckdb')}: a {value[1]} is not cast to {kind.upper()} (only a literal)"
        )
    return value if value[1] == kind else ["cast", kind, value]


def _time(node: exp.Expr, compile: Compile) -> Program:
    """A TIMESTAMP or DATE operand; a bare NULL has no type there (DuckDB cannot bind it): refused."""
    value = compile(node)
    if value[1] not in TIME_KINDS:
        what = "NULL without a type: write CAST(NULL AS TIMESTAMP)" if value[1] == "null" else f"a {value[1]}"
        raise TimeError(node.sql("duckdb"), f"{node.sql('duckdb')} is {what}, not a TIMESTAMP or DATE")
    return value


def _interval(interval: exp.Interval) -> tuple[int, str]:
    text = interval.this.name if interval.this is not None else ""
    unit = (interval.unit.name if interval.unit is not None else "").lower().removesuffix("s")
    if not text.lstrip("-").isdigit() or unit not in INTERVAL_UNITS:
        raise TimeError(
            interval.sql("duckdb"),
            f"{interval.sql('duckdb')}: write INTERVAL <whole number> <unit>, a unit among {', '.join(INTERVAL_UNITS)}",
        )
    return int(text), unit


def _unit(node: exp.Expr, unit: exp.Expr | None, known: tuple[str, ...]) -> str:
    name = (unit.name if unit is not None else "").lower().removesuffix("s")
    if name not in known:
        raise TimeError(node.sql("duckdb"), f"{node.sql('duckdb')}: the unit is one of {', '.join(known)}")
    return name
