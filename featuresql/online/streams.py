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

import hashlib
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from featuresql.adapters.store import Change, Deletion, OnlineStore, WriteResult
from featuresql.compile.models import CompiledModel
from featuresql.online.mirror import mirror_table
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
DIGEST_COLUMN = "_featuresql_digest"  # the mirror's record of each state the store holds
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


@dataclass
class _Planned:
    """What a sync of one stream model leaves besides the states it writes (once they are all out)."""

    deleted: list[str] = field(default_factory=list)  # partition keys of states out of reach
    mirror: dict[str, list[Any]] = field(default_factory=dict)  # the new mirror's columns


def sync_stream_model(
    adapter: WarehouseAdapter,
    store: OnlineStore,
    model: CompiledModel,
    entry: OnlineModel,
    boundary: int,
    store_identity: str,
    stamp: dict[str, Any],
    rejected: list[str],
    *,
    trusted: bool,
) -> WriteResult:
    """Write every reachable entity's state at ``boundary`` that the store does not hold already;
    delete those of entities out of reach.

    ``stamp``: the attributes every item of this sync carries (``_v``, ``_run``); ``trusted``: the
    store holds what the mirror says (else every state is written). A state the store cannot take
    (over DynamoDB's 400 KB) is left out and named in ``rejected``: the entity keeps its earlier
    state, whose answers say the earlier time they are as of.
    """
    fixed = {**stamp, SCHEMA_VERSION: {"S": entry.schema}}
    planned = _Planned()
    states = _states(adapter, store, model, entry, boundary, store_identity, fixed, rejected, planned, trusted=trusted)
    outcome = write_items(store, states)  # streamed: one state at a time in memory, bar the batches in flight
    version = int(stamp[VERSION]["N"])
    outcome += write_items(store, (Deletion(key, version) for key in planned.deleted))
    columns = [*entry.key_columns, DIGEST_COLUMN]
    kinds = dict(entry.keys)
    types = [pa.int64() if kinds[k] == "integer" else pa.string() for k in entry.key_columns] + [pa.string()]
    mirror = pa.table([pa.array(planned.mirror[c], type=t) for c, t in zip(columns, types, strict=True)], names=columns)
    adapter.load_table(mirror_table(store_identity, model.name), mirror)  # replaces it
    return outcome


def preview_stream_model(
    adapter: WarehouseAdapter,
    store: OnlineStore,
    model: CompiledModel,
    entry: OnlineModel,
    boundary: int,
    store_identity: str,
    *,
    trusted: bool,
) -> tuple[int, int]:
    """What ``sync_stream_model`` would do: (states written, states deleted), writing nothing."""
    fixed = {SCHEMA_VERSION: {"S": entry.schema}}
    planned = _Planned()
    written = sum(
        1 for _ in _states(adapter, store, model, entry, boundary, store_identity, fixed, [], planned, trusted=trusted)
    )
    return written, len(planned.deleted)


def _states(
    adapter: WarehouseAdapter,
    store: OnlineStore,
    model: CompiledModel,
    entry: OnlineModel,
    boundary: int,
    store_identity: str,
    fixed: dict[str, Any],
    rejected: list[str],
    planned: _Planned,
    *,
    trusted: bool,
) -> Iterator[Change]:
    """The states to write: each entity's, unless the mirror's digest says the store holds it already.
    Once they are all out, ``planned`` holds the rest."""
    assert entry.stream is not None, f"{model.name} is no stream model"
    keys = entry.key_columns
    held = _held_digests(adapter, mirror_table(store_identity, model.name), model.name, keys)
    planned.mirror = {column: [] for column in (*keys, DIGEST_COLUMN)}
    events = _events(model, boundary, adapter.dialect)
    with closing(adapter.fetch_batches(events, rows=_FETCH_ROWS)) as batches:
        for entity, rows in _by_entity(batches, keys, model):
            key = partition_key(model.name, list(entity))
            slots = dumps(warehouse_slots(rows, boundary, entry.stream.shape))
            digest = hashlib.sha256(f"{entry.schema}|{boundary}|{slots}".encode()).hexdigest()[:20]
            state = {
                PARTITION_KEY: {"S": key},
                FEATURE_TS: {"N": str(boundary * MICROS)},
                STATE_BOUNDARY: {"N": str(boundary)},
                STATE_SLOTS: {"S": slots},
                **fixed,
            }
            refusal = store.refusal(state)
            if refusal is not None:
                rejected.append(f"model {model.name}, entity {list(entity)}: {refusal}")
                digest = held.get(key) or ""  # the store keeps what it had
            elif not trusted or held.get(key) != digest:
                yield state
            held.pop(key, None)
            for column, value in zip((*keys, DIGEST_COLUMN), (*entity, digest), strict=True):
                planned.mirror[column].append(value)
    planned.deleted = sorted(held)  # states of entities with no events in reach any more


def _held_digests(adapter: WarehouseAdapter, mirror: exp.Table, name: str, keys: tuple[str, ...]) -> dict[str, str]:
    """Partition key -> digest of every state the mirror says the store holds."""
    columns = adapter.table_columns(mirror)
    if columns is None or DIGEST_COLUMN not in columns:
        return {}
    query = exp.select(*(exp.column(dialects.identifier(c)) for c in (*keys, DIGEST_COLUMN))).from_(mirror)
    held = {}
    with closing(adapter.fetch_batches(query, rows=_FETCH_ROWS)) as batches:
        for batch in batches:
            for raw in batch.to_pylist():
                row = {name.lower(): value for name, value in raw.items()}
                held[partition_key(name, [warehouse_key(row[k.lower()]) for k in keys])] = row[DIGEST_COLUMN]
    return held


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
