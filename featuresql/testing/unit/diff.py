"""A unit test's verdict: the model's rows against the expected ones, and a readable diff.

Only the columns the expectation lists are compared, and rows are a multiset
(order ignored, duplicates counted). Values compare as a user reads them:
integers and decimals exactly by value (``10.5`` equals ``10.50``), doubles to
1e-9 relative (and 1e-12 absolute, so an expected 0 matches a rounding
residue), times as naive UTC datetimes (a YAML date is its midnight), NULL only
to NULL, strings and booleans exactly. Expected values in CSV are read as the
type of the model's column.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from featuresql.sql.types import arrow_family
from featuresql.testing.cases import Outcome
from featuresql.testing.unit.fixtures import coerce
from featuresql.testing.unit.spec import UnitTest

if TYPE_CHECKING:
    import pyarrow as pa

REL_TOL = 1e-9
ABS_TOL = 1e-12
SHOWN_ROWS = 50  # diff lines at most; matched rows are shown for context when everything fits

Row = dict[str, Any]
Cells = list[Any]  # one row's values of the compared columns


def table_rows(table: pa.Table) -> tuple[list[Row], dict[str, str | None]]:
    """Rows of an Arrow result with lower-case names and naive UTC times, and each column's family."""
    families = {field.name.lower(): _compared_family(field.type) for field in table.schema}
    rows = [{name.lower(): _naive(value) for name, value in row.items()} for row in table.to_pylist()]
    return rows, families


def _compared_family(kind: pa.DataType) -> str | None:
    """The family values of an Arrow type compare as: integers as decimals (exactly)."""
    family = arrow_family(kind)
    return "decimal" if family == "integer" else family


def _naive(value: Any) -> Any:
    if hasattr(value, "to_pydatetime"):  # pandas.Timestamp: pyarrow's value of a nanosecond timestamp
        value = value.to_pydatetime()
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def as_of(
    rows: Sequence[Row],
    keys: Sequence[str],
    timestamp: str,
    tie_break: Sequence[str],
    at: Sequence[datetime],
    ttl: int | None = None,
) -> list[Row]:
    """Each entity's latest row at or before each boundary, reported at the boundary.

    Ties on the timestamp go to the greatest ``tie_break`` values, NULL last, as in
    the point-in-time join; with a ``ttl`` (seconds) rows older than ``E - ttl``
    do not count, as in extracts and online reads. An entity with no row by then
    is left out. A DATE timestamp is its midnight (and is reported as a date when
    the boundary is one).
    """
    entities: dict[tuple[Any, ...], list[Row]] = {}
    for row in rows:
        entities.setdefault(tuple(row[k] for k in keys), []).append(row)

    def newest(row: Row) -> Any:
        return (_moment(row[timestamp]), *((row[c] is not None, row[c]) for c in tie_break))

    found = []
    for boundary in at:
        oldest = boundary - timedelta(seconds=ttl) if ttl is not None else None
        for group in entities.values():
            times = [(r, _moment(r[timestamp])) for r in group if r[timestamp] is not None]
            candidates = [r for r, t in times if t <= boundary and (oldest is None or t >= oldest)]
            if candidates:
                best: Row = max(candidates, key=newest)
                found.append({**best, timestamp: _reported(boundary, best[timestamp])})
    return found


def _moment(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    return value


def _reported(boundary: datetime, value: Any) -> Any:
    is_date = isinstance(value, date) and not isinstance(value, datetime)
    return boundary.date() if is_date and boundary == _moment(boundary.date()) else boundary


# -- comparing ---------------------------------------------------------------------


def compare(test: UnitTest, actual: Sequence[Row], families: dict[str, str | None]) -> Outcome:
    """The outcome of ``test`` given the model's rows (every expected column is in them)."""
    expected_rows = test.expect.rows
    columns = list(expected_rows.columns) or list(families)  # `rows: []`: show every column of what came
    expected = []
    for row, line in zip(expected_rows.rows, expected_rows.lines, strict=True):
        cells = []
        for column in columns:
            try:
                cells.append(_value(coerce(row.get(column), families.get(column))))
            except ValueError as exc:
                raise test.error(f"expected column {column!r}: {exc}", line) from None
        expected.append(cells)
    got = [[_value(row.get(c)) for c in columns] for row in actual]
    missing, matched, extra = _match(expected, got)
    if not missing and not extra:
        return Outcome(0, f"{_count(len(matched), 'row')} as expected")
    differ = len(missing) + len(extra)
    message = (
        f"{_count(differ, 'row')} differ{'s' if differ == 1 else ''} "
        f"({len(missing)} expected not found, {len(extra)} unexpected)"
    )
    return Outcome(differ, message, details=diff_table(columns, missing, matched, extra))


def _value(value: Any) -> Any:
    """A value in the form comparisons and sorting use."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | Decimal):
        return Decimal(value)
    return _naive(value)


def _same(actual: Any, expected: Any) -> bool:
    if actual is None or expected is None:
        return actual is None and expected is None
    if isinstance(actual, float) or isinstance(expected, float):
        if isinstance(actual, bool) or isinstance(expected, bool):
            return False
        try:
            return math.isclose(float(actual), float(expected), rel_tol=REL_TOL, abs_tol=ABS_TOL)
        except (TypeError, ValueError):
            return False
    return type(actual) is type(expected) and bool(actual == expected)


def _match(expected: list[Cells], actual: list[Cells]) -> tuple[list[Cells], list[Cells], list[Cells]]:
    """Pair equal rows: (expected rows not found, matched rows, actual rows not expected)."""
    remaining = list(actual)
    missing, matched = [], []
    for row in expected:
        index = next((i for i, got in enumerate(remaining) if all(map(_same, got, row))), None)
        if index is None:
            missing.append(row)
        else:
            matched.append(remaining.pop(index))
    return missing, matched, remaining


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


# -- showing ----------------------------------------------------------------------------


def diff_table(
    columns: Sequence[str], missing: Sequence[list[Any]], matched: Sequence[list[Any]], extra: Sequence[list[Any]]
) -> str:
    """Expected-only rows marked ``-``, unexpected rows ``+``, matched rows (when all fit) blank; sorted."""
    marked = [("-", row) for row in missing] + [("+", row) for row in extra]
    context = len(marked) + len(matched) <= SHOWN_ROWS
    if context:
        marked += [(" ", row) for row in matched]
    marked.sort(key=lambda item: ([_sort_key(v) for v in item[1]], "-+ ".index(item[0])))
    hidden = max(0, len(marked) - SHOWN_ROWS)
    cells = [[_show(v) for v in row] for _, row in marked[:SHOWN_ROWS]]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  " + "-+-".join("-" * w for w in widths))
    for (mark, _), row in zip(marked, cells, strict=False):
        lines.append(f"{mark} " + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    if hidden:
        lines.append(f"  ... and {hidden} more rows")
    legend = "- expected, not found   + found, not expected"
    if not context:
        legend += f"   ({len(matched)} matching rows not shown)"
    return "\n".join([*lines, legend])


def _sort_key(value: Any) -> tuple[bool, str, Any]:
    if value is None:
        return (True, "", 0)
    if isinstance(value, dict | list | tuple):  # STRUCT, MAP, LIST values do not order
        return (False, type(value).__name__, repr(value))
    kind = "number" if isinstance(value, int | float | Decimal) else type(value).__name__
    return (False, kind, value)


def _show(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value else "0"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and (value in ("", "NULL") or value.strip() != value):
        return repr(value)
    return str(value)
