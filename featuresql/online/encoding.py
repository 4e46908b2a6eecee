"""Staged change rows (``featuresql.online.mirror.changes``) as store changes: items to put, keys to delete.

An item is the row's feature values (``featuresql.serving.items``), its feature time
``_ts``, the sync's version ``_v`` and id ``_run``, the model's schema version
``_sv``, and when it expires ``_exp`` (microseconds) with the store's TTL attribute
(seconds, rounded up). An item the store refuses (``OnlineStore.refusal``: too big)
is set aside with a one-line reason naming the model and entity; the rest go on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from featuresql.adapters.store import Change, Deletion, OnlineStore
from featuresql.errors import ExecutionError
from featuresql.online.mirror import ACTION_COLUMN, DELETE, EXPIRES_COLUMN, OnlineRows
from featuresql.serving.items import (
    EXPIRES,
    FEATURE_TS,
    RUN,
    SCHEMA_VERSION,
    VERSION,
    ItemError,
    KeyValue,
    partition_key,
    to_attribute,
    warehouse_key,
)
from featuresql.serving.tables import Item
from featuresql.times import epoch_micros


class ChangeEncoder:
    """One model's change rows -> store changes, for one sync version."""

    def __init__(self, rows: OnlineRows, version: int, sync_id: str, store: OnlineStore):
        self.rows = rows
        self.version = version
        self.sync_id = sync_id
        self.store = store
        self.fixed = {VERSION: {"N": str(version)}, RUN: {"S": sync_id}, SCHEMA_VERSION: {"S": rows.schema}}
        self.ttl_attribute = store.config.ttl_attribute
        self.rejected: list[str] = []  # one line per item set aside
        self.rejected_keys: list[list[KeyValue]] = []  # their entities' key values

    def fresh(self) -> ChangeEncoder:
        """An encoder with the same settings and nothing set aside yet."""
        return ChangeEncoder(self.rows, self.version, self.sync_id, self.store)

    def changes(self, batches: Iterable[Any]) -> Iterator[Change]:
        """The changes of Arrow record batches of change rows (column names in any case)."""
        for batch in batches:
            for row in batch.to_pylist():
                change = self.change({k.lower(): v for k, v in row.items()})
                if change is not None:
                    yield change

    def change(self, row: dict[str, Any]) -> Change | None:
        """One change row as a put or a deletion; None when the store cannot take the item."""
        model = self.rows.model
        key_values = [warehouse_key(row[key.lower()]) for key in model.keys]
        try:
            key = partition_key(model.name, key_values)
            if row[ACTION_COLUMN.lower()] == DELETE:
                return Deletion(key, self.version)
            item: Item = {"pk": {"S": key}, FEATURE_TS: {"N": str(epoch_micros(row[model.timestamp.lower()]))}}
            item.update(self.fixed)
            for column in model.columns:
                item[column] = to_attribute(row[column.lower()])
        except ItemError as exc:
            raise ExecutionError(f"model {model.name}, entity {key_values}: {exc}") from None
        expires = row[EXPIRES_COLUMN.lower()]
        if expires is not None:
            item[EXPIRES] = {"N": str(int(expires))}
            item[self.ttl_attribute] = {"N": str(-(-int(expires) // 1_000_000))}
        refusal = self.store.refusal(item)
        if refusal is not None:
            self.rejected.append(f"model {model.name}, entity {key_values}: {refusal}")
            self.rejected_keys.append(key_values)
            return None
        return item
