"""What a run computes for each model: the batches of boundary intervals, from state and time.

Planning is pure (state in, intervals out; see ``featuresql.run.intervals``),
except ``batched_plan``, which asks the warehouse for a model's first event to cut
a first run into batches. ``RunState`` is what every model of one run shares.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlglot import exp

from featuresql.adapters.base import WarehouseAdapter
from featuresql.compile.models import CompiledModel
from featuresql.run import state
from featuresql.run.intervals import BEGINNING, Interval, affected, batches, intersect, merge, to_compute
from featuresql.sql.window_parts import any_null
from featuresql.sql.windows import BoundaryRange
from featuresql.times import utc


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
    return int(utc(moment).timestamp())


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
    """The time of the model's first event with its keys (rows without one are never computed)."""
    assert model.window is not None
    timestamp = exp.column(model.window.timestamp)
    events = model.window.events.subquery("__rows")
    return exp.select(exp.func("MIN", timestamp)).from_(events).where(exp.not_(any_null(model.settings.keys)))


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


BatchReporter = Callable[[str, int, int, Interval, int | None, float], None]


@dataclass
class RunState:
    """What every model of one run shares: who runs, when, and what upstream models recomputed."""

    project: str
    run_id: str
    dialect: str
    now: datetime
    options: RunOptions
    states: dict[str, state.ModelState]
    existing: set[str]
    definitions: dict[str, str]
    rebuild: set[str] = field(default_factory=set)  # changed models set to rebuild (on_change='rebuild')
    on_batch: BatchReporter | None = None
    heartbeat: Callable[[WarehouseAdapter], None] | None = None  # called after each committed batch
    recomputed: dict[str, list[Interval]] = field(default_factory=dict)
    models: Mapping[str, CompiledModel] = field(default_factory=dict)  # the compiled project's (set by the runner)
    lock: threading.Lock = field(default_factory=threading.Lock)


def plan_for(model: CompiledModel, run: RunState) -> WindowPlan:
    with run.lock:
        upstream = [i for ref in model.refs for i in run.recomputed.get(ref, [])]
    options = replace(run.options, full_refresh=True) if model.name in run.rebuild else run.options
    return plan_window(
        model,
        run.states[model.name].intervals,
        run.now,
        options,
        table_exists=model.name in run.existing,
        upstream=upstream,
    )


def batched_plan(model: CompiledModel, adapter: WarehouseAdapter, run: RunState) -> WindowPlan:
    """``plan_for``, given the model's first event when it creates the table.

    A table created before the model's first event (an empty source, or only future
    events) computes nothing and records nothing: state claims no history that was
    computed without data, so the first run with data fills from its first event (or
    ``start``). A first run from the beginning is cut into batches from the first event.
    """
    plan = plan_for(model, run)
    if not (plan.create and plan.batches):
        return plan
    first = adapter.fetch_arrow(first_event_query(model)).column(0)[0].as_py()
    if first is None or _utc_seconds(first) >= plan.batches[-1][1]:
        return WindowPlan(create=True, batches=[])
    if plan.batches[0][0] == BEGINNING and model.settings.batch_size:
        plan = rebatch_from_first_event(plan, first, model)
    return plan
