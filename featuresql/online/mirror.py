"""The statements of ``featuresql sync``, as sqlglot expressions for any dialect.

Per online model and store, the warehouse keeps a *mirror*
(``featuresql.online_<store identity>_<model>``): one row per entity the store
holds an item of, with the values, expiry and schema version written. A sync

1. selects each entity's *current* row (``current_rows``): its latest available
   row at ``now`` (``latest_rows``), unless that row reads exactly as a missing
   item does (a window model's empty window), with the item's expiry and schema
   version;
2. compares it with the mirror in one full outer join (``changes``): a current
   row the mirror lacks or holds differently is a *put*; a mirror row with no
   current row (its events were deleted, its ``ttl`` passed, a longer
   ``data_delay`` hides it) is a *delete*. Feature time may go back: the store
   holds the warehouse's current answer, not the newest value ever seen;
3. marks the changed entities' mirror rows *unknown* (``claim_mirror``: schema
   NULL, so the next sync compares them with nothing and sends them again), applies
   the changes to the store, then records them in the mirror in one transaction
   (``update_mirror``).

A sync killed anywhere in 3 leaves those entities unknown in the mirror, so the
next sync puts (or deletes) them again whatever the warehouse says by then: the
changes are idempotent, and it converges.
Values compare exactly (``IS DISTINCT FROM``), except doubles, which compare at
a relative tolerance of ``FLOAT_TOLERANCE``: an engine that adds doubles in a
different order on a rerun changes the last bit, not the value, and a rerun must
not rewrite unchanged items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlglot import exp

from featuresql.compile.features import joined_model
from featuresql.compile.models import CompiledModel
from featuresql.run.state import SCHEMA
from featuresql.serving.manifest import OnlineModel
from featuresql.sql import dialects
from featuresql.sql.point_in_time import JoinedModel

FLOAT_TOLERANCE = 1e-12
EXPIRES_COLUMN = "_featuresql_expires"
SCHEMA_COLUMN = "_featuresql_schema"
ACTION_COLUMN = "_featuresql_action"
PUT, DELETE = "put", "delete"
_CURRENT = "__current"
_MIRROR = "__mirror"
_PRESENT = "__featuresql_present"
_RANKED = "__ranked"
_ROW = "__featuresql_rank"

# How the mirror compares with the model: the same columns and types; the same keys only; or none (a new store).
MirrorState = Literal["same", "keys", "none"]


@dataclass(frozen=True)
class OnlineRows:
    """How one model's rows become one store's items."""

    model: JoinedModel
    store: str  # the store's identity (``OnlineStore.identity``)
    schema: str  # the schema version its items are written under
    widest: int | None  # window models: the widest window, in seconds
    floats: frozenset[str]  # double features, compared at ``FLOAT_TOLERANCE``

    @classmethod
    def of(cls, model: CompiledModel, entry: OnlineModel, store: str) -> OnlineRows:
        """``model``'s rows as items of the schema ``entry`` (its manifest entry) in the store ``store``."""
        joined = joined_model(model, ())
        widest = model.window.max_tiles * model.settings.grain if model.window is not None else None
        floats = frozenset(c for c in joined.columns if entry.features[c].kind == "float")
        return cls(joined, store, entry.schema, widest, floats)

    @property
    def mirror(self) -> exp.Table:
        return mirror_table(self.store, self.model.name)

    @property
    def columns(self) -> tuple[str, ...]:
        """The mirror's columns, and the staged changes' but for the action."""
        return (*self.model.keys, self.model.timestamp, *self.model.columns, EXPIRES_COLUMN, SCHEMA_COLUMN)


def mirror_table(store: str, model: str) -> exp.Table:
    """The mirror of ``model``'s items in the store whose identity is ``store``."""
    return exp.table_(f"online_{store}_{model}", db=SCHEMA)


