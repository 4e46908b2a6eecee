"""The ``leakage`` test of extract models: every joined value is the one available at its row's time.

An extract model materialises a point-in-time join (``as_of_join``): each row
of its spine with, per joined model, the features of the row available at the
spine row's time ``t`` (DESIGN.md section 3). ``tests: [leakage]`` on such a
model recomputes, for every row of its built table, each joined value from the
feature tables, and fails on every row where a value differs (NULL-safe): a
leaked future value, a stale one, or a missing one.

The recomputation is written independently of ``featuresql.sql.point_in_time``
(which builds the table), so the two must agree rather than share a mistake.
For each joined model and each distinct ``(keys, t)`` of the table:

1. the availability time of the matched row, ``MAX(ts)`` over the model's rows
   with the same keys and ``ts + data_delay <= t``; with a ``ttl``, also
   ``ts + ttl >= t``; with a ``start``, also ``ts >= start`` (a window model's
   start rounded up to its grain);
2. the row at exactly that time (snapshot models may hold several: the greatest
   ``tie_break``, then the greatest feature values in column order, as
   ``JoinedModel.tie_break`` orders them), taken whole;
3. no such row: count-like window features are 0 once the model has started
   (``t >= start + data_delay``; without a start, any ``t`` but NULL), everything
   else is NULL.

Step 1 pairs each row with every earlier row of its entity (no shortcut such as
the join's ``_bounds``, which this check thereby verifies), so the test costs
more than building the extract did.

The table's columns ``<model>__<feature>`` are compared with those values; the
spine's key columns and time column must be in the table. ``Outcome.failures``
is the number of differing rows; ``details`` shows, for a few of them, the keys,
the time, the column, the value found and the value available.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlglot import exp

from featuresql.adapters.base import WarehouseAdapter
from featuresql.compile.models import AsOfJoin, CompiledModel, CompiledProject
from featuresql.errors import ConfigError
from featuresql.sql import dialects
from featuresql.sql.point_in_time import JoinedModel
from featuresql.testing.cases import Check, Outcome, TestEnv
from featuresql.testing.failing import format_table

EXAMPLES = 10  # differing rows shown
_TABLE = "__extract"
_AT = "__available_at"
_FAILING = "__failing_rows"


def leakage_check(model: CompiledModel, compiled: CompiledProject) -> Check:
    """The check of ``tests: [leakage]`` on ``model``; ConfigError unless it is an extract model."""
    if not model.as_of_joins:
        raise ConfigError(
            f"`leakage` tests extract models: {model.name} has no as_of_join; "
            "remove the test, or select from {{ as_of_join(...) }} in the model",
            path=model.path,
        )
    return _Leakage(model, compiled.dialect)


@dataclass(frozen=True)
class _Leakage:
    model: CompiledModel
    dialect: str

    def __call__(self, env: TestEnv) -> Outcome:
        return check_leakage(self.model, env.context.adapter, self.dialect)


@dataclass(frozen=True)
class Compared:
    """One compared column: the table's ``<model>__<feature>`` and the model it comes from."""

    model: JoinedModel
    feature: str

    @property
    def name(self) -> str:
        return self.model.output_name(self.feature)


def check_leakage(model: CompiledModel, adapter: WarehouseAdapter, dialect: str) -> Outcome:
    """Compare the built table of extract model ``model`` with the values available at each row's time."""
    columns = adapter.table_columns(model.relation)
    if columns is None:
        raise ConfigError(
            f"leakage test of {model.name!r}: its table {model.relation.sql(dialect)} does not exist; "
            f"build it first with `featuresql run --select {model.name}`"
        )
    failing = 0
    examples: list[str] = []
    queries = []
    for join in model.as_of_joins:
        compared = _compared_columns(model, join, set(columns))
        query = leakage_query(model.relation, join, compared, dialect)
        rows = adapter.fetch_arrow(query).to_pylist()
        failing += int(rows[0][_FAILING]) if rows else 0
        examples.extend(_examples(join, compared, rows))
        queries.append(query.sql(dialect, pretty=True))
    return Outcome(failing, _message(model, failing), "\n".join(examples), ";\n\n".join(queries))


