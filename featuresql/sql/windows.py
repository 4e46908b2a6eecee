"""The window aggregation catalogue and the markers the window macros render to.

A window macro renders ``__featuresql_window('<function>', <input>, '<json>'[, <tie_break>])``.
The input stays a real SQL expression, so sqlglot parses and qualifies it with the
rest of the user's query; the compiler then replaces each marker by the columns
of its features (one per window).

Every function is computed from per-tile partial aggregates (see
``featuresql.sql.window_query``). Families:

- ``frame``: partials merged with a window frame over the tiles of the window
  (count, sum, avg = sum/count, min, max, first, last, and variance and stddev
  of an exact input: see below);
- ``spread``: variance and stddev of a double (or of an input of unknown type),
  merged with Chan's formula (sum of tile M2 plus the spread of tile means
  around the window mean);
- ``distinct``: exact count_distinct from the times each value enters and
  leaves the window.

Deterministic values. The same events give the same values bit for bit, whatever
the run, batch split, thread count or full refresh, where the arithmetic is exact:

- counts, min, max, first, last and count_distinct are exact for every type;
- sum and avg of an integer or decimal input sum exactly (integer and decimal
  arithmetic); avg divides the exact sum by the count once, in double;
- variance and stddev of an exact input (``WindowFeature.exact_input``: an
  integer or decimal, see ``featuresql.compile.exact_inputs``) merge exact sums
  n, sum(x) and sum(x * x) of the input widened to 38 digits
  (``featuresql.sql.dialects.widen``), then compute n * sum(x*x) - sum(x)^2
  exactly and divide it in double once (square root for stddev). That number is
  n^2 times the population variance, never negative, and exact however large the
  values are against their spread. The widened sums overflow, with an error,
  past 38 digits (in units of the input's scale, squared) on DuckDB and
  Snowflake, past 29 digits before the point on BigQuery; BigQuery rounds
  squares to 9 decimals, so there decimals of scale up to 4 are exact.

Doubles are summed in an order the engine chooses (its parallel aggregation
merges partial states as threads finish), so sums, averages and spreads of
doubles may differ in their last bits between runs: compare them at a relative
tolerance.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from sqlglot import exp

from featuresql.durations import format_duration, parse_duration
from featuresql.errors import CompileError
from featuresql.names import COLUMN_NAME

MARKER = "__featuresql_window"

Family = Literal["frame", "spread", "distinct"]


@dataclass(frozen=True)
class Partial:
    """A per-tile partial aggregate of a feature's input, and how a window's tiles merge it.

    Its column in the tiles CTE is ``__<name>_<input column>`` (``__rows`` for the
    count of rows, which has no input). A ``widened`` partial aggregates the input
    widened to the engine's widest exact number (``featuresql.sql.dialects.widen``).
    """

    name: str
    tile: Callable[[exp.Expr], exp.Expr]  # the aggregate over one tile's values
    merge: type[exp.AggFunc]  # the aggregate over the tiles of a window
    merged_as: str  # the merge's name in the columns of merged partials
    widened: bool = False


def _sum_of_squares(value: exp.Expr) -> exp.Expr:
    factor = value if isinstance(value, exp.Column) else exp.paren(value)
    return exp.Sum(this=exp.Mul(this=factor, expression=factor.copy()))


PARTIALS: dict[str, Partial] = {
    p.name: p
    for p in (
        Partial("n", lambda value: exp.Count(this=value), exp.Sum, "count"),
        Partial("sum", lambda value: exp.Sum(this=value), exp.Sum, "sum"),
        Partial("min", lambda value: exp.Min(this=value), exp.Min, "min"),
        Partial("max", lambda value: exp.Max(this=value), exp.Max, "max"),
        # variance and stddev of exact inputs: the square of a sum must not overflow either
        Partial("wide_sum", lambda value: exp.Sum(this=value), exp.Sum, "sum", widened=True),
        Partial("wide_squares", _sum_of_squares, exp.Sum, "sum", widened=True),
    )
}
SPREAD_SUMS = ("n", "wide_sum", "wide_squares")


def partial_column(partial: str, column: str | None) -> str:
    """The tiles CTE's column of a partial of ``column`` (``__rows``: the count of rows)."""
    return "__rows" if column is None else f"__{partial}_{column}"


def bigint(expression: exp.Expr) -> exp.Expr:
    """A count as BIGINT: engines widen SUM of integers (DuckDB to HUGEINT, Snowflake to NUMBER(38))."""
    return exp.cast(expression, exp.DataType.build("BIGINT"))


def _count(n: exp.Expr) -> exp.Expr:
    return bigint(exp.Coalesce(this=n, expressions=[exp.Literal.number(0)]))