def create_mirror(rows: OnlineRows) -> exp.Create:
    """An empty mirror, its columns typed as the model's table (if it does not exist yet)."""
    model = rows.model
    select = exp.select(
        *(exp.column(c) for c in (*model.keys, model.timestamp, *model.columns)),
        exp.alias_(exp.cast(exp.null(), "BIGINT"), EXPIRES_COLUMN),
        exp.alias_(exp.cast(exp.null(), "VARCHAR"), SCHEMA_COLUMN),
    )
    empty = select.from_(model.relation.copy()).where(exp.false())
    return exp.Create(this=rows.mirror, kind="TABLE", exists=True, expression=empty)


def latest_rows(model: JoinedModel, now: datetime, dialect: str) -> exp.Select:
    """Each entity's latest available row at ``now``: what the point-in-time join answers at ``now``.

    Keys not NULL, ``ts <= now - data_delay``, not before ``start``, and for snapshot
    models with a ``ttl`` not before ``now - ttl``; ties on ``ts`` broken as the
    point-in-time join breaks them. Columns: the keys, the timestamp and ``model.columns``.
    """
    ts = exp.column(model.timestamp)
    available: list[exp.Expr] = [exp.column(k).is_(exp.null()).not_() for k in model.keys]
    available.append(ts.copy() <= _minus(dialects.timestamp_literal(now, dialect), model.data_delay))
    if model.ttl is not None:
        available.append(ts.copy() >= _minus(dialects.timestamp_literal(now, dialect), model.ttl))
    if model.start is not None:
        available.append(ts.copy() >= dialects.timestamp_literal(model.start, dialect))
    order = [exp.column(c) for c in (model.timestamp, *model.tie_break)]
    rank = exp.Window(
        this=exp.RowNumber(),
        partition_by=[exp.column(k) for k in model.keys],
        order=exp.Order(expressions=[exp.Ordered(this=c, desc=True, nulls_first=False) for c in order]),
    )
    columns = _row_columns(model)
    ranked = (
        exp.select(*(exp.column(c) for c in columns), exp.alias_(rank, _ROW))
        .from_(model.relation.copy())
        .where(exp.and_(*available))
    )
    return (
        exp.select(*(exp.column(c, _RANKED) for c in columns))
        .from_(exp.alias_(ranked.subquery(), _RANKED, table=True))
        .where(exp.column(_ROW, _RANKED).eq(1))
    )


def current_rows(rows: OnlineRows, now: datetime, dialect: str) -> exp.Select:
    """Each entity's item as of ``now``: its latest available row unless it reads as no item, with
    the item's expiry (``expires_at``) and schema version."""
    model = rows.model
    latest = "__latest"
    query = exp.select(
        *(exp.column(c, latest) for c in _row_columns(model)),
        exp.alias_(expires_at(rows, exp.column(model.timestamp, latest), dialect), EXPIRES_COLUMN),
        exp.alias_(exp.Literal.string(rows.schema), SCHEMA_COLUMN),
    ).from_(exp.alias_(latest_rows(model, now, dialect).subquery(), latest, table=True))
    if rows.widest is not None:
        query = query.where(exp.not_(exp.and_(*(_reads_as_missing(model, c, latest) for c in model.columns))))
    return query


def expires_at(rows: OnlineRows, timestamp: exp.Expr, dialect: str) -> exp.Expr:
    """The first instant (epoch microseconds) at which an item of a row at ``timestamp`` no longer answers.

    A window model's row at boundary ``E`` holds until the row at ``E + widest`` (every
    window empty) is available, at ``E + widest + data_delay``. A snapshot row with a
    ``ttl`` matches up to ``ts + ttl`` inclusive, so it stops one microsecond later.
    Otherwise NULL: the item never expires.
    """
    model = rows.model
    if rows.widest is not None:
        offset = (rows.widest + model.data_delay) * 1_000_000
    elif model.ttl is not None:
        offset = model.ttl * 1_000_000 + 1
    else:
        return exp.cast(exp.null(), "BIGINT")
    if dialect == "bigquery":  # UNIX_MICROS takes a TIMESTAMP; a snapshot's time may be a DATE or DATETIME (UTC)
        timestamp = exp.cast(timestamp, exp.DataType.build("TIMESTAMPTZ"))  # BigQuery's TIMESTAMP is zoned
    return exp.cast(dialects.epoch_micros(timestamp, dialect) + exp.Literal.number(offset), "BIGINT")


