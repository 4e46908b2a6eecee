"""The statements that compute a model: a batch of boundaries, its replacement, a full build.

``featuresql.run.planning`` decides which batches a run computes; ``featuresql
compile`` writes the statements of a full build, and ``featuresql run`` executes
the planned batches (``featuresql.run.execution``).

Rows with a NULL entity key belong to no entity, so no model's table holds one:
a window model's query drops them from its events (``featuresql.sql.window_query``)
and ``create_table`` filters a snapshot model's query. ``null_key_count`` counts
what a batch or a snapshot build left out, for the run log.
"""

from __future__ import annotations

from datetime import datetime

from sqlglot import exp

from featuresql.compile.models import CompiledModel
from featuresql.run.intervals import BEGINNING, Interval
from featuresql.run.planning import computable_boundaries
from featuresql.sql.dialects import time_in_span
from featuresql.sql.window_parts import any_null
from featuresql.sql.window_query import window_query
from featuresql.sql.windows import BoundaryRange


def batch_query(model: CompiledModel, batch: Interval, dialect: str) -> exp.Select:
    """The window model's rows for the boundaries of ``batch`` (guarded to it)."""
    assert model.window is not None
    grain = model.settings.grain
    start = model.settings.start_boundary()
    lo = None if batch[0] == BEGINNING else batch[0] // grain
    return window_query(model.window, BoundaryRange(lo=lo, hi=batch[1] // grain, initial=lo == start), dialect)


def replace_range(model: CompiledModel, batch: Interval, dialect: str) -> list[exp.Expr]:
    """Delete the rows of ``batch`` and insert them anew (run inside one transaction)."""
    ts = exp.column(model.settings.timestamp or "")
    where = time_in_span(ts, None if batch[0] == BEGINNING else batch[0], batch[1], dialect)
    delete = exp.delete(model.relation.copy(), where=where)
    insert = exp.insert(batch_query(model, batch, dialect), model.relation.copy())
    return [delete, insert]


def create_table(model: CompiledModel, query: exp.Query) -> exp.Create:
    """``CREATE OR REPLACE`` the model's table from ``query``.

    A snapshot model's query is filtered here, the one place that ``compile``,
    ``run`` and ``run --dry-run`` all create its table: the table never holds a
    row with a NULL key. A window model's query has no such row to begin with.
    """
    if model.window is None and model.settings.keys:
        query = exp.select("*").from_(query.subquery("__rows")).where(exp.not_(any_null(model.settings.keys)))
    return exp.Create(this=model.relation.copy(), kind="TABLE", replace=True, expression=query)


def null_key_count(model: CompiledModel, batch: Interval | None, dialect: str) -> exp.Select | None:
    """How many input rows with a NULL key ``batch`` left out (None: every input row); None without keys.

    The input is a window model's events, a snapshot model's query. A window batch
    counts only the events of its own tiles: boundaries ``[lo, hi)`` aggregate tiles
    ``lo - 1 .. hi - 2``, so events with ``ts`` in ``[lo - grain, hi - grain)`` (from
    the first event when ``lo`` is the beginning), and the next batch, or a rerun of
    this one, does not count the whole history again. A snapshot build counts every
    row, as does the built-in ``null_keys`` test (``featuresql.testing.null_keys``).
    """
    keys = model.settings.keys
    if not keys:
        return None
    inputs = model.window.events if model.window is not None else model.query
    count = exp.alias_(exp.Count(this=exp.Star()), "null_key_rows")
    query = exp.select(count).from_(inputs.subquery("__rows")).where(any_null(keys))
    if model.window is None or batch is None:
        return query
    grain = model.settings.grain
    lo = None if batch[0] == BEGINNING else (batch[0] // grain - 1) * grain
    return query.where(time_in_span(exp.column(model.window.timestamp), lo, (batch[1] // grain - 1) * grain, dialect))


def null_key_note(model: CompiledModel, count: int) -> str:
    """The run log's note of ``count`` excluded rows, e.g. "3 rows with a NULL user_id excluded"."""
    if not count:
        return ""
    return f"{count} {'row' if count == 1 else 'rows'} with a NULL {key_label(model.settings.keys)} excluded"


def key_label(keys: tuple[str, ...]) -> str:
    """The key column(s) as a message names them: ``user_id``, or ``key (user_id, account_id)``."""
    return keys[0] if len(keys) == 1 else f"key ({', '.join(keys)})"


def model_query(model: CompiledModel, dialect: str, now: datetime) -> exp.Query:
    """The query whose result is the model's whole table at ``now``."""
    if model.window is not None:
        return window_query(model.window, computable_boundaries(model, now), dialect)
    return model.query


def build_statements(model: CompiledModel, dialect: str, now: datetime) -> list[exp.Expr]:
    """The statements that (re)build ``model`` in full."""
    return [create_table(model, model_query(model, dialect, now))]
