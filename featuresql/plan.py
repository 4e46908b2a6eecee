"""What a run does for each model: the boundary intervals to compute and their statements.

Planning is pure (state in, intervals out; see ``featuresql.intervals``);
``featuresql compile`` writes the statements of a full build, and ``featuresql
run`` executes the planned batches (``featuresql.execution``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlglot import exp

from featuresql.dialects import timestamp_literal
from featuresql.intervals import BEGINNING, Interval, affected, batches, intersect, merge, to_compute
from featuresql.models import CompiledModel
from featuresql.window_query import BoundaryRange, window_query


@dataclass(frozen=True)
class RunOptions:
    """How a run treats state: incremental by default."""

    full_refresh: bool = False
    start: datetime | None = None  # with end: backfill exactly this range
    end: datetime | None = None


@dataclass(frozen=True)
class WindowPlan:
    """The batches of boundaries a run computes for a window model, in order.

    With ``create`` the first batch replaces the table and forgets the model's
    state (a first run or a full refresh); the others replace their range.
    """

    create: bool
    batches: list[Interval]

    @property
    def intervals(self) -> list[Interval]:
        return merge(self.batches)


def _utc_seconds(moment: datetime) -> int:
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment  # naive times are UTC
    return int(moment.timestamp())


def computable_boundaries(model: CompiledModel, now: datetime) -> BoundaryRange:
    """All boundaries from the model start up to the last one complete at ``now``.

    A boundary E is complete once ``now - data_delay >= E``: every event before it
    has arrived. Boundaries before ``start`` are never computed.
    """
    settings = model.settings
    last = (_utc_seconds(now) - settings.data_delay) // settings.grain
    start = settings.start_boundary()
    return BoundaryRange(lo=start, hi=last + 1, initial=start is not None)


def model_span(model: CompiledModel, now: datetime) -> Interval:
    """``[start, end)`` in seconds: every boundary a run at ``now`` must have computed."""
    bounds = computable_boundaries(model, now)
    grain = model.settings.grain
    return (BEGINNING if bounds.lo is None else bounds.lo * grain, bounds.hi * grain)


def plan_window(
    model: CompiledModel,
    computed: list[Interval],
    now: datetime,
    options: RunOptions,
    *,
    table_exists: bool,
    upstream: list[Interval] | None = None,
) -> WindowPlan:
    """The batches a run at ``now`` computes for ``model``, given the intervals it ``computed``."""
    settings = model.settings
    grain = settings.grain
    start, end = model_span(model, now)
    create = options.full_refresh or not computed or not table_exists
    if options.start is not None or options.end is not None:
        low = _floor(_utc_seconds(options.start), grain) if options.start else start
        high = -(-_utc_seconds(options.end) // grain) * grain if options.end else end
        work = intersect([(low, high)], (start, end))
    else:
        work = to_compute([] if create else computed, start, end, settings.lookback, grain)
    if upstream and not create and model.window is not None:
        # Upstream rows recomputed in this run reach this model's windows up to its widest one later.
        reach = model.window.max_tiles * grain + grain
        work = merge([*work, *intersect(affected(upstream, reach), (start, end))])
    if create and work and work[0][0] != start:
        work = merge([(start, work[-1][1]), *work])  # a new table starts from the model start
    return WindowPlan(create=create, batches=batches(work, grain, settings.batch_size))


def first_event_query(model: CompiledModel) -> exp.Select:
    """The time of the model's first event (to batch a first run from its beginning)."""
    assert model.window is not None
    timestamp = exp.column(model.window.timestamp)
    return exp.select(exp.func("MIN", timestamp)).from_(model.window.events.subquery("__rows"))


def rebatch_from_first_event(plan: WindowPlan, first_event: datetime | None, model: CompiledModel) -> WindowPlan:
    """A plan whose batch from the beginning is cut into ``batch_size`` batches from the first event.

    Boundaries before the first event's tile have no rows, so the first batch still
    starts at ``BEGINNING`` (that is what state records) and ends ``batch_size`` tiles
    after the first boundary with data.
    """
    size = model.settings.batch_size
    if not plan.batches or plan.batches[0][0] != BEGINNING or size is None or first_event is None:
        return plan
    grain = model.settings.grain
    first = _floor(_utc_seconds(first_event), grain) + grain
    end = plan.batches[0][1]
    if first + size * grain >= end:
        return plan
    head = (BEGINNING, first + size * grain)
    rest = batches([(head[1], end)], grain, size)
    return WindowPlan(plan.create, [head, *rest, *plan.batches[1:]])


def _floor(seconds: int, grain: int) -> int:
    return seconds // grain * grain


def batch_query(model: CompiledModel, batch: Interval, dialect: str) -> exp.Select:
    """The window model's rows for the boundaries of ``batch`` (guarded to it)."""
    assert model.window is not None
    grain = model.settings.grain
    start = model.settings.start_boundary()
    lo = None if batch[0] == BEGINNING else batch[0] // grain
    return window_query(model.window, BoundaryRange(lo=lo, hi=batch[1] // grain, initial=lo == start), dialect)


def replace_range(model: CompiledModel, batch: Interval, dialect: str) -> list[exp.Expr]:
    """Delete the rows of ``batch`` and insert them anew (run inside one transaction)."""
    ts = exp.column(model.settings.timestamp or "")
    upper = ts.copy() < _timestamp(batch[1], dialect)
    where = upper if batch[0] == BEGINNING else exp.and_(ts.copy() >= _timestamp(batch[0], dialect), upper)
    delete = exp.delete(model.relation.copy(), where=where)
    insert = exp.insert(batch_query(model, batch, dialect), model.relation.copy())
    return [delete, insert]


def create_table(model: CompiledModel, query: exp.Query) -> exp.Create:
    return exp.Create(this=model.relation.copy(), kind="TABLE", replace=True, expression=query)


def _timestamp(seconds: int, dialect: str) -> exp.Expr:
    return timestamp_literal(datetime.fromtimestamp(seconds, UTC), dialect)


def model_query(model: CompiledModel, dialect: str, now: datetime) -> exp.Query:
    """The query whose result is the model's whole table at ``now``."""
    if model.window is not None:
        return window_query(model.window, computable_boundaries(model, now), dialect)
    return model.query


def build_statements(model: CompiledModel, dialect: str, now: datetime) -> list[exp.Expr]:
    """The statements that (re)build ``model`` in full."""
    return [create_table(model, model_query(model, dialect, now))]
