"""Mergeable partial aggregates of a stream model's events, standard library only (DESIGN.md section 11).

The online store keeps, per (model, entity), one partial per time slot (a tile of
the model grain, or of the stream grain near a window's edges); push adds an event
to its slot's partial, and the reader merges the slots of a window and finishes
each feature. The arithmetic is the warehouse's (``featuresql.sql.windows``):

- counts are integers; sum, min and max of integers and decimals are exact (``int``,
  ``Decimal``), of doubles in double; avg divides the sum by the count once, in double;
- variance and stddev merge exact ``n``, ``sum(x)`` and ``sum(x * x)`` and divide
  ``n * sum(x*x) - sum(x)^2`` in double once. A double is an exact binary fraction,
  so its sums are kept exact too (``Fraction``): no cancellation whatever the
  values' size against their spread, where the warehouse shifts the values and
  merges with Chan's formula (the two agree to far better than 1e-9 relative). A
  NaN or infinite input makes them NaN, as it does in the warehouse;
- first and last keep the event ordered first (last) by time, then tie-break, then
  value; a NULL tie-break loses a tie (as DuckDB orders NULLs last both ways).

A partial is a dict: ``rows`` (the kept events) and, per input column, only the parts
its features need (``needs``), as Python values (``int``, ``Decimal``, ``float``,
``Fraction``); the store's encoding of them is not part of this module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import localcontext
from fractions import Fraction
from typing import Any

Partial = dict[str, Any]
_WIDE = 80  # digits of exact decimal arithmetic: sums of squares of DECIMAL(38) values fit
_SPREADS = ("variance", "variance_pop", "stddev", "stddev_pop")
_SUMMED = frozenset({"n", "sum", "xsum", "xsquares"})


@dataclass(frozen=True)
class StreamFeature:
    """One window feature of a stream model, as the reader knows it (from the manifest)."""

    name: str
    function: str
    column: str | None  # the input column of the events (None: count rows)
    window: int  # seconds
    tie_break: str | None = None


def needs(features: Iterable[StreamFeature]) -> dict[str, frozenset[str]]:
    """Per input column, the parts of a partial its features need."""
    parts: dict[str, set[str]] = {}
    for feature in features:
        if feature.column is None:
            continue
        wanted = parts.setdefault(feature.column, set())
        function = feature.function
        if function in ("count", "sum", "avg"):
            wanted |= {"n", "sum"} if function != "count" else {"n"}
        elif function in ("min", "max"):
            wanted.add(function)
        elif function in ("first", "last"):
            wanted.add(f"{function}:{feature.tie_break or ''}")
        elif function in _SPREADS:
            wanted |= {"n", "xsum", "xsquares"}
        else:
            raise ValueError(f"window function {function!r} has no mergeable partial")
    return {column: frozenset(wanted) for column, wanted in parts.items()}


def empty() -> Partial:
    return {"rows": 0}


def add_event(partial: Partial, event: Mapping[str, Any], time: int, wanted: Mapping[str, frozenset[str]]) -> None:
    """Count ``event`` (its input columns, and tie-break columns; ``time`` in epoch microseconds) in ``partial``."""
    single: Partial = {"rows": 1}
    for column, parts in wanted.items():
        value = event.get(column)
        if value is None:
            continue
        entry: dict[str, Any] = {}
        for part in parts:
            if part == "n":
                entry["n"] = 1
            elif part in ("sum", "min", "max"):
                entry[part] = value
            elif part == "xsum":
                entry[part] = _exact(value)
            elif part == "xsquares":
                exact = _exact(value)
                entry[part] = exact if exact is None else _times(exact, exact)
            else:  # first:<tie> or last:<tie>
                tie_column = part.partition(":")[2]
                entry[part] = [time, event.get(tie_column) if tie_column else None, value]
        single[column] = entry
    merged = merge(partial, single)
    partial.clear()
    partial.update(merged)


def merge(left: Partial, right: Partial) -> Partial:
    """The partial of both slots' events."""
    merged: Partial = {"rows": left["rows"] + right["rows"]}
    for column in {*left, *right} - {"rows"}:
        a, b = left.get(column), right.get(column)
        merged[column] = dict(b or {}) if a is None else dict(a) if b is None else _merge_column(a, b)
    return merged


