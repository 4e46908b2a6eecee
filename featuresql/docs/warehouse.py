"""What the target's warehouse says about the models: column types, run history, freshness.

The docs are generated whether or not the warehouse holds anything: a DuckDB file
that does not exist is not created just to be read (every model then shows
"never run"), a target whose secrets are unset or that cannot be reached is
skipped with a note, and tables are looked up before they are queried. Only
these are read:

- each model's columns and types (``information_schema``, through the adapter);
- ``featuresql.run_log``, grouped per model and run: the run history;
- the newest computed boundary of window models (``featuresql.intervals``, as the
  freshness test measures them), and the newest event each has seen (``_newest_event``);
- ``max(<timestamp>)`` and the row count of snapshot models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlglot import exp

from featuresql.compile.models import CompiledModel
from featuresql.context import Context
from featuresql.errors import ConfigError, FeaturesqlError
from featuresql.run import state
from featuresql.run.artifacts import interval_record
from featuresql.sql.dialects import timestamp_literal
from featuresql.times import utc

RUNS_KEPT = 10  # runs of each model shown in its history, newest first


@dataclass(frozen=True)
class ModelRun:
    """One run of one model, from its events in the run log."""

    run_id: str
    started_at: str | None  # ISO 8601 UTC: the first and the last event the run logged for the model
    finished_at: str | None
    status: str  # success or error
    rows: int | None  # rows written (summed over batches)
    seconds: float
    batches: int  # window models: the batches committed; snapshot models: 0
    interval: list[str | None] | None  # the boundaries computed [lo, hi) (window models)
    message: str = ""


@dataclass
class WarehouseInfo:
    """What was read; ``note`` says why something was not (shown on the site)."""

    read: bool = False
    note: str = ""
    columns: dict[str, dict[str, str]] = field(default_factory=dict)  # model -> column -> type; built models only
    runs: dict[str, list[ModelRun]] = field(default_factory=dict)  # model -> runs, newest first
    newest: dict[str, str | None] = field(default_factory=dict)  # model -> ISO time of its newest data
    computed_through: dict[str, str | None] = field(default_factory=dict)  # window model -> newest boundary computed
    table_rows: dict[str, int] = field(default_factory=dict)  # snapshot model -> rows in its table


def open_context(project_dir: Path | str, target: str | None, variables: dict[str, Any]) -> tuple[Context, str]:
    """The project on ``target``, connected when its warehouse can be read; else offline, with the reason.

    The reason is "" when the warehouse is read. Nothing is created: a missing DuckDB
    file stays missing, and the offline context never connects.
    """
    offline = Context(project_dir, target=target, variables=variables, offline=True)
    absent = _missing_database(offline)
    if absent:
        return offline, absent
    try:
        context = Context(project_dir, target=target, variables=variables)
    except ConfigError as exc:  # unset secrets
        return offline, f"warehouse not read: {exc.message}"
    try:
        context.adapter.table_columns(state.table("run_log"))
    except FeaturesqlError as exc:
        context.close()
        return offline, f"warehouse not read: {exc.message}"
    offline.close()
    return context, ""


def _missing_database(context: Context) -> str:
    adapter = context.adapter_class(context.target_config, context.project.root)  # not connected
    return adapter.missing() or ""


def read_warehouse(context: Context, models: Sequence[CompiledModel]) -> WarehouseInfo:
    """Column types, run history and freshness of ``models`` (the context must be connected)."""
    info = WarehouseInfo(read=True)
    adapter = context.adapter
    for model in models:
        columns = adapter.table_columns(model.relation)
        if columns is not None:
            info.columns[model.name] = columns
    if adapter.table_columns(state.table("run_log")) is not None:
        info.runs = _runs(context)
    if adapter.table_columns(state.table("intervals")) is not None:
        boundaries = _computed_boundaries(context, models)
        for model in models:
            if model.name in boundaries:
                info.computed_through[model.name] = iso_time(boundaries[model.name])
                info.newest[model.name] = _newest_event(context, model, boundaries[model.name])
    for model in models:
        timestamp = model.settings.timestamp
        if model.window is None and timestamp and timestamp in info.columns.get(model.name, {}):
            info.newest[model.name], info.table_rows[model.name] = _snapshot_newest(context, model)
    if not info.runs:
        info.note = "no run recorded on this target yet"
    return info


def _runs(context: Context) -> dict[str, list[ModelRun]]:
    """The run log grouped by model and run: one row per run of each model."""
    query = (
        exp.select(
            "model",
            "run_id",
            exp.alias_(exp.Min(this=exp.column("logged_at")), "started_at"),
            exp.alias_(exp.Max(this=exp.column("logged_at")), "finished_at"),
            exp.alias_(exp.Sum(this=exp.column("row_count")), "row_count"),
            exp.alias_(exp.Sum(this=exp.column("seconds")), "seconds"),
            exp.alias_(exp.Count(this=exp.column("hi")), "batches"),  # window batches log their interval
            exp.alias_(exp.Max(this=_if_failed(exp.Literal.number(1), exp.Literal.number(0))), "failed"),
            exp.alias_(exp.Max(this=_if_failed(exp.column("message"))), "message"),
            exp.alias_(exp.Min(this=exp.column("lo")), "lo"),
            exp.alias_(exp.Max(this=exp.column("hi")), "hi"),
        )
        .from_(state.table("run_log"))
        .where(exp.column("project").eq(exp.Literal.string(context.project.name)))
        .group_by("model", "run_id")
    )
    runs: dict[str, list[ModelRun]] = {}
    for row in context.adapter.fetch_arrow(query).to_pylist():
        row = {key.lower(): value for key, value in row.items()}
        runs.setdefault(row["model"], []).append(_model_run(row))
    for history in runs.values():
        history.sort(key=lambda run: run.finished_at or "", reverse=True)
        del history[RUNS_KEPT:]
    return runs


def _if_failed(value: exp.Expr, otherwise: exp.Expr | None = None) -> exp.Case:
    failed = exp.column("status").neq(exp.Literal.string("success"))
    return exp.Case(ifs=[exp.If(this=failed, true=value)], default=otherwise)


def _model_run(row: dict[str, Any]) -> ModelRun:
    interval = None
    if row["hi"] is not None:
        interval = interval_record((int(row["lo"]) if row["lo"] is not None else int(row["hi"]), int(row["hi"])))
    return ModelRun(
        run_id=str(row["run_id"]),
        started_at=iso_time(row["started_at"]),
        finished_at=iso_time(row["finished_at"]),
        status="error" if row["failed"] else "success",
        rows=None if row["row_count"] is None else int(row["row_count"]),
        seconds=round(float(row["seconds"] or 0.0), 3),
        batches=int(row["batches"]),
        interval=interval,
        message=str(row["message"] or ""),
    )


def _computed_boundaries(context: Context, models: Sequence[CompiledModel]) -> dict[str, datetime]:
    """The newest boundary each window model's state records as computed (its ``hi`` is one grain past it)."""
    query = (
        exp.select("model", exp.alias_(exp.Max(this=exp.column("hi")), "hi"))
        .from_(state.table("intervals"))
        .where(exp.column("project").eq(exp.Literal.string(context.project.name)))
        .group_by("model")
    )
    grains = {model.name: model.settings.grain for model in models if model.window is not None}
    newest = {}
    for row in context.adapter.fetch_arrow(query).to_pylist():
        row = {key.lower(): value for key, value in row.items()}
        if row["model"] in grains and row["hi"] is not None:
            newest[row["model"]] = datetime.fromtimestamp(int(row["hi"]) - grains[row["model"]], UTC)
    return newest


