"""``featuresql sync --repair``: read the store back and rewrite exactly what is wrong in it.

A sync trusts its mirror of the store; an item changed or deleted behind its back
(by hand, by a tool, by a bug) stays wrong until the entity changes again.
``--repair`` does not trust the mirror: per model it reads back the item of every
entity the warehouse has a current row for (or, with ``--sample N``, of the N
entities whose rows changed last), compares each with the item sync would write,
and rewrites exactly the ones that are missing, stale (another feature time) or
different (any value, the expiry or the schema; doubles at the mirror's
tolerance). Without a sample it also scans the store for the model's *strays*:
items of entities with no current row, which it deletes.

It runs after the model's normal sync (so the mirror is in step with the
warehouse) and writes at the same version: an item that sync just wrote is
current already, and anything older gives way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from featuresql.adapters.store import Change, Deletion, OnlineStore, WriteResult
from featuresql.online.encoding import ChangeEncoder
from featuresql.online.mirror import FLOAT_TOLERANCE, OnlineRows, changes, descending_time
from featuresql.online.writes import write_items
from featuresql.serving.items import FEATURE_TS, RUN, VERSION, partition_key, split_partition_key
from featuresql.serving.tables import Item

if TYPE_CHECKING:
    from datetime import datetime

    from featuresql.adapters.base import WarehouseAdapter

_IGNORED = frozenset({VERSION, RUN})  # which sync wrote an item is no difference


@dataclass(frozen=True)
class Repair:
    """What ``--repair`` found in one model's items, and what it did."""

    checked: int = 0
    missing: int = 0
    stale: int = 0
    different: int = 0
    stray: int = 0
    outcome: WriteResult = field(default_factory=WriteResult)

    def describe(self) -> str:
        found = f"{self.missing:,} missing, {self.stale:,} stale, {self.different:,} different, {self.stray:,} stray"
        return f"{self.checked:,} checked: {found}"


class _Tally:
    def __init__(self) -> None:
        self.checked = self.missing = self.stale = self.different = 0


def repair_model(
    adapter: WarehouseAdapter,
    store: OnlineStore,
    rows: OnlineRows,
    now: datetime,
    synced: ChangeEncoder,
    sample: int | None,
) -> Repair:
    """Read back one model's items after its sync (see the module docstring); ``synced``: the sync's encoder.

    An entity whose item the store refused is not a stray: its old item stays until it can be replaced.
    """
    encode = synced.fresh()
    query = changes(rows, now, adapter.dialect, "none")
    if sample is not None:
        query = query.order_by(*descending_time(rows.model)).limit(sample)
    pending = adapter.create_temporary(f"featuresql_repair_{rows.model.name}", query)
    tally = _Tally()
    current = {partition_key(rows.model.name, values) for values in synced.rejected_keys}
    try:
        with closing(adapter.fetch_batches(exp.select("*").from_(pending.copy()), rows=1_000)) as batches:
            wrong = _wrong_items(store, rows, encode, batches, tally, current)
            outcome = write_items(store, wrong)
    finally:
        adapter.execute(exp.Drop(tables=[pending], kind="TABLE", exists=True))
    stray = 0
    if sample is None:
        strays = [key for key in _model_keys(store, rows.model.name) if key not in current]
        stray = len(strays)
        outcome += write_items(store, (Deletion(key, encode.version) for key in strays))
    return Repair(tally.checked, tally.missing, tally.stale, tally.different, stray, outcome)


def _wrong_items(
    store: OnlineStore,
    rows: OnlineRows,
    encode: ChangeEncoder,
    batches: Iterable[Any],
    tally: _Tally,
    current: set[str],
) -> Iterator[Change]:
    for batch in batches:
        items = [item for item in encode.changes([batch]) if not isinstance(item, Deletion)]
        current.update(partition_key(rows.model.name, values) for values in encode.rejected_keys)
        keys = [item["pk"]["S"] for item in items]
        current.update(keys)
        stored = store.read_batch(keys, sorted({name for item in items for name in item} - {"pk"}))
        for item in items:
            tally.checked += 1
            found = stored.get(item["pk"]["S"])
            if found is None:
                tally.missing += 1
            elif found.get(FEATURE_TS) != item[FEATURE_TS]:
                tally.stale += 1
            elif not same_item(found, item, rows.floats):
                tally.different += 1
            else:
                continue
            yield item


def same_item(stored: Item, written: Item, floats: frozenset[str]) -> bool:
    """Whether ``stored`` holds what ``written`` says (numbers by value; doubles at the tolerance)."""
    names = (set(stored) | set(written)) - _IGNORED
    return all(_same(stored.get(name), written.get(name), name in floats) for name in names)


def _same(stored: dict[str, Any] | None, written: dict[str, Any] | None, double: bool) -> bool:
    if stored is None or written is None:
        return stored is written
    if "N" in stored and "N" in written:
        a, b = Decimal(stored["N"]), Decimal(written["N"])
        return a == b or (double and math.isclose(float(a), float(b), rel_tol=FLOAT_TOLERANCE))
    return stored == written


def _model_keys(store: OnlineStore, model: str) -> list[str]:
    keys = []
    for item in store.scan([]):
        key = item["pk"]["S"]
        try:
            owner, _ = split_partition_key(key)
        except ValueError:
            continue  # the sync marker, or something that is no entity's item
        if owner == model:
            keys.append(key)
    return keys