def merge_into(total: Partial, other: Partial) -> None:
    """``total`` becomes the partial of both slots' events (a read's accumulator: no copies)."""
    total["rows"] += other["rows"]
    for column, entry in other.items():
        if column == "rows":
            continue
        mine = total.get(column)
        if mine is None:
            total[column] = dict(entry)  # the accumulator's own: merged into in place below
            continue
        for part, y in entry.items():
            x = mine.get(part)
            if part in ("xsum", "xsquares") and (x is None or y is None):
                mine[part] = None  # a NaN or infinity on either side
            elif x is None or y is None:
                mine[part] = x if y is None else y
            elif part in _SUMMED:
                mine[part] = x + y if type(x) is int and type(y) is int else _plus(x, y)
            elif part == "min":
                mine[part] = min(x, y, key=_rank)
            elif part == "max":
                mine[part] = max(x, y, key=_rank)
            elif part[0] == "f":  # first:<tie>
                mine[part] = min(x, y, key=_first_order)
            else:  # last:<tie>
                mine[part] = max(x, y, key=_last_order)


def finish(feature: StreamFeature, partial: Partial) -> Any:
    """The feature's value over the events merged into ``partial``."""
    if feature.column is None:
        return partial["rows"]
    entry = partial.get(feature.column, {})
    n = entry.get("n", 0)
    function = feature.function
    if function == "count":
        return n
    if function in ("min", "max"):
        return entry.get(function)
    if function in ("first", "last"):
        picked = entry.get(f"{function}:{feature.tie_break or ''}")
        return None if picked is None else picked[2]
    if not n:
        return None
    if function == "sum":
        return entry["sum"]
    if function == "avg":
        return float(entry["sum"]) / n
    return _spread(feature, entry, n)


def _merge_column(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in {*a, *b}:
        x, y = a.get(part), b.get(part)
        if part in ("xsum", "xsquares") and (x is None or y is None):
            out[part] = None  # a NaN or infinity on either side
        elif x is None or y is None:
            out[part] = x if y is None else y
        elif part in ("n", "sum", "xsum", "xsquares"):
            out[part] = _plus(x, y)
        elif part == "min":
            out[part] = min(x, y, key=_rank)
        elif part == "max":
            out[part] = max(x, y, key=_rank)
        elif part.startswith("first:"):
            out[part] = min(x, y, key=_first_order)
        elif part.startswith("last:"):
            out[part] = max(x, y, key=_last_order)
    return out


def _rank(value: Any) -> tuple[bool, Any]:
    """A value's place in SQL's order: NaN after every other double, as DuckDB orders it."""
    nan = isinstance(value, float) and math.isnan(value)
    return (nan, 0.0 if nan else value)


def _first_order(picked: Sequence[Any]) -> tuple[Any, ...]:
    """(time, tie-break, value), the smallest first; a NULL tie-break after every other."""
    time, tie, value = picked
    return (time, tie is None, _rank(tie if tie is not None else 0), _rank(value))


def _last_order(picked: Sequence[Any]) -> tuple[Any, ...]:
    """(time, tie-break, value), the largest last; a NULL tie-break before every other."""
    time, tie, value = picked
    return (time, tie is not None, _rank(tie if tie is not None else 0), _rank(value))


# Exact arithmetic: integers and fractions are, decimals get 80 digits.
def _plus(x: Any, y: Any) -> Any:
    with localcontext() as context:
        context.prec = _WIDE
        return x + y


def _times(x: Any, y: Any) -> Any:
    with localcontext() as context:
        context.prec = _WIDE
        return x * y


def _exact(value: Any) -> Any:
    """An input as an exact number (int, Decimal; a double as its binary Fraction); None for NaN, infinity."""
    if isinstance(value, float):
        return Fraction(value) if math.isfinite(value) else None
    return value


def _spread(feature: StreamFeature, entry: Mapping[str, Any], n: int) -> float | None:
    sample = feature.function in ("variance", "stddev")
    if n < (2 if sample else 1):
        return None
    total, squares = entry.get("xsum"), entry.get("xsquares")
    if total is None or squares is None:
        return math.nan
    spread = _plus(_times(n, squares), -_times(total, total))  # n^2 times the population variance, exact
    variance = float(spread) / float(n * (n - 1) if sample else n * n)
    return math.sqrt(variance) if feature.function.startswith("stddev") else variance
