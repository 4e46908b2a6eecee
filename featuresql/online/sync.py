"""``featuresql sync``: make the online store hold each online model's current values.

The store converges to the warehouse's answer at ``--now``, whatever happened to
either: per model and entity, the item is the latest available row (what an
extract at ``--now`` returns), or no item where that reads the same (a missing
item reads as the defaults). Only what changed since the last sync to *this*
store is written or deleted: the warehouse keeps a mirror of each store's items
(``featuresql.online.mirror``) and a record of each store, the store a marker of
that record (``featuresql.online.records``). A store the record does not match (a
new, wiped, emptied or restored store), or ``--full``, is filled from scratch and
swept of every item the sync did not write: with ``--select``, the other models'
items go too, and the reader answers 503 for those models ("not held") until a
sync writes them, rather than serve what the store can no longer vouch for.

Every write carries the sync's version, the store's sequence, and is
conditional on it (``featuresql.adapters.store``), so a late write of an earlier
sync never replaces a later one. Rows stream from the warehouse as Arrow batches
and go to the store in batches written by ``store.workers`` threads, at most two
batches per worker in flight, so featuresql's own memory stays flat. An item the
store cannot take (DynamoDB's 400 KB) is rejected alone: the rest is written, and
the sync fails naming the model and entity.

An item answers until ``_exp`` (``featuresql.online.mirror.expires_at``): for a
window model, until its windows are all empty; for a snapshot model with a
``ttl``, until the ``ttl`` has passed; otherwise it never expires. The manifest
is published after the items, and covers exactly the models the store holds
under their current schema. A model whose computed state does not reach ``--now``
(a missed run) is refused before anything is written: its latest rows are not
its current values.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlglot import exp

from featuresql.adapters.store import Change, Deletion, OnlineStore
from featuresql.compile.features import coverage
from featuresql.compile.models import CompiledModel
from featuresql.errors import ConfigError, ExecutionError
from featuresql.online import records
from featuresql.online.encoding import ChangeEncoder
from featuresql.online.mirror import (
    ACTION_COLUMN,
    DELETE,
    MirrorState,
    OnlineRows,
    changes,
    mirror_table,
)
from featuresql.online.model_sync import mirror_state, remove_model, sync_model
from featuresql.online.records import SyncedModel, SyncRecord
from featuresql.online.repair import Repair, repair_model
from featuresql.online.stores import (
    column_types,
    model_entries,
    on_demand_entries,
    online_models,
    open_store,
    served_manifest,
    write_manifest,
)
from featuresql.online.streams import preview_stream_model, stream_boundary, sync_stream_model
from featuresql.online.writes import write_items
from featuresql.run import state
from featuresql.run.coverage import covers, describe, spine_spans
from featuresql.serving.items import (
    MARKER_KEY,
    RUN,
    VERSION,
)
from featuresql.serving.manifest import OnlineModel
from featuresql.serving.stream_items import is_pushed_key
from featuresql.serving.tables import StoreUnavailable
from featuresql.times import epoch_micros

if TYPE_CHECKING:
    from featuresql.adapters.base import WarehouseAdapter
    from featuresql.run.workspace import Workspace


@dataclass(frozen=True)
class ModelSync:
    model: str
    changed: int  # entities whose item is put or deleted
    written: int
    deleted: int
    skipped: int  # a later sync had written the item already
    seconds: float
    rejected: tuple[str, ...] = ()  # one line per item the store could not take
    repair: Repair | None = None  # with --repair: what reading the store back found


@dataclass(frozen=True)
class SyncResult:
    sync_id: str
    store: str
    models: list[ModelSync]
    version: int = 0
    restart: str | None = None  # why the store was filled from scratch, if it was
    swept: int = 0  # items deleted that no current row accounts for (a restart's sweep)
    removed: tuple[str, ...] = ()  # models no longer online whose items were deleted


@dataclass
class _Plan:
    """One sync's decisions about the store, before anything is written."""

    store: str  # the store's identity
    record: SyncRecord
    restart: str | None
    removed: dict[str, SyncedModel] = field(default_factory=dict)
    previous: SyncRecord | None = None  # the record as the last completed sync left it
    sweep: bool = False  # a restart on a store that held items: delete those the sync did not write


