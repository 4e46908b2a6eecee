"""One on-demand model's entry in the catalog: its request columns, its features and how they are computed.

An on-demand model (``featuresql.compile.on_demand``) has no table: each feature is a SQL
expression over the request's columns and the features of the models it reads, computed
per request. Its entry has the fields the site lists every model by (name, kind,
description, owner, tags, keys, depends_on, online, columns), none of a table's (relation,
runs, freshness), and its own: ``request`` (the declared request columns), ``inputs`` (the
model features it reads) and ``computed`` (where and from what it is computed).

In the column lineage, each feature's node ``model:<model>.<feature>`` reads the model
features of its expression and the request columns, nodes ``request:<model>.<column>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlglot import exp

from featuresql.compile.lineage import MODEL
from featuresql.compile.models import CompiledProject, OnDemandFeature, OnDemandModel
from featuresql.compile.on_demand import programs
from featuresql.docs.columns import lineage_of
from featuresql.docs.model_entry import EntryInputs, key_type, relative_path
from featuresql.docs.reading import EXAMPLE_OUT, EXAMPLE_SPINE, on_demand_reading
from featuresql.errors import FeaturesqlError
from featuresql.sql.expressions import result_type
from featuresql.sql.point_in_time import REQUEST

ON_DEMAND = "on_demand"  # the kind of its entry
REQUEST_NODE = "request:"  # the lineage node of a request column: request:<model>.<column>
# The reader's expression types as SQL types (a decimal's is its own, in capitals).
_SQL_TYPES = {
    "int8": "TINYINT",
    "int16": "SMALLINT",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "float": "DOUBLE",
    "string": "VARCHAR",
    "boolean": "BOOLEAN",
}


def on_demand_entry(model: OnDemandModel, inputs: EntryInputs) -> dict[str, Any]:
    """The catalog entry of the on-demand ``model`` (plain JSON data)."""
    project, compiled = inputs.project, inputs.compiled
    file = project.models[model.name]
    where = file.spec_path if file.spec and file.spec.description else file.path
    online = _is_online(model, compiled)
    return {
        "name": model.name,
        "kind": ON_DEMAND,
        "path": relative_path(model.path, project.root),
        "yaml_path": relative_path(file.spec_path, project.root) if file.spec_path else None,
        "description": inputs.resolver.resolve(model.description, f"model {model.name}", where),
        "owner": model.owner,
        "tags": list(model.tags),
        "entity": _entities(model, compiled),
        "keys": [{"name": key, "type": key_type(project, key)} for key in model.keys],
        "request": [{"name": name, "type": kind} for name, kind in model.request.items()],
        "depends_on": list(model.refs),
        "inputs": [{"model": name, "feature": feature} for name, feature in model.inputs],
        "services": [name for name, service in compiled.services.items() if model.name in service.models],
        "online": online,
        "columns": _columns(model, inputs),
        "computed": _computed(model, compiled),
        "sql": {"source": file.sql, "rendered": model.rendered_sql.lstrip("\n")},  # config() renders to blank lines
        "tests": inputs.tests.for_model(model.name),
        "online_read": on_demand_reading(model, project, inputs.store, inputs.target) if online else None,
    }


def on_demand_edges(models: Iterable[OnDemandModel]) -> dict[str, tuple[str, ...]]:
    """The lineage of on-demand features: each reads the model features and request columns of its expression."""
    edges: dict[str, tuple[str, ...]] = {}
    for model in models:
        for feature in model.features:
            edges[f"{MODEL}{model.name}.{feature.name}"] = tuple(_upstream(model, feature))
        for column in model.request:
            edges[f"{REQUEST_NODE}{model.name}.{column}"] = ()
    return edges


def _upstream(model: OnDemandModel, feature: OnDemandFeature) -> list[str]:
    """The lineage nodes ``feature`` reads, sorted."""
    features, request = _reads(feature)
    nodes = [f"{MODEL}{name}.{column}" for name, column in features]
    return sorted(nodes + [f"{REQUEST_NODE}{model.name}.{column}" for column in request])


def _reads(feature: OnDemandFeature) -> tuple[list[tuple[str, str]], list[str]]:
    """The (model, feature) pairs and the request columns the expression reads, in the order it reads them.

    The compiler writes every column as ``request.<column>`` or ``<model>.<feature>``.
    """
    features: dict[tuple[str, str], None] = {}
    request: dict[str, None] = {}
    for column in feature.expression.find_all(exp.Column):
        if column.table == REQUEST:
            request[column.name] = None
        else:
            features[(column.table, column.name)] = None
    return list(features), list(request)


def _columns(model: OnDemandModel, inputs: EntryInputs) -> list[dict[str, Any]]:
    """One entry per feature: its expression (in the project dialect), what it reads, type and description."""
    file = inputs.project.models[model.name]
    described = {c.name.lower(): c.description for c in file.spec.columns} if file.spec else {}
    dialect = inputs.project.config.dialect
    types = _feature_types(model, inputs.warehouse.columns, inputs.dialect)
    entries = []
    for feature in model.features:
        features, request = _reads(feature)
        entries.append(
            {
                "name": feature.name,
                "role": "feature",
                "type": types.get(feature.name),
                "description": inputs.resolver.resolve(
                    described.get(feature.name, ""),
                    f"model {model.name}, column {feature.name}",
                    file.spec_path or file.path,
                ),
                "expression": feature.expression.sql(dialect),
                "reads": [{"model": name, "feature": column} for name, column in features],
                "request_columns": request,
                **lineage_of(inputs.lineage, model.name, feature.name),
            }
        )
    return entries


def _feature_types(model: OnDemandModel, built: Mapping[str, Mapping[str, str]], dialect: str) -> dict[str, str]:
    """Each feature's type as the reader computes it, once every model it reads is built (else none)."""
    try:
        types = {(name, feature): built[name][feature.lower()] for name, feature in model.inputs}
        compiled = programs(model, types, dialect)
    except (KeyError, FeaturesqlError):  # not built yet, or a type the reader refuses (sync says why)
        return {}
    return {name: _sql_type(result_type(program)) for name, program in compiled.items()}


