"""The columns of one model as the catalog lists them: role, type, description, how each is computed.

A window model's features say their function, input expression and window; a
snapshot model's columns the SQL expression that computes them. Types come from
the built table (``None`` until it is built). A model written as ``select *``
(an ``as_of_join`` training set) has its columns from the table when built, else
from the column lineage, which expands the star.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from featuresql.compile.lineage import MODEL, Lineage
from featuresql.compile.models import CompiledModel
from featuresql.docs.docs_blocks import DocResolver
from featuresql.project.loader import ModelFile
from featuresql.sql.windows import WindowFeature


def column_names(model: CompiledModel, lineage: Lineage, built: dict[str, str] | None) -> list[str]:
    """The model's output columns, in order: compiled, else from the table, else from the lineage."""
    if "*" not in model.columns:
        return list(model.columns)
    if built:
        return list(built)
    prefix = f"{MODEL}{model.name}."
    return [node.removeprefix(prefix) for node in lineage.edges if node.startswith(prefix)]


def model_columns(
    model: CompiledModel,
    file: ModelFile,
    lineage: Lineage,
    resolver: DocResolver,
    built: dict[str, str] | None,
    dialect: str,
) -> list[dict[str, Any]]:
    """One entry per output column: name, role, type, description, computation and source columns.

    ``built`` holds the table's column types when it exists; ``dialect`` is the project's,
    in which expressions are shown as the user wrote them.
    """
    described = {c.name.lower(): c.description for c in file.spec.columns} if file.spec else {}
    features = {feature.name: feature for feature in model.features}
    projections = _projections(model, dialect) if model.window is None else {}
    where = file.spec_path or file.path
    entries = []
    for name in column_names(model, lineage, built):
        entry: dict[str, Any] = {
            "name": name,
            "role": _role(model, name),
            "type": (built or {}).get(name.lower()),
            "description": resolver.resolve(
                described.get(name.lower(), ""), f"model {model.name}, column {name}", where
            ),
            "expression": projections.get(name.lower()),
            **_window_parts(features.get(name), dialect),
            **lineage_of(lineage, model.name, name),
        }
        entries.append(entry)
    return entries


def _role(model: CompiledModel, name: str) -> str:
    if name.lower() in model.settings.keys:
        return "key"
    if model.settings.timestamp and name.lower() == model.settings.timestamp:
        return "timestamp"
    return "feature"


def _projections(model: CompiledModel, dialect: str) -> dict[str, str]:
    """Each named select of a snapshot model's query and the SQL computing it (unaliased)."""
    found = {}
    for select in model.query.selects:
        name = select.alias_or_name
        if name and name != "*":
            body = select.this if isinstance(select, exp.Alias) else select
            found[name.lower()] = body.sql(dialect)
    return found


def _window_parts(feature: WindowFeature | None, dialect: str) -> dict[str, Any]:
    """A window feature's function, input, window and tie-break (all None for other columns)."""
    if feature is None:
        return {"function": None, "input": None, "window": None, "tie_break": None, "count_like": False}
    parts = {
        "function": feature.function,
        "input": feature.input.sql(dialect) if feature.input is not None else "*",
        "window": feature.window_label,
        "tie_break": feature.tie_break.sql(dialect) if feature.tie_break is not None else None,
        "count_like": feature.count_like,
    }
    text = f"{parts['function']}({parts['input']}) over {parts['window']}"
    parts["expression"] = text + (f" (ties broken by {parts['tie_break']})" if parts["tie_break"] else "")
    return parts


def lineage_of(lineage: Lineage, model: str, column: str) -> dict[str, list[str]]:
    """The column's direct upstream nodes and the source columns it is computed from."""
    node = f"{MODEL}{model}.{column}"
    upstream = lineage.edges.get(node)
    if upstream is None:
        return {"upstream": [], "source_columns": []}
    return {"upstream": list(upstream), "source_columns": sorted(lineage.source_columns(model, column))}