def changes(rows: OnlineRows, now: datetime, dialect: str, mirror: MirrorState) -> exp.Select:
    """The puts and deletes that make the store hold ``current_rows`` (columns: ``rows.columns``
    and the action). ``mirror`` says what the mirror can be compared on (``MirrorState``)."""
    model = rows.model
    current = current_rows(rows, now, dialect)
    if mirror == "none":
        return current.select(exp.alias_(exp.Literal.string(PUT), ACTION_COLUMN))
    current = current.select(exp.alias_(exp.Literal.number(1), _PRESENT))
    held = exp.select(*(exp.column(k) for k in model.keys), exp.alias_(exp.Literal.number(1), _PRESENT))
    if mirror == "same":
        held = exp.select(*(exp.column(c) for c in rows.columns), exp.alias_(exp.Literal.number(1), _PRESENT))
    held = held.from_(rows.mirror)
    is_current = exp.column(_PRESENT, _CURRENT).is_(exp.null()).not_()
    is_held = exp.column(_PRESENT, _MIRROR).is_(exp.null()).not_()
    put = exp.and_(is_current, exp.or_(exp.not_(is_held), _differs(rows))) if mirror == "same" else is_current
    keys = [
        exp.alias_(exp.Coalesce(this=exp.column(k, _CURRENT), expressions=[exp.column(k, _MIRROR)]), k)
        for k in model.keys
    ]
    others = [exp.column(c, _CURRENT) for c in rows.columns[len(model.keys) :]]
    action = exp.case().when(is_current.copy(), exp.Literal.string(PUT)).else_(exp.Literal.string(DELETE))
    return (
        exp.select(*keys, *others, exp.alias_(action, ACTION_COLUMN))
        .from_(exp.alias_(current.subquery(), _CURRENT, table=True))
        .join(
            exp.alias_(held.subquery(), _MIRROR, table=True), on=_same_keys(model, _CURRENT, _MIRROR), join_type="full"
        )
        .where(exp.or_(exp.paren(put), exp.not_(is_current.copy())))
    )


def _differs(rows: OnlineRows) -> exp.Expr:
    """The current row is not what the mirror holds: time, expiry, schema or any value."""
    model = rows.model
    exact = (model.timestamp, EXPIRES_COLUMN, SCHEMA_COLUMN, *(c for c in model.columns if c not in rows.floats))
    parts: list[exp.Expr] = [
        exp.NullSafeNEQ(this=exp.column(c, _CURRENT), expression=exp.column(c, _MIRROR)) for c in exact
    ]
    parts += [_float_differs(exp.column(c, _CURRENT), exp.column(c, _MIRROR)) for c in sorted(rows.floats)]
    return exp.paren(exp.or_(*parts))


def _float_differs(new: exp.Expr, old: exp.Expr) -> exp.Expr:
    """Distinct, and not within ``FLOAT_TOLERANCE`` of each other relative to the larger."""
    spread = exp.Abs(this=exp.Sub(this=new.copy(), expression=old.copy()))
    scale = exp.Greatest(this=exp.Abs(this=new.copy()), expressions=[exp.Abs(this=old.copy())])
    close = spread <= exp.Mul(this=exp.Literal.number(FLOAT_TOLERANCE), expression=scale)
    return exp.paren(
        exp.and_(
            exp.NullSafeNEQ(this=new, expression=old),
            exp.not_(exp.Coalesce(this=close, expressions=[exp.false()])),
        )
    )


