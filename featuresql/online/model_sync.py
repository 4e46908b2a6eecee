"""One model's part of ``featuresql sync``: compare with the mirror, write the store, record in the mirror.

The mirror is compared on all its columns when they are still the model's
(``same``), on the keys only when features or their types changed (``keys``: every
current row is put, entities gone are deleted, then the mirror is rebuilt with
the model's columns), not at all for a new model or a store filled afresh
(``none``), and when the entity's keys changed (``gone``) every old item is
deleted after the new ones are written, so no reader sees a gap. Building a
mirror is not atomic everywhere (DDL commits on Snowflake), so before anything
but a plain comparison the store's record is *distrusted*: a sync killed
meanwhile makes the next one start the store afresh rather than trust a
half-built mirror.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from sqlglot import exp

from featuresql import checkpoints
from featuresql.adapters.store import Deletion, OnlineStore, WriteResult
from featuresql.online.encoding import ChangeEncoder
from featuresql.online.mirror import (
    MirrorState,
    OnlineRows,
    changes,
    claim_mirror,
    create_mirror,
    invalidate,
    mirror_keys,
    mirror_table,
    update_mirror,
)
from featuresql.online.records import SyncedModel
from featuresql.online.writes import write_items
from featuresql.serving.items import partition_key, warehouse_key

if TYPE_CHECKING:
    from featuresql.adapters.base import WarehouseAdapter

Found = MirrorState | Literal["gone"]


def sync_model(
    adapter: WarehouseAdapter,
    store: OnlineStore,
    rows: OnlineRows,
    now: datetime,
    encoder: ChangeEncoder,
    held: SyncedModel | None,
    distrust: Callable[[], None],
) -> WriteResult:
    """Make the store hold ``rows``' current items; ``held``: what the trusted record says the store has."""
    found = mirror_state(adapter, rows, held)
    if found != "same":  # the mirror is (re)built below: a sync killed meanwhile must not trust it
        distrust()
    name = rows.model.name
    old_keys = None
    if found == "gone" and held is not None:
        old_keys = adapter.create_temporary(f"featuresql_gone_{name}", mirror_keys(rows.mirror, held.keys))
    compared: MirrorState = "none" if found == "gone" else found
    if compared == "none":
        _recreate(adapter, rows)
    pending = adapter.create_temporary(f"featuresql_sync_{name}", changes(rows, now, adapter.dialect, compared))
    checkpoints.reach("sync_staged")
    try:
        if compared != "keys":  # a "keys" mirror has other columns; distrusted instead
            _in_transaction(adapter, claim_mirror(rows, pending))
        # closed before the DROP below, also when a write fails: an unread result blocks the connection
        with closing(adapter.fetch_batches(exp.select("*").from_(pending.copy()), rows=10_000)) as batches:
            outcome = write_items(store, encoder.changes(batches))
        if old_keys is not None and held is not None:  # after the new items: no gap for a reader
            outcome += delete_mirrored(adapter, store, old_keys, name, held.keys, encoder.version)
        checkpoints.reach("sync_before_mirror")
        if compared == "keys":
            _recreate(adapter, rows)
        statements = update_mirror(rows, pending)
        if encoder.rejected_keys:  # sent again next time, and refused again until fixed
            statements.append(invalidate(rows, encoder.rejected_keys))
        _in_transaction(adapter, statements)
        checkpoints.reach("sync_mirrored")
    finally:
        adapter.execute(exp.Drop(tables=[pending, *([old_keys] if old_keys else [])], kind="TABLE", exists=True))
    return outcome


def mirror_state(adapter: WarehouseAdapter, rows: OnlineRows, held: SyncedModel | None) -> Found:
    """What the mirror can be compared on (see the module docstring); ``held`` None: nothing trusted."""
    if held is None:
        return "none"
    mirrored = adapter.table_columns(rows.mirror)
    if mirrored is None:
        return "none"
    model = rows.model
    table = adapter.table_columns(model.relation) or {}
    wanted = {c.lower(): table.get(c.lower()) for c in (*model.keys, model.timestamp, *model.columns)}
    if tuple(held.keys) != model.keys or any(mirrored.get(k.lower()) != wanted[k.lower()] for k in model.keys):
        return "gone"
    values = {c: t for c, t in mirrored.items() if not c.startswith("_featuresql_")}
    return "same" if values == wanted else "keys"


def remove_model(
    adapter: WarehouseAdapter, store: OnlineStore, identity: str, name: str, held: SyncedModel, version: int
) -> WriteResult:
    """A model that is no longer online: delete its items, then its mirror."""
    mirror = mirror_table(identity, name)
    if adapter.table_columns(mirror) is None:
        return WriteResult()
    outcome = delete_mirrored(adapter, store, mirror, name, held.keys, version)
    adapter.execute(exp.Drop(tables=[mirror], kind="TABLE", exists=True))
    return outcome


def delete_mirrored(
    adapter: WarehouseAdapter, store: OnlineStore, table: exp.Table, name: str, keys: tuple[str, ...], version: int
) -> WriteResult:
    """Delete the items of every entity in ``table`` (a mirror, or its keys), unless this sync wrote them."""
    with closing(adapter.fetch_batches(mirror_keys(table, keys), rows=10_000)) as batches:
        deletions = (
            Deletion(partition_key(name, [warehouse_key(row[k.lower()]) for k in keys]), version)
            for batch in batches
            for row in ({k.lower(): v for k, v in r.items()} for r in batch.to_pylist())
        )
        return write_items(store, deletions)


def _recreate(adapter: WarehouseAdapter, rows: OnlineRows) -> None:
    adapter.execute(exp.Drop(tables=[rows.mirror], kind="TABLE", exists=True))
    adapter.execute(create_mirror(rows))


def _in_transaction(adapter: WarehouseAdapter, statements: list[exp.Expr]) -> None:
    with adapter.transaction():
        for statement in statements:
            adapter.execute(statement)
