"""The ``as_of_join`` macro: a model that materialises a training set in the warehouse.

    {{ config(materialized='table') }}
    select * from {{ as_of_join(ref('labels'), ['user_transactions', 'merchant_transactions.count_7d']) }}

The macro records a ``ref()`` to every feature model (so they build first) and
renders a marker table function; the compiler replaces the marker with the same
point-in-time join ``featuresql extract`` runs (``featuresql.sql.point_in_time``),
as a subquery. The spine is any relation whose columns are known at compile time
(a ref, or a source with declared columns); its time column is
``timestamp=``, else found by name as for extracts, and holds zone-less UTC
timestamps (the event-time type of the models). A table has no row order, so the
result is not sorted.

The compiler keeps what each marker joins (``AsOfJoin``) on the compiled model,
so the ``leakage`` test (``featuresql.testing.leakage``) can recompute it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from sqlglot import exp

from featuresql.compile.features import feature_names, resolve_features
from featuresql.compile.models import AsOfJoin, CompiledModel
from featuresql.compile.spine_columns import KeyColumn, check_keys, check_reserved, find_time_column
from featuresql.errors import CompileError, FeaturesqlError
from featuresql.project.jinja import ref
from featuresql.sql.types import sql_family

MARKER = "__featuresql_as_of_join"
ColumnsOf = Callable[[exp.Table], dict[str, str] | None]


def render_as_of_join(spine: Any, features: str | list[str], timestamp: str | None = None) -> str:
    """The Jinja global: refs the feature models and returns the marker to expand."""
    for name in feature_names(features):
        ref(name.partition(".")[0])
    payload = json.dumps({"spine": str(spine), "features": feature_names(features), "timestamp": timestamp})
    return f"{MARKER}({exp.Literal.string(payload).sql()})"


def find_markers(query: exp.Expr) -> list[exp.Table]:
    return [
        table
        for table in query.find_all(exp.Table)
        if isinstance(table.this, exp.Anonymous) and table.this.name.lower() == MARKER
    ]


def expand_as_of_join(
    marker: exp.Table,
    models: Mapping[str, CompiledModel],
    columns_of: ColumnsOf,
    read_dialect: str,
    dialect: str,
    project: str,
) -> tuple[exp.Subquery, AsOfJoin]:
    """The point-in-time join a marker stands for, aliased as the marker was, and what it joins."""
    join = resolve_as_of_join(marker, models, columns_of, read_dialect, project)
    alias = marker.args.get("alias") or exp.TableAlias(this=exp.to_identifier("as_of"))
    return exp.Subquery(this=join.query(dialect), alias=alias), join


def resolve_as_of_join(
    marker: exp.Table, models: Mapping[str, CompiledModel], columns_of: ColumnsOf, read_dialect: str, project: str
) -> AsOfJoin:
    """The spine, time column and joined models of a marker; CompileError when they do not fit."""
    assert isinstance(marker.this, exp.Anonymous)
    payload = json.loads(marker.this.expressions[0].name)
    try:
        joined = resolve_features(models, payload["features"], project, where="as_of_join")
    except FeaturesqlError as exc:
        raise CompileError(exc.message) from None
    for model in joined:
        if models[model.name].settings.stream is not None:
            raise CompileError(
                f"as_of_join of {model.name!r}, a stream model: its windows end at the stream grain, which "
                "as_of_join does not compute yet; join it with `featuresql extract`, or leave it out"
            )
    spine_table = exp.to_table(payload["spine"], dialect=read_dialect)
    description = f"as_of_join spine {payload['spine']}"
    types = columns_of(spine_table)
    if types is None or "*" in types:
        raise CompileError(
            f"{description}: its columns are unknown at compile time; declare them in sources.yml "
            "or ref a model that selects them by name"
        )
    columns = {
        name: None if kind.upper() == "UNKNOWN" else sql_family(kind, read_dialect) for name, kind in types.items()
    }
    keys = {k: KeyColumn(k, None, models[m.name].settings.entity or "") for m in joined for k in m.keys}
    try:
        check_reserved(types, description)
        spine_keys = check_keys(columns, list(keys.values()), description)
        time = find_time_column(columns, [m.timestamp for m in joined], payload["timestamp"], description)
    except FeaturesqlError as exc:
        raise CompileError(exc.message) from None
    with_keys = tuple(m.with_spine_keys(spine_keys) for m in joined)
    return AsOfJoin(spine_table, tuple(types), time, with_keys)
