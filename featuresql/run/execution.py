"""Build one model: its planned batches, each replacing its range with the state update.

Each incremental batch of a window model is one transaction: delete the rows
of its boundary interval, insert them anew, append the interval to the state.
A first batch that creates the table (DDL, which Snowflake and BigQuery keep
out of transactions) is ordered instead: forget the state, replace the table,
record the state. A run killed at any point leaves every batch either recorded
with its rows or not at all, so the next run's plan (``featuresql.run.planning``)
picks up exactly what is missing. Snapshot models are replaced whole by one
``CREATE OR REPLACE``.
"""

from __future__ import annotations

import contextlib
import time

from sqlglot import exp

from featuresql import checkpoints
from featuresql.adapters.base import WarehouseAdapter
from featuresql.compile.features import window_ancestors
from featuresql.compile.models import CompiledModel
from featuresql.errors import FeaturesqlError
from featuresql.run import state
from featuresql.run.coverage import chained_spans
from featuresql.run.intervals import Interval
from featuresql.run.planning import RunState, batched_plan
from featuresql.run.results import ModelResult
from featuresql.run.statements import (
    batch_query,
    create_table,
    null_key_count,
    null_key_note,
    replace_range,
)


def build_model(model: CompiledModel, adapter: WarehouseAdapter, run: RunState) -> ModelResult:
    """Build ``model`` as planned; a failure is a result, never an exception."""
    started = time.perf_counter()
    try:
        if model.window is not None:
            result = _build_window(model, adapter, run)
        else:
            result = _build_vouched_snapshot(model, adapter, run)
    except FeaturesqlError as exc:
        _log(adapter, run, model.name, None, None, time.perf_counter() - started, "error", exc.message)
        return ModelResult(model.name, "error", seconds=time.perf_counter() - started, message=exc.message)
    return result


def _build_window(model: CompiledModel, adapter: WarehouseAdapter, run: RunState) -> ModelResult:
    started = time.perf_counter()
    plan = batched_plan(model, adapter, run)
    if plan.create and not plan.batches:  # nothing computable yet: an empty table, so readers find it
        adapter.execute(state.forget_model(run.project, model.name))
        adapter.execute(create_table(model, batch_query(model, (0, 0), run.dialect)))
    excluded = 0  # input rows with a NULL key, over every batch
    for number, batch in enumerate(plan.batches, start=1):
        batch_started = time.perf_counter()
        checkpoints.reach("before_batch")
        batch_excluded = _null_keys(model, adapter, batch, run.dialect)
        excluded += batch_excluded
        rows: int | None
        if plan.create and number == 1:
            rows = _create(model, batch, adapter, run)
        else:
            with adapter.transaction():
                delete, insert = replace_range(model, batch, run.dialect)
                adapter.execute(delete)
                checkpoints.reach("after_delete")
                rows = adapter.execute(insert)
                checkpoints.reach("before_commit")
                adapter.execute(_record(model, batch, rows, run))
        checkpoints.reach("after_commit")
        if run.heartbeat:
            run.heartbeat(adapter)
        seconds = time.perf_counter() - batch_started
        _log(adapter, run, model.name, batch, rows, seconds, "success", null_key_note(model, batch_excluded))
        if run.on_batch:
            run.on_batch(model.name, number, len(plan.batches), batch, rows, seconds)
    if not plan.batches:  # logged all the same, so the run log shows when the model was last checked
        _log(adapter, run, model.name, None, 0, time.perf_counter() - started, "success", "up to date")
    with run.lock:
        run.recomputed[model.name] = plan.intervals
    return ModelResult(
        model.name,
        "success",
        rows=_count(adapter, model),
        seconds=time.perf_counter() - started,
        intervals=tuple(plan.intervals),
        batches=len(plan.batches),
        message=null_key_note(model, excluded),
    )


