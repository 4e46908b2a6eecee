"""The CTEs of a window query that only some models need, and the expression helpers they share.

``DistinctCounts`` builds the exact count_distinct deltas and ``Spreads`` the
variance/stddev inputs of doubles (of integers and decimals, variance and stddev merge
exact sums as frame functions: see ``featuresql.sql.windows``);
``featuresql.sql.window_query`` puts them in its query when a model has such features
(its docstring describes the whole query).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from featuresql.sql import dialects
from featuresql.sql.windows import BoundaryRange, WindowFeature, WindowModel

TILE = "__tile"
POINT = "__b"


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table)


def num(value: int) -> exp.Expr:
    return exp.Literal.number(value)


def total(expression: exp.Expr) -> exp.Sum:
    return exp.Sum(this=expression)


def any_null(keys: Iterable[str]) -> exp.Expr:
    """TRUE for a row with a NULL in any of the entity ``keys``: a row of no entity.

    Window models drop such rows from their events and snapshot models from their
    table; the run log counts them and the built-in ``null_keys`` test fails on them.
    """
    return exp.or_(*(exp.column(dialects.identifier(k)).is_(exp.null()) for k in keys))


class DistinctCounts:
    """count_distinct features: per entity and point, the change of each distinct count."""

    def __init__(self, model: WindowModel, features: list[WindowFeature], dialect: str):
        self.model = model
        self.keys = list(model.keys)
        self.distinct_features = features
        self.dialect = dialect

    def ctes(self) -> list[tuple[str, exp.Query]]:
        """Exact distinct counts: +1 when a value enters a window, -1 when it leaves.

        A value seen in tile k is in the window of n tiles at boundaries k+1..k+n.
        It enters at k+1 unless it was seen within the n tiles before; it leaves at
        k+n+1 unless it is seen again within the n tiles after. The count at a
        boundary is the running sum of these deltas.
        """
        ctes: list[tuple[str, exp.Query]] = []
        parts: list[exp.Select] = []
        columns = self._distinct_columns()
        for column in sorted({f.column for f in self.distinct_features if f.column}):
            ctes.append((f"distinct_{column}", self._distinct_gaps(column)))
            parts += self._distinct_delta_parts(column, columns)
        union: exp.Query = parts[0]
        for part in parts[1:]:
            union = exp.union(union, part, distinct=False)
        sums = [exp.alias_(total(col(name)), name) for name in columns]
        deltas = exp.select(*map(col, self.keys), col(POINT), *sums).from_(union.subquery("__deltas"))
        ctes.append(("distinct_deltas", deltas.group_by(*map(col, self.keys), col(POINT))))
        return ctes

    def _distinct_columns(self) -> list[str]:
        return sorted({self.delta_name(f) for f in self.distinct_features})

    def delta_name(self, feature: WindowFeature) -> str:
        return f"__delta_{feature.column}_{self.model.tiles_of(feature)}"

    def _distinct_gaps(self, column: str) -> exp.Select:
        occurrences = (
            exp.select(*map(col, self.keys), exp.alias_(col(column), "__value"), col(TILE))
            .distinct()
            .from_("events")
            .where(exp.Not(this=exp.Is(this=col(column), expression=exp.Null())))
        )
        over_value = {
            "partition_by": [*map(col, self.keys), col("__value")],
            "order": exp.Order(expressions=[dialects.ordered(col(TILE), self.dialect)]),
        }
        since_previous = exp.Sub(this=col(TILE), expression=exp.Window(this=exp.Lag(this=col(TILE)), **over_value))
        until_next = exp.Sub(this=exp.Window(this=exp.Lead(this=col(TILE)), **over_value), expression=col(TILE))
        return exp.select(
            *map(col, self.keys), col(TILE), exp.alias_(since_previous, "__since"), exp.alias_(until_next, "__until")
        ).from_(occurrences.subquery("__occurrences"))

    def _distinct_delta_parts(self, column: str, all_columns: list[str]) -> list[exp.Select]:
        sizes = sorted({self.model.tiles_of(f) for f in self.distinct_features if f.column == column})
        source = f"distinct_{column}"
        parts = []
        enters = {f"__delta_{column}_{n}": self._delta_case("__since", n, 1) for n in sizes}
        # Rows whose deltas are all zero change nothing: keep only those far enough from a neighbour.
        parts.append(self._delta_select(source, 1, enters, all_columns).where(self._far("__since", sizes[0])))
        for n in sizes:
            leaves = {f"__delta_{column}_{n}": self._delta_case("__until", n, -1)}
            parts.append(self._delta_select(source, n + 1, leaves, all_columns).where(self._far("__until", n)))
        return parts

    def _far(self, gap: str, size: int) -> exp.Expr:
        return exp.or_(exp.Is(this=col(gap), expression=exp.Null()), col(gap) > num(size))

    def _delta_case(self, gap: str, size: int, sign: int) -> exp.Expr:
        return exp.Case(ifs=[exp.If(this=self._far(gap, size), true=num(sign))], default=num(0))

    def _delta_select(
        self, source: str, offset: int, deltas: dict[str, exp.Expr], all_columns: list[str]
    ) -> exp.Select:
        point = exp.alias_(exp.Add(this=col(TILE), expression=num(offset)), POINT)
        values = [exp.alias_(deltas.get(name, num(0)), name) for name in all_columns]
        return exp.select(*map(col, self.keys), point, *values).from_(source)


class Spreads:
    """variance and stddev features of doubles: per entity and point, each window's count and M2."""

    def __init__(self, model: WindowModel, features: list[WindowFeature], bounds: BoundaryRange):
        self.model = model
        self.keys = list(model.keys)
        self.spread_features = features
        self.bounds = bounds

    def _spread_columns(self) -> list[str]:
        return sorted({f.column for f in self.spread_features if f.column})

    def ctes(self) -> list[tuple[str, exp.Query]]:
        """Window variance from tile (count, mean, M2) by Chan's formula.

        M2 of a window = sum of tile M2 + sum of n_k * (mean_k - window mean)^2,
        evaluated after joining each point to its window's tiles, so no large
        sums of squares are ever subtracted (the textbook formula's failure).
        """
        widest = max(self.model.tiles_of(f) for f in self.spread_features)
        on: list[exp.Expr] = [col(k, "p").eq(col(k, "t")) for k in self.keys]
        on += [
            col(TILE, "t") >= exp.Sub(this=col(POINT, "p"), expression=num(widest)),
            col(TILE, "t") < col(POINT, "p"),
        ]
        columns = self._spread_columns()
        carried = [col(f"__{part}_{c}", "t") for c in columns for part in ("n", "mean", "m2")]
        pairs = (
            exp.select(*(col(k, "p") for k in self.keys), col(POINT, "p"), col(TILE, "t"), *carried)
            .from_(exp.to_table("points").as_("p"))
            .join(exp.to_table("tiles").as_("t"), on=exp.and_(*on))
        )
        if self.bounds.lo is not None:
            pairs = pairs.where(col(POINT, "p") >= num(self.bounds.lo))
        groups = self._spread_groups()
        means = exp.select("*", *(exp.alias_(self._window_mean(c, n), f"__wmean_{c}_{n}") for c, n in groups))
        sums = []
        for column, n in groups:
            inside = self._in_window(n)
            count = exp.Case(ifs=[exp.If(this=inside, true=col(f"__n_{column}"))])
            spread = exp.Add(
                this=col(f"__m2_{column}"),
                expression=exp.Mul(
                    this=col(f"__n_{column}"),
                    expression=exp.Pow(
                        this=exp.paren(exp.Sub(this=col(f"__mean_{column}"), expression=col(f"__wmean_{column}_{n}"))),
                        expression=num(2),
                    ),
                ),
            )
            sums.append(exp.alias_(total(count), f"__sn_{column}_{n}"))
            sums.append(
                exp.alias_(total(exp.Case(ifs=[exp.If(this=inside.copy(), true=spread)])), f"__sm2_{column}_{n}")
            )
        spread_query = (
            exp.select(*map(col, self.keys), col(POINT), *sums)
            .from_("spread_means")
            .group_by(*map(col, self.keys), col(POINT))
        )
        return [
            ("spread_pairs", pairs),
            ("spread_means", means.from_("spread_pairs")),
            ("spread", spread_query),
        ]

    def _spread_groups(self) -> list[tuple[str, int]]:
        return sorted({(f.column, self.model.tiles_of(f)) for f in self.spread_features if f.column})

    def _in_window(self, size: int) -> exp.Expr:
        return col(TILE) >= exp.Sub(this=col(POINT), expression=num(size))

    def _window_mean(self, column: str, size: int) -> exp.Expr:
        partition = [*map(col, self.keys), col(POINT)]
        inside = self._in_window(size)
        weighted = exp.Case(
            ifs=[exp.If(this=inside, true=exp.Mul(this=col(f"__n_{column}"), expression=col(f"__mean_{column}")))]
        )
        count = exp.Case(ifs=[exp.If(this=inside.copy(), true=col(f"__n_{column}"))])
        return exp.Div(
            this=exp.Window(this=total(weighted), partition_by=partition),
            expression=exp.Nullif(
                this=exp.Window(this=total(count), partition_by=[p.copy() for p in partition]), expression=num(0)
            ),
        )
