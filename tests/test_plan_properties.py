"""The run planner (``plan_window``) fuzzed with hypothesis: no gaps, no overlaps, idempotent.

``tests/test_intervals.py`` checks the interval functions one by one; this checks
what a run actually does with them. For a window model of the example project
with random settings (grain, start, data delay, lookback, batch size) and a
random interval state, the planned batches are applied to the state as a run
would record them, and then:

- the batches never overlap and stay inside ``[start, last complete boundary]``;
- afterwards nothing in that span is missing (gaps are filled, never skipped);
- planning again at the same ``now`` finds nothing missing: it recomputes at
  most the ``lookback`` tail, and that tail is the same on every later plan
  (applying it changes nothing), so repeated runs converge;
- a backfill (``--start/--end``) computes exactly the requested boundaries.
"""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from functools import cache

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from projects import REPO_ROOT

from featuresql.compile.models import CompiledModel
from featuresql.context import Context
from featuresql.run.intervals import BEGINNING, Interval, merge, missing, subtract
from featuresql.run.planning import RunOptions, WindowPlan, model_span, plan_window

EPOCH_DAY = 20_600  # 2026-05-27, a day index well inside the tests' range
GRAINS = (60, 900, 3600, 86_400)


@cache
def example_window_model() -> CompiledModel:
    with Context(REPO_ROOT) as context:
        return context.compiled.models["user_transactions"]


@st.composite
def window_models(draw: st.DrawFn) -> CompiledModel:
    grain = draw(st.sampled_from(GRAINS))
    start_tile = draw(st.none() | st.integers(EPOCH_DAY * 86_400 // grain, EPOCH_DAY * 86_400 // grain + 40))
    start = None if start_tile is None else datetime.fromtimestamp(start_tile * grain, UTC)
    if start is not None and draw(st.booleans()):
        start += timedelta(seconds=draw(st.integers(1, grain - 1)))  # off the grain: rounded up
    model = example_window_model()
    changed = dataclasses.replace(
        model.settings,
        grain=grain,
        start=start,
        data_delay=draw(st.sampled_from((0, 1, grain // 2, grain, 3 * grain))),
        lookback=draw(st.integers(0, 4)),
        batch_size=draw(st.none() | st.integers(1, 7)),
    )
    return dataclasses.replace(model, settings=changed)


@st.composite
def states(draw: st.DrawFn, model: CompiledModel, now: datetime) -> list[Interval]:
    """Intervals a model may have recorded: aligned to its grain inside its span, maybe none."""
    grain = model.settings.grain
    lo, hi = model_span(model, now)
    first = (EPOCH_DAY * 86_400 if lo == BEGINNING else lo) // grain
    last = max(first, hi // grain + draw(st.integers(-3, 0)))
    tile = st.integers(first, last)
    spans = draw(st.lists(st.tuples(tile, tile), max_size=5))
    recorded = [(a * grain, b * grain) for a, b in (sorted(s) for s in spans) if a < b]
    if recorded and lo == BEGINNING and draw(st.booleans()):
        recorded.append((BEGINNING, recorded[0][0]))  # a first run from the beginning
    return merge(recorded)


def expected_span(model: CompiledModel, now: datetime) -> Interval:
    """DESIGN §3 by hand: from ``start`` rounded up to the grain, to the last boundary complete at ``now``."""
    grain, start = model.settings.grain, model.settings.start
    first = BEGINNING if start is None else -(-int(start.timestamp()) // grain) * grain
    last_complete = (int(now.timestamp()) - model.settings.data_delay) // grain * grain
    return first, last_complete + grain


def applied(state: list[Interval], plan: WindowPlan) -> list[Interval]:
    """The state after a run executes ``plan`` (a created table forgets the old state)."""
    return merge([*([] if plan.create else state), *plan.batches])


def assert_disjoint_and_inside(plan: WindowPlan, span: Interval) -> None:
    assert all(lo < hi for lo, hi in plan.batches)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(plan.batches)), "batches overlap or are out of order"
    assert all(span[0] <= lo and hi <= span[1] for lo, hi in plan.batches)


def assert_batch_sizes(plan: WindowPlan, model: CompiledModel) -> None:
    size = model.settings.batch_size
    if size is not None:
        assert all(hi - lo <= size * model.settings.grain for lo, hi in plan.batches if lo != BEGINNING)


nows = st.integers(0, 60 * 86_400).map(lambda s: datetime.fromtimestamp(EPOCH_DAY * 86_400 + s, UTC))


@settings(max_examples=300, deadline=None)
@given(st.data(), window_models(), nows)
def test_a_run_fills_every_gap_without_overlap_and_a_rerun_converges(
    data: st.DataObject, model: CompiledModel, now: datetime
) -> None:
    span = model_span(model, now)
    assert span == expected_span(model, now)
    state = data.draw(states(model, now))
    table_exists = data.draw(st.booleans())
    plan = plan_window(model, state, now, RunOptions(), table_exists=table_exists)
    assert_disjoint_and_inside(plan, span)
    assert_batch_sizes(plan, model)
    after = applied(state, plan)
    assert missing(after, *span) == [], "a run left a gap"
    if not plan.create:  # an incremental run computes every gap of the old state itself
        assert subtract(missing(state, *span), plan.batches) == []

    if span[0] >= span[1]:  # a start after now: nothing is complete yet
        assert plan.batches == []
        return
    again = plan_window(model, after, now, RunOptions(), table_exists=True)
    assert not again.create
    tail = merge(again.batches)
    lookback = model.settings.lookback * model.settings.grain
    if lookback == 0:
        assert tail == [], "a rerun with nothing new recomputed something"
    else:
        assert len(tail) <= 1 and all(hi == span[1] and hi - lo <= lookback for lo, hi in tail)
    assert applied(after, again) == after, "a rerun changed the recorded state"
    assert plan_window(model, applied(after, again), now, RunOptions(), table_exists=True) == again


@settings(max_examples=200, deadline=None)
@given(st.data(), window_models(), nows)
def test_a_full_refresh_rebuilds_the_whole_span_once(data: st.DataObject, model: CompiledModel, now: datetime) -> None:
    span = model_span(model, now)
    state = data.draw(states(model, now))
    plan = plan_window(model, state, now, RunOptions(full_refresh=True), table_exists=True)
    assert plan.create
    assert_disjoint_and_inside(plan, span)
    assert merge(plan.batches) == ([span] if span[0] < span[1] else [])


@settings(max_examples=200, deadline=None)
@given(st.data(), window_models(), nows, st.integers(-10, 70), st.integers(0, 20))
def test_a_backfill_computes_exactly_the_requested_boundaries(
    data: st.DataObject, model: CompiledModel, now: datetime, first: int, length: int
) -> None:
    span = model_span(model, now)
    grain = model.settings.grain
    state = data.draw(states(model, now))
    assume(state)  # a backfill of a model never built creates it: covered by the first test
    begin = datetime.fromtimestamp(now.timestamp() // grain * grain + first * grain - 40 * grain, UTC)
    finish = begin + timedelta(seconds=length * grain)
    plan = plan_window(model, state, now, RunOptions(start=begin, end=finish), table_exists=True)
    assert not plan.create
    assert_disjoint_and_inside(plan, span)
    wanted = (max(span[0], int(begin.timestamp())), min(span[1], int(finish.timestamp())))
    assert merge(plan.batches) == ([wanted] if wanted[0] < wanted[1] else [])
