"""The built-in ``availability`` test of every window model: no row is available early.

A window model's row for boundary ``E`` may be read from ``E + data_delay``
(DESIGN.md section 3): a run computes a boundary only once every event before
it has arrived. ``featuresql test`` checks each window model's table against the
interval state its runs recorded (``featuresql.run.state``), and fails on:

- rows whose ``ts`` is not a boundary: NULL, or not a multiple of the model's
  grain since the Unix epoch (a boundary ``E`` is ``k * grain``);
- rows whose boundary lies in no interval the state records as computed: rows
  no run vouches for (written by hand, or left over from a forgotten run);
- intervals computed too early: the state row of a batch ``[lo, hi)`` computed
  at ``computed_at`` holds a boundary ``E`` with ``E + data_delay >
  computed_at`` (its last boundary plus data_delay is after computed_at), so
  its rows were computed before that boundary's data was complete. A boundary
  that a later batch computed again was replaced with that batch's rows, and
  only the later batch answers for it. The rows at such boundaries are reported
  too.

``Outcome.failures`` is the number of offending rows plus the number of
intervals computed too early; ``details`` shows a few rows of each problem and
every early interval. The interval arithmetic runs in Python over the model's
state rows (a handful per run); the rows are checked by one query built with
sqlglot, the same for every engine, with the intervals as constants so it can be
rerun by hand (``Outcome.sql``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlglot import exp

from featuresql.adapters.base import WarehouseAdapter
from featuresql.compile.models import CompiledModel, CompiledProject
from featuresql.durations import format_duration
from featuresql.errors import ConfigError
from featuresql.run import state
from featuresql.run.intervals import BEGINNING, Interval, merge, subtract
from featuresql.sql import dialects
from featuresql.sql.engines import MICROS
from featuresql.testing.cases import Outcome, TestCase, TestEnv
from featuresql.testing.failing import format_table
from featuresql.times import utc

EXAMPLES_PER_PROBLEM = 4  # offending rows shown for each problem
OFF_GRAIN = "ts is not a boundary of the grain"
NOT_COMPUTED = "boundary in no computed interval"
EARLY = "computed before ts + data_delay"
_PROBLEM = "problem"
_COUNT = "rows_with_problem"


@dataclass(frozen=True)
class ComputedInterval:
    """One state row of a model: a committed batch ``[lo, hi)`` and when it was computed."""

    lo: int
    hi: int
    computed_at: int  # epoch seconds, rounded down
    run_id: str


def availability_cases(compiled: CompiledProject, project_name: str) -> list[TestCase]:
    """One built-in ``availability`` test per window model, in dependency order."""
    return [
        TestCase(
            name=f"availability_{name}",
            kind="availability",
            test_type="data",
            check=_Availability(model, project_name, compiled.dialect),
            models=(name,),
            description=f"no row of {name} is available before its boundary + data_delay",
        )
        for name, model in compiled.models.items()
        if model.window is not None
    ]


@dataclass(frozen=True)
class _Availability:
    """The check of one window model (a callable, so a TestCase can hold it)."""

    model: CompiledModel
    project: str
    dialect: str

    def __call__(self, env: TestEnv) -> Outcome:
        return check_availability(self.model, env.context.adapter, self.project, self.dialect)


def check_availability(model: CompiledModel, adapter: WarehouseAdapter, project: str, dialect: str) -> Outcome:
    """Check the built table of window model ``model`` against its interval state."""
    if adapter.table_columns(model.relation) is None:
        raise ConfigError(
            f"availability test of {model.name!r}: its table {model.relation.sql(dialect)} does not exist; "
            f"build it first with `featuresql run --select {model.name}`"
        )
    settings = model.settings
    computed = read_intervals(adapter, project, model.name)
    early = early_intervals(computed, settings.grain, settings.data_delay)
    vouched = merge((c.lo, c.hi) for c in computed)
    query = offending_rows_query(model, vouched, [span for _, spans in early for span in spans], dialect)
    rows = adapter.fetch_arrow(query).to_pylist()
    counts = {row[_PROBLEM]: int(row[_COUNT]) for row in rows}
    failures = sum(counts.values()) + len(early)
    details = _details(model, rows, early)
    return Outcome(failures, _message(model, counts, len(early)), details, query.sql(dialect, pretty=True))


def read_intervals(adapter: WarehouseAdapter, project: str, model: str) -> list[ComputedInterval]:
    """Every state row of ``model`` (none when the state table does not exist yet)."""
    intervals = state.table("intervals")
    if adapter.table_columns(intervals) is None:
        return []
    query = (
        exp.select("lo", "hi", "computed_at", "run_id")
        .from_(intervals)
        .where(exp.column("project").eq(exp.Literal.string(project)))
        .where(exp.column("model").eq(exp.Literal.string(model)))
    )
    return [
        ComputedInterval(int(row["lo"]), int(row["hi"]), _epoch_seconds(row["computed_at"]), str(row["run_id"]))
        for row in adapter.fetch_arrow(query).to_pylist()
    ]


def early_intervals(
    computed: Sequence[ComputedInterval], grain: int, data_delay: int
) -> list[tuple[ComputedInterval, list[Interval]]]:
    """The intervals computed too early, each with its boundaries still holding early rows.

    A boundary ``E`` of an interval computed at ``c`` was early when ``E + data_delay > c``:
    the first such boundary is the first multiple of the grain after ``c - data_delay``.
    Boundaries a later batch computed again are that batch's to answer for.
    """
    found = []
    for interval in computed:
        first_early = math.floor((interval.computed_at - data_delay) / grain) * grain + grain
        later = [(c.lo, c.hi) for c in computed if c.computed_at > interval.computed_at]
        spans = subtract([(max(interval.lo, first_early), interval.hi)], later)
        spans = [(lo, hi) for lo, hi in spans if -(-lo // grain) * grain < hi]  # holding a boundary
        if spans:
            found.append((interval, spans))
    return found


def offending_rows_query(
    model: CompiledModel, vouched: Sequence[Interval], early: Sequence[Interval], dialect: str
) -> exp.Select:
    """A few rows of each problem (``EXAMPLES_PER_PROBLEM``), with the number of rows having it."""
    settings = model.settings
    ts = exp.column(settings.timestamp or "")
    keys = [exp.column(dialects.identifier(k)) for k in settings.keys]
    off_grain = exp.or_(
        ts.copy().is_(exp.null()),
        exp.Mod(this=dialects.epoch_micros(ts.copy(), dialect), expression=_micros(settings.grain)).neq(0),
    )
    problem = exp.case().when(off_grain, exp.Literal.string(OFF_GRAIN))
    problem = problem.when(exp.not_(_within(ts, vouched, dialect)), exp.Literal.string(NOT_COMPUTED))
    if early:
        problem = problem.when(_within(ts, early, dialect), exp.Literal.string(EARLY))
    rows = exp.select(*keys, ts.copy(), exp.alias_(problem, _PROBLEM)).from_(model.relation.copy())
    by_problem = [exp.column(_PROBLEM)]
    first = exp.Window(
        this=exp.RowNumber(),
        partition_by=by_problem,
        order=exp.Order(expressions=[dialects.ordered(c.copy(), dialect) for c in (ts, *keys)]),
    )
    return (
        exp.select(*(k.copy() for k in keys), ts.copy(), exp.column(_PROBLEM))
        .select(exp.alias_(exp.Window(this=exp.Count(this=exp.Star()), partition_by=by_problem), _COUNT))
        .from_(rows.subquery("__rows"))
        .where(exp.column(_PROBLEM).is_(exp.null()).not_())
        .qualify(exp.LTE(this=first, expression=exp.Literal.number(EXAMPLES_PER_PROBLEM)))
        .order_by(*(dialects.ordered(c.copy(), dialect) for c in (exp.column(_PROBLEM), ts, *keys)))
    )


def _within(ts: exp.Column, spans: Sequence[Interval], dialect: str) -> exp.Expr:
    """``ts`` in any of the half-open ``spans`` of epoch seconds (FALSE for none)."""
    conditions = [dialects.time_in_span(ts, None if lo <= BEGINNING else lo, hi, dialect) for lo, hi in spans]
    return exp.paren(exp.or_(*conditions)) if conditions else exp.false()


def _micros(seconds: int) -> exp.Expr:
    return exp.Literal.number(seconds * MICROS)


def _epoch_seconds(value: datetime) -> int:
    """A state timestamp (zone-less UTC, or zoned) as whole epoch seconds."""
    return math.floor(utc(value).timestamp())


def _message(model: CompiledModel, counts: dict[str, int], early: int) -> str:
    settings = model.settings
    if not counts and not early:
        return (
            f"every row of {model.name} is on its {format_duration(settings.grain)} grain and was computed "
            f"by a run at or after its boundary + data_delay ({format_duration(settings.data_delay)})"
        )
    parts = [f"{count} {_rows(count)}: {problem}" for problem, count in counts.items()]
    if early:
        noun = "interval" if early == 1 else "intervals"
        parts.append(f"{early} {noun} computed too early, before boundary + data_delay")
    return f"{model.name}: " + "; ".join(parts)


def _rows(count: int) -> str:
    return "row" if count == 1 else "rows"


def _details(
    model: CompiledModel, rows: list[dict[str, Any]], early: list[tuple[ComputedInterval, list[Interval]]]
) -> str:
    settings = model.settings
    columns = [*settings.keys, settings.timestamp or "", _PROBLEM]
    lines = [format_table(columns, [{c: row.get(c) for c in columns} for row in rows])] if rows else []
    delay = format_duration(settings.data_delay)
    for interval, spans in early:
        boundaries = ", ".join(f"[{_show(lo)}, {_show(hi)})" for lo, hi in spans)
        lines.append(
            f"interval [{_show(interval.lo)}, {_show(interval.hi)}) computed at {_show(interval.computed_at)} "
            f"by run {interval.run_id}: before boundary + data_delay ({delay}) for boundaries {boundaries}"
        )
    return "\n".join(lines)


def _show(seconds: int) -> str:
    if seconds <= BEGINNING:
        return "beginning"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")
