"""The statements that compute a model: a batch of boundaries, its replacement, a full build.

``featuresql.run.planning`` decides which batches a run computes; ``featuresql
compile`` writes the statements of a full build, and ``featuresql run`` executes
the planned batches (``featuresql.run.execution``).
"""

from __future__ import annotations

from datetime import datetime

from sqlglot import exp

from featuresql.compile.models import CompiledModel
from featuresql.run.intervals import BEGINNING, Interval
from featuresql.run.planning import computable_boundaries
from featuresql.sql.dialects import time_in_span
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
    return exp.Create(this=model.relation.copy(), kind="TABLE", replace=True, expression=query)


def model_query(model: CompiledModel, dialect: str, now: datetime) -> exp.Query:
    """The query whose result is the model's whole table at ``now``."""
    if model.window is not None:
        return window_query(model.window, computable_boundaries(model, now), dialect)
    return model.query


def build_statements(model: CompiledModel, dialect: str, now: datetime) -> list[exp.Expr]:
    """The statements that (re)build ``model`` in full."""
    return [create_table(model, model_query(model, dialect, now))]
