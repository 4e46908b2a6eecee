"""The catalog: one JSON document describing the whole project, which the site renders.

Top-level keys: ``metadata`` (project, target, when, what was read), ``overview``
(the ``__overview__`` docs block), ``entities``, ``models`` (the models with a table,
in dependency order, see ``model_entry``), ``on_demand`` (the on-demand models, computed
per request, see ``on_demand_entry``), ``services`` (the feature services, see
``service_entry``), ``sources`` and ``lineage`` (the column graph's edges, node ->
direct upstream nodes, from ``featuresql.compile.lineage``, with the on-demand
features' own).

No secret goes in: of the target, only its name, type, dialect and schema are
written (never the profile's settings), and of the online store only its type.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import featuresql
from featuresql.compile.lineage import SOURCE, Lineage, column_lineage
from featuresql.context import Context
from featuresql.docs.attached_tests import TestIndex
from featuresql.docs.docs_blocks import DocResolver, find_doc_blocks
from featuresql.docs.model_entry import EntryInputs, freshness_limits, model_entry, relative_path
from featuresql.docs.on_demand_entry import on_demand_edges, on_demand_entry
from featuresql.docs.service_entry import service_entry
from featuresql.docs.warehouse import WarehouseInfo
from featuresql.durations import format_duration
from featuresql.errors import FeaturesqlError
from featuresql.online.stores import store_config
from featuresql.project.loader import Source
from featuresql.testing.cases import TestCase


def build_catalog(
    context: Context, warehouse: WarehouseInfo, *, target: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The catalog of the context's project on its target.

    ``warehouse`` is what was read from the target (empty when it was not);
    ``target`` the target named on the command line, if any, for example commands.
    """
    project, compiled = context.project, context.compiled
    now = now or datetime.now(UTC)
    notes: list[str] = []
    resolver = DocResolver(find_doc_blocks(project))
    lineage = _lineage(context, notes)
    tests = TestIndex.load(project, _collect_tests(context, notes), context.target_name)
    inputs = EntryInputs(
        project=project,
        compiled=compiled,
        dialect=context.dialect,
        lineage=lineage,
        resolver=resolver,
        warehouse=warehouse,
        tests=tests,
        store=_store_type(context, notes),
        target=target,
        now=now,
    )
    models = {name: model_entry(model, inputs) for name, model in compiled.models.items()}
    on_demand = {name: on_demand_entry(model, inputs) for name, model in compiled.on_demand.items()}
    return {
        "metadata": {
            "project": project.name,
            "version": project.config.version,
            "target": context.target_name,
            "target_type": context.target_config.type,
            "dialect": context.dialect,
            "project_dialect": project.config.dialect,
            "schema": str(context.target_config.schema_),
            "generated_at": now.isoformat().replace("+00:00", "Z"),
            "featuresql_version": featuresql.__version__,
            "warehouse": {"read": warehouse.read, "note": warehouse.note},
            "tests": tests.last_run,
            "notes": notes,
        },
        "overview": resolver.overview(),
        "entities": {
            name: {"keys": dict(entity.keys), "description": resolver.resolve(entity.description, f"entity {name}")}
            for name, entity in project.config.entities.items()
        },
        "models": models,
        "on_demand": on_demand,
        "services": {
            name: service_entry(service, inputs, models | on_demand) for name, service in compiled.services.items()
        },
        "sources": {key: _source_entry(source, inputs) for key, source in project.sources.items()},
        "lineage": {"edges": {node: list(upstream) for node, upstream in lineage.edges.items()}},
    }


def _lineage(context: Context, notes: list[str]) -> Lineage:
    """The column lineage, on-demand features included; the models' is none (with a note) for a query
    sqlglot cannot trace, so the rest is still documented."""
    try:
        traced = column_lineage(context.compiled, context.project)
    except FeaturesqlError as exc:
        notes.append(f"column lineage not shown: {exc.one_line()}")
        traced = Lineage({})
    return Lineage(traced.edges | on_demand_edges(context.compiled.on_demand.values()))


def _store_type(context: Context, notes: list[str]) -> str:
    """The online store's type (local or dynamodb); the project's when the target's block cannot be read."""
    try:
        return str(store_config(context).store)
    except FeaturesqlError as exc:
        notes.append(f"online store of the target not read: {exc.one_line()}")
        return str(context.project.config.online.store)


def _collect_tests(context: Context, notes: list[str]) -> list[TestCase]:
    """The project's tests; none (with a note) when they cannot be collected, which `featuresql test` reports."""
    from featuresql.testing.collect import collect_tests

    try:
        return collect_tests(context)
    except FeaturesqlError as exc:
        notes.append(f"tests not shown: {exc.one_line()}")
        return []


def _source_entry(source: Source, inputs: EntryInputs) -> dict[str, Any]:
    where = f"source {source.key}"
    described = {c.name.lower(): c for c in source.spec.columns} if source.spec else {}
    columns = [
        {
            "name": name,
            "type": kind,
            "description": inputs.resolver.resolve(
                described[name].description if name in described else "", f"{where}, column {name}", source.path
            ),
        }
        for name, kind in source.columns.items()
    ]
    if not columns:  # undeclared columns: those the models read
        columns = [{"name": name, "type": None, "description": ""} for name in _used_columns(source, inputs.lineage)]
    return {
        "key": source.key,
        "source_name": source.source_name,
        "name": source.name,
        "relation": source.relation.sql(inputs.dialect),
        "description": inputs.resolver.resolve(source.description, where, source.path, source.line),
        "event_time": source.event_time,
        "data_delay": format_duration(source.data_delay),
        "freshness": freshness_limits(source.freshness),
        "loaded_at_field": source.loaded_at_field,
        # a file source: where its rows are read from, as written (relative to the project folder)
        "files": {"location": source.external.location, "format": source.external.format} if source.external else None,
        "columns": columns,
        "path": relative_path(source.path, inputs.project.root),
        "tests": inputs.tests.for_source(source.key),
        "used_by": [name for name, model in inputs.compiled.models.items() if source.key in model.sources],
    }


def _used_columns(source: Source, lineage: Lineage) -> list[str]:
    prefix = f"{SOURCE}{source.key}."
    return sorted(node.removeprefix(prefix) for node in lineage.edges if node.startswith(prefix))