def _newest_event(context: Context, model: CompiledModel, boundary: datetime) -> str | None:
    """The newest event of a window model's input that its values include: what its "newest data" means.

    Read as ``max(<timestamp>)`` of the model's own events query (its SELECT, filters
    and joins as written, before any window aggregation) below its newest computed
    ``boundary``: the value at a boundary covers the events before it, so this is the
    newest event the model has seen. An event that arrived after the last run, or
    lies at or past the boundary, is not in any value yet and is not counted.

    The cheaper readings answer other questions: the interval state's boundary
    moves with every run, events or not (data ending 2026-06-30, computed through
    2026-12-06), and is shown beside this as "computed through"; ``max(<timestamp>)``
    of the model's table is its newest change point, which includes the boundaries
    where old events leave the windows, up to the widest window after the last event.

    Cost: one aggregate over the model's input, no tiles or windows. The engines
    push the bound and the query's own filters down to the source scan, so a
    columnar engine reads only the timestamp column and the filtered ones, once.
    """
    assert model.window is not None
    timestamp = exp.column(model.window.timestamp)
    query = (
        exp.select(exp.alias_(exp.Max(this=timestamp), "newest"))
        .from_(model.window.events.subquery("__events"))
        .where(timestamp.copy() < timestamp_literal(boundary, context.dialect))
    )
    try:
        row = context.adapter.fetch_arrow(query).to_pylist()[0]
    except FeaturesqlError:  # its input is gone (a file source's files moved): unknown, the rest still shown
        return None
    return iso_time({key.lower(): value for key, value in row.items()}["newest"])


def _snapshot_newest(context: Context, model: CompiledModel) -> tuple[str | None, int]:
    query = exp.select(
        exp.alias_(exp.Max(this=exp.column(model.settings.timestamp or "")), "newest"),
        exp.alias_(exp.Count(this=exp.Star()), "row_count"),
    ).from_(model.relation.copy())
    row = {key.lower(): value for key, value in context.adapter.fetch_arrow(query).to_pylist()[0].items()}
    return iso_time(row["newest"]), int(row["row_count"])


def iso_time(value: Any) -> str | None:
    """A warehouse time as ISO 8601 UTC with a Z (zone-less times are UTC; a DATE is its midnight)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = utc(value)
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day, tzinfo=UTC)
    else:
        return str(value)
    return moment.isoformat().replace("+00:00", "Z")
