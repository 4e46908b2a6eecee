"""What sync has written to each online store: a record in the warehouse, a marker in the store.

A record is kept per store identity (``OnlineStore.identity``: type, table,
region, endpoint or file path) in ``featuresql.online_stores``: the store's
*generation* (a random id, new whenever sync starts the store afresh), the
*sequence* of the last sync that completed on it (every item carries the version
of the sync that wrote it, so the sequence orders all writes to the store,
whatever the clocks), the highest version handed out (a sync reserves its
version before it writes, so a killed sync's version is never reused), the
``--now`` it synced as of, and the models it holds with their schema versions.

The store carries a marker of the same generation and sequence (an item under
``serving.items.MARKER_KEY``), written after the items, before the record. A
sync trusts the warehouse's mirrors of the store only when marker and record
agree; a new store (no record), a wiped or emptied one (no marker), one restored
from an older backup (an older sequence) or one another warehouse wrote (another
generation) is treated as empty and filled again from scratch.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

from sqlglot import exp

from featuresql.adapters.base import WarehouseAdapter
from featuresql.adapters.store import OnlineStore
from featuresql.run import state
from featuresql.serving.items import (
    FEATURE_TS,
    MARKER_GENERATION,
    MARKER_KEY,
    MARKER_MODELS,
    MARKER_ON_DEMAND,
    MARKER_STREAMS,
    MARKER_SYNCED_AT,
    PARTITION_KEY,
    VERSION,
)
from featuresql.serving.tables import Item

TABLE = "online_stores"
COLUMNS = {
    "store": "VARCHAR",
    "generation": "VARCHAR",
    "sequence": "BIGINT",
    "reserved": "BIGINT",  # the highest version handed out: a killed sync's is never reused
    "synced_at": "BIGINT",  # epoch microseconds of the sync's --now
    "models": "VARCHAR",  # JSON: model -> {"schema": ..., "keys": [...]}
}


@dataclass(frozen=True)
class SyncedModel:
    """A model whose items the store holds: their schema version and the key columns, in order."""

    schema: str
    keys: tuple[str, ...]
    boundary: int | None = None  # a stream model's B at the sync (epoch seconds): its states' boundary


@dataclass(frozen=True)
class SyncRecord:
    """One store's record: see the module docstring."""

    generation: str
    sequence: int = 0
    reserved: int = 0
    synced_at: int | None = None
    models: dict[str, SyncedModel] = field(default_factory=dict)

    @classmethod
    def fresh(cls, sequence: int) -> SyncRecord:
        """A new generation, continuing from ``sequence`` so versions never go back."""
        return cls(uuid.uuid4().hex[:16], sequence, sequence)


@dataclass(frozen=True)
class Marker:
    """What the store's marker item says: the generation and sequence of the last sync completed on it."""

    generation: str
    sequence: int


def read_record(adapter: WarehouseAdapter, store: str) -> SyncRecord | None:
    """The record of the store whose identity is ``store``, if any sync completed on it."""
    state.ensure_table(adapter, TABLE, COLUMNS)
    query = exp.select(*COLUMNS).from_(state.table(TABLE)).where(exp.column("store").eq(exp.Literal.string(store)))
    rows = [{k.lower(): v for k, v in row.items()} for row in adapter.fetch_arrow(query).to_pylist()]
    if not rows:
        return None
    row = max(rows, key=lambda r: int(r["sequence"]))
    models = {
        name: SyncedModel(str(entry["schema"]), tuple(entry["keys"]), entry.get("boundary"))
        for name, entry in json.loads(row["models"] or "{}").items()
    }
    synced_at = None if row["synced_at"] is None else int(row["synced_at"])
    reserved = int(row["reserved"] or 0)
    return SyncRecord(str(row["generation"]), int(row["sequence"]), reserved, synced_at, models)


def write_record(adapter: WarehouseAdapter, store: str, record: SyncRecord) -> None:
    """Replace the store's record, in one transaction."""
    target = state.table(TABLE)
    models = json.dumps(
        {name: _synced_json(m) for name, m in sorted(record.models.items())},
        separators=(",", ":"),
    )
    values = [
        exp.Literal.string(store),
        exp.Literal.string(record.generation),
        exp.Literal.number(record.sequence),
        exp.Literal.number(record.reserved),
        exp.null() if record.synced_at is None else exp.Literal.number(record.synced_at),
        exp.Literal.string(models),
    ]
    with adapter.transaction():
        adapter.execute(exp.delete(target, where=exp.column("store").eq(exp.Literal.string(store))))
        adapter.execute(exp.insert(exp.select(*values), target.copy(), columns=list(COLUMNS)))


def _synced_json(model: SyncedModel) -> dict[str, object]:
    entry: dict[str, object] = {"schema": model.schema, "keys": list(model.keys)}
    if model.boundary is not None:
        entry["boundary"] = model.boundary
    return entry


def read_marker(store: OnlineStore) -> Marker | None:
    """The store's marker; None when it has none (new, wiped or emptied)."""
    item = store.read_batch([MARKER_KEY], [VERSION, MARKER_GENERATION]).get(MARKER_KEY)
    if item is None or MARKER_GENERATION not in item or VERSION not in item:
        return None
    return Marker(str(item[MARKER_GENERATION]["S"]), int(item[VERSION]["N"]))


def marker_item(record: SyncRecord, on_demand: dict[str, str] | None = None) -> Item:
    """The marker of ``record``, written like any item (conditional on its version).

    Beside the generation and sequence a sync checks, it tells the reader which models
    the store holds under which schema, as of when, and the digest of each on-demand
    model's programs as the sync's manifest has them (``on_demand``): a reader packaged
    with other programs (an older definition, inputs since retyped) refuses to compute it.
    """
    version = {"N": str(record.sequence)}
    held = {name: model.schema for name, model in sorted(record.models.items())}
    item = {
        PARTITION_KEY: {"S": MARKER_KEY},
        FEATURE_TS: version,
        VERSION: version,
        MARKER_GENERATION: {"S": record.generation},
        MARKER_MODELS: {"S": json.dumps(held, separators=(",", ":"))},
    }
    if record.synced_at is not None:
        item[MARKER_SYNCED_AT] = {"N": str(record.synced_at)}
    item[MARKER_ON_DEMAND] = {"S": json.dumps(dict(sorted((on_demand or {}).items())), separators=(",", ":"))}
    streams = {name: model.boundary for name, model in sorted(record.models.items()) if model.boundary is not None}
    item[MARKER_STREAMS] = {"S": json.dumps(streams, separators=(",", ":"))}
    return item