def run_sync(
    context: Workspace,
    select: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    *,
    now: datetime | None = None,
    report: Callable[[ModelSync], None] | None = None,
    store: OnlineStore | None = None,
    lock_timeout: float = 0.0,
    full: bool = False,
    notice: Callable[[str], None] | None = None,
    repair: bool = False,
    sample: int | None = None,
) -> SyncResult:
    """Sync the selected online models (all of them by default); see the module docstring.

    ``store`` replaces the target's configured store (``featuresql.online.stores.open_store``);
    ``lock_timeout``: seconds to wait for a target another process holds (a DuckDB file);
    ``full``: resend every current item and sweep the store, as for a new store;
    ``notice`` hears one line when the store is filled from scratch, and why;
    ``repair``: read the store back and rewrite what is wrong in it (``featuresql.online.repair``),
    for every entity or the ``sample`` whose rows changed last.
    """
    models, store, entries, now, plan = _start(context, select, exclude, store, lock_timeout, now, full)
    adapter = context.adapter
    if notice and plan.restart is not None:
        notice(plan.restart)
    _reserve(adapter, plan)
    version, sync_id = plan.record.sequence, uuid.uuid4().hex[:12]
    for name, synced in plan.removed.items():
        remove_model(adapter, store, plan.store, name, synced, version)
        if notice:
            notice(f"{name} is no longer online: its items were deleted")
    synced_models = {name: m for name, m in plan.record.models.items() if name not in plan.removed}
    held = synced_models if plan.restart is None else {}
    results = []
    for model in models:
        started = time.perf_counter()
        entry = entries[model.name]
        rejected: tuple[str, ...]
        if entry.stream is not None:  # its states are rewritten whole every time: nothing to compare or repair
            boundary = stream_boundary(model, now)
            stamp = {VERSION: {"N": str(version)}, RUN: {"S": sync_id}}
            refused: list[str] = []
            trusted = held.get(model.name) is not None
            outcome = sync_stream_model(
                adapter, store, model, entry, boundary, plan.store, stamp, refused, trusted=trusted
            )
            synced_models[model.name] = SyncedModel(entry.schema, entry.key_columns, boundary)
            repaired, rejected = None, tuple(refused)
        else:
            rows = OnlineRows.of(model, entry, plan.store)
            encoder = ChangeEncoder(rows, version, sync_id, store)
            held_model = held.get(model.name)
            outcome = sync_model(adapter, store, rows, now, encoder, held_model, lambda: _distrust(adapter, plan))
            repaired = repair_model(adapter, store, rows, now, encoder, sample) if repair else None
            if repaired is not None:
                outcome += repaired.outcome
            synced_models[model.name] = SyncedModel(rows.schema, rows.model.keys)
            rejected = tuple(encoder.rejected)
        changed = outcome.written + outcome.deleted + outcome.skipped + len(rejected)
        seconds = time.perf_counter() - started
        result = ModelSync(
            model.name, changed, outcome.written, outcome.deleted, outcome.skipped, seconds, rejected, repaired
        )
        results.append(result)
        if report:
            report(result)
    swept = _sweep(store, version) if plan.sweep else 0
    record = replace(plan.record, synced_at=epoch_micros(now), models=synced_models)
    manifest = served_manifest(context, store, entries, {name: m.schema for name, m in synced_models.items()})
    digests = {name: computed.digest for name, computed in manifest.on_demand.items()}
    _write(store, [records.marker_item(record, digests)])
    records.write_record(adapter, plan.store, record)
    write_manifest(context, manifest)
    refused = [line for result in results for line in result.rejected]
    if refused:
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        raise ExecutionError(f"sync wrote everything else, but {refused[0]}{more}")
    return SyncResult(sync_id, store.table, results, version, plan.restart, swept, tuple(plan.removed))


def _start(
    context: Workspace,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
    store: OnlineStore | None,
    lock_timeout: float,
    now: datetime | None,
    full: bool,
) -> tuple[list[CompiledModel], OnlineStore, dict[str, OnlineModel], datetime, _Plan]:
    """What a sync (or its preview) works on: the models to sync, the store, the online entries, the plan."""
    every_online = online_models(context.compiled)
    models = _selected(context, every_online, select, exclude)
    store = store or open_store(context)
    context.connect_waiting(time.monotonic() + lock_timeout)
    entries = model_entries(context, every_online, column_types(context, every_online))
    on_demand_entries(context.compiled.on_demand, entries)  # a type mistake fails before anything is written
    now = now or datetime.now(UTC)
    _check_computed(context, models, now)
    store.ensure_table()
    context.adapter.ensure_schema(state.SCHEMA)
    plan = _plan(context.adapter, store, every_online, now, full)
    return models, store, entries, now, plan


