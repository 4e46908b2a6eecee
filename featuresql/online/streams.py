"""Stream models online (DESIGN.md section 11): their manifest entry, and sync's part for them.

Sync writes, per entity with events in the windows a read can reach, the state item
of ``featuresql.serving.stream_items``: the warehouse's slots below ``B``, the last
complete model boundary at ``--now`` (``floor(now - data_delay, grain)``, the boundary
a window model's item is as of, or earlier by ``stream_delay`` when that is longer).
The model's ``data_delay`` is the promise that the source has every event before it
then; the run's interval state is not consulted, since sync reads the source itself
(the model's table gives the features' types only). It reads the model's row-level
rows from the warehouse and folds them into partials with the reader's own arithmetic
(``featuresql.serving.partials``), so what sync writes and what push adds merge alike.

Every state is rewritten at every sync (its slots depend on ``B``), and the warehouse
keeps the keys it wrote in the model's mirror table (keys only): an entity written
last time with no events in reach now has its state deleted. Pushed items below ``B``
are left in the store, where the reader never counts them (sync's slots replace
them): deleting them would cost a write per entity and tile.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from featuresql.adapters.store import Change, Deletion, OnlineStore, WriteResult
from featuresql.compile.models import CompiledModel
from featuresql.online.mirror import mirror_table
from featuresql.online.model_sync import delete_mirrored
from featuresql.online.writes import write_items
from featuresql.serving.items import (
    FEATURE_TS,
    PARTITION_KEY,
    SCHEMA_VERSION,
    VERSION,
    partition_key,
    warehouse_key,
)
from featuresql.serving.manifest import OnlineModel, OnlineStream
from featuresql.serving.partials import StreamFeature
from featuresql.serving.push_records import StreamRows
from featuresql.serving.stream_items import STATE_BOUNDARY, STATE_SLOTS, dumps
from featuresql.serving.stream_state import StreamShape, warehouse_slots
from featuresql.sql import dialects
from featuresql.times import epoch_micros

if TYPE_CHECKING:
    from featuresql.adapters.base import WarehouseAdapter

MICROS = 1_000_000
_FETCH_ROWS = 10_000


def stream_entry(model: CompiledModel) -> OnlineStream | None:
    """The reader's view of a stream model's windows and row-level programs; None for other models."""
    stream, window, programs = model.settings.stream, model.window, model.stream_rows
    if stream is None or window is None or programs is None:
        return None
    features = tuple(StreamFeature(f.name, f.function, f.column, f.window, f.tie_break_column) for f in window.features)
    start = model.settings.start
    first = None if start is None else -(-epoch_micros(start) // (stream.grain * MICROS)) * stream.grain
    shape = StreamShape(window.grain, stream.grain, stream.delay, stream.horizon, features, first)
    rows = StreamRows(
        model.name,
        programs.source,
        programs.source_types,
        window.keys,
        window.timestamp,
        programs.where,
        programs.columns,
        programs.event_id,
    )
    return OnlineStream(shape, rows)


def stream_boundary(model: CompiledModel, now: datetime) -> int:
    """``B`` at ``now``, epoch seconds: the last model boundary whose data is complete (``data_delay``
    after it), and not past what a read at ``now`` asks for (``stream_delay`` before it)."""
    settings = model.settings
    delay = max(settings.data_delay, settings.stream.delay if settings.stream else 0)
    grain = settings.grain * MICROS
    return (epoch_micros(now) - delay * MICROS) // grain * settings.grain


def sync_stream_model(
    adapter: WarehouseAdapter,
    store: OnlineStore,
    model: CompiledModel,
    entry: OnlineModel,
    boundary: int,
    store_identity: str,
    stamp: dict[str, Any],
    rejected: list[str],
) -> WriteResult:
    """Write every reachable entity's state at ``boundary``; delete those of entities out of reach.

    ``stamp``: the attributes every item of this sync carries (``_v``, ``_run``). A state the
    store cannot take (over DynamoDB's 400 KB) is left out and named in ``rejected``: the entity
    keeps its earlier state, whose answers say the earlier time they are as of.
    """
    assert entry.stream is not None, f"{model.name} is no stream model"
    shape = entry.stream.shape
    keys = entry.key_columns
    events = _events(model, boundary, adapter.dialect)
    gone = None
    written = adapter.create_temporary(f"featuresql_stream_{model.name}", _entities(events, keys))
    try:
        fixed = {**stamp, SCHEMA_VERSION: {"S": entry.schema}}
        with closing(adapter.fetch_batches(events, rows=_FETCH_ROWS)) as batches:
            states = _states(_by_entity(batches, keys, model), model.name, boundary, shape, fixed)
            outcome = write_items(store, _accepted(store, states, model.name, rejected))
        mirror = mirror_table(store_identity, model.name)
        gone = _gone(adapter, mirror, written, keys)
        if gone is not None:
            outcome += delete_mirrored(adapter, store, gone, model.name, keys, int(stamp[VERSION]["N"]))
        # not atomic everywhere (DDL commits on Snowflake): a sync killed between the two finds the
        # mirror gone and fills the store afresh
        adapter.execute(exp.Drop(tables=[mirror.copy()], kind="TABLE", exists=True))
        adapter.execute(exp.Create(this=mirror, kind="TABLE", expression=exp.select("*").from_(written.copy())))
    finally:
        for table in (written, gone):
            if table is not None:
                adapter.execute(exp.Drop(tables=[table], kind="TABLE", exists=True))
    return outcome


def preview_stream_model(
    adapter: WarehouseAdapter, model: CompiledModel, entry: OnlineModel, boundary: int, store_identity: str
) -> tuple[int, int]:
    """What ``sync_stream_model`` would do: (states written, states deleted), writing nothing."""
    keys = entry.key_columns
    entities = _entities(_events(model, boundary, adapter.dialect), keys)
    written = _count(adapter, entities)
    mirror = mirror_table(store_identity, model.name)
    if adapter.table_columns(mirror) is None:
        return written, 0
    held = exp.select(*(exp.column(dialects.identifier(k)) for k in keys)).from_(mirror)
    return written, _count(adapter, exp.except_(held, entities, distinct=True))


def _count(adapter: WarehouseAdapter, query: exp.Query) -> int:
    counted = exp.select(exp.Count(this=exp.Star())).from_(query.subquery("__counted"))
    return int(adapter.fetch_arrow(counted).column(0)[0].as_py())


def _events(model: CompiledModel, boundary: int, dialect: str) -> exp.Select:
    """The model's row-level rows that a read between this sync and the next can reach, by entity."""
    window = model.window
    assert window is not None
    oldest = boundary - window.max_tiles * window.grain - window.grain
    inputs = list(dict.fromkeys(c for f in window.features for c in (f.column, f.tie_break_column) if c))
    columns = [*window.keys, window.timestamp, *inputs]
    time = exp.column(dialects.identifier(window.timestamp))
    present = [exp.column(dialects.identifier(k)).is_(exp.null()).not_() for k in window.keys]
    return (
        exp.select(*(exp.column(dialects.identifier(c)) for c in columns))
        .from_(window.events.subquery("__rows"))
        .where(exp.and_(*present, dialects.time_in_span(time, oldest, boundary, dialect)))
        .order_by(*(exp.column(dialects.identifier(k)) for k in window.keys))
    )


def _entities(events: exp.Select, keys: tuple[str, ...]) -> exp.Select:
    return (
        exp.select(*(exp.column(dialects.identifier(k)) for k in keys))
        .distinct()
        .from_(events.copy().order_by(None).subquery("__events"))
    )


def _gone(adapter: WarehouseAdapter, mirror: exp.Table, written: exp.Table, keys: tuple[str, ...]) -> exp.Table | None:
    """The keys the last sync wrote a state for and this one did not (None: no earlier keys)."""
    if adapter.table_columns(mirror) is None:
        return None
    columns = [exp.column(dialects.identifier(k)) for k in keys]
    left = exp.select(*columns).from_(mirror.copy())
    right = exp.select(*(c.copy() for c in columns)).from_(written.copy())
    return adapter.create_temporary("featuresql_stream_gone", exp.except_(left, right, distinct=True))


def _by_entity(
    batches: Iterator[Any], keys: tuple[str, ...], model: CompiledModel
) -> Iterator[tuple[tuple[Any, ...], list[tuple[int, dict[str, Any]]]]]:
    """(entity key, [(time in microseconds, row)]) per entity, from rows ordered by entity."""
    window = model.window
    assert window is not None
    timestamp = window.timestamp.lower()
    current: tuple[Any, ...] | None = None
    events: list[tuple[int, dict[str, Any]]] = []
    for batch in batches:
        for raw in batch.to_pylist():
            row = {name.lower(): value for name, value in raw.items()}
            entity = tuple(warehouse_key(row[k.lower()]) for k in keys)
            if entity != current:
                if current is not None:
                    yield current, events
                current, events = entity, []
            events.append((epoch_micros(row[timestamp]), row))
    if current is not None:
        yield current, events


def _accepted(store: OnlineStore, states: Iterator[Change], name: str, rejected: list[str]) -> Iterator[Change]:
    for state in states:
        assert not isinstance(state, Deletion)
        refusal = store.refusal(state)
        if refusal is None:
            yield state
        else:
            rejected.append(f"model {name}, entity {state[PARTITION_KEY]['S'].partition('#')[2]}: {refusal}")


def _states(
    entities: Iterator[tuple[tuple[Any, ...], list[tuple[int, dict[str, Any]]]]],
    name: str,
    boundary: int,
    shape: StreamShape,
    fixed: dict[str, Any],
) -> Iterator[Change]:
    for entity, events in entities:
        slots = warehouse_slots(events, boundary, shape)
        yield {
            PARTITION_KEY: {"S": partition_key(name, list(entity))},
            FEATURE_TS: {"N": str(boundary * MICROS)},
            STATE_BOUNDARY: {"N": str(boundary)},
            STATE_SLOTS: {"S": dumps(slots)},
            **fixed,
        }