def _double(expression: exp.Expr) -> exp.Expr:
    return exp.cast(expression, exp.DataType.build("DOUBLE"))


def _average(total: exp.Expr, n: exp.Expr) -> exp.Expr:
    # sum/count over the whole window, never an average of tile averages: the one
    # double division of the exact sum (for exact inputs) by the exact count
    return exp.Div(this=_double(total), expression=exp.Nullif(this=n, expression=exp.Literal.number(0)))


def _exact_spread(*, sample: bool, root: bool) -> Callable[..., exp.Expr]:
    """variance (``root``: stddev) from the window's exact n, sum(x) and sum(x * x).

    n * sum(x*x) - sum(x)^2 is n^2 times the population variance, computed in exact
    arithmetic: no cancellation, whatever the values' size against their spread (the
    textbook formula's failure is in doing it in doubles). Only the division by
    n * (n - 1) (sample) or n * n, and the root, are in double.
    """
    minimum = exp.Literal.number(2 if sample else 1)

    def finalize(n: exp.Expr, total: exp.Expr, squares: exp.Expr) -> exp.Expr:
        spread = exp.Sub(
            this=exp.Mul(this=n, expression=squares), expression=exp.Mul(this=total, expression=total.copy())
        )
        other = exp.paren(exp.Sub(this=n.copy(), expression=exp.Literal.number(1))) if sample else n.copy()
        variance = exp.Div(this=_double(spread), expression=_double(exp.Mul(this=n.copy(), expression=other)))
        value: exp.Expr = exp.Sqrt(this=variance) if root else variance
        return exp.Case(ifs=[exp.If(this=n.copy() >= minimum, true=value)])

    return finalize


def _same(merged: exp.Expr) -> exp.Expr:
    return merged


@dataclass(frozen=True)
class Function:
    """A window function: its family, and for frame functions the partials it is computed from.

    ``tile_partials`` are computed per tile; ``merged`` are merged over the window's
    tiles (in order) and handed to ``finalize``, which gives the feature's value.
    first/last (``pick``) take the value of a ranked event per tile; distinct
    functions, and spread functions of a double, have CTEs of their own
    (``featuresql.sql.window_parts``). A spread function's partials are those of an
    exact input, whose family is ``frame`` (``WindowFeature.family``).
    """

    name: str
    family: Family
    count_like: bool = False
    needs_input: bool = True
    tile_partials: tuple[str, ...] = ()
    merged: tuple[str, ...] = ()
    finalize: Callable[..., exp.Expr] = _same
    pick: Literal["first", "last"] | None = None  # first/last: the earliest or the latest event's value
    sample: bool = False  # variance and stddev: divide by n - 1, NULL below two values
    root: bool = False  # stddev: the square root of the variance


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function(
            "count", "frame", count_like=True, needs_input=False, tile_partials=("n",), merged=("n",), finalize=_count
        ),
        Function("sum", "frame", tile_partials=("n", "sum"), merged=("sum",)),
        Function("avg", "frame", tile_partials=("n", "sum"), merged=("sum", "n"), finalize=_average),
        Function("min", "frame", tile_partials=("min",), merged=("min",)),
        Function("max", "frame", tile_partials=("max",), merged=("max",)),
        Function("first", "frame", pick="first"),
        Function("last", "frame", pick="last"),
        *(
            Function(
                name,
                "spread",
                tile_partials=SPREAD_SUMS,
                merged=SPREAD_SUMS,
                finalize=_exact_spread(sample=sample, root=root),
                sample=sample,
                root=root,
            )
            for name, sample, root in (
                ("stddev", True, True),
                ("stddev_pop", False, True),
                ("variance", True, False),
                ("variance_pop", False, False),
            )
        ),
        Function("count_distinct", "distinct", count_like=True, tile_partials=("n",)),
    )
}


@dataclass(frozen=True)
class WindowFeature:
    """One output column of a window model: ``function`` of ``input`` over ``window`` seconds."""

    name: str
    function: str
    input: exp.Expr | None  # None: count rows
    window: int
    tie_break: exp.Expr | None = None
    column: str | None = None  # the events query's column holding ``input``
    tie_break_column: str | None = None
    # An integer or decimal input (featuresql.compile.exact_inputs). Not in the repr, which
    # the definition hash reads: how a value is computed is no change of the model.
    exact_input: bool = field(default=False, repr=False)

    @property
    def spec(self) -> Function:
        """The function's entry in the catalogue."""
        return FUNCTIONS[self.function]

    @property
    def count_like(self) -> bool:
        return self.spec.count_like

    @property
    def family(self) -> Family:
        """The function's family; variance and stddev of an exact input merge exact sums in frames."""
        if self.spec.family == "spread" and self.exact_input:
            return "frame"
        return self.spec.family

    @property
    def window_label(self) -> str:
        return format_duration(self.window)