def _check_computed(context: Workspace, models: list[CompiledModel], now: datetime) -> None:
    """Refuse, before anything is written, a model whose state does not reach ``now``.

    Its latest rows would be published as current values (the extract's rule,
    ``featuresql.sql.coverage``): after a missed run the store would serve them as if
    nothing had happened since.
    """
    for model in models:
        if model.settings.stream is not None:  # sync reads its events from the source, up to B
            continue
        found = coverage(context.compiled.models, model.name, context.project.name)
        if found is None:
            continue
        spans = spine_spans(context.adapter, found, model.settings.data_delay)
        if not covers(spans, now, found, model.settings.data_delay):
            raise ConfigError(
                f"model {model.name!r} is not computed as of {now:%Y-%m-%d %H:%M:%S} ({describe(spans)}): "
                f"sync publishes only computed values: run `featuresql run --select {model.name}` first"
            )


@dataclass(frozen=True)
class SyncPreview:
    """What a sync would do (``featuresql sync --dry-run``): per model, items to put and to delete."""

    store: str
    restart: str | None
    changes: dict[str, tuple[int, int]]  # model -> (puts, deletes)
    removed: tuple[str, ...] = ()


def preview_sync(
    context: Workspace,
    select: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    *,
    now: datetime | None = None,
    full: bool = False,
) -> SyncPreview:
    """Count what ``run_sync`` would write and delete, writing nothing (the store's table is made if missing).

    A restart also deletes whatever else the store holds: that sweep is not counted.
    """
    models, store, entries, now, plan = _start(context, select, exclude, None, 0.0, now, full)
    adapter = context.adapter
    counts = {}
    for model in models:
        if model.settings.stream is not None:
            boundary = stream_boundary(model, now)
            trusted = plan.restart is None and model.name in plan.record.models
            counts[model.name] = preview_stream_model(
                adapter, store, model, entries[model.name], boundary, plan.store, trusted=trusted
            )
            continue
        rows = OnlineRows.of(model, entries[model.name], plan.store)
        mirror = mirror_state(adapter, rows, plan.record.models.get(model.name) if plan.restart is None else None)
        compared: MirrorState = "none" if mirror == "gone" else mirror
        query = changes(rows, now, adapter.dialect, compared).subquery("__changes")
        action = exp.column(ACTION_COLUMN)
        grouped = exp.select(action, exp.alias_(exp.Count(this=exp.Star()), "n")).from_(query).group_by(action)
        found = dict(zip(*adapter.fetch_arrow(grouped).to_pydict().values(), strict=True))
        deletes = found.get(DELETE, 0)
        if mirror == "gone":  # every item the old mirror holds goes
            held = exp.select(exp.Count(this=exp.Star())).from_(rows.mirror)
            deletes = adapter.fetch_arrow(held).column(0)[0].as_py()
        counts[model.name] = (int(found.get("put", 0)), int(deletes))
    return SyncPreview(store.table, plan.restart, counts, tuple(plan.removed))


def _selected(
    context: Workspace, every_online: list[CompiledModel], select: tuple[str, ...], exclude: tuple[str, ...]
) -> list[CompiledModel]:
    if not every_online:
        raise ConfigError(
            "no model is online, so there is nothing to sync: set config(online=true) on the models services read"
        )
    selected = set(context.select(select, exclude))
    models = [model for model in every_online if model.name in selected]
    if select and not models:
        raise ConfigError(
            f"no online model selected by --select {' '.join(select)}: online models are "
            f"{', '.join(m.name for m in every_online)}"
        )
    return models


