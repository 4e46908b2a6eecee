"""The statements of ``featuresql sync``, as sqlglot expressions for any dialect.

Per online model, the warehouse keeps a *mirror*: ``featuresql.online_<model>``,
one row per entity holding the values last written to the online store, and the
version of the sync that wrote them. A sync then

1. selects each entity's latest available row (``latest_rows``): keys not NULL,
   ``ts <= now - data_delay``, not before ``start``, and for snapshot models with
   a ``ttl`` not before ``now - ttl``; ties on ``ts`` broken as the point-in-time
   join breaks them, so online and offline pick the same row;
2. keeps those that differ from the mirror: a newer ``ts``, or the same ``ts``
   with any feature ``IS DISTINCT FROM`` the mirror's (a row older than the
   mirror's is never sent back);
3. writes them to the store, then records them in the mirror in one transaction
   (``update_mirror``), a row replacing the mirror's only if newer (ts, then
   version), as the store's conditional writes do.

A sync killed between 2 and 3 leaves the mirror as it was, so the next sync
sends the same rows again: the writes are idempotent, and it converges.
Comparing values rather than hashes keeps the check exact and the SQL the same
on every engine.
"""

from __future__ import annotations

from datetime import datetime

from sqlglot import exp

from featuresql.run.state import SCHEMA
from featuresql.sql import dialects
from featuresql.sql.point_in_time import JoinedModel

VERSION_COLUMN = "_featuresql_version"
_LATEST = "__latest"
_RANKED = "__ranked"
_MIRROR = "__mirror"
_ROW = "__featuresql_rank"


def mirror_table(model: str) -> exp.Table:
    return exp.table_(f"online_{model}", db=SCHEMA)


def mirror_columns(model: JoinedModel) -> tuple[str, ...]:
    return (*model.keys, model.timestamp, *model.columns, VERSION_COLUMN)


def create_mirror(model: JoinedModel) -> exp.Create:
    """An empty mirror with the model's column types (if it does not exist yet)."""
    select = exp.select(
        *(exp.column(c) for c in (*model.keys, model.timestamp, *model.columns)),
        exp.alias_(exp.cast(exp.Literal.number(0), "BIGINT"), VERSION_COLUMN),
    )
    empty = select.from_(model.relation.copy()).where(exp.false())
    return exp.Create(this=mirror_table(model.name), kind="TABLE", exists=True, expression=empty)


def latest_rows(model: JoinedModel, now: datetime, dialect: str) -> exp.Select:
    """Each entity's latest available row at ``now``: the rows a sync at ``now`` puts online.

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


def changed_rows(model: JoinedModel, now: datetime, version: int, dialect: str) -> exp.Select:
    """Each entity's latest available row at ``now`` (``latest_rows``) where it differs from the mirror."""
    columns = _row_columns(model)
    new_ts, old_ts = exp.column(model.timestamp, _LATEST), exp.column(model.timestamp, _MIRROR)
    differs = [exp.NullSafeNEQ(this=exp.column(c, _LATEST), expression=exp.column(c, _MIRROR)) for c in model.columns]
    same_time_changed = exp.and_(new_ts.copy().eq(old_ts.copy()), exp.or_(*differs) if differs else exp.false())
    changed = exp.or_(old_ts.copy().is_(exp.null()), new_ts.copy() > old_ts.copy(), exp.paren(same_time_changed))
    return (
        exp.select(
            *(exp.column(c, _LATEST) for c in columns),
            exp.alias_(exp.cast(exp.Literal.number(version), "BIGINT"), VERSION_COLUMN),
        )
        .from_(exp.alias_(latest_rows(model, now, dialect).subquery(), _LATEST, table=True))
        .join(
            exp.alias_(mirror_table(model.name), _MIRROR, table=True),
            on=_same_keys(model, _LATEST, _MIRROR),
            join_type="left",
        )
        .where(changed)
    )


def _row_columns(model: JoinedModel) -> tuple[str, ...]:
    return (*model.keys, model.timestamp, *model.columns)


def update_mirror(model: JoinedModel, pending: exp.Table) -> list[exp.Expr]:
    """Record the rows written (``pending``) in the mirror, each only over an older mirror row."""
    mirror = mirror_table(model.name)
    columns = mirror_columns(model)
    written = "__written"
    newer = exp.or_(
        exp.column(model.timestamp, written) > exp.column(model.timestamp, mirror.name),
        exp.and_(
            exp.column(model.timestamp, written).eq(exp.column(model.timestamp, mirror.name)),
            exp.column(VERSION_COLUMN, written) > exp.column(VERSION_COLUMN, mirror.name),
        ),
    )
    replaced = exp.select("1").from_(exp.alias_(pending.copy(), written, table=True))
    replaced = replaced.where(exp.and_(_same_keys(model, written, mirror.name), exp.paren(newer)))
    delete = exp.delete(mirror.copy(), where=exp.Exists(this=replaced))
    present = exp.select("1").from_(exp.alias_(mirror.copy(), _MIRROR, table=True))
    present = present.where(_same_keys(model, written, _MIRROR))
    insert = exp.insert(
        exp.select(*(exp.column(c, written) for c in columns))
        .from_(exp.alias_(pending.copy(), written, table=True))
        .where(exp.Not(this=exp.Exists(this=present))),
        mirror.copy(),
        columns=list(columns),
    )
    return [delete, insert]


def _same_keys(model: JoinedModel, left: str, right: str) -> exp.Expr:
    return exp.and_(*(exp.column(k, left).eq(exp.column(k, right)) for k in model.keys))


def _minus(time: exp.Expr, seconds: int) -> exp.Expr:
    if not seconds:
        return time
    return exp.TimestampSub(this=time, expression=exp.Literal.number(seconds), unit=exp.var("SECOND"))