def render_marker(
    function: str,
    column: object = None,
    windows: object = None,
    name: object = None,
    tie_break: object = None,
) -> str:
    """The text a window macro renders: validated arguments in a parseable marker."""
    spec = FUNCTIONS.get(function)
    if spec is None:
        raise CompileError(f"unknown window function {function!r}; known: {', '.join(FUNCTIONS)}")
    if column is None and spec.needs_input:
        raise CompileError(f"window_{function}() needs the column or expression to aggregate")
    if windows is None:
        raise CompileError(f"window_{function}() needs windows=[...], e.g. windows=['1d', '7d']")
    if isinstance(windows, str | int):
        windows = [windows]
    if not isinstance(windows, list | tuple) or not windows:
        raise CompileError(f"window_{function}(): windows must be a list such as ['1d', '7d']")
    seconds = []
    for window in windows:
        try:
            seconds.append(parse_duration(window))
        except ValueError as exc:
            raise CompileError(f"window_{function}(): {exc}") from None
        if seconds[-1] <= 0:
            raise CompileError(f"window_{function}(): window {window!r} must be longer than zero")
    if name is not None and not isinstance(name, str):
        raise CompileError(f"window_{function}(): name= must be a string such as 'spend_{{window}}'")
    payload = json.dumps({"windows": seconds, "name": name}).replace("'", "''")
    args = [f"'{function}'", f"({column})" if column is not None else "NULL", f"'{payload}'"]
    if tie_break is not None:
        args.append(f"({tie_break})")
    return f"{MARKER}({', '.join(args)})"


def is_marker(node: exp.Expr) -> bool:
    return isinstance(node, exp.Anonymous) and str(node.this).lower() == MARKER


def features_of_marker(marker: exp.Anonymous) -> list[WindowFeature]:
    """Expand one marker into its features, named predictably or as the user asked."""
    function_arg, input_arg, payload_arg, *rest = marker.expressions
    function = function_arg.name
    spec = json.loads(payload_arg.name)
    column = None if isinstance(input_arg, exp.Null) else input_arg.unnest()
    tie_break = rest[0].unnest() if rest else None
    features = []
    for window in spec["windows"]:
        name = _feature_name(function, column, window, spec["name"], many=len(spec["windows"]) > 1)
        if not COLUMN_NAME.match(name):  # a column name: never quoted SQL, whatever a var put into name=
            raise CompileError(
                f"window_{function}(): the feature name {name!r} is not an identifier: give name= letters "
                "(any alphabet), digits and underscores, not starting with a digit, e.g. name='spend_{window}'"
            )
        features.append(WindowFeature(name, function, column, window, tie_break))
    return features


def _feature_name(function: str, column: exp.Expr | None, window: int, name: str | None, many: bool) -> str:
    label = format_duration(window)
    if name is not None:
        if "{window}" in name:
            return name.replace("{window}", label)
        return f"{name}_{label}" if many else name
    if column is None:
        return f"count_{label}"
    if not isinstance(column, exp.Column):
        raise CompileError(
            f"window_{function}() over the expression {column.sql()!r} needs name=, e.g. name='amount_usd_{{window}}'"
        )
    return f"{column.name}_{function}_{label}"


@dataclass(frozen=True)
class WindowModel:
    """What the compiler extracted from a window model."""

    keys: tuple[str, ...]
    timestamp: str
    grain: int
    events: exp.Select  # the user's query: keys, timestamp and one column per feature input
    features: tuple[WindowFeature, ...]

    def tiles_of(self, feature: WindowFeature) -> int:
        return feature.window // self.grain

    @property
    def max_tiles(self) -> int:
        return max(self.tiles_of(f) for f in self.features)

    def window_sizes(self) -> list[int]:
        return sorted({self.tiles_of(f) for f in self.features})


@dataclass(frozen=True)
class BoundaryRange:
    """Boundaries ``lo <= b < hi`` to compute; ``lo`` None means from the first event.

    ``initial`` is set when nothing before ``lo`` is computed (the model's start, or the
    first boundary a stream model's extract needs): every entity with events in
    the windows before it gets a row there, since nothing earlier was computed.
    """

    lo: int | None
    hi: int
    initial: bool = False

    def event_lo(self, max_tiles: int) -> int | None:
        # Tiles lo-n..lo-1 feed the windows at lo; tile lo-n-1 expires from a
        # window of n tiles exactly at lo, which makes lo a change point.
        return None if self.lo is None else self.lo - max_tiles - 1
