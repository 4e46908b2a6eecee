"""The query that turns a window model's events into its change-point table.

One function, ``window_query``, builds it as a sqlglot expression for any
dialect. Its CTEs, in order:

- ``events``: the user's row-level query with each event's epoch-aligned tile,
  without the rows with a NULL key (they belong to no entity: a run log note
  counts them and the built-in ``null_keys`` test fails on them);
- ``tiles``: per entity and tile, the partial aggregates of every feature;
- ``points``: the change points: the boundary after each tile with events, the
  boundary where that tile leaves each window, and (at the model start) the
  boundary where computation begins, for entities with events before it;
- ``series``: one row per entity and point, with the partials of the tile just
  before it (NULL for expiry-only points);
- ``distinct_deltas`` / ``spread``: the extra inputs of count_distinct and of
  variance/stddev of doubles, when the model uses them (of integers and decimals,
  variance/stddev merge exact sums in the frames, as sum does);
- ``windowed``: every feature at every point, merging partials over the frame
  ``RANGE BETWEEN n-1 PRECEDING AND CURRENT ROW`` on the integer boundary index
  (portable: BigQuery RANGE frames need a numeric ORDER BY).

Boundaries are integers ``b`` (the boundary at ``b * grain``): a row for ``b``
aggregates tiles ``b - n .. b - 1`` of a window of ``n`` tiles.
"""

from __future__ import annotations

from sqlglot import exp

from featuresql.sql import dialects
from featuresql.sql.window_parts import POINT, TILE, DistinctCounts, Spreads, any_null, col, num, total
from featuresql.sql.windows import (
    PARTIALS,
    BoundaryRange,
    Partial,
    WindowFeature,
    WindowModel,
    bigint,
    partial_column,
)

_PICKS = {"first": exp.FirstValue, "last": exp.LastValue}


def window_query(model: WindowModel, bounds: BoundaryRange, dialect: str) -> exp.Select:
    """The SELECT producing the model's rows for ``bounds``, in ``dialect``."""
    return _Builder(model, bounds, dialect).build()