def _create(model: CompiledModel, batch: Interval, adapter: WarehouseAdapter, run: RunState) -> int:
    """Replace the table with the first batch: a first run, or a full refresh.

    Snowflake commits DDL on its own and BigQuery refuses it in a transaction, so
    the order makes this safe instead of a transaction: the state is forgotten
    first, and the new table (replaced atomically) is recorded last. A run killed
    in between leaves no state, and the next run creates the table again.
    """
    adapter.execute(state.forget_model(run.project, model.name))
    checkpoints.reach("after_delete")
    adapter.execute(create_table(model, batch_query(model, batch, run.dialect)))
    rows = _count(adapter, model)
    checkpoints.reach("before_commit")
    adapter.execute(_record(model, batch, rows, run))
    return rows


def _record(model: CompiledModel, batch: Interval, rows: int | None, run: RunState) -> exp.Insert:
    definition = run.definitions[model.name]
    return state.record_interval(run.project, model.name, batch, run.run_id, rows, definition, run.dialect)


def _build_vouched_snapshot(model: CompiledModel, adapter: WarehouseAdapter, run: RunState) -> ModelResult:
    """A snapshot build; over window models, it also records where they vouch for it (``featuresql.run.coverage``).

    The old spans are forgotten before the table is replaced and the new ones recorded
    after, so a build killed in between claims nothing.
    """
    ancestors = window_ancestors(run.models, model.name) if run.models else []
    if not ancestors:
        return _build_snapshot(model, adapter, run)
    spans = chained_spans(adapter, run.project, run.models, ancestors)
    adapter.execute(state.forget_model(run.project, model.name))
    result = _build_snapshot(model, adapter, run)
    if result.status == "success":
        definition = run.definitions.get(model.name, "")
        for span in spans:
            adapter.execute(
                state.record_interval(run.project, model.name, span, run.run_id, None, definition, run.dialect)
            )
    return result


def _build_snapshot(model: CompiledModel, adapter: WarehouseAdapter, run: RunState) -> ModelResult:
    started = time.perf_counter()
    checkpoints.reach("before_batch")
    note = null_key_note(model, _null_keys(model, adapter, None, run.dialect))
    adapter.execute(create_table(model, model.query))  # CREATE OR REPLACE (without NULL keys): atomic on its own
    checkpoints.reach("before_commit")
    # After the table: a run killed before it leaves the model changed, never the reverse.
    definition = run.definitions[model.name]
    adapter.execute(state.record_definition(run.project, model.name, definition, run.run_id, run.dialect))
    checkpoints.reach("after_commit")
    rows = _count(adapter, model)
    _log(adapter, run, model.name, None, rows, time.perf_counter() - started, "success", note)
    return ModelResult(model.name, "success", rows=rows, seconds=time.perf_counter() - started, message=note)


def _null_keys(model: CompiledModel, adapter: WarehouseAdapter, batch: Interval | None, dialect: str) -> int:
    """The input rows with a NULL key that ``batch`` (a snapshot build: None) leaves out.

    Counted before the batch writes anything, so a failing count fails the batch
    as any of its statements would, never after its rows were committed.
    """
    query = null_key_count(model, batch, dialect)
    if query is None:
        return 0
    return int(adapter.fetch_arrow(query).column(0)[0].as_py())


def _count(adapter: WarehouseAdapter, model: CompiledModel) -> int:
    count = adapter.fetch_arrow(exp.select(exp.Count(this=exp.Star())).from_(model.relation.copy()))
    return int(count.column(0)[0].as_py())


def _log(
    adapter: WarehouseAdapter,
    run: RunState,
    model: str,
    interval: Interval | None,
    rows: int | None,
    seconds: float,
    status: str,
    message: str,
) -> None:
    # The run log is for people: failing to write it must not fail the model.
    with contextlib.suppress(FeaturesqlError):
        adapter.execute(
            state.log_event(run.project, run.run_id, model, interval, rows, seconds, status, message, run.dialect)
        )
