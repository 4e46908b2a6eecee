"""Interval state and the run log, stored in the warehouse next to the models.

Tables in the ``featuresql`` schema of the target (created on first use):

- ``intervals``: one row per committed batch of a window model: the boundary
  interval ``[lo, hi)`` (epoch seconds), the run, when, how many rows, and the
  model definition's hash. It is written in the same transaction as the rows it
  describes, so state never claims rows that are not there (and vice versa).
- ``run_log``: one row per model event of a run (batch done, model failed), for
  people and schedulers; never read by the planner.
- ``locks``: at most one row per project: the run holding the target.

Each function builds sqlglot expressions; the adapter runs them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlglot import exp

from featuresql.adapters.base import WarehouseAdapter
from featuresql.compile.models import CompiledModel
from featuresql.run.intervals import Interval, merge
from featuresql.sql.dialects import event_time_type, timestamp_literal

SCHEMA = "featuresql"

TABLES: dict[str, dict[str, str]] = {
    "intervals": {
        "project": "VARCHAR",
        "model": "VARCHAR",
        "lo": "BIGINT",
        "hi": "BIGINT",
        "run_id": "VARCHAR",
        "computed_at": "TIMESTAMP",
        "row_count": "BIGINT",
        "definition": "VARCHAR",
    },
    "run_log": {
        "project": "VARCHAR",
        "run_id": "VARCHAR",
        "model": "VARCHAR",
        "lo": "BIGINT",
        "hi": "BIGINT",
        "row_count": "BIGINT",
        "seconds": "DOUBLE",
        "status": "VARCHAR",
        "message": "VARCHAR",
        "logged_at": "TIMESTAMP",
    },
    "locks": {
        "project": "VARCHAR",
        "run_id": "VARCHAR",
        "pid": "BIGINT",
        "host": "VARCHAR",
        "acquired_at": "TIMESTAMP",
        "heartbeat_at": "TIMESTAMP",
    },
}


def table(name: str) -> exp.Table:
    return exp.table_(name, db=SCHEMA)


def definition_hash(model: CompiledModel, dialect: str) -> str:
    """What decides a window model's rows: its events query, features, keys, grain and start.

    Descriptions, tags, data_delay, lookback and batch_size change no row, so they
    are left out: editing them never forces a rebuild.
    """
    settings = model.settings
    parts = [model.query.sql(dialect), repr(model.features), repr(settings.keys), str(settings.grain)]
    parts.append(settings.start.isoformat() if settings.start else "")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def ensure_tables(adapter: WarehouseAdapter) -> None:
    adapter.ensure_schema(SCHEMA)
    for name, columns in TABLES.items():
        ensure_table(adapter, name, columns)


def ensure_table(adapter: WarehouseAdapter, name: str, columns: dict[str, str]) -> None:
    """Create ``featuresql.<name>`` with ``columns`` (name -> VARCHAR, BIGINT, DOUBLE or TIMESTAMP) if missing."""
    schema = exp.Schema(
        this=table(name),
        expressions=[
            exp.ColumnDef(this=exp.to_identifier(column), kind=_column_type(kind, adapter.dialect))
            for column, kind in columns.items()
        ],
    )
    adapter.execute(exp.Create(this=schema, kind="TABLE", exists=True))


def _column_type(kind: str, dialect: str) -> exp.DataType:
    # Times are stored as the engine's event-time type, the type timestamp_literal writes:
    # BigQuery would refuse its TIMESTAMP values in a DATETIME column.
    return event_time_type(dialect) if kind == "TIMESTAMP" else exp.DataType.build(kind)


@dataclass(frozen=True)
class ModelState:
    """What state says about one model: its computed intervals and their definitions."""

    intervals: list[Interval]
    definitions: frozenset[str]

    @property
    def empty(self) -> bool:
        return not self.intervals


def read_states(adapter: WarehouseAdapter, project: str, models: Sequence[str]) -> dict[str, ModelState]:
    """The state of every model in ``models`` (empty for a model never computed)."""
    if adapter.table_columns(table("intervals")) is None:
        return {name: ModelState([], frozenset()) for name in models}
    query = (
        exp.select("model", "lo", "hi", "definition")
        .from_(table("intervals"))
        .where(exp.column("project").eq(exp.Literal.string(project)))
    )
    rows = adapter.fetch_arrow(query).to_pylist()
    states = {}
    for name in models:
        mine = [r for r in rows if r["model"] == name]
        spans = merge((int(r["lo"]), int(r["hi"])) for r in mine)
        states[name] = ModelState(spans, frozenset(r["definition"] for r in mine))
    return states


def record_interval(
    project: str, model: str, interval: Interval, run_id: str, rows: int | None, definition: str, dialect: str
) -> exp.Insert:
    """The state row for a committed batch (run it in the batch's transaction)."""
    values = [
        exp.Literal.string(project),
        exp.Literal.string(model),
        exp.Literal.number(interval[0]),
        exp.Literal.number(interval[1]),
        exp.Literal.string(run_id),
        _now(dialect),
        exp.Literal.number(rows) if rows is not None else exp.null(),
        exp.Literal.string(definition),
    ]
    return exp.insert(exp.values([tuple(values)]), table("intervals"))


def forget_model(project: str, model: str) -> exp.Delete:
    """Delete a model's intervals (with its table's rows, in one transaction: a full refresh)."""
    return exp.delete(
        table("intervals"),
        where=exp.and_(
            exp.column("project").eq(exp.Literal.string(project)), exp.column("model").eq(exp.Literal.string(model))
        ),
    )


def log_event(
    project: str,
    run_id: str,
    model: str,
    interval: Interval | None,
    rows: int | None,
    seconds: float,
    status: str,
    message: str,
    dialect: str,
) -> exp.Insert:
    lo, hi = interval if interval else (None, None)
    values = [
        exp.Literal.string(project),
        exp.Literal.string(run_id),
        exp.Literal.string(model),
        _number(lo),
        _number(hi),
        _number(rows),
        exp.Literal.number(round(seconds, 6)),
        exp.Literal.string(status),
        exp.Literal.string(message[:2000]),
        _now(dialect),
    ]
    return exp.insert(exp.values([tuple(values)]), table("run_log"))


def _number(value: int | None) -> exp.Expr:
    return exp.null() if value is None else exp.Literal.number(value)


def _now(dialect: str) -> exp.Expr:
    return timestamp_literal(datetime.now(UTC), dialect)
