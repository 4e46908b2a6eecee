"""What a snapshot model over window models may be read for: recorded with each build.

A snapshot model reading window models (feature chaining) is a copy of their rows
as they were when it was built. Its rows are vouched for only where all of them
were (``featuresql.sql.coverage``), so each build records those spans as the
snapshot model's intervals: an extract reading it later, after its window models
ran again without it, still stops where its copy does.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from featuresql.adapters.base import WarehouseAdapter
from featuresql.compile.models import CompiledModel
from featuresql.run import state
from featuresql.run.intervals import BEGINNING, Interval, merge, subtract
from featuresql.sql.coverage import HI, LO, Coverage, computed_spans
from featuresql.times import utc


def vouched_spans(model: CompiledModel, computed: list[Interval]) -> list[Interval]:
    """The spine times (less data_delay) a window model's merged ``computed`` intervals vouch for.

    The Python twin of ``featuresql.sql.coverage.computed_spans``: an interval reaches
    back without limit when it begins at the model's start (or first event), else
    from its beginning plus the widest window.
    """
    assert model.window is not None
    settings = model.settings
    first = settings.start_boundary()
    start = BEGINNING if first is None else first * settings.grain
    reach = model.window.max_tiles * settings.grain
    spans = []
    for lo, hi in computed:
        if lo <= start:
            spans.append((BEGINNING, hi))
        elif lo + reach < hi:
            spans.append((lo + reach, hi))
    return merge(spans)


def chained_spans(
    adapter: WarehouseAdapter, project: str, models: Mapping[str, CompiledModel], ancestors: list[str]
) -> list[Interval]:
    """Where every window model of ``ancestors`` is vouched for, from their state now.

    Only a span from the beginning: a snapshot join has no horizon, so past a gap its
    latest row may be one from before the gap, whose later change points (expiries)
    were never computed.
    """
    states = state.read_states(adapter, project, ancestors)
    spans: list[Interval] = [(BEGINNING, -BEGINNING)]
    for name in ancestors:
        theirs = vouched_spans(models[name], states[name].intervals)
        spans = subtract(spans, subtract(spans, theirs))  # the intersection
    return [span for span in spans if span[0] == BEGINNING]


Span = tuple[datetime | None, datetime]  # spine times [lo, hi); lo None: from the beginning


def spine_spans(adapter: WarehouseAdapter, coverage: Coverage, data_delay: int) -> list[Span]:
    """The spine times the state vouches for now, in order (``computed_spans`` plus ``data_delay``)."""
    delay = timedelta(seconds=data_delay)
    rows = adapter.fetch_arrow(computed_spans(coverage, adapter.dialect)).to_pylist()
    spans = [(row[LO] and utc(row[LO]) + delay, utc(row[HI]) + delay) for row in rows]
    return sorted(spans, key=lambda span: span[1])


def covers(spans: list[Span], moment: datetime, coverage: Coverage, data_delay: int) -> bool:
    """Whether the state vouches for spine time ``moment``: a span holds it, or it is before the model
    start (where every feature is NULL by definition, not for want of a run)."""
    moment = utc(moment)
    if coverage.start is not None and moment.timestamp() - data_delay < coverage.start:
        return True
    return any((lo is None or lo <= moment) and moment < hi for lo, hi in spans)


def describe(spans: list[Span]) -> str:
    """``its state covers spine times up to 2026-07-01``, or ``nothing is computed yet``."""
    if not spans:
        return "nothing is computed yet"
    shown = ", ".join(f"from {_moment(lo)} to {_moment(hi)}" if lo else f"up to {_moment(hi)}" for lo, hi in spans)
    return f"its state covers spine times {shown}"


def _moment(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S").removesuffix(" 00:00:00")
