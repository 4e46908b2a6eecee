"""The statements a run executes for each model, as sqlglot expressions.

``featuresql compile`` writes exactly these (rendered for the target) and
``featuresql run`` executes them, so what a reviewer reads is what runs.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlglot import exp

from featuresql.models import CompiledModel
from featuresql.window_query import BoundaryRange, window_query


def computable_boundaries(model: CompiledModel, now: datetime) -> BoundaryRange:
    """All boundaries from the model start up to the last one complete at ``now``.

    A boundary E is complete once ``now - data_delay >= E``: every event before it
    has arrived. Boundaries before ``start`` are never computed.
    """
    settings = model.settings
    grain = settings.grain
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now  # a naive now is UTC, like every time here
    available = int(now.timestamp()) - settings.data_delay
    last = available // grain
    start = settings.start_boundary()
    return BoundaryRange(lo=start, hi=last + 1, initial=start is not None)


def model_query(model: CompiledModel, dialect: str, now: datetime) -> exp.Query:
    """The query whose result is the model's table at ``now``."""
    if model.window is not None:
        return window_query(model.window, computable_boundaries(model, now), dialect)
    return model.query


def build_statements(model: CompiledModel, dialect: str, now: datetime) -> list[exp.Expr]:
    """The statements that (re)build ``model`` in full."""
    create = exp.Create(
        this=model.relation.copy(), kind="TABLE", replace=True, expression=model_query(model, dialect, now)
    )
    return [create]