def _plan(
    adapter: WarehouseAdapter, store: OnlineStore, every_online: list[CompiledModel], now: datetime, full: bool
) -> _Plan:
    """Whether the store holds what the warehouse's record says, and this sync's version (reserved)."""
    identity = store.identity()
    record = records.read_record(adapter, identity)
    marker = records.read_marker(store)
    restart = _restart_reason(store, record, marker, full) or _lost_mirror(adapter, identity, record)
    handed_out = max(record.reserved if record else 0, marker.sequence if marker else 0)
    if restart is not None:
        highest, held = _held_versions(store)  # items of a lost record or marker
        handed_out = max(handed_out, highest)
        plan = _Plan(identity, replace(SyncRecord.fresh(handed_out), sequence=handed_out + 1), restart, {}, record)
        plan.sweep = held > 0
    else:
        assert record is not None
        if record.synced_at is not None and epoch_micros(now) < record.synced_at:
            synced = datetime.fromtimestamp(record.synced_at / 1e6, UTC).isoformat()
            raise ConfigError(
                f"the online store {store.table} holds values as of {synced}, later than --now "
                f"{now.isoformat()}: syncing would put older values online; sync as of that time or "
                "later, or pass --full to rewind the store on purpose"
            )
        online = {model.name for model in every_online}
        removed = {name: synced for name, synced in record.models.items() if name not in online}
        plan = _Plan(identity, replace(record, sequence=handed_out + 1), None, removed, record)
    return plan


def _reserve(adapter: WarehouseAdapter, plan: _Plan) -> None:
    """Reserve the plan's version before anything is written; the record still says the last completed sync.

    A restart also gives up the old generation now, before it drops any mirror: if it
    is killed, the next sync restarts too instead of trusting the emptied mirrors.
    """
    reserving = plan.previous or replace(plan.record, sequence=0)
    if plan.restart is not None:
        reserving = replace(reserving, generation=plan.record.generation, models={})
    records.write_record(adapter, plan.store, replace(reserving, reserved=plan.record.sequence))
    plan.record = replace(plan.record, reserved=plan.record.sequence)


def _distrust(adapter: WarehouseAdapter, plan: _Plan) -> None:
    """Before a mirror is (re)built: the record stops matching the store's marker until this sync completes."""
    if plan.previous is not None and plan.previous.generation == plan.record.generation:
        interrupted = replace(plan.previous, generation=f"building-{plan.record.generation}")
        records.write_record(adapter, plan.store, replace(interrupted, reserved=plan.record.sequence))


def _lost_mirror(adapter: WarehouseAdapter, identity: str, record: SyncRecord | None) -> str | None:
    """A mirror the record relies on is gone (dropped by hand): what it knew about the store is lost."""
    for name in sorted(record.models if record else ()):
        if adapter.table_columns(mirror_table(identity, name)) is None:
            return f"the warehouse's mirror of {name} in this store is gone: sending every item again"
    return None


def _held_versions(store: OnlineStore) -> tuple[int, int]:
    """The highest version among the store's items, and how many items it holds."""
    versions = [int(item[VERSION]["N"]) for item in store.scan([VERSION]) if VERSION in item]
    return max(versions, default=0), len(versions)


def _restart_reason(
    store: OnlineStore, record: SyncRecord | None, marker: records.Marker | None, full: bool
) -> str | None:
    if full:
        return "--full: resending every item"
    if record is None:
        return f"first sync to {store.table} from this warehouse: sending every item"
    if marker is None:
        return f"{store.table} has lost its sync marker (wiped, emptied or new): sending every item again"
    if marker.generation != record.generation:
        return f"{store.table} was last synced from elsewhere: sending every item again"
    if marker.sequence != record.sequence:
        return f"{store.table} is not at the last sync this warehouse recorded (restored?): sending every item"
    return None


def _sweep(store: OnlineStore, version: int) -> int:
    """Delete every item this sync did not write (a restart rewrote all current ones)."""
    stale = [
        item["pk"]["S"]
        for item in store.scan([VERSION])
        if item["pk"]["S"] != MARKER_KEY
        and not is_pushed_key(item["pk"]["S"])  # pushed events are push's: the reader counts those at or after B
        and int(item.get(VERSION, {"N": "0"})["N"]) < version
    ]
    return write_items(store, (Deletion(key, version) for key in stale)).deleted


def _write(store: OnlineStore, items: list[Change]) -> None:
    try:
        store.write_batch(items)
    except StoreUnavailable as exc:
        raise ExecutionError(str(exc)) from None