class _Builder:
    def __init__(self, model: WindowModel, bounds: BoundaryRange, dialect: str):
        self.model = model
        self.bounds = bounds
        self.dialect = dialect
        self.keys = list(model.keys)
        self.frame_features = [f for f in model.features if f.family == "frame"]
        self.spread_features = [f for f in model.features if f.family == "spread"]
        self.distinct_features = [f for f in model.features if f.family == "distinct"]
        self.distinct = DistinctCounts(model, self.distinct_features, dialect)
        # A batch shorter than the widest window (an incremental run) merges its frame
        # partials by joining each output point to its tiles: framing every point of the
        # month before it would cost more than the batch itself.
        short = bounds.lo is not None and bounds.hi - bounds.lo <= model.max_tiles
        self.joined = self._joined_partials() if short else {}

    def build(self) -> exp.Select:
        ctes: list[tuple[str, exp.Query]] = [("events", self.events()), ("tiles", self.tiles())]
        if self.distinct_features:
            ctes += self.distinct.ctes()
        ctes += [("points", self.points()), ("series", self.series())]
        if self.spread_features:
            ctes += Spreads(self.model, self.spread_features, self.bounds).ctes()
        if self.joined:
            ctes.append(("frames", self.frames()))
        ctes.append(("windowed", self.windowed()))
        query = self.final()
        for name, cte in ctes:
            query = query.with_(name, as_=cte, copy=False)
        return query

    # -- events and tiles ---------------------------------------------------

    def events(self) -> exp.Select:
        timestamp = col(self.model.timestamp)
        columns: list[exp.Expr] = [*map(col, self.keys), timestamp]
        columns.append(exp.alias_(self._tile(), TILE))
        columns += [col(c) for c in self._input_columns()]
        columns += [exp.alias_(self._rank(f), self._rank_name(f)) for f in self._ranked_features()]
        columns += [exp.alias_(self._shifted(c), f"__shifted_{c}") for c in self._spread_columns()]
        query = exp.select(*columns).from_(self.model.events.subquery("__rows"))
        query = query.where(exp.not_(any_null(self.keys)))
        event_lo = self.bounds.event_lo(self.model.max_tiles)
        grain = self.model.grain
        if event_lo is not None:
            query = query.where(timestamp.copy() >= dialects.seconds_literal(event_lo * grain, self.dialect))
        return query.where(
            col(self.model.timestamp) < dialects.seconds_literal((self.bounds.hi - 1) * grain, self.dialect)
        )

    def _tile(self) -> exp.Expr:
        return dialects.tile_index(col(self.model.timestamp), self.model.grain, self.dialect)

    def _spread_columns(self) -> list[str]:
        return sorted({f.column for f in self.spread_features if f.column})

    def _shifted(self, column: str) -> exp.Expr:
        """The input minus the entity's smallest value: variance is shift invariant, and
        values near the shift keep their full precision (1e8 + 0.25 - 1e8 is exact)."""
        smallest = exp.Window(this=exp.Min(this=col(column)), partition_by=list(map(col, self.keys)))
        return exp.Sub(this=col(column), expression=smallest)

    def _input_columns(self) -> list[str]:
        names: list[str] = []
        for feature in self.model.features:
            for name in (feature.column, feature.tie_break_column):
                if name and name not in names:
                    names.append(name)
        return names

    def _ranked_features(self) -> list[WindowFeature]:
        seen: dict[str, WindowFeature] = {}
        for feature in self.frame_features:
            if feature.spec.pick is not None:
                seen.setdefault(self._rank_name(feature), feature)
        return list(seen.values())

    def _rank_name(self, feature: WindowFeature) -> str:
        return f"__rank_{feature.function}_{feature.column}_{feature.tie_break_column or ''}"

    def _rank(self, feature: WindowFeature) -> exp.Window:
        """1 for the event a tile's first/last is taken from: non-NULL, then time, tie-break, value."""
        assert feature.column is not None
        desc = feature.spec.pick == "last"
        value = col(feature.column)
        order = [dialects.ordered(exp.Is(this=value.copy(), expression=exp.Null()), self.dialect)]
        order.append(dialects.ordered(col(self.model.timestamp), self.dialect, desc=desc))
        if feature.tie_break_column:
            order.append(dialects.ordered(col(feature.tie_break_column), self.dialect, desc=desc))
        order.append(dialects.ordered(value, self.dialect, desc=desc))
        # The tile expression is repeated, not referenced by alias: BigQuery has no lateral aliases.
        return exp.Window(
            this=exp.RowNumber(),
            partition_by=[*map(col, self.keys), self._tile()],
            order=exp.Order(expressions=order),
        )

    def tiles(self) -> exp.Select:
        partials: dict[str, exp.Expr] = {"__rows": exp.Count(this=exp.Star())}
        for feature in self.model.features:
            partials.update(self._partials(feature))
        selects: list[exp.Expr] = [*map(col, self.keys), col(TILE)]
        selects += [exp.alias_(expression, name) for name, expression in partials.items()]
        return exp.select(*selects).from_("events").group_by(*map(col, self.keys), col(TILE))

    def _partials(self, feature: WindowFeature) -> dict[str, exp.Expr]:
        column = feature.column
        if column is None:
            return {}
        value = col(column)
        spec = feature.spec
        if spec.pick is not None:
            chosen = exp.If(this=col(self._rank_name(feature)).eq(1), true=value)
            return {self._pick_name(feature): exp.Max(this=exp.Case(ifs=[chosen]))}
        if feature.family != "spread":
            return {partial_column(p, column): self._tile_partial(PARTIALS[p], value) for p in spec.tile_partials}
        shifted = col(f"__shifted_{column}")
        return {  # spread: count, mean and M2 per tile of the shifted input, computed stably by the engine
            f"__n_{column}": exp.Count(this=value),
            f"__mean_{column}": exp.Avg(this=shifted),
            f"__m2_{column}": exp.Mul(
                this=exp.VariancePop(this=shifted.copy()), expression=exp.Count(this=value.copy())
            ),
        }

    def _tile_partial(self, partial: Partial, value: exp.Column) -> exp.Expr:
        return partial.tile(dialects.widen(value.copy(), self.dialect) if partial.widened else value.copy())

    def _pick_name(self, feature: WindowFeature) -> str:
        return f"__{feature.function}_{feature.column}_{feature.tie_break_column or ''}"

    # -- change points -------------------------------------------------------

    def points(self) -> exp.Query:
        """Change points below ``hi``: after each tile, where it leaves each window, at the start.

        With ``lo`` set, an expiry point before ``lo`` is neither output nor frame input
        (it carries no tile), so it is left out: frames then run over about half as many
        rows in a short batch. The points where a distinct value leaves a window stay, as
        the running distinct count sums their deltas.
        """
        offsets = [1] + [n + 1 for n in self.model.window_sizes()]
        parts: list[exp.Select] = []
        lo = self.bounds.lo
        for offset in sorted(set(offsets)):
            point = exp.Add(this=col(TILE), expression=num(offset))
            part = exp.select(*map(col, self.keys), exp.alias_(point, POINT)).from_("tiles")
            parts.append(part if offset == 1 or lo is None else part.where(point.copy() >= num(lo)))
        if self.distinct_features and lo is not None:
            parts.append(exp.select(*map(col, self.keys), col(POINT)).from_("distinct_deltas"))
        if self.bounds.initial and self.bounds.lo is not None:
            start = self.bounds.lo
            parts.append(
                exp.select(*map(col, self.keys), exp.alias_(num(start), POINT))
                .from_("tiles")
                .where(col(TILE) >= num(start - self.model.max_tiles))
                .where(col(TILE) < num(start))
            )
        union: exp.Query = parts[0]
        for part in parts[1:]:
            union = exp.union(union, part, distinct=True)
        return exp.select("*").from_(union.subquery("__points")).where(col(POINT) < num(self.bounds.hi))

    def series(self) -> exp.Select:
        partial_names = [name for name in self._tile_partial_names()]
        on = [col(k, "p").eq(col(k, "t")) for k in self.keys]
        on.append(col(TILE, "t").eq(exp.Sub(this=col(POINT, "p"), expression=num(1))))
        return (
            exp.select(*(col(k, "p") for k in self.keys), col(POINT, "p"), *(col(n, "t") for n in partial_names))
            .from_(exp.to_table("points").as_("p"))
            .join(exp.to_table("tiles").as_("t"), on=exp.and_(*on), join_type="left")
        )

    def _tile_partial_names(self) -> list[str]:
        names = ["__rows"]
        for feature in self.frame_features:
            for name in self._partials(feature):
                if name not in names:
                    names.append(name)
        return names

    # -- merging partials by joining points to tiles (short batches) ---------------

    def _joined_partials(self) -> dict[str, tuple[type[exp.Func], str, int]]:
        """Merged partials of the frame features over more than one tile: name -> (merge, partial, tiles)."""
        joined: dict[str, tuple[type[exp.Func], str, int]] = {}
        for feature in self.frame_features:
            n = self.model.tiles_of(feature)
            for partial in (PARTIALS[p] for p in feature.spec.merged if n > 1):
                column = partial_column(partial.name, feature.column)
                joined[f"__joined_{column}_{partial.merged_as}_{n}"] = (partial.merge, column, n)
        return joined

    def frames(self) -> exp.Select:
        """Per output point, each joined partial merged over the tiles of its window."""
        on: list[exp.Expr] = [col(k, "p").eq(col(k, "t")) for k in self.keys]
        on.append(col(TILE, "t") < col(POINT, "p"))
        on.append(col(TILE, "t") >= exp.Sub(this=col(POINT, "p"), expression=num(self.model.max_tiles)))
        merged = []
        for name, (merge, partial, n) in self.joined.items():
            inside = col(TILE, "t") >= exp.Sub(this=col(POINT, "p"), expression=num(n))
            merged.append(exp.alias_(merge(this=exp.Case(ifs=[exp.If(this=inside, true=col(partial, "t"))])), name))
        keys = [*(col(k, "p") for k in self.keys), col(POINT, "p")]
        query = exp.select(*keys, *merged).from_(exp.to_table("points").as_("p"))
        query = query.join(exp.to_table("tiles").as_("t"), on=exp.and_(*on))
        assert self.bounds.lo is not None
        return query.where(col(POINT, "p") >= num(self.bounds.lo)).group_by(*[k.copy() for k in keys])

    def _merged(self, function: str, partial: str, n: int, aggregate: exp.Expr) -> exp.Expr:
        """A partial merged over ``n`` tiles: from ``frames`` when joined, else a window frame."""
        name = f"__joined_{partial}_{function}_{n}"
        if name in self.joined:
            return col(name, "frames")
        return self._frame(aggregate, n)

    # -- merging partials over windows -------------------------------------------

    def windowed(self) -> exp.Select:
        query = exp.select(*(col(k, "s") for k in self.keys), col(POINT, "s")).from_(exp.to_table("series").as_("s"))
        for name, extra in (
            ("distinct_deltas", self.distinct_features),
            ("spread", self.spread_features),
            ("frames", self.joined),
        ):
            if extra:
                on = [col(k, "s").eq(col(k, name)) for k in self.keys] + [col(POINT, "s").eq(col(POINT, name))]
                query = query.join(exp.to_table(name), on=exp.and_(*on), join_type="left")
        values = [exp.alias_(self._value(f), f.name) for f in self.model.features]
        return query.select(*values)

    def _frame(self, aggregate: exp.Expr, size: int | None) -> exp.Expr:
        """``aggregate`` over the last ``size`` tiles, or all before (running) when None."""
        if size == 1:  # one tile: the point's own partial (points are unique per entity), no window
            inner: exp.Expr = aggregate.this
            own: exp.Expr = inner.this if isinstance(aggregate, exp.IgnoreNulls) else inner
            return own
        partition = [col(k, "s") for k in self.keys]
        order = exp.Order(expressions=[dialects.ordered(col(POINT, "s"), self.dialect)])
        if size is None:
            spec = exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW")
        else:
            spec = exp.WindowSpec(kind="RANGE", start=num(size - 1), start_side="PRECEDING", end="CURRENT ROW")
        return exp.Window(this=aggregate, partition_by=partition, order=order, spec=spec)

    def _value(self, feature: WindowFeature) -> exp.Expr:
        """A feature's value at each point, from the catalogue's partials of its function."""
        n = self.model.tiles_of(feature)
        spec = feature.spec
        if spec.pick is not None:
            pick = _PICKS[spec.pick](this=col(self._pick_name(feature), "s"))
            return self._frame(exp.IgnoreNulls(this=pick), n)
        if feature.family == "distinct":
            delta = exp.Coalesce(this=col(self.distinct.delta_name(feature), "distinct_deltas"), expressions=[num(0)])
            return bigint(exp.Coalesce(this=self._frame(total(delta), None), expressions=[num(0)]))
        if feature.family == "spread":
            return self._spread_value(feature, n)
        merged = []
        for partial in map(PARTIALS.__getitem__, spec.merged):
            column = partial_column(partial.name, feature.column)
            merged.append(self._merged(partial.merged_as, column, n, partial.merge(this=col(column, "s"))))
        return spec.finalize(*merged)

    def _spread_value(self, feature: WindowFeature, n: int) -> exp.Expr:
        count = col(f"__sn_{feature.column}_{n}", "spread")
        m2 = col(f"__sm2_{feature.column}_{n}", "spread")
        sample = feature.spec.sample
        minimum = 2 if sample else 1
        divisor = exp.paren(exp.Sub(this=count.copy(), expression=num(1))) if sample else count.copy()
        variance = exp.Div(this=exp.cast(m2, exp.DataType.build("DOUBLE")), expression=divisor)
        value: exp.Expr = exp.Sqrt(this=variance) if feature.spec.root else variance
        return exp.Case(ifs=[exp.If(this=count >= num(minimum), true=value)])

    def final(self) -> exp.Select:
        seconds = exp.Mul(this=col(POINT), expression=num(self.model.grain))
        boundary = exp.alias_(dialects.seconds_to_timestamp(seconds, self.dialect), self.model.timestamp)
        names = [f.name for f in self.model.features]
        query = exp.select(*map(col, self.keys), boundary, *map(col, names)).from_("windowed")
        if self.bounds.lo is not None:
            query = query.where(col(POINT) >= num(self.bounds.lo))
        return query
