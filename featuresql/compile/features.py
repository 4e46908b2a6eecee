"""Which model columns a point-in-time join takes: ``model`` / ``model.feature`` requests resolved.

``featuresql extract``, the ``as_of_join`` macro, sync and the online check all
name features this way; each request becomes a ``JoinedModel``, the join's own
description of a model (``featuresql.sql.point_in_time``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from featuresql.compile.models import CompiledModel, OnDemandModel
from featuresql.errors import ConfigError, closest
from featuresql.sql.coverage import Coverage
from featuresql.sql.point_in_time import JoinedModel


def joined_model(model: CompiledModel, columns: Sequence[str]) -> JoinedModel:
    """``columns`` of ``model`` (all its features when empty)."""
    settings = model.settings
    assert settings.timestamp is not None and settings.keys, f"model {model.name} has no entity"
    start = settings.start
    if model.kind == "window" and start is not None:
        start = datetime.fromtimestamp((settings.start_boundary() or 0) * settings.grain, UTC)
    tie_break: tuple[str, ...] = ()
    horizon = None
    if model.window is not None:
        horizon = model.window.max_tiles * settings.grain + settings.grain
    if model.kind == "snapshot":
        named = (settings.tie_break,) if settings.tie_break else ()
        tie_break = (*named, *(c for c in model.feature_columns if c not in named))
    return JoinedModel(
        name=model.name,
        relation=model.relation,
        keys=settings.keys,
        timestamp=settings.timestamp,
        columns=tuple(columns) or model.feature_columns,
        count_like=frozenset(f.name for f in model.features if f.count_like),
        data_delay=settings.data_delay,
        ttl=settings.ttl,
        start=start,
        tie_break=tie_break,
        horizon=horizon,
    )


def coverage(models: Mapping[str, CompiledModel], name: str, project: str) -> Coverage | None:
    """Where a join finds what ``name`` has computed (``featuresql.sql.coverage``).

    A window model's state reaches back its widest window; a snapshot model over window
    models (chaining) records the spans they vouch for when it is built; any other
    snapshot model is read as it is.
    """
    model = models[name]
    settings = model.settings
    if model.window is not None:
        first = settings.start_boundary()
        start = None if first is None else first * settings.grain
        return Coverage(project, name, model.window.max_tiles * settings.grain, start)
    return Coverage(project, name, 0) if window_ancestors(models, name) else None


def window_ancestors(models: Mapping[str, CompiledModel], name: str) -> list[str]:
    """The window models ``name`` reads, directly or through snapshot models, in dependency order."""
    seen: dict[str, None] = {}
    pending = list(models[name].refs)
    while pending:
        ref = pending.pop()
        if ref in seen or ref not in models:
            continue
        seen[ref] = None
        pending.extend(models[ref].refs)
    return [n for n in models if n in seen and models[n].window is not None]


def feature_names(requested: str | Sequence[str]) -> list[str]:
    """``model`` or ``model.feature`` items, from comma-separated strings or a list."""
    items = [requested] if isinstance(requested, str) else list(requested)
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


def on_demand_features(
    on_demand: Mapping[str, OnDemandModel],
    requested: str | Sequence[str],
    outputs: Mapping[tuple[str, str], str] | None = None,
) -> list[tuple[OnDemandModel, str, str]]:
    """The on-demand features among ``requested``: (model, feature, output name), in order."""
    chosen: dict[tuple[str, str], tuple[OnDemandModel, str, str]] = {}
    for name in feature_names(requested):
        model_name, _, feature = name.lower().partition(".")
        model = on_demand.get(model_name)
        if model is None:
            continue
        if feature and feature not in model.feature_columns:
            raise ConfigError(
                f"on-demand model {model.name!r} has no feature {feature!r}"
                f"{closest(feature, list(model.feature_columns))} (its features: {', '.join(model.feature_columns)})"
            )
        for column in [feature] if feature else model.feature_columns:
            output = (outputs or {}).get((model.name, column)) or f"{model.name}__{column}"
            chosen.setdefault((model.name, column), (model, column, output))
    return list(chosen.values())


def resolve_features(
    models: Mapping[str, CompiledModel],
    requested: str | Sequence[str],
    project: str,
    where: str = "--features",
    outputs: Mapping[tuple[str, str], str] | None = None,
    on_demand: Mapping[str, OnDemandModel] | None = None,
) -> list[JoinedModel]:
    """The models to join for ``model`` / ``model.feature`` items, in order, with their columns,
    each read only where project ``project``'s state vouches for it; ``outputs`` renames
    columns (a feature service's names, ``(model, feature) -> name``). An on-demand model's
    item joins the features it reads, ``hidden`` unless requested too (``on_demand_features``)."""
    names = feature_names(requested)
    if not names:
        raise ConfigError(f"no features requested: pass {where} model[.feature],...")
    chosen: dict[str, list[str]] = {}
    inputs: dict[tuple[str, str], None] = {}
    for name in names:
        model_name, _, feature = name.partition(".")
        if on_demand and model_name.lower() in on_demand:
            computed = on_demand[model_name.lower()]
            wanted = {feature.lower()} if feature else set(computed.feature_columns)
            for item in computed.features:
                if item.name in wanted:
                    inputs.update(dict.fromkeys(item.inputs))
            continue
        model = _model(models, model_name, where)
        columns = chosen.setdefault(model.name, [])
        if not feature:
            columns.extend(c for c in model.feature_columns if c not in columns)
        elif feature.lower() not in model.feature_columns:
            raise ConfigError(
                f"model {model.name!r} has no feature {feature!r}{closest(feature, list(model.feature_columns))} "
                f"(its features: {', '.join(model.feature_columns)})"
            )
        elif feature.lower() not in columns:
            columns.append(feature.lower())
    hidden: dict[str, set[str]] = {}
    for model_name, column in inputs:
        if column not in chosen.get(model_name, ()):
            chosen.setdefault(model_name, []).append(column)
            hidden.setdefault(model_name, set()).add(column)
    renamed = outputs or {}
    return [
        replace(
            joined_model(models[name], columns),
            coverage=coverage(models, name, project),
            aliases=tuple((c, renamed[name, c]) for c in columns if (name, c) in renamed),
            hidden=frozenset(hidden.get(name, ())),
        )
        for name, columns in chosen.items()
    ]


def _model(models: Mapping[str, CompiledModel], name: str, where: str) -> CompiledModel:
    model = models.get(name.lower())
    if model is None:
        raise ConfigError(f"unknown model {name!r} in {where}{closest(name, list(models))}")
    if not model.settings.keys or model.settings.timestamp is None:
        raise ConfigError(
            f"model {model.name!r} has no entity and timestamp, so it cannot be joined: "
            "set config(entity=..., timestamp=...)"
        )
    return model