def _reads_as_missing(model: JoinedModel, column: str, table: str) -> exp.Expr:
    """The value is what a missing item reads as: 0 for count-like features, NULL otherwise."""
    value = exp.column(column, table)
    return value.eq(exp.Literal.number(0)) if column in model.count_like else value.is_(exp.null())


def claim_mirror(rows: OnlineRows, pending: exp.Table) -> list[exp.Expr]:
    """Before the store is written: each changed entity's mirror row says "unknown" (schema NULL).

    The next sync then sends it again (a put where it has a current row, else a delete),
    so a sync killed between the store and ``update_mirror`` never leaves a stale item
    the mirror vouches for.
    """
    columns = [c for c in rows.columns if c != SCHEMA_COLUMN]
    unknown = exp.select(*(exp.column(c) for c in columns), exp.alias_(exp.cast(exp.null(), "VARCHAR"), SCHEMA_COLUMN))
    insert = exp.insert(unknown.from_(pending.copy()), rows.mirror, columns=[*columns, SCHEMA_COLUMN])
    return [_forget_changed(rows, pending), insert]


def invalidate(rows: OnlineRows, keys: Sequence[Sequence[int | str]]) -> exp.Update:
    """Mark the mirror rows of ``keys`` (entities whose item the store refused) unknown: sent again next time."""
    matches = [
        exp.and_(*(exp.column(k).eq(_literal(v)) for k, v in zip(rows.model.keys, values, strict=True)))
        for values in keys
    ]
    return exp.update(rows.mirror, {SCHEMA_COLUMN: exp.null()}, where=exp.or_(*matches))


def _literal(value: int | str) -> exp.Expr:
    return exp.Literal.number(value) if isinstance(value, int) else exp.Literal.string(str(value))


def _forget_changed(rows: OnlineRows, pending: exp.Table) -> exp.Delete:
    mirror = rows.mirror
    applied = "__applied"
    changed = exp.select("1").from_(exp.alias_(pending.copy(), applied, table=True))
    changed = changed.where(_same_keys(rows.model, applied, mirror.name))
    return exp.delete(mirror.copy(), where=exp.Exists(this=changed))


def update_mirror(rows: OnlineRows, pending: exp.Table) -> list[exp.Expr]:
    """Record the applied changes (``pending``) in the mirror: replace the changed entities' rows."""
    mirror = rows.mirror
    delete = _forget_changed(rows, pending)
    insert = exp.insert(
        exp.select(*(exp.column(c) for c in rows.columns))
        .from_(pending.copy())
        .where(exp.column(ACTION_COLUMN).eq(exp.Literal.string(PUT))),
        mirror.copy(),
        columns=list(rows.columns),
    )
    return [delete, insert]


def mirror_keys(mirror: exp.Table, keys: tuple[str, ...]) -> exp.Select:
    """The key columns ``keys`` of every row of ``mirror`` (a removed model's, or one whose keys changed)."""
    return exp.select(*(exp.column(k) for k in keys)).from_(mirror.copy())


def descending_time(model: JoinedModel) -> list[exp.Ordered]:
    """Newest rows first, then by keys: a total order, so a sample of the newest is the same every time."""
    return [
        exp.Ordered(this=exp.column(model.timestamp), desc=True, nulls_first=False),
        *(exp.Ordered(this=exp.column(k), nulls_first=True) for k in model.keys),
    ]


def _row_columns(model: JoinedModel) -> tuple[str, ...]:
    return (*model.keys, model.timestamp, *model.columns)


def _same_keys(model: JoinedModel, left: str, right: str) -> exp.Expr:
    return exp.and_(*(exp.column(k, left).eq(exp.column(k, right)) for k in model.keys))


def _minus(time: exp.Expr, seconds: int) -> exp.Expr:
    if not seconds:
        return time
    return exp.TimestampSub(this=time, expression=exp.Literal.number(seconds), unit=exp.var("SECOND"))
