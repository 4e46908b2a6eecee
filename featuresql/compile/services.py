"""Feature services: a named, optionally versioned set of features, resolved against the models.

A service (``services:`` in any schema file) lists ``model``, ``model.feature`` or
``model.feature as alias``. Wherever a feature list is taken (``extract``, ``read``,
the reader's request, ``package-lambda``, the docs) a service stands for it, and its
output names are the same offline and online: ``<model>__<feature>``, or the alias.
Columns come grouped by model, in the order each model first appears in the list
(the order an extract and a read of the same features give).

A service is named ``NAME`` or ``NAME@VERSION``; naming a version other than the
declared one is refused. The version is the author's to bump when the features
change: then a consumer pinned to the old one is refused rather than served the
new set (a change without a bump is not detected).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from featuresql.compile.models import CompiledModel, OnDemandModel, Service, ServiceFeature
from featuresql.errors import ConfigError, closest
from featuresql.project.loader import ServiceFile

_ITEM = re.compile(
    r"^\s*(?P<model>[A-Za-z_][A-Za-z0-9_]*)(?:\.(?P<feature>[A-Za-z_][A-Za-z0-9_]*))?"
    r"(?:\s+as\s+(?P<alias>[A-Za-z_][A-Za-z0-9_]*))?\s*$",
    re.IGNORECASE,
)
_REFERENCE = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:@(?P<version>[0-9]+))?$")


def find_service(services: Mapping[str, ServiceFile], reference: str) -> ServiceFile:
    """The service ``NAME`` or ``NAME@VERSION`` (its declared version), or a one-line error."""
    match = _REFERENCE.match(reference.strip())
    if match is None:
        raise ConfigError(f"--service {reference!r}: write a service name, or NAME@VERSION such as advance_risk@2")
    name = match.group("name").lower()
    service = services.get(name)
    if service is None:
        known = ", ".join(sorted(services)) or "none (declare one under services: in a schema file)"
        raise ConfigError(f"unknown service {name!r}{closest(name, list(services))}; services: {known}")
    version = match.group("version")
    if version is not None and int(version) != service.spec.version:
        declared = "no version" if service.spec.version is None else f"version {service.spec.version}"
        raise ConfigError(
            f"service {name!r} has {declared}, not {version}: it changed since the consumer pinned it; "
            f"update the consumer, or name {name!r} without a version",
            path=service.path,
            line=service.line,
        )
    return service


def service_models(service: ServiceFile) -> list[str]:
    """The models a service names (what to compile before resolving it); unparsable items are skipped."""
    names = [_ITEM.match(item) for item in service.spec.features]
    return list(dict.fromkeys(m.group("model").lower() for m in names if m))


def resolve_service(
    models: Mapping[str, CompiledModel],
    service: ServiceFile,
    entities: Mapping[str, dict[str, str]],
    on_demand: Mapping[str, OnDemandModel] | None = None,
) -> Service:
    """The service's features against the compiled models (and on-demand models); each mistake a
    one-line error at its line."""
    chosen: list[ServiceFeature] = []
    listed: dict[tuple[str, str], int | None] = {}
    outputs: dict[str, int | None] = {}
    keys: dict[str, tuple[str, str]] = {}  # key column -> (its type, the entity declaring it)
    for item, line in zip(service.spec.features, service.feature_lines, strict=True):
        match = _ITEM.match(item)
        if match is None:
            raise _error(
                service,
                line,
                f"service {service.name!r}: {item!r} is not model, model.feature or model.feature as alias",
            )
        model = _model(models, on_demand or {}, match.group("model").lower(), service, line)
        feature, alias = (match.group("feature") or "").lower(), (match.group("alias") or "").lower()
        if alias and not feature:
            raise _error(
                service,
                line,
                f"service {service.name!r}: {item!r} aliases a whole model: alias one feature (model.feature as name)",
            )
        if feature and feature not in model.feature_columns:
            raise _error(
                service,
                line,
                f"service {service.name!r}: model {model.name!r} has no feature {feature!r}"
                f"{closest(feature, list(model.feature_columns))} (its features: {', '.join(model.feature_columns)})",
            )
        for entity in _entities(models, model):
            _check_keys(entity, entities, keys, service, line)
        for name in [feature] if feature else list(model.feature_columns):
            if (model.name, name) in listed:
                raise _error(
                    service,
                    line,
                    f"service {service.name!r}: {model.name}.{name} is listed twice (also at line "
                    f"{listed[model.name, name]}): list each feature once",
                )
            output = alias or f"{model.name}__{name}"
            if output in keys:
                raise _error(
                    service,
                    line,
                    f"service {service.name!r}: {output!r} is an entity key column, which extracts and reads already "
                    "return: give the feature another alias",
                )
            if output in outputs:
                raise _error(
                    service,
                    line,
                    f"service {service.name!r}: two features are named {output!r} (also at line {outputs[output]}): "
                    "give one another alias (model.feature as name)",
                )
            listed[model.name, name] = line
            outputs[output] = line
            chosen.append(ServiceFeature(model.name, name, output))
    spec = service.spec
    return Service(spec.name, spec.version, spec.description, spec.owner, tuple(spec.tags), tuple(chosen))


def resolve_services(
    models: Mapping[str, CompiledModel],
    services: Mapping[str, ServiceFile],
    entities: Mapping[str, dict[str, str]],
    on_demand: Mapping[str, OnDemandModel] | None = None,
) -> dict[str, Service]:
    return {name: resolve_service(models, service, entities, on_demand) for name, service in services.items()}


def _model(
    models: Mapping[str, CompiledModel],
    on_demand: Mapping[str, OnDemandModel],
    name: str,
    service: ServiceFile,
    line: int | None,
) -> CompiledModel | OnDemandModel:
    if name in on_demand:
        return on_demand[name]
    model = models.get(name)
    if model is None:
        known = [*models, *on_demand]
        raise _error(service, line, f"service {service.name!r}: unknown model {name!r}{closest(name, known)}")
    if not model.settings.keys or model.settings.timestamp is None:
        raise _error(
            service,
            line,
            f"service {service.name!r}: model {name!r} has no entity and timestamp, so its features cannot be "
            "looked up for an entity: serve the models it joins instead",
        )
    return model


def _entities(models: Mapping[str, CompiledModel], model: CompiledModel | OnDemandModel) -> list[CompiledModel]:
    """The models whose entities a request for ``model``'s features supplies (an on-demand model's inputs)."""
    if isinstance(model, OnDemandModel):
        return [models[name] for name in model.refs]
    return [model]


def _check_keys(
    model: CompiledModel,
    entities: Mapping[str, dict[str, str]],
    keys: dict[str, tuple[str, str]],
    service: ServiceFile,
    line: int | None,
) -> None:
    """One request supplies each key column once: two entities may share a key column only with one type."""
    entity = model.settings.entity or ""
    for column, kind in entities.get(entity, {}).items():
        column = column.lower()
        seen = keys.setdefault(column, (kind.lower(), entity))
        if seen[0] != kind.lower():
            raise _error(
                service,
                line,
                f"service {service.name!r}: entity {entity!r} keys {column!r} as {kind}, entity {seen[1]!r} as "
                f"{seen[0]}: a request cannot supply one {column} for both; serve them in separate services",
            )


def _error(service: ServiceFile, line: int | None, message: str) -> ConfigError:
    return ConfigError(message, path=service.path, line=line)
