"""One feature service's entry in the catalog: what it is, where it is declared, its features and how to call it.

A feature is shown with what its model's entry knows of the column (type,
description, source columns), so the service page and the model page never
disagree. The reader answers a service only when all its models are online; the
offline calls (``featuresql extract``, ``featuresql.extract``) work for any service.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from featuresql.compile.models import Service, ServiceFeature
from featuresql.docs.model_entry import EntryInputs, relative_path
from featuresql.docs.reading import service_extract, service_reading


def service_entry(service: Service, inputs: EntryInputs, models: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The catalog entry of ``service``; ``models`` are the catalog's model entries."""
    declared = inputs.project.services[service.name]
    keys = {key["name"]: key for model in service.models for key in models[model]["keys"]}
    offline = [model for model in service.models if not models[model]["online"]]
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
        "features": [_feature(feature, models[feature.model]) for feature in service.features],
        "offline_models": offline,  # not online: the reader cannot answer the service until they are
        "extract": service_extract(service, inputs.target),
        "online_read": None
        if offline
        else service_reading(service, list(keys), inputs.project, inputs.store, inputs.target),
    }


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
    }