def _compared_columns(model: CompiledModel, join: AsOfJoin, columns: set[str]) -> list[Compared]:
    """The joined columns the table has; ConfigError when it lacks the spine's keys or time, or them all."""
    needed = [*join.spine_keys, join.time]
    missing = [c for c in needed if c.lower() not in columns]
    if missing:
        raise ConfigError(
            f"leakage test of {model.name!r}: its table has no column {missing[0]!r}; select the spine's keys "
            f"and time column ({', '.join(needed)}) so each row's features can be recomputed",
            path=model.path,
        )
    compared = [Compared(m, c) for m in join.models for c in m.columns if m.output_name(c).lower() in columns]
    if not compared:
        raise ConfigError(
            f"leakage test of {model.name!r}: its table has none of the joined columns "
            f"(named <model>__<feature>, e.g. {join.models[0].output_name(join.models[0].columns[0])})",
            path=model.path,
        )
    return compared


def leakage_query(table: exp.Table, join: AsOfJoin, compared: Sequence[Compared], dialect: str) -> exp.Select:
    """The first ``EXAMPLES`` differing rows of ``table``, each with the number of differing rows.

    CTE ``__mN_at`` holds the availability time of model N's match for each
    ``(keys, t)`` of the table (step 1), ``__mN`` the matched row (step 2), and
    ``__compared`` every row with, per compared column ``c``, ``c`` as found and
    ``c__available`` as recomputed (step 3). Each result row also says which
    columns differ (``c__differs``).
    """
    spine = [exp.column(dialects.identifier(c)) for c in (*join.spine_keys, join.time)]
    differs = {
        c.name: exp.NullSafeNEQ(
            this=exp.column(dialects.identifier(c.name)),
            expression=exp.column(dialects.identifier(f"{c.name}__available")),
        )
        for c in compared
    }
    query = exp.select(*spine, *(exp.column(dialects.identifier(n)) for c in compared for n in _pair(c)))
    query = query.select(*(exp.alias_(d, f"{name}__differs") for name, d in differs.items()))
    query = query.select(exp.alias_(exp.Window(this=exp.Count(this=exp.Star())), _FAILING))
    for number, model in enumerate(join.models):
        query = query.with_(f"__m{number}_at", as_=_available_at(table, join, model, dialect))
        query = query.with_(f"__m{number}", as_=_matched(join, model, f"__m{number}", dialect))
    query = query.with_("__compared", as_=_compared_rows(table, join, compared, dialect)).from_("__compared")
    return (
        query.where(exp.or_(*(d.copy() for d in differs.values())))
        .order_by(*(dialects.ordered(c.copy(), dialect) for c in (spine[-1], *spine[:-1])))
        .limit(EXAMPLES)
    )


def _pair(column: Compared) -> tuple[str, str]:
    return column.name, f"{column.name}__available"


def _compared_rows(table: exp.Table, join: AsOfJoin, compared: Sequence[Compared], dialect: str) -> exp.Select:
    """Every row of the table: its spine keys and time, and each compared column found and available."""
    time = exp.column(dialects.identifier(join.time), _TABLE)
    query = exp.select(*(exp.column(dialects.identifier(k), _TABLE) for k in join.spine_keys), time.copy())
    query = query.from_(exp.alias_(table.copy(), _TABLE, table=True))
    for number, model in enumerate(join.models):
        alias = f"__m{number}"
        on = [exp.column(_spine_key(model, k), alias).eq(exp.column(_spine_key(model, k), _TABLE)) for k in model.keys]
        on.append(exp.column(dialects.identifier(join.time), alias).eq(time.copy()))
        query = query.join(exp.to_table(alias), on=exp.and_(*on), join_type="left")
        for column in (c for c in compared if c.model is model):
            found = exp.column(dialects.identifier(column.name), _TABLE)
            query = query.select(
                exp.alias_(found, column.name),
                exp.alias_(_available(column, alias, time, dialect), f"{column.name}__available"),
            )
    return query


def _spine_key(model: JoinedModel, key: str) -> exp.Identifier:
    """The spine's (and the table's) column for the model's key ``key``."""
    spine_keys = model.spine_keys or model.keys
    return dialects.identifier(spine_keys[model.keys.index(key)])


