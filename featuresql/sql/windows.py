"""The window aggregation catalogue and the markers the window macros render to.

A window macro renders ``__featuresql_window('<function>', <input>, '<json>'[, <tie_break>])``.
The input stays a real SQL expression, so sqlglot parses and qualifies it with the
rest of the user's query; the compiler then replaces each marker by the columns
of its features (one per window).

Every function is computed from per-tile partial aggregates (see
``featuresql.sql.window_query``). Families:

- ``frame``: partials merged with a window frame over the tiles of the window
  (count, sum, avg = sum/count, min, max, first, last);
- ``spread``: variance and stddev, merged exactly with Chan's formula
  (sum of tile M2 plus the spread of tile means around the window mean);
- ``distinct``: exact count_distinct from the times each value enters and
  leaves the window.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from sqlglot import exp

from featuresql.durations import format_duration, parse_duration
from featuresql.errors import CompileError
from featuresql.names import COLUMN_NAME

MARKER = "__featuresql_window"

Family = Literal["frame", "spread", "distinct"]


@dataclass(frozen=True)
class Function:
    name: str
    family: Family
    count_like: bool = False
    needs_input: bool = True


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function("count", "frame", count_like=True, needs_input=False),
        Function("sum", "frame"),
        Function("avg", "frame"),
        Function("min", "frame"),
        Function("max", "frame"),
        Function("first", "frame"),
        Function("last", "frame"),
        Function("stddev", "spread"),
        Function("stddev_pop", "spread"),
        Function("variance", "spread"),
        Function("variance_pop", "spread"),
        Function("count_distinct", "distinct", count_like=True),
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

    @property
    def count_like(self) -> bool:
        return FUNCTIONS[self.function].count_like

    @property
    def family(self) -> Family:
        return FUNCTIONS[self.function].family

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

    ``initial`` is set when ``lo`` is the model's start: every entity with events in
    the windows before it gets a row there, since nothing earlier was computed.
    """

    lo: int | None
    hi: int
    initial: bool = False

    def event_lo(self, max_tiles: int) -> int | None:
        # Tiles lo-n..lo-1 feed the windows at lo; tile lo-n-1 expires from a
        # window of n tiles exactly at lo, which makes lo a change point.
        return None if self.lo is None else self.lo - max_tiles - 1
