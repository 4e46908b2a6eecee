"""Timestamps and dates in on-demand programs, as DuckDB computes them (stdlib only).

A TIMESTAMP is a ``datetime`` without a zone (UTC), a DATE a ``date``. The rules are in
``featuresql.sql.expression_times``; ``tests/test_expressions.py`` checks them against
DuckDB. Python's times end at year 9999 (DuckDB's go further): a result past that is an
``EvaluationError``, never a wrong value.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from featuresql.serving.expression_errors import EvaluationError

_EPOCH = datetime(1970, 1, 1)
_MICROS = {"microsecond": 1, "millisecond": 1_000, "second": 1_000_000, "minute": 60_000_000}
_MICROS |= {"hour": 3_600_000_000, "day": 86_400_000_000}


def as_time(value: Any, kind: str) -> Any:
    """A value of a TIMESTAMP or DATE column: a ``datetime``/``date``, from its ISO text if need be
    (stored items and requests carry times as text, ``2026-06-30T10:00:00Z``)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
    if kind == "date" and isinstance(value, datetime):
        return value.date()
    if kind == "timestamp" and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    return value


def cast(kind: str, value: Any) -> Any:
    return as_time(value, kind)


def shift(kind: str, arguments: Sequence[Any], values: Mapping[str, Any], evaluate: Callable[..., Any]) -> Any:
    """``time ± INTERVAL``: months first (the day kept within the month), then days and microseconds."""
    value = evaluate(arguments[0], values)
    if value is None:
        return None
    months, days, micros = arguments[1:]
    moment = as_time(value, "timestamp")
    try:
        if months:
            moment = _add_months(moment, months)
        return moment + timedelta(days=days, microseconds=micros)
    except (OverflowError, ValueError):
        raise EvaluationError(f"{moment} shifted is outside the years 1 to 9999") from None


def date_diff(kind: str, arguments: Sequence[Any], values: Mapping[str, Any], evaluate: Callable[..., Any]) -> Any:
    """DATE_DIFF(unit, start, end): the unit boundaries crossed from start to end."""
    unit = arguments[0]
    start, end = evaluate(arguments[1], values), evaluate(arguments[2], values)
    if start is None or end is None:
        return None
    first, last = as_time(start, "timestamp"), as_time(end, "timestamp")
    if unit in ("month", "quarter", "year"):
        per = {"month": 1, "quarter": 3, "year": 12}[unit]
        if per == 3:
            return (last.year * 4 + (last.month - 1) // 3) - (first.year * 4 + (first.month - 1) // 3)
        return (last.year * 12 + last.month - 1) // per - (first.year * 12 + first.month - 1) // per
    if unit == "week":
        days = _floor(last, _MICROS["day"]) - _floor(first, _MICROS["day"])
        return int(days / 7)  # whole weeks, toward zero
    return _floor(last, _MICROS[unit]) - _floor(first, _MICROS[unit])


def extract(kind: str, arguments: Sequence[Any], values: Mapping[str, Any], evaluate: Callable[..., Any]) -> Any:
    part, value = arguments[0], evaluate(arguments[1], values)
    if value is None:
        return None
    moment = as_time(value, "timestamp")
    if part == "epoch":
        return float(epoch_micros(moment)) / 1_000_000  # a double first, as DuckDB: past 2^53 µs it rounds
    simple = {
        "year": moment.year,
        "quarter": (moment.month - 1) // 3 + 1,
        "month": moment.month,
        "day": moment.day,
        "hour": moment.hour,
        "minute": moment.minute,
        "second": moment.second,
        "millisecond": moment.second * 1_000 + moment.microsecond // 1_000,
        "microsecond": moment.second * 1_000_000 + moment.microsecond,
        "dow": moment.isoweekday() % 7,
        "isodow": moment.isoweekday(),
        "doy": moment.timetuple().tm_yday,
        "week": moment.isocalendar()[1],
    }
    return simple[part]


def truncate(kind: str, arguments: Sequence[Any], values: Mapping[str, Any], evaluate: Callable[..., Any]) -> Any:
    unit, value = arguments[0], evaluate(arguments[1], values)
    if value is None:
        return None
    moment = as_time(value, "timestamp")
    if unit == "year":
        return datetime(moment.year, 1, 1)
    if unit == "quarter":
        return datetime(moment.year, (moment.month - 1) // 3 * 3 + 1, 1)
    if unit == "month":
        return datetime(moment.year, moment.month, 1)
    if unit == "week":  # to the Monday
        monday = moment.date() - timedelta(days=moment.weekday())
        return datetime(monday.year, monday.month, monday.day)
    step = _MICROS[unit]
    return _EPOCH + timedelta(microseconds=_floor(moment, step) * step)


def to_text(value: date) -> str:
    """A time as the reader writes it: ISO, a timestamp with ``Z`` (as stored timestamp features)."""
    return value.isoformat() + "Z" if isinstance(value, datetime) else value.isoformat()


def epoch_micros(moment: datetime) -> int:
    """A TIMESTAMP (UTC, no zone) in microseconds since the epoch, exactly."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _floor(moment: datetime, step: int) -> int:
    return epoch_micros(moment) // step


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1]) if 1 <= year <= 9999 else moment.day
    return moment.replace(year=year, month=month + 1, day=day)
