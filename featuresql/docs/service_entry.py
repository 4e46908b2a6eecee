"""One feature service's entry in the catalog: what it is, where it is declared, its features and how to call it.

A feature is shown with what its model's entry knows of the column (type,
description, source columns), so the service page and the model page never
disagree. The reader answers a service only when all the models it reads are online
(an on-demand model reads the features of its input models); the offline calls
(``featuresql extract``, ``featuresql.extract``) work for any service. A service with
on-demand features takes their request columns: next to the keys in a request, as
columns of the spine in an extract.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from featuresql.compile.models import CompiledProject, Service, ServiceFeature
from featuresql.docs.model_entry import EntryInputs, relative_path
from featuresql.docs.on_demand_entry import ON_DEMAND
from featuresql.docs.reading import service_extract, service_reading, service_request_columns


def service_entry(service: Service, inputs: EntryInputs, models: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The catalog entry of ``service``; ``models`` are the catalog's model and on-demand model entries."""
    declared = inputs.project.services[service.name]
    keys = {key["name"]: key for model in service.models for key in models[model]["keys"]}
    offline = _offline_models(service, inputs.compiled)
    request = service_request_columns(service, inputs.compiled.on_demand)
    where = f"service {service.name}"
    return {
        "name": service.name,
        "version": service.version,
        "pinned": service.name if service.version is None else f"{service.name}@{service.version}",
        "description": inputs.resolver.resolve(service.description, where, declared.path, declared.line).strip(),
        "owner": service.owner,
        "tags": list(service.tags),
        "path": relative_path(declared.path, inputs.project.root),
        "line": declared.line,
        "models": service.models,
        "keys": list(keys.values()),
        "request_columns": [{"name": name, "type": kind} for name, kind in request.items()],
        "features": [_feature(feature, models[feature.model]) for feature in service.features],
        "offline_models": offline,  # not online: the reader cannot answer the service until they are
        "extract": service_extract(service, request, inputs.target),
        "online_read": None
        if offline
        else service_reading(service, list(keys), request, inputs.project, inputs.store, inputs.target),
    }


def _offline_models(service: Service, compiled: CompiledProject) -> list[str]:
    """The models with a table the service reads that are not online (an on-demand model reads its inputs)."""
    on_demand = compiled.on_demand
    read = (m for name in service.models for m in (on_demand[name].refs if name in on_demand else [name]))
    return [name for name in dict.fromkeys(read) if not compiled.models[name].settings.online]


def _feature(feature: ServiceFeature, model: dict[str, Any]) -> dict[str, Any]:
    column: dict[str, Any] = next((c for c in model["columns"] if c["name"] == feature.feature), {})
    return {
        "output": feature.output,
        "model": feature.model,
        "feature": feature.feature,
        "type": column.get("type"),
        "description": column.get("description", ""),
        "source_columns": column.get("source_columns", []),
        "missing_value": 0 if column.get("count_like") else None,  # online, when the entity has no item
        "on_demand": model["kind"] == ON_DEMAND,  # computed per request: no missing value of its own
    }
