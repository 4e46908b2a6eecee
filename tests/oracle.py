"""A brute-force oracle for window models: plain Python over the raw events.

It restates DESIGN.md section 3 ("Semantics") as directly as possible and
shares nothing with the framework (no tiles, partial aggregates, frames or
SQL): for every entity it lists the change points, then aggregates the events
of every window at every point from scratch. Arithmetic is exact (``Fraction``
for doubles, ``Decimal`` for decimals); only the final value is rounded, once,
to a float where the engine returns one.

The contract it encodes:

- grain ``g`` seconds; tile ``k`` holds events with ``ts`` in ``[k*g, (k+1)*g)``
  (epoch aligned, UTC); a window of ``w`` seconds at boundary ``E`` aggregates
  exactly the events with ``ts`` in ``[E - w, E)``;
- an entity has a row at ``E = (k+1)*g`` for every tile ``k`` with events, and at
  ``E = (k+1)*g + w`` for every such tile and every window ``w`` of the model
  (expiry); only boundaries ``E <= floor((now - data_delay) / g) * g`` exist;
- with ``start`` (rounded up to the grain: ``S``) there are no rows before ``S``,
  plus a row at ``S`` for every entity with an event in ``[S - max window, S)``;
- empty windows: 0 for count-like functions, NULL for the others; NULL inputs
  are ignored; sample variance/stddev need two values, population ones one;
- first/last: the earliest/latest non-NULL value by event time, ties broken by
  the tie-break column (smallest wins for first, largest for last), then by
  the value (same direction).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

EPOCH = datetime(1970, 1, 1)
MICROS = 1_000_000

COUNT_LIKE = frozenset({"count", "count_distinct"})
FUNCTIONS = (
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "stddev",
    "stddev_pop",
    "variance",
    "variance_pop",
    "count_distinct",
    "first",
    "last",
)

Row = Mapping[str, Any]


# -- time ---------------------------------------------------------------------------


def epoch_micros(moment: datetime) -> int:
    """Exact microseconds since the epoch; naive datetimes are UTC."""
    naive = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    return (naive - EPOCH) // timedelta(microseconds=1)


def boundary_datetime(seconds: int) -> datetime:
    """A boundary as the model table stores it: a naive TIMESTAMP in UTC."""
    return EPOCH + timedelta(seconds=seconds)


def duration_label(seconds: int) -> str:
    """The shortest exact unit among d, h, m: 86400 -> '1d', 5400 -> '90m'."""
    for suffix, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{suffix}"
    raise ValueError(f"{seconds}s is not a whole number of minutes")


# -- features -----------------------------------------------------------------------


@dataclass(frozen=True)
class Feature:
    """One output column: ``function`` of ``column`` over ``window`` seconds."""

    name: str
    function: str
    column: str | None
    window: int
    tie_break: str | None = None


@dataclass(frozen=True)
class Macro:
    """One window macro call, e.g. ``window_sum('amount', windows=['1d', '7d'])``.

    ``windows`` are seconds; ``spellings`` optionally gives how each is written in
    the SQL (e.g. '24h' for 86400): the output name uses the canonical label anyway.
    """

    function: str
    column: str | None
    windows: tuple[int, ...]
    tie_break: str | None = None
    name: str | None = None
    spellings: tuple[str, ...] | None = None

    def features(self) -> list[Feature]:
        return [Feature(self.output_name(w), self.function, self.column, w, self.tie_break) for w in self.windows]

    def output_name(self, window: int) -> str:
        label = duration_label(window)
        if self.name is not None:
            if "{window}" in self.name:
                return self.name.replace("{window}", label)
            return f"{self.name}_{label}" if len(self.windows) > 1 else self.name
        if self.column is None:
            return f"count_{label}"
        return f"{self.column}_{self.function}_{label}"


# -- aggregation --------------------------------------------------------------------


def aggregate(feature: Feature, window_events: Sequence[Row], timestamp: str) -> Any:
    """The value of ``feature`` over the events of one window (already selected)."""
    function = feature.function
    if function == "count" and feature.column is None:
        return len(window_events)
    assert feature.column is not None
    present = [e for e in window_events if e[feature.column] is not None]
    values = [e[feature.column] for e in present]
    if function == "count":
        return len(values)
    if function == "count_distinct":
        return len(set(values))
    if not values:
        return None
    if function == "sum":
        return exact_sum(values)
    if function == "avg":
        return float(sum(map(Fraction, values)) / len(values))
    if function == "min":
        return min(values)
    if function == "max":
        return max(values)
    if function in ("first", "last"):
        return _first_or_last(function, present, feature.column, feature.tie_break, timestamp)
    return _spread(function, values)


def exact_sum(values: Sequence[Any]) -> Any:
    """SUM as the engine types it: Decimal stays Decimal, int stays int, else a double."""
    if all(isinstance(v, Decimal) for v in values):
        with localcontext() as context:
            context.prec = 60
            return sum(values, Decimal(0))
    if all(isinstance(v, int) for v in values):
        return sum(values)
    return float(sum(map(Fraction, values)))


def _first_or_last(function: str, present: Sequence[Row], column: str, tie_break: str | None, timestamp: str) -> Any:
    def order(event: Row) -> tuple[Any, ...]:
        tie = (event[tie_break],) if tie_break else ()
        return (epoch_micros(event[timestamp]), *tie, event[column])

    chosen = min(present, key=order) if function == "first" else max(present, key=order)
    return chosen[column]


@dataclass(frozen=True)
class Near:
    """An expected double of exactly ``value`` (zero) that the engine may miss by ``abs_tol``.

    Relative tolerance means nothing at zero. A zero spread computed in floating
    point is the rounding residue of the values around their mean, of the order of
    the machine epsilon times the values (equal decimals 0.10 merged from two tiles
    give a variance of about 1e-34). So the tolerance is relative to the data, not
    to the result: 1e-12 of the largest magnitude for stddev, its square for variance.
    """

    value: float
    abs_tol: float


def _spread(function: str, values: Sequence[Any]) -> float | Near | None:
    # Exact, then rounded once: featuresql sums integers and decimals exactly (and a
    # double's value is exact too); only the engine's final division is in double.
    exact = [Fraction(v) for v in values]
    n = len(exact)
    sample = function in ("variance", "stddev")
    if n < (2 if sample else 1):
        return None
    mean = sum(exact, Fraction(0)) / n
    m2 = sum(((x - mean) * (x - mean) for x in exact), Fraction(0))
    stddev = function.startswith("stddev")
    if m2 == 0:
        tolerance = 1e-12 * float(max(abs(x) for x in exact))
        return Near(0.0, tolerance if stddev else tolerance**2)
    variance = m2 / Fraction(n - 1 if sample else n)
    return _sqrt(variance) if stddev else float(variance)


def _sqrt(value: Fraction) -> float:
    """The square root of an exact rational, correctly rounded in practice (50 digits)."""
    with localcontext() as context:
        context.prec = 50
        root = (Decimal(value.numerator) / Decimal(value.denominator)).sqrt()
    return float(root)


# -- change points and rows ---------------------------------------------------------


@dataclass(frozen=True)
class WindowModelSpec:
    """What the oracle needs to know about a window model."""

    features: tuple[Feature, ...]
    grain: int
    key: str = "user_id"
    timestamp: str = "ts"
    data_delay: int = 0
    start: datetime | None = None
    where: Callable[[Row], bool] | None = field(default=None, compare=False)

    @property
    def windows(self) -> set[int]:
        return {f.window for f in self.features}

    def last_boundary(self, now: datetime) -> int:
        """The last computable boundary (seconds): floor((now - data_delay) / g) * g."""
        grain_micros = self.grain * MICROS
        return (epoch_micros(now) - self.data_delay * MICROS) // grain_micros * self.grain

    def start_boundary(self) -> int | None:
        """``start`` rounded up to the grain, in seconds."""
        if self.start is None:
            return None
        grain_micros = self.grain * MICROS
        return -(-epoch_micros(self.start) // grain_micros) * self.grain


def expected_rows(model: WindowModelSpec, events: Iterable[Row], now: datetime) -> list[dict[str, Any]]:
    """Every row of the model's table at ``now``, ordered by key then boundary."""
    kept = [e for e in events if model.where is None or model.where(e)]
    by_key: dict[Any, list[Row]] = {}
    for event in kept:
        by_key.setdefault(event[model.key], []).append(event)
    rows = []
    for key in sorted(by_key):
        for boundary in sorted(change_points(model, by_key[key], now)):
            rows.append(_row(model, key, by_key[key], boundary))
    return rows


