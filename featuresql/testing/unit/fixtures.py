"""Fixture tables of a unit test: their column types, and their rows as INSERT ... VALUES.

A source's table has the column types declared in sources.yml (written in the
project dialect, transpiled by sqlglot); a column it does not declare takes
the type of its values (``infer_type``), unless the input's ``columns:``
names one. An upstream model's table is created by the model's own query, so
its rows are cast to the types the engine reports for it.

Every YAML value is first checked against its column's type family
(``coerce``: a bad value is an error naming the row's line), then written as a
literal of exactly that value (``literal``: a decimal keeps its digits, a time
its microseconds); the engine converts it to the column's type on insert.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlglot import exp
from sqlglot.errors import ParseError

from featuresql.sql import dialects
from featuresql.sql.types import family_of, sql_family
from featuresql.testing.unit.spec import CsvText, Rows

FAMILIES = ("integer", "decimal", "float", "boolean", "date", "timestamp", "timestamptz", "string")
INSERT_ROWS = 500  # rows per INSERT statement: unit fixtures are small, statements stay well under any cap

_INTEGER = re.compile(r"^[+-]?\d+$")
_DECIMAL = re.compile(r"^[+-]?(\d+\.\d*|\.\d+)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$")
_DESCRIPTION = {
    "integer": "an integer",
    "decimal": "a decimal number",
    "float": "a number",
    "boolean": "true or false",
    "date": "a date such as 2026-01-31",
    "timestamp": "a timestamp such as 2026-01-31 10:00:00",
    "timestamptz": "a timestamp such as 2026-01-31 10:00:00",
    "string": "a string",
}


def family(kind: exp.DataType | str, dialect: str = "duckdb") -> str | None:
    """The family of a SQL type (an engine's name for it, or a sqlglot type); None if not one of ours."""
    found = family_of(kind) if isinstance(kind, exp.DataType) else sql_family(kind, dialect)
    return found if found in FAMILIES else None


def declared_type(kind: str, project_dialect: str, target_dialect: str) -> exp.DataType:
    """A type written in the project dialect, for a fixture table on the target.

    Zone-less timestamps become the engine's event-time type (BigQuery's TIMESTAMP),
    as everywhere in featuresql: BigQuery's DATETIME does not compare with it.
    """
    try:
        data_type = exp.DataType.build(kind, dialect=project_dialect)
    except (ParseError, ValueError) as exc:
        raise ValueError(f"cannot read type {kind!r} as {project_dialect} SQL") from exc
    return dialects.event_time_type(target_dialect) if family(data_type) == "timestamp" else data_type


def infer_type(values: Iterable[Any], target_dialect: str) -> exp.DataType:
    """The type of a column from its YAML values (VARCHAR when they are all NULL)."""
    present = [v for v in values if v is not None]
    kinds = {_kind_of(v) for v in present}
    if not kinds:
        return exp.DataType.build("VARCHAR")
    found = _merge(kinds)
    if found == "decimal":
        return _decimal_type([coerce(v, "decimal") for v in present])
    if found == "timestamp":
        return dialects.event_time_type(target_dialect)
    simple = {"integer": "BIGINT", "float": "DOUBLE", "boolean": "BOOLEAN", "date": "DATE", "string": "VARCHAR"}
    return exp.DataType.build(simple[found])


def _kind_of(value: Any) -> str:
    if isinstance(value, CsvText):
        return _sniff(value)
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, Decimal):
        return "decimal"
    if isinstance(value, datetime):
        return "timestamp"
    if isinstance(value, date):
        return "date"
    return "string"


def _sniff(text: str) -> str:
    """The family a CSV cell looks like."""
    checks = (("integer", _INTEGER), ("decimal", _DECIMAL), ("date", _DATE), ("timestamp", _DATETIME))
    if text.lower() in ("true", "false"):
        return "boolean"
    return next((name for name, pattern in checks if pattern.match(text)), "string")


def _merge(kinds: set[str]) -> str:
    if len(kinds) == 1:
        return next(iter(kinds))
    if kinds <= {"integer", "decimal"}:
        return "decimal"
    if kinds <= {"integer", "decimal", "float"}:
        return "float"
    if kinds <= {"date", "timestamp"}:
        return "timestamp"
    raise ValueError(f"values of mixed types ({' and '.join(sorted(kinds))}): give its type with columns: under given:")


