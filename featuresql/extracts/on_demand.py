"""On-demand features in an extract: evaluated in the warehouse over the spine, as the reader does online.

The spine is the request: each request column of an on-demand model is the spine's
column of that name, cast to the declared type, and the features it reads are the
point-in-time values joined for the same row (``featuresql.sql.point_in_time.DerivedColumn``),
written for the target so it computes DuckDB's values, the reader's
(``featuresql.compile.on_demand_engines``).
Before the query runs, each expression is compiled as the reader will compile it, with
the stored features' warehouse types, so a type mistake is refused here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlglot import exp

from featuresql.compile.models import CompiledProject, OnDemandModel
from featuresql.compile.on_demand import programs
from featuresql.compile.on_demand_engines import engine_expression
from featuresql.errors import ConfigError
from featuresql.sql import dialects
from featuresql.sql.point_in_time import DerivedColumn

if TYPE_CHECKING:
    from featuresql.extracts.spine import StagedSpine
    from featuresql.run.workspace import Workspace


def derived_columns(
    context: Workspace,
    compiled: CompiledProject,
    staged: StagedSpine,
    chosen: Sequence[tuple[OnDemandModel, str, str]],
) -> list[DerivedColumn]:
    """The requested on-demand features as columns of the extract, in order."""
    spine_columns = {column.lower(): column for column in staged.relation.columns}
    read_dialect = context.project.config.dialect
    derived = []
    checked: set[str] = set()
    for model, feature, output in chosen:
        if model.name not in checked:
            _check_types(context, compiled, model)
            checked.add(model.name)
        missing = [name for name in model.request if name not in spine_columns]
        if missing:
            declared = ", ".join(f"{name} {kind}" for name, kind in model.request.items())
            raise ConfigError(
                f"{staged.description} has no column {missing[0]!r}, a request column of on-demand model "
                f"{model.name!r} ({declared}): add it to the spine, the value the request would carry"
            )
        request = tuple(
            (name, spine_columns[name], exp.DataType.build(kind, dialect="duckdb"))
            for name, kind in model.request.items()
        )
        expression = next(f.expression for f in model.features if f.name == feature)
        expression = dialects.float_division(expression.copy(), read_dialect, context.dialect)
        expression = engine_expression(expression, context.dialect)
        derived.append(DerivedColumn(output, expression, request))
    return derived


def _check_types(context: Workspace, compiled: CompiledProject, model: OnDemandModel) -> None:
    """Compile the model's programs with its inputs' warehouse types: a type mistake fails here, as online."""
    tables = {name: context.adapter.exact_column_types(compiled.models[name].relation) or {} for name in model.refs}
    input_types = {(m, f): tables[m][f] for m, f in model.inputs if f in tables[m]}
    if len(input_types) == len(model.inputs):
        programs(model, input_types, context.dialect)