def change_points(model: WindowModelSpec, events: Sequence[Row], now: datetime) -> set[int]:
    """The boundaries (seconds) at which one entity has a row."""
    grain = model.grain
    tiles = {epoch_micros(e[model.timestamp]) // (grain * MICROS) for e in events}
    points = {(k + 1) * grain for k in tiles}
    points |= {(k + 1) * grain + w for k in tiles for w in model.windows}
    start = model.start_boundary()
    if start is not None:
        points = {p for p in points if p >= start}
        widest = max(model.windows)
        if any(_inside(e[model.timestamp], start - widest, start) for e in events):
            points.add(start)
    last = model.last_boundary(now)
    return {p for p in points if p <= last}


def _inside(moment: datetime, lo_seconds: int, hi_seconds: int) -> bool:
    return lo_seconds * MICROS <= epoch_micros(moment) < hi_seconds * MICROS


def _row(model: WindowModelSpec, key: Any, events: Sequence[Row], boundary: int) -> dict[str, Any]:
    row: dict[str, Any] = {model.key: key, model.timestamp: boundary_datetime(boundary)}
    for feature in model.features:
        inside = [e for e in events if _inside(e[model.timestamp], boundary - feature.window, boundary)]
        row[feature.name] = aggregate(feature, inside, model.timestamp)
    return row


# -- comparison ---------------------------------------------------------------------

REL_TOL = 1e-9


def same_value(actual: Any, expected: Any) -> bool:
    """Exact for NULL, integers, decimals, strings and timestamps; 1e-9 relative for doubles.

    No absolute tolerance for doubles, except a zero spread (see ``Near``): every
    other expected zero is computed exactly by the engine too (the tests feed it
    sums that are exact in binary: quarter units).
    """
    if expected is None or actual is None:
        return actual is None and expected is None
    if isinstance(actual, Near):  # the oracle checked against hand-written rows
        actual, expected = expected, actual
    if isinstance(expected, Near):
        return isinstance(actual, float) and abs(actual - expected.value) <= expected.abs_tol
    if isinstance(expected, float):
        return isinstance(actual, float) and math.isclose(actual, expected, rel_tol=REL_TOL, abs_tol=0.0)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected
    if isinstance(expected, int | Decimal | str | datetime):
        return type(actual) is type(expected) and actual == expected
    return bool(actual == expected)


def row_differences(actual: Sequence[Row], expected: Sequence[Row], key: str, timestamp: str) -> list[str]:
    """Human-readable differences between two tables (empty when they agree)."""
    problems = []
    index_actual = {(r[key], r[timestamp]): r for r in actual}
    index_expected = {(r[key], r[timestamp]): r for r in expected}
    if len(index_actual) != len(actual):
        problems.append(f"duplicate ({key}, {timestamp}) rows in the model table ({len(actual)} rows)")
    for point in sorted(index_expected.keys() - index_actual.keys()):
        problems.append(f"missing row {point}: expected {dict(index_expected[point])}")
    for point in sorted(index_actual.keys() - index_expected.keys()):
        problems.append(f"unexpected row {point}: {dict(index_actual[point])}")
    for point in sorted(index_expected.keys() & index_actual.keys()):
        want, got = index_expected[point], index_actual[point]
        if list(got) != list(want):
            problems.append(f"columns differ: got {list(got)}, expected {list(want)}")
            break
        for column in want:
            if not same_value(got[column], want[column]):
                problems.append(f"row {point} column {column}: got {got[column]!r}, expected {want[column]!r}")
    return problems


# -- point-in-time joins ------------------------------------------------------------
#
# Restated from DESIGN.md ("Point-in-time join") without the model table: the row
# available at spine time t is the one for the latest boundary E with E + data_delay
# <= t, among the boundaries computed by one run at ``now`` (up to the last one
# complete then). A window model's values there are the windows at E, aggregated
# from the raw events; boundaries before ``start`` were never computed, so before
# start + data_delay everything is NULL. A spine row needing a boundary after the
# last one computed is NULL too (nothing is known there, not even an empty window),
# and so is every row when the run found no event before its end (it computed nothing).


def has_history(model: WindowModelSpec, events: Iterable[Row], now: datetime) -> bool:
    """Whether a run at ``now`` computes anything: no history without data (an event with a
    key, kept by the model's filter, before the end of the work)."""
    end = (model.last_boundary(now) + model.grain) * MICROS
    return any(
        e[model.key] is not None and (model.where is None or model.where(e)) and epoch_micros(e[model.timestamp]) < end
        for e in events
    )


def window_values_at(
    model: WindowModelSpec, events: Iterable[Row], key: Any, at: datetime | None, now: datetime
) -> dict[str, Any]:
    """The features of entity ``key`` that an extract returns for a spine row at ``at``."""
    unknown = dict.fromkeys((f.name for f in model.features), None)
    if at is None:
        return unknown
    grain_micros = model.grain * MICROS
    own = (epoch_micros(at) - model.data_delay * MICROS) // grain_micros * model.grain
    start = model.start_boundary()
    if start is not None and own < start:
        return unknown
    last = model.last_boundary(now)
    if own > last:
        return unknown
    if not has_history(model, events, now):
        return unknown
    used = [e for e in events if e[model.key] is not None and (model.where is None or model.where(e))]
    boundary = own
    mine = [e for e in used if key is not None and e[model.key] == key]
    if start is not None and boundary < start:
        mine = []  # nothing was computed yet: no row matches
    values = {}
    for feature in model.features:
        inside = [e for e in mine if _inside(e[model.timestamp], boundary - feature.window, boundary)]
        values[feature.name] = aggregate(feature, inside, model.timestamp)
    return values


@dataclass(frozen=True)
class SnapshotSpec:
    """What the oracle needs to know about a snapshot model (its rows are its source rows)."""

    columns: tuple[str, ...]  # feature columns, in the model's order
    key: str = "user_id"
    timestamp: str = "ts"
    data_delay: int = 0
    ttl: int | None = None
    start: datetime | None = None
    tie_break: str | None = None


def snapshot_values_at(model: SnapshotSpec, rows: Iterable[Row], key: Any, at: datetime | None) -> dict[str, Any]:
    """The matched snapshot row's features: the latest available, ties to the greatest
    tie-break then feature values (NULL lowest); rows older than ``at - ttl`` never match."""
    unknown = dict.fromkeys(model.columns, None)
    if at is None or key is None:
        return unknown
    moment = epoch_micros(at)

    def available(row: Row) -> bool:
        ts = epoch_micros(row[model.timestamp])
        if ts > moment - model.data_delay * MICROS:
            return False
        if model.ttl is not None and ts < moment - model.ttl * MICROS:
            return False
        return model.start is None or ts >= epoch_micros(model.start)

    candidates = [r for r in rows if r[model.key] == key and available(r)]
    if not candidates:
        return unknown
    order = [model.tie_break] if model.tie_break else []
    order += [c for c in model.columns if c not in order]

    def rank(row: Row) -> tuple[Any, ...]:
        values = ((row[c] is not None, row[c] if row[c] is not None else 0) for c in order)
        return (epoch_micros(row[model.timestamp]), *values)

    best = max(candidates, key=rank)
    return {c: best[c] for c in model.columns}


def stream_values_at(
    model: WindowModelSpec, stream_grain: int, stream_delay: int, events: Iterable[Row], key: Any, at: datetime | None
) -> dict[str, Any]:
    """The features of entity ``key`` that a stream model returns at ``at`` (DESIGN.md section 11).

    Windows end at ``E = floor(at - stream_delay, stream_grain)``; before ``start``
    (rounded up to the stream grain) every feature is NULL. Nothing else gates the
    value: an extract of a stream model reads its source, whatever has been run.
    """
    unknown = dict.fromkeys((f.name for f in model.features), None)
    if at is None:
        return unknown
    step = stream_grain * MICROS
    end = (epoch_micros(at) - stream_delay * MICROS) // step * stream_grain
    if model.start is not None and end < -(-epoch_micros(model.start) // step) * stream_grain:
        return unknown
    mine = [e for e in events if key is not None and e[model.key] == key and (model.where is None or model.where(e))]
    return {
        feature.name: aggregate(
            feature, [e for e in mine if _inside(e[model.timestamp], end - feature.window, end)], model.timestamp
        )
        for feature in model.features
    }
