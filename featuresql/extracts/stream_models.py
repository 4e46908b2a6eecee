"""Stream models in an extract: windows ending at ``floor(t - stream_delay, stream_grain)`` (DESIGN.md section 11).

A stream model's table holds its windows at the model grain, which is not what a
fresh read at ``t`` serves. For the extract, its row-level query is computed again
in the warehouse at the stream grain, for the spine's entities and the boundaries
its times reach: the change-point query of any window model
(``featuresql.sql.window_query``) with the stream grain as its grain, starting with a
row per entity at the first boundary (``BoundaryRange.initial``). The point-in-time
join then takes, per spine row, the latest of those rows at or before
``t - stream_delay``, which holds the windows ending at ``E``.

It reads the source as it is when the extract runs, not the model's table, so it needs
no run: a training set of a stream model covers what the warehouse has loaded.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from sqlglot import exp

from featuresql.adapters.base import WarehouseAdapter
from featuresql.compile.models import CompiledModel
from featuresql.extracts.spine import StagedSpine
from featuresql.sql import dialects
from featuresql.sql.point_in_time import JoinedModel
from featuresql.sql.window_query import window_query
from featuresql.sql.windows import BoundaryRange, WindowModel
from featuresql.times import epoch_micros

_MICROS = 1_000_000
_EVENTS = "__featuresql_events"
_ENTITIES = "__featuresql_entities"


def fresh_join(
    adapter: WarehouseAdapter, model: CompiledModel, joined: JoinedModel, staged: StagedSpine
) -> JoinedModel:
    """``joined`` reading the stream model's windows at the stream grain, computed for ``staged``'s rows."""
    stream, window = model.settings.stream, model.window
    assert stream is not None and window is not None, f"{model.name} is no stream model"
    first = model.settings.start  # rounded up to the stream grain, a fraction of a second included
    start = None if first is None else -(-epoch_micros(first) // (stream.grain * _MICROS))
    lo, hi = _boundaries(adapter, staged, stream.grain, stream.delay)
    if start is not None:
        lo = max(lo, start)
    fine = replace(window, grain=stream.grain, events=_for_entities(window, joined, staged))
    rows = window_query(fine, BoundaryRange(lo, max(hi, lo + 1), initial=True), adapter.dialect)
    return replace(
        joined,
        computed_rows=rows.subquery(),
        data_delay=stream.delay,
        start=None if start is None else datetime.fromtimestamp(start * stream.grain, UTC),
        horizon=window.max_tiles * window.grain + stream.grain,
        coverage=None,
    )


def _boundaries(adapter: WarehouseAdapter, staged: StagedSpine, grain: int, delay: int) -> tuple[int, int]:
    """Stream boundaries ``lo <= b < hi`` covering ``floor(t - delay, grain)`` of every spine time."""
    spine = staged.relation
    query = exp.select(exp.Min(this=spine.time.copy()), exp.Max(this=spine.time.copy())).from_(spine.relation.copy())
    earliest, latest = adapter.fetch_arrow(query).to_pylist()[0].values()
    if earliest is None:
        return 0, 1

    def boundary(moment: datetime) -> int:
        return (epoch_micros(moment) - delay * _MICROS) // (grain * _MICROS)

    return boundary(earliest), boundary(latest) + 1


def _for_entities(window: WindowModel, joined: JoinedModel, staged: StagedSpine) -> exp.Select:
    """The model's events of the spine's entities only: the rest cannot reach a spine row."""
    keys = joined.keys
    spine_keys = joined.spine_keys or keys
    entities = (
        exp.select(*(exp.alias_(exp.column(dialects.identifier(s)), k) for s, k in zip(spine_keys, keys, strict=True)))
        .distinct()
        .from_(staged.relation.relation.copy())
    )
    on = exp.and_(*(exp.column(k, _EVENTS).eq(exp.column(k, _ENTITIES)) for k in keys))
    return (
        exp.select(*(exp.column(name, _EVENTS) for name in window.events.named_selects))
        .from_(window.events.subquery(_EVENTS))
        .join(entities.subquery(_ENTITIES), on=on)
    )