def _available_at(table: exp.Table, join: AsOfJoin, model: JoinedModel, dialect: str) -> exp.Select:
    """Step 1: per distinct ``(keys, t)`` of the table, the time of the model's row available at ``t``."""
    rows, time = "__f", exp.column(dialects.identifier(join.time), _TABLE)
    ts = exp.column(model.timestamp, rows)
    condition: list[exp.Expr] = [exp.column(k, rows).eq(exp.column(_spine_key(model, k), _TABLE)) for k in model.keys]
    condition.append(_plus(ts, model.data_delay) <= time.copy())
    if model.ttl is not None:
        condition.append(_plus(ts, model.ttl) >= time.copy())
    if model.start is not None:
        condition.append(ts.copy() >= dialects.timestamp_literal(model.start, dialect))
    group = [*(exp.column(_spine_key(model, k), _TABLE) for k in model.keys), time]
    return (
        exp.select(*(g.copy() for g in group), exp.alias_(exp.func("MAX", ts.copy()), _AT))
        .from_(exp.alias_(table.copy(), _TABLE, table=True))
        .join(exp.alias_(model.relation.copy(), rows, table=True), on=exp.and_(*condition))
        .group_by(*group)
    )


def _matched(join: AsOfJoin, model: JoinedModel, alias: str, dialect: str) -> exp.Select:
    """Step 2: the model's row at that time, whole (ties broken by ``JoinedModel.tie_break``)."""
    rows, at = "__f", f"{alias}_at"
    keys = [exp.column(_spine_key(model, k), at) for k in model.keys]
    time = exp.column(dialects.identifier(join.time), at)
    condition = [exp.column(k, rows).eq(exp.column(_spine_key(model, k), at)) for k in model.keys]
    condition.append(exp.column(model.timestamp, rows).eq(exp.column(_AT, at)))
    query = (
        exp.select(*keys, time.copy(), exp.column(_AT, at))
        .select(*(exp.alias_(exp.column(c, rows), model.output_name(c)) for c in model.columns))
        .from_(at)
        .join(exp.alias_(model.relation.copy(), rows, table=True), on=exp.and_(*condition))
    )
    if not model.tie_break:  # a window table has one row per entity and boundary
        return query
    order = [exp.Ordered(this=exp.column(c, rows), desc=True, nulls_first=False) for c in model.tie_break]
    first = exp.Window(this=exp.RowNumber(), partition_by=[*keys, time], order=exp.Order(expressions=order))
    return query.qualify(first.eq(1))


def _available(column: Compared, alias: str, time: exp.Expr, dialect: str) -> exp.Expr:
    """Step 3: the matched value; without a match, 0 for a started count-like feature, else NULL."""
    value = exp.column(column.model.output_name(column.feature), alias)
    if column.feature not in column.model.count_like:
        return value
    started: exp.Expr = time.copy().is_(exp.null()).not_()
    if column.model.start is not None:
        first = column.model.start + timedelta(seconds=column.model.data_delay)
        started = time.copy() >= dialects.timestamp_literal(first, dialect)
    matched = exp.column(_AT, alias).is_(exp.null()).not_()
    return exp.case().when(matched, value).when(started, exp.Literal.number(0))


def _plus(ts: exp.Expr, seconds: int) -> exp.Expr:
    if not seconds:
        return ts.copy()
    return exp.TimestampAdd(this=ts.copy(), expression=exp.Literal.number(seconds), unit=exp.var("SECOND"))


def _examples(join: AsOfJoin, compared: Sequence[Compared], rows: list[dict[str, Any]]) -> list[str]:
    """One line per differing value of the example rows: keys, time, column, found, available."""
    header = [*join.spine_keys, join.time, "column", "found", "available"]
    lines = []
    for row in rows:
        spine = {c: _value(row, c) for c in [*join.spine_keys, join.time]}
        for column in compared:
            if _value(row, f"{column.name}__differs"):
                found, available = _value(row, column.name), _value(row, f"{column.name}__available")
                lines.append({**spine, "column": column.name, "found": found, "available": available})
    return [format_table(header, lines)] if lines else []


def _value(row: dict[str, Any], column: str) -> Any:
    """A column of a fetched row, whatever case the engine gave its name."""
    if column in row:
        return row[column]
    lowered = {name.lower(): value for name, value in row.items()}
    return lowered.get(column.lower())


def _message(model: CompiledModel, failing: int) -> str:
    if not failing:
        return f"every row of {model.name} holds the features available at its time"
    noun = "row holds" if failing == 1 else "rows hold"
    return f"{model.name}: {failing} {noun} features other than those available at its time (leaked, stale or missing)"
