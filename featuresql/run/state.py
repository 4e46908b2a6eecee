"""Interval state and the run log, stored in the warehouse next to the models.

Tables in the ``featuresql`` schema of the target (created on first use):

- ``intervals``: one row per committed batch of a window model: the boundary
  interval ``[lo, hi)`` (epoch seconds), the run, when, how many rows, and the
  model definition's hash. It is written in the same transaction as the rows it
  describes, so state never claims rows that are not there (and vice versa).
- ``definitions``: one row per snapshot model build: the definition hash of the
  table it built (the latest row counts) (window models keep theirs in ``intervals``), so a run can tell
  that a snapshot model changed and name it in the rebuild it asks for.
- ``run_log``: one row per model event of a run (batch done, model failed), for
  people and schedulers; never read by the planner.
- ``locks``: at most one row per project: the run holding the target.

A model's definition hash (``definition_hashes``) covers what it reads: its
upstream models' hashes and the types of the source columns its query names.

Each function builds sqlglot expressions; the adapter runs them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlglot import exp

from featuresql.adapters.base import WarehouseAdapter
from featuresql.compile.models import CompiledModel, CompiledProject
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
    "definitions": {
        "project": "VARCHAR",
        "model": "VARCHAR",
        "definition": "VARCHAR",
        "run_id": "VARCHAR",
        "built_at": "TIMESTAMP",
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


@dataclass(frozen=True)
class SourceColumns:
    """The columns of one source table: as sources.yml declares them and as the warehouse has them."""

    declared: Mapping[str, str | None]  # lower-case name -> declared type (None: no type given)
    actual: Mapping[str, str] | None = None  # lower-case name -> the warehouse's type (None: not read)


def definition_hashes(
    project: CompiledProject, sources: Mapping[str, SourceColumns], names: Collection[str]
) -> dict[str, str]:
    """The definition hash of each model of ``names`` and of every model upstream of them.

    A model's rows follow from its own definition and from what it reads, so its hash
    covers both: its upstream models' hashes (computed first: ``project.models`` is in
    dependency order), so a change anywhere upstream changes every model below it; and
    the types of the source columns its query names (``sources``, by source key), so
    ``amount`` turned from bigint into double is a change, an unrelated new column is not.
    """
    wanted = _with_ancestors(project, names)
    hashes: dict[str, str] = {}
    for name, model in project.models.items():
        if name in wanted:
            upstream = [f"ref {ref} {hashes[ref]}" for ref in sorted(model.refs)]
            parts = [*own_definition(model, project.dialect), *upstream, *source_types(model, sources)]
            hashes[name] = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    return hashes


def own_definition(model: CompiledModel, dialect: str) -> list[str]:
    """What decides a model's rows from its inputs: a snapshot's query; a window model's events
    query, features, keys, grain and start.

    Descriptions, tags, data_delay, lookback and batch_size change no row, so they
    are left out: editing them never forces a rebuild.
    """
    if model.window is None:
        return ["snapshot", model.query.sql(dialect)]
    settings = model.settings
    parts = [model.query.sql(dialect), repr(model.features), repr(settings.keys), str(settings.grain)]
    parts.append(settings.start.isoformat() if settings.start else "")
    return parts


def source_types(model: CompiledModel, sources: Mapping[str, SourceColumns]) -> list[str]:
    """One line per source column the model's query names: its declared and its warehouse type.

    ``select *`` reads every column. Types are compared as spelled (upper case, no spaces):
    a type the warehouse reports differently is a change, as a new column type should be.
    """
    named = _column_names(model.query)
    lines = []
    for key in sorted(model.sources):
        columns = sources.get(key)
        if columns is None:
            continue
        actual = columns.actual or {}
        for column in sorted({*columns.declared, *actual}):
            if named is None or column in named:
                declared = _spelled(columns.declared.get(column))
                lines.append(f"source {key} {column} {declared} {_spelled(actual.get(column))}")
    return lines


def _column_names(query: exp.Query) -> set[str] | None:
    """The lower-case names of the columns ``query`` names (None: it selects ``*``, so every column)."""
    for select in query.find_all(exp.Select):
        for item in select.expressions:
            if isinstance(item, exp.Star) or (isinstance(item, exp.Column) and isinstance(item.this, exp.Star)):
                return None
    return {column.name.lower() for column in query.find_all(exp.Column)}


def _spelled(kind: str | None) -> str:
    return "".join((kind or "").split()).upper()


def _with_ancestors(project: CompiledProject, names: Collection[str]) -> set[str]:
    found: set[str] = set()
    pending = [name for name in names if name in project.models]
    while pending:
        name = pending.pop()
        if name not in found:
            found.add(name)
            pending.extend(project.models[name].refs)
    return found


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


def read_definitions(adapter: WarehouseAdapter, project: str) -> dict[str, str]:
    """The definition each snapshot model's table was last built from (none for a model never built)."""
    if adapter.table_columns(table("definitions")) is None:
        return {}
    query = (
        exp.select("model", "definition")
        .from_(table("definitions"))
        .where(exp.column("project").eq(exp.Literal.string(project)))
        .order_by("built_at")
    )
    return {row["model"]: row["definition"] for row in adapter.fetch_arrow(query).to_pylist()}


def record_definition(project: str, model: str, definition: str, run_id: str, dialect: str) -> exp.Insert:
    """The statement that records a snapshot model's definition: run it after its table was replaced.

    In that order, a run killed in between leaves the old definition recorded: the next
    run still sees the model as changed, and asks to rebuild what reads it. Appended,
    never deleted: snapshot models built in parallel insert side by side, where deletes
    from one table would conflict (BigQuery serializes concurrent mutating DML); the
    latest row of a model is its definition (runs hold the lock, so they never overlap).
    """
    values = [
        exp.Literal.string(project),
        exp.Literal.string(model),
        exp.Literal.string(definition),
        exp.Literal.string(run_id),
        _now(dialect),
    ]
    return exp.insert(exp.values([tuple(values)]), table("definitions"))


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
    return exp.delete(table("intervals"), where=_model_is(project, model))


def _model_is(project: str, model: str) -> exp.Expr:
    return exp.and_(
        exp.column("project").eq(exp.Literal.string(project)), exp.column("model").eq(exp.Literal.string(model))
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
