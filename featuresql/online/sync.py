"""``featuresql sync``: each online model's latest values, from the warehouse to the online store.

Only entities whose latest available row changed since the last successful sync
are read and written (``featuresql.online.mirror`` explains the mirror that tracks this). Rows
stream from the warehouse as Arrow batches and go to the store in batches
written by ``store.workers`` threads, at most two batches per worker in flight,
so featuresql's own memory stays flat whatever the number of entities. The
changed rows are staged in the warehouse: on DuckDB, in the same process, that
staging takes about 150 bytes per changed entity up to the target's
``memory_limit`` (``bench/sync_memory.py``: 1M entities peaked at 374 MB RSS).

A value is never replaced by an older one: every write is conditional on the
feature timestamp, then on the sync's version (``_v``: the microsecond the sync
started), so an old backfill's sync or a concurrent sync that reaches the store
late is refused item by item (``featuresql.adapters.store``).

Each item expires (the store's TTL) when its value would stop being served
offline: for a window model, ``ts + widest window + data_delay``, after which
every window is empty; a row that already reads as an empty window (count-like
features 0, the rest NULL) expires at once, since a missing item reads the same;
for a snapshot model with a ``ttl``, ``ts + ttl``; otherwise never.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from featuresql import checkpoints
from featuresql.adapters.store import OnlineStore, WriteResult
from featuresql.compile.features import joined_model
from featuresql.compile.models import CompiledModel
from featuresql.errors import ConfigError, ExecutionError
from featuresql.online.mirror import changed_rows, create_mirror, mirror_columns, mirror_table, update_mirror
from featuresql.online.stores import build_manifest, online_models, open_store, write_manifest
from featuresql.run import state
from featuresql.serving.items import FEATURE_TS, RUN, VERSION, ItemError, partition_key, to_attribute, warehouse_key
from featuresql.serving.tables import Item, StoreUnavailable
from featuresql.sql.point_in_time import JoinedModel
from featuresql.times import epoch_micros

if TYPE_CHECKING:
    from featuresql.adapters.base import WarehouseAdapter
    from featuresql.run.workspace import Workspace


@dataclass(frozen=True)
class ModelSync:
    model: str
    changed: int  # entities whose latest row differed from the mirror
    written: int
    skipped: int  # refused by the store: a value as new or newer was there
    seconds: float


@dataclass(frozen=True)
class SyncResult:
    sync_id: str
    store: str
    models: list[ModelSync]


def run_sync(
    context: Workspace,
    select: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    *,
    now: datetime | None = None,
    report: Callable[[ModelSync], None] | None = None,
    store: OnlineStore | None = None,
    lock_timeout: float = 0.0,
) -> SyncResult:
    """Sync the selected online models (all of them by default); see the module docstring.

    ``store`` replaces the target's configured store (``featuresql.online.stores.open_store``);
    ``lock_timeout``: seconds to wait for a target another process holds (a DuckDB file).
    """
    compiled = context.compiled
    every_online = online_models(compiled)
    selected = set(context.select(select, exclude))
    models = [model for model in every_online if model.name in selected]
    if not every_online:
        raise ConfigError(
            "no model is online, so there is nothing to sync: set config(online=true) on the models services read"
        )
    if select and not models:
        raise ConfigError(
            f"no online model selected by --select {' '.join(select)}: online models are "
            f"{', '.join(m.name for m in every_online) or 'none (set config(online=true))'}"
        )
    store = store or open_store(context)
    context.connect_waiting(time.monotonic() + lock_timeout)
    adapter = context.adapter
    column_types: dict[str, dict[str, str]] = {}
    for model in every_online:
        types = adapter.table_columns(model.relation)
        if types is None:
            raise ConfigError(
                f"online model {model.name!r} has no table on target {context.target_name!r}: "
                f"run `featuresql run --select {model.name}` first",
                path=model.path,
            )
        column_types[model.name] = types
    store.ensure_table()
    write_manifest(context, build_manifest(context, store, every_online, column_types))
    adapter.ensure_schema(state.SCHEMA)
    now = now or datetime.now(UTC)
    sync_id, version = uuid.uuid4().hex[:12], time.time_ns() // 1000
    results = []
    for model in models:
        started = time.perf_counter()
        changed, outcome = _sync_model(adapter, store, model, now, version, sync_id)
        result = ModelSync(model.name, changed, outcome.written, outcome.skipped, time.perf_counter() - started)
        results.append(result)
        if report:
            report(result)
    return SyncResult(sync_id, store.table, results)


def _sync_model(
    adapter: WarehouseAdapter, store: OnlineStore, model: CompiledModel, now: datetime, version: int, sync_id: str
) -> tuple[int, WriteResult]:
    joined = joined_model(model, ())
    mirror = mirror_table(model.name)
    existing = adapter.table_columns(mirror)
    if existing is not None and list(existing) != list(mirror_columns(joined)):
        adapter.execute(exp.Drop(tables=[mirror], kind="TABLE", exists=True))  # the model's columns changed: resend all
    adapter.execute(create_mirror(joined))
    pending = adapter.create_temporary(
        f"featuresql_sync_{model.name}", changed_rows(joined, now, version, adapter.dialect)
    )
    checkpoints.reach("sync_staged")
    try:
        encode = _encoder(model, joined, version, sync_id, store.config.ttl_attribute)
        counted = _Counter()
        # closed before the DROP below, also when a write fails: an unread result blocks the connection
        with closing(adapter.fetch_batches(exp.select("*").from_(pending.copy()), rows=10_000)) as batches:
            outcome = write_items(store, (encode(row) for row in counted.rows(batches)))
        checkpoints.reach("sync_before_mirror")
        with adapter.transaction():
            for statement in update_mirror(joined, pending):
                adapter.execute(statement)
        checkpoints.reach("sync_mirrored")
    finally:
        adapter.execute(exp.Drop(tables=[pending], kind="TABLE", exists=True))
    return counted.count, outcome


class _Counter:
    def __init__(self) -> None:
        self.count = 0

    def rows(self, batches: Iterable[Any]) -> Iterator[dict[str, Any]]:
        for batch in batches:
            self.count += batch.num_rows
            yield from batch.to_pylist()


def write_items(store: OnlineStore, items: Iterable[Item]) -> WriteResult:
    """Write ``items`` in ``store.batch_size`` batches on ``store.workers`` threads, a bounded number in flight."""
    total = WriteResult()
    in_flight: deque[Future[WriteResult]] = deque()

    def collect() -> None:
        nonlocal total
        total += in_flight.popleft().result()
        checkpoints.reach("sync_written")

    with ThreadPoolExecutor(store.workers, thread_name_prefix="featuresql-sync") as pool:
        try:
            batch: list[Item] = []
            for item in items:
                batch.append(item)
                if len(batch) == store.batch_size:
                    in_flight.append(pool.submit(store.write_batch, batch))
                    batch = []
                    while len(in_flight) >= 2 * store.workers:
                        collect()
            if batch:
                in_flight.append(pool.submit(store.write_batch, batch))
            while in_flight:
                collect()
        except StoreUnavailable as exc:
            raise ExecutionError(str(exc)) from None
        finally:
            for future in in_flight:
                future.cancel()
    return total


def _encoder(
    model: CompiledModel, joined: JoinedModel, version: int, sync_id: str, ttl_attribute: str
) -> Callable[[dict[str, Any]], Item]:
    """Row (a dict of the pending table's columns) -> item."""
    keys, features = joined.keys, joined.columns
    defaults = [0 if column in joined.count_like else None for column in features]
    delay = joined.data_delay
    widest = model.window.max_tiles * model.settings.grain if model.window is not None else None
    fixed = {VERSION: {"N": str(version)}, RUN: {"S": sync_id}}

    def encode(row: dict[str, Any]) -> Item:
        key_values = [warehouse_key(row[key]) for key in keys]
        micros = epoch_micros(row[joined.timestamp])
        try:
            item = {"pk": {"S": partition_key(model.name, key_values)}, FEATURE_TS: {"N": str(micros)}, **fixed}
            values = [row[column] for column in features]
            for column, value in zip(features, values, strict=True):
                item[column] = to_attribute(value)
        except ItemError as exc:
            raise ExecutionError(f"model {model.name}, entity {key_values}: {exc}", path=model.path) from None
        seconds = -(-micros // 1_000_000)
        if widest is not None:
            empty = values == defaults
            item[ttl_attribute] = {"N": str(seconds + delay + (0 if empty else widest))}
        elif joined.ttl is not None:
            item[ttl_attribute] = {"N": str(seconds + joined.ttl)}
        return item

    return encode