def _sql_type(kind: str) -> str:
    """An expression type as a SQL type: ``float`` is DOUBLE, ``decimal(38,2)`` is DECIMAL(38,2)."""
    return _SQL_TYPES.get(kind) or kind.upper()


def _computed(model: OnDemandModel, compiled: CompiledProject) -> dict[str, str]:
    """Where the features are computed, and from what: a sentence for the extract and one for the reader."""
    request = ", ".join(model.request)
    models = ", ".join(model.refs)
    keys = ", ".join(model.keys)
    online = (
        f"In the reader, per request: from the request's {request} (next to {keys} in each entity) and the "
        f"stored features of {models}; nothing is stored."
    )
    if not _is_online(model, compiled):
        offline = [name for name in model.refs if not compiled.models[name].settings.online]
        online = f"Not online: {', '.join(offline)} {'are' if len(offline) > 1 else 'is'} not online."
    return {
        "offline": (
            f"In featuresql extract, in the warehouse: the spine's columns are the request (it must carry "
            f"{request}), with the features of {models} as they were at each row's time."
        ),
        "online": online,
        "extract_command": f"featuresql extract --spine {EXAMPLE_SPINE} -f {model.name} --out {EXAMPLE_OUT}",
    }


def _is_online(model: OnDemandModel, compiled: CompiledProject) -> bool:
    """The reader computes it when every model it reads is online."""
    return all(compiled.models[name].settings.online for name in model.refs)


def _entities(model: OnDemandModel, compiled: CompiledProject) -> str | None:
    """The entities of the models it reads (their keys are its keys)."""
    names = dict.fromkeys(compiled.models[name].settings.entity for name in model.refs)
    return ", ".join(name for name in names if name) or None
