"""Half-open intervals ``(lo, hi)`` of boundary times and the pure functions that plan runs.

Every interval is ``lo <= t < hi`` in epoch seconds of model boundaries (as in
SQLMesh's ``snapshot/definition.py``). State stores the intervals each model has
computed; a run computes ``missing(...)`` plus its lookback, split into batches.
Nothing here touches a warehouse, so the planner is tested as plain functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from featuresql.sql.coverage import BEGINNING  # a first run without ``start`` is recorded from here

Interval = tuple[int, int]
__all__ = ["BEGINNING", "Interval", "affected", "batches", "intersect", "merge", "missing", "subtract", "to_compute"]


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping intervals covering exactly the same points (touching ones joined)."""
    merged: list[Interval] = []
    for lo, hi in sorted(i for i in intervals if i[0] < i[1]):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def subtract(intervals: Iterable[Interval], removed: Iterable[Interval]) -> list[Interval]:
    """The points of ``intervals`` not in ``removed``, merged."""
    result = merge(intervals)
    for cut_lo, cut_hi in merge(removed):
        kept: list[Interval] = []
        for lo, hi in result:
            if hi <= cut_lo or lo >= cut_hi:
                kept.append((lo, hi))
                continue
            if lo < cut_lo:
                kept.append((lo, cut_lo))
            if hi > cut_hi:
                kept.append((cut_hi, hi))
        result = kept
    return result


def intersect(intervals: Iterable[Interval], window: Interval) -> list[Interval]:
    """The parts of ``intervals`` inside ``window``."""
    lo, hi = window
    return merge((max(a, lo), min(b, hi)) for a, b in intervals)


def missing(computed: Iterable[Interval], start: int, end: int) -> list[Interval]:
    """The parts of ``[start, end)`` not computed yet: gaps are filled, never skipped."""
    return subtract([(start, end)], computed)


def to_compute(computed: Sequence[Interval], start: int, end: int, lookback: int, grain: int) -> list[Interval]:
    """What a run computes: every missing interval, plus the last ``lookback`` tiles
    before the end of what was computed (recomputed for late events)."""
    work = missing(computed, start, end)
    done = intersect(computed, (start, end))
    if lookback and done:
        last = done[-1][1]
        work.append((max(start, last - lookback * grain), last))
    return merge(work)


def batches(intervals: Iterable[Interval], grain: int, size: int | None) -> list[Interval]:
    """``intervals`` split into pieces of at most ``size`` boundaries (None: unsplit).

    A piece starting at ``BEGINNING`` stays whole: it reaches back to the first event,
    whose time is not known before running it.
    """
    pieces: list[Interval] = []
    for lo, hi in merge(intervals):
        if size is None or lo == BEGINNING:
            pieces.append((lo, hi))
            continue
        step = size * grain
        pieces.extend((at, min(at + step, hi)) for at in range(lo, hi, step))
    return pieces


def affected(upstream: Iterable[Interval], reach: int) -> list[Interval]:
    """Boundaries of a downstream window model whose windows read a recomputed range:
    each interval extended by ``reach`` (its widest window plus one grain)."""
    return merge((lo, hi + reach) for lo, hi in upstream if lo < hi)