def _decimal_type(values: Sequence[Decimal]) -> exp.DataType:
    scale = max(_scale(v) for v in values)
    whole = max(_whole_digits(v) for v in values)
    return exp.DataType.build(f"DECIMAL({min(38, max(1, whole + scale))}, {scale})")


def _scale(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _whole_digits(value: Decimal) -> int:
    _, digits, exponent = value.as_tuple()
    return max(0, len(digits) + exponent) if isinstance(exponent, int) else 0


# -- values -------------------------------------------------------------------------


def coerce(value: Any, kind: str | None) -> Any:
    """``value`` as the Python value of a column of family ``kind``; ValueError if it is not one.

    Times come out as naive UTC datetimes; integers and decimals as exact numbers.
    """
    if value is None or kind is None:
        return value
    try:
        result = _COERCE[kind](value)
    except (ValueError, TypeError, ArithmeticError):
        result = None
    if result is None:
        raise ValueError(f"{str(value)!r} is not {_DESCRIPTION[kind]}")
    return result


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        return int(value) if value == int(value) else None
    return int(value) if isinstance(value, str) and _INTEGER.match(value.strip()) else None


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    return number if number.is_finite() else None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        return None
    return float(value)


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    return {"true": True, "false": False}.get(value.strip().lower()) if isinstance(value, str) else None


def _date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date() if value.time() == datetime.min.time() else None
    if isinstance(value, date):
        return value
    return date.fromisoformat(value.strip()) if isinstance(value, str) else None


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return None


def _string(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value)


_COERCE: dict[str, Callable[[Any], Any]] = {
    "integer": _integer,
    "decimal": _decimal,
    "float": _float,
    "boolean": _boolean,
    "date": _date,
    "timestamp": _timestamp,
    "timestamptz": _timestamp,
    "string": _string,
}


def literal(value: Any, kind: str | None, dialect: str) -> exp.Expr:
    """A SQL literal of exactly ``value`` (already coerced to family ``kind``)."""
    if value is None:
        return exp.null()
    if kind is None:  # a type featuresql does not know (an ARRAY...): the engine converts the value
        return exp.convert(value)
    if kind == "integer":
        return exp.cast(exp.Literal.number(value), exp.DataType.build("BIGINT"))
    if kind == "decimal":
        return exp.cast(exp.Literal.string(format(value, "f")), _decimal_type([value]))
    if kind == "float":
        text = repr(value) if math.isfinite(value) else str(value)
        number = exp.Literal.number(text) if math.isfinite(value) else exp.Literal.string(text)
        return exp.cast(number, exp.DataType.build("DOUBLE"))
    if kind == "boolean":
        return exp.cast(exp.Boolean(this=value), exp.DataType.build("BOOLEAN"))
    if kind == "date":
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("DATE"))
    if kind == "timestamp":
        return dialects.timestamp_literal(value, dialect)
    if kind == "timestamptz":
        text = value.strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
        return exp.cast(exp.Literal.string(text), exp.DataType.build("TIMESTAMPTZ"))
    return exp.cast(exp.Literal.string(str(value)), exp.DataType.build("VARCHAR"))


# -- statements ---------------------------------------------------------------------------


def create_table(table: exp.Table, types: dict[str, exp.DataType]) -> exp.Create:
    """An empty table with these columns (replacing any table of that name)."""
    columns = [exp.ColumnDef(this=dialects.identifier(name), kind=kind.copy()) for name, kind in types.items()]
    return exp.Create(this=exp.Schema(this=table.copy(), expressions=columns), kind="TABLE", replace=True)


RowError = Callable[[str, int | None], Exception]


def insert_rows(
    table: exp.Table, families: dict[str, str | None], rows: Rows, dialect: str, error: RowError
) -> list[exp.Insert]:
    """INSERT ... VALUES statements for ``rows`` (columns they omit stay NULL)."""
    if not rows.rows:
        return []
    columns = list(rows.columns)
    values = []
    for row, line in zip(rows.rows, rows.lines, strict=True):
        cells = []
        for column in columns:
            try:
                value = coerce(row.get(column), families.get(column))
            except ValueError as exc:
                raise error(f"column {column!r}: {exc}", line) from None
            cells.append(literal(value, families.get(column), dialect))
        values.append(exp.Tuple(expressions=cells))
    target = exp.Schema(this=table.copy(), expressions=[dialects.identifier(c) for c in columns])
    return [
        exp.Insert(this=target.copy(), expression=exp.Values(expressions=values[start : start + INSERT_ROWS]))
        for start in range(0, len(values), INSERT_ROWS)
    ]
