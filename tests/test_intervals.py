"""The interval planner: pure functions checked against sets of points (hypothesis)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from featuresql.run.intervals import (
    BEGINNING,
    affected,
    batches,
    intersect,
    merge,
    missing,
    subtract,
    to_compute,
)

GRAIN = 10
points_range = st.integers(0, 30).map(lambda n: n * GRAIN)
interval = st.tuples(points_range, points_range).map(lambda p: (min(p), max(p)))
intervals = st.lists(interval, max_size=6)


def points(spans: list[tuple[int, int]]) -> set[int]:
    """The boundaries an interval list covers (every grain step)."""
    return {t for lo, hi in spans for t in range(lo, hi, GRAIN)}


def is_canonical(spans: list[tuple[int, int]]) -> bool:
    return all(lo < hi for lo, hi in spans) and all(a[1] < b[0] for a, b in itertools.pairwise(spans))


@given(intervals)
def test_merge_keeps_the_points_and_is_canonical(spans: list[tuple[int, int]]) -> None:
    merged = merge(spans)
    assert points(merged) == points(spans)
    assert is_canonical(merged)
    assert merge(merged) == merged


@given(intervals, intervals)
def test_subtract_and_intersect_are_set_operations(spans: list[tuple[int, int]], cut: list[tuple[int, int]]) -> None:
    assert points(subtract(spans, cut)) == points(spans) - points(cut)
    assert is_canonical(subtract(spans, cut))
    for window in cut:
        assert points(intersect(spans, window)) == points(spans) & points([window])


@given(intervals, interval)
def test_missing_fills_every_gap_and_nothing_else(computed: list[tuple[int, int]], goal: tuple[int, int]) -> None:
    gaps = missing(computed, *goal)
    assert points(gaps) | (points(computed) & points([goal])) == points([goal])
    assert not points(gaps) & points(computed)
    assert missing([*computed, *gaps], *goal) == []  # running the plan leaves nothing to do


@given(intervals, interval, st.integers(0, 5))
def test_lookback_recomputes_the_last_tiles_of_what_was_computed(
    computed: list[tuple[int, int]], goal: tuple[int, int], lookback: int
) -> None:
    start, end = goal
    work = to_compute(computed, start, end, lookback, GRAIN)
    assert points(missing(computed, start, end)) <= points(work)
    done = intersect(computed, goal)
    if done and lookback:
        last = done[-1][1]
        assert points([(max(start, last - lookback * GRAIN), last)]) <= points(work)
    extra = points(work) - points(missing(computed, start, end))
    assert all(t >= (done[-1][1] - lookback * GRAIN if done else end) for t in extra)
    assert is_canonical(work) and points(work) <= points([goal])


@given(intervals, st.integers(1, 7))
def test_batches_partition_the_work(spans: list[tuple[int, int]], size: int) -> None:
    pieces = batches(spans, GRAIN, size)
    assert points(pieces) == points(spans)
    assert sum(len(points([p])) for p in pieces) == len(points(spans))  # no overlaps
    assert all(hi - lo <= size * GRAIN for lo, hi in pieces)
    assert batches(spans, GRAIN, None) == merge(spans)


def test_the_beginning_is_one_batch() -> None:
    assert batches([(BEGINNING, 100)], GRAIN, 2) == [(BEGINNING, 100)]


@given(intervals, st.integers(0, 4))
def test_affected_extends_each_range_by_the_reach(spans: list[tuple[int, int]], tiles: int) -> None:
    reach = tiles * GRAIN
    grown = affected(spans, reach)
    assert points(grown) == {t + shift for t in points(spans) for shift in range(0, reach + 1, GRAIN)}
