"""The local online store: one SQLite file, the embedded default (no server, no account).

The table layout is ``featuresql.serving.tables.SQLITE_SCHEMA``, which the reader
shares. The conditional write is an upsert whose update applies only over an
item of an earlier sync version, and the conditional delete the same; SQLite has
one writer at a time, so batches are large and written by one thread, in one
transaction each.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from featuresql.adapters.store import Change, Deletion, OnlineStore, StoreConfig, StorePlace, WriteResult

from featuresql.serving.items import FEATURE_TS, PARTITION_KEY, VERSION
from featuresql.serving.tables import Item, SQLiteTable

_UPSERT = (
    "INSERT INTO items (pk, ts, version, expires, item) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (pk) DO UPDATE SET ts = excluded.ts, version = excluded.version, "
    "expires = excluded.expires, item = excluded.item "
    "WHERE excluded.version > items.version"
)
_DELETE = "DELETE FROM items WHERE pk = ? AND version < ?"


class LocalStoreConfig(StoreConfig):
    """The embedded online store: an SQLite file (default ``target/online/<target>.sqlite``)."""

    store: Literal["local"] = "local"
    path: str | None = None


class LocalStore(OnlineStore):
    type_name = "local"
    config_model = LocalStoreConfig
    batch_size = 5000

    @classmethod
    def table_name(cls, config: Any, place: StorePlace) -> str:
        """The SQLite file: ``path`` (relative to the project), else ``target/online/<target>.sqlite``."""
        path = Path(config.path or place.target_dir / "online" / f"{place.target}.sqlite")
        return str(path if path.is_absolute() else place.project_root / path)

    def missing(self) -> str | None:
        if self.path.is_file():
            return None
        return f"the local online store {self.table} does not exist: run `featuresql sync` first"

    @property
    def path(self) -> Path:
        return Path(self.table)

    def ensure_table(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():  # deleted by hand: its write-ahead log would corrupt a new file
            self._remove_journal()
        self._sqlite.connection()  # creates the file and the table

    def write_batch(self, changes: Sequence[Change]) -> WriteResult:
        ttl_attribute = self.config.ttl_attribute
        puts = [
            (
                item[PARTITION_KEY]["S"],
                int(item[FEATURE_TS]["N"]),
                int(item[VERSION]["N"]),
                int(item[ttl_attribute]["N"]) if ttl_attribute in item else None,
                json.dumps(item, ensure_ascii=False, separators=(",", ":")),
            )
            for item in changes
            if not isinstance(item, Deletion)
        ]
        deletions = [(change.key, change.version) for change in changes if isinstance(change, Deletion)]
        connection = self._sqlite.connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            before = connection.total_changes
            connection.executemany(_UPSERT, puts)
            written = connection.total_changes - before
            connection.executemany(_DELETE, deletions)
            deleted = connection.total_changes - before - written
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        skipped = len(puts) - written + len(deletions) - deleted  # a later sync's item, or nothing to delete
        return WriteResult(written=written, deleted=deleted, skipped=skipped)

    def read_batch(self, keys: Sequence[str], attributes: Sequence[str]) -> dict[str, Item]:
        return self._sqlite.get_many(keys, attributes)

    def scan(self, attributes: Sequence[str]) -> Iterator[Item]:
        wanted = {PARTITION_KEY, *attributes}
        for (text,) in self._sqlite.connection().execute("SELECT item FROM items ORDER BY pk"):
            yield {name: value for name, value in json.loads(text).items() if name in wanted}

    def teardown(self) -> None:
        self.path.unlink(missing_ok=True)
        self._remove_journal()

    def _remove_journal(self) -> None:
        for suffix in ("-wal", "-shm"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)

    def reader_settings(self) -> dict[str, Any]:
        return {"type": "local", "path": str(self.path.resolve())}

    @property
    def _sqlite(self) -> SQLiteTable:
        if not hasattr(self, "_table"):
            self._table = SQLiteTable(str(self.path))
        return self._table
