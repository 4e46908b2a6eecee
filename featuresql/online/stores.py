"""A project's online side on one target: which models are online, their store, and the manifest.

The store comes from the target's ``online:`` block in profiles.yml, else the
project's ``online:`` (default: the local SQLite store under ``target/online/``);
each store names its own default table (DynamoDB: ``featuresql_<project>_<target>``).

The manifest (``featuresql.serving.manifest``) is built from the compiled models
and the column types of their tables in the warehouse, and written to
``target/online/<target>/manifest.json`` by every sync, after its items, with the
models the store holds under their current schema: ``featuresql serve`` and
``package-lambda`` read it there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from featuresql.adapters.store import DEFAULT_STORE, OnlineStore, StoreConfig, StorePlace, store_class
from featuresql.compile.features import joined_model
from featuresql.compile.models import CompiledModel, CompiledProject, OnDemandModel, Service
from featuresql.compile.on_demand import duckdb_type, programs, request_kind
from featuresql.errors import CompileError, ConfigError
from featuresql.files import atomic_path
from featuresql.online.streams import stream_entry
from featuresql.project.profiles import resolve_online
from featuresql.serving.items import RESERVED
from featuresql.serving.manifest import Manifest, OnlineFeature, OnlineModel, OnlineOnDemand, OnlineService
from featuresql.serving.tables import TABLES
from featuresql.sql.types import reader_key_kind, value_family
from featuresql.times import epoch_micros

if TYPE_CHECKING:
    from featuresql.run.workspace import Workspace


def online_models(compiled: CompiledProject, selected: Sequence[str] | None = None) -> list[CompiledModel]:
    """The online models among ``selected`` (all models when None), in dependency order."""
    names = list(compiled.models) if selected is None else list(selected)
    models = [compiled.models[name] for name in names if compiled.models[name].settings.online]
    for model in models:
        if not model.settings.keys or model.settings.timestamp is None:
            raise ConfigError(
                f"online model {model.name!r} needs an entity and a timestamp: "
                "set config(entity=..., timestamp=...) or online=false",
                path=model.path,
            )
        clash = sorted(set(model.feature_columns) & RESERVED)
        if clash:
            raise ConfigError(
                f"online model {model.name!r} has a column named {clash[0]!r}, which online items "
                f"reserve ({', '.join(sorted(RESERVED))}): rename it",
                path=model.path,
            )
    return models


def _unserved(
    compiled: CompiledProject, models: Mapping[str, OnlineModel], computed: Mapping[str, OnlineOnDemand]
) -> dict[str, str]:
    """The 404 of every on-demand model the reader cannot compute."""
    return unserved_on_demand(compiled.on_demand, models, computed)


def store_config(context: Workspace) -> StoreConfig:
    """The target's online store settings: its own ``online:`` block, else the project's."""
    default = context.project.config.online or store_class(DEFAULT_STORE).config_model(store=DEFAULT_STORE)
    return resolve_online(context.project.root, context.target_name, default)


def open_store(context: Workspace) -> OnlineStore:
    """The online store of the context's target (nothing is created until ``ensure_table``)."""
    config = store_config(context)
    if config.ttl_attribute in RESERVED:
        raise ConfigError(f"ttl_attribute {config.ttl_attribute!r} is reserved for online items: choose another name")
    cls = store_class(config.store)
    project = context.project
    place = StorePlace(project.root, project.target_dir, project.name, context.target_name)
    return cls(config, cls.table_name(config, place), project.root)


def manifest_path(context: Workspace) -> Path:
    return context.project.target_dir / "online" / context.target_name / "manifest.json"


def model_entries(
    context: Workspace, models: Sequence[CompiledModel], column_types: dict[str, dict[str, str]]
) -> dict[str, OnlineModel]:
    """Each online model as the reader sees it, typed from its table's ``column_types`` in the warehouse.

    Refuses what cannot be served right: a key typed differently from the entity's
    declared key (written under one key, looked up under another), or a feature named
    like the store's TTL attribute.
    """
    dialect = context.project.config.dialect  # key types are written in project.yml; columns come from the target
    ttl_attribute = store_config(context).ttl_attribute
    entity_types = {
        column.lower(): kind
        for entity in context.project.config.entities.values()
        for column, kind in entity.keys.items()
    }
    read_on_demand = {name for computed in context.compiled.on_demand.values() for name in computed.refs}
    entries = {}
    for model in models:
        types = column_types[model.name]
        if ttl_attribute in model.feature_columns:
            raise ConfigError(
                f"online model {model.name!r} has a column named {ttl_attribute!r}, the store's TTL attribute: "
                "rename it (or set another ttl_attribute in the online settings)",
                path=model.path,
            )
        keys = []
        for key in model.settings.keys:
            kind = reader_key_kind(entity_types.get(key), dialect)
            stored = types.get(key.lower())
            if stored is not None and reader_key_kind(stored, context.dialect) != kind:
                raise ConfigError(
                    f"online model {model.name!r}: key {key!r} is {stored} in the warehouse but the entity "
                    f"declares {entity_types.get(key)}: cast it in the model, or fix the entity's key type",
                    path=model.path,
                )
            keys.append((key, kind))
        count_like = {feature.name for feature in model.features if feature.count_like}
        exact = (context.adapter.exact_column_types(model.relation) or {}) if model.name in read_on_demand else types
        features = {
            column: OnlineFeature(
                column,
                value_family(types.get(column, ""), context.dialect),
                0 if column in count_like else None,
                duckdb_type(exact.get(column, ""), context.dialect),
            )
            for column in model.feature_columns
        }
        joined = joined_model(model, ())
        start = epoch_micros(joined.start) if joined.start is not None else None
        stream = stream_entry(model)
        entries[model.name] = OnlineModel(model.name, tuple(keys), features, start, joined.data_delay, stream)
    return entries


def served_manifest(
    context: Workspace, store: OnlineStore, entries: dict[str, OnlineModel], held: dict[str, str]
) -> Manifest:
    """The manifest of the models the store ``held`` (model -> schema version of its items), for
    ``write_manifest`` after the sync's marker (which records its on-demand digests).

    A model whose items were written under another schema than its current one (changed,
    and not synced since: ``sync -s other_model``) keeps the entry the previous manifest had
    for those items, or is left out: the reader never reads items as a definition they were
    not written under. An on-demand model whose inputs cannot be typed from those entries
    is left out too (never an error after the items are written).
    """
    previous = _previous_models(context, store)
    served = {}
    for name, schema in held.items():
        entry = entries.get(name)
        if entry is None or entry.schema != schema:
            entry = previous.get(name)
        if entry is not None and entry.schema == schema:
            served[name] = entry
    config = store.config
    computed = on_demand_entries(context.compiled.on_demand, served, skip_untyped=True)
    return Manifest(
        project=context.project.name,
        target=context.target_name,
        store=store.reader_settings(),
        models=served,
        ttl_attribute=config.ttl_attribute,
        max_entities=config.max_entities,
        services=online_services(context.compiled.services, served, computed),
        on_demand=computed,
        unserved=_unserved(context.compiled, served, computed),
    )


def unserved_on_demand(
    on_demand: Mapping[str, OnDemandModel],
    models: Mapping[str, OnlineModel],
    computed: Mapping[str, OnlineOnDemand],
) -> dict[str, str]:
    """The 404 of each on-demand model the reader does not compute: why it is left out."""
    reasons = {}
    for name, model in on_demand.items():
        if name in computed:
            continue
        offline = [m for m in model.refs if m not in models]
        if offline:
            verb = "is" if len(offline) == 1 else "are"
            why = f"it reads {', '.join(offline)}, which {verb} not online: set config(online=true) there and sync"
        else:
            why = "the features it reads were synced under other types or definitions: run `featuresql sync`"
        reasons[name] = f"on-demand model {name!r} is not served: {why}"
    return reasons


def on_demand_entries(
    on_demand: Mapping[str, OnDemandModel], models: Mapping[str, OnlineModel], *, skip_untyped: bool = False
) -> dict[str, OnlineOnDemand]:
    """The on-demand models the reader can compute (every input held), their programs typed with the
    inputs' warehouse types; a type mistake is a one-line error at the feature's line (with
    ``skip_untyped``, that model is left out instead)."""
    entries = {}
    for name, model in on_demand.items():
        if not all(m in models and f in models[m].features for m, f in model.inputs):
            continue
        types = {(m, f): models[m].features[f].sql_type or "" for m, f in model.inputs}
        try:
            compiled = programs(model, types, "duckdb")
        except CompileError:
            if skip_untyped:
                continue
            raise
        request = {column: request_kind(model, column) for column in model.request}
        entries[name] = OnlineOnDemand(name, request, model.inputs, compiled)
    return entries


def online_services(
    services: Mapping[str, Service],
    models: Mapping[str, OnlineModel],
    on_demand: Mapping[str, OnlineOnDemand] | None = None,
) -> dict[str, OnlineService]:
    """The feature services the reader can answer: those whose every feature it holds or computes."""
    computed = on_demand or {}

    def served(model: str, feature: str) -> bool:
        if model in computed:
            return feature in computed[model].features
        return model in models and feature in models[model].features

    return {
        name: OnlineService(name, service.version, tuple((f.model, f.feature, f.output) for f in service.features))
        for name, service in services.items()
        if all(served(f.model, f.feature) for f in service.features)
    }


def service_manifest(
    manifest: Manifest, services: Mapping[str, Service], reference: str, on_demand: Mapping[str, OnDemandModel]
) -> Manifest:
    """``package-lambda --service``: the manifest narrowed to one service's models, answering it only
    (``on_demand``: the project's on-demand models, to name the models they read when one is missing)."""
    name = reference.partition("@")[0].lower()
    if name not in manifest.services:
        wanted = {f.model for f in services[name].features}
        reads = {m for model in wanted for m in (on_demand[model].refs if model in on_demand else [model])}
        missing = sorted(reads - set(manifest.models))
        raise ConfigError(
            f"service {name!r} reads models that are not online ({', '.join(missing)}): set config(online=true) "
            "on them, or serve another service"
        )
    served = manifest.services[name]
    listed = list(dict.fromkeys(model for model, _, _ in served.features))
    computed = {m: manifest.on_demand[m] for m in listed if m in manifest.on_demand}
    read = [m for model in listed for m in (computed[model].models if model in computed else [model])]
    models = {m: manifest.models[m] for m in dict.fromkeys(read)}
    return replace(
        manifest,
        models=models,
        services={name: served},
        only_service=name,
        key_kinds={},
        on_demand=computed,
        unserved={},
    )


def column_types(context: Workspace, models: Sequence[CompiledModel]) -> dict[str, dict[str, str]]:
    """Each model's table columns and types in the warehouse; a one-line error for a model never run."""
    found = {}
    for model in models:
        columns = context.adapter.table_columns(model.relation)
        if columns is None:
            raise ConfigError(
                f"online model {model.name!r} has no table on target {context.target_name!r}: "
                f"run `featuresql run --select {model.name}` first",
                path=model.path,
            )
        found[model.name] = columns
    return found


def current_manifest(context: Workspace) -> Manifest:
    """The manifest of the project as it is now (every online model, typed from its warehouse table).

    ``package-lambda`` packages this one, so a reader can be built before the first sync;
    items written under an older definition then get the reader's 409, never a wrong value.
    """
    models = online_models(context.compiled)
    if not models:
        raise ConfigError("no model is online, so there is nothing to serve: set config(online=true) on a model")
    types = column_types(context, models)
    store = open_store(context)
    config = store.config
    entries = model_entries(context, models, types)
    computed = on_demand_entries(context.compiled.on_demand, entries)
    return Manifest(
        project=context.project.name,
        target=context.target_name,
        store=store.reader_settings(),
        models=entries,
        ttl_attribute=config.ttl_attribute,
        max_entities=config.max_entities,
        services=online_services(context.compiled.services, entries, computed),
        on_demand=computed,
        unserved=_unserved(context.compiled, entries, computed),
    )


def _previous_models(context: Workspace, store: OnlineStore) -> dict[str, OnlineModel]:
    """The models of the manifest last written for this target, if it was for the same store."""
    path = manifest_path(context)
    try:
        manifest = Manifest.load(path) if path.is_file() else None
    except (ValueError, KeyError):
        return {}
    if manifest is None or manifest.store != store.reader_settings():
        return {}
    return manifest.models


def write_manifest(context: Workspace, manifest: Manifest) -> Path:
    path = manifest_path(context)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(manifest.to_json(), indent=2) + "\n", encoding="utf-8")
    return path


def read_manifest(context: Workspace) -> Manifest:
    """The manifest the last sync wrote for this target."""
    path = manifest_path(context)
    if not path.is_file():
        raise ConfigError(
            f"no online manifest for target {context.target_name!r} ({path}): run `featuresql sync` first"
        )
    try:
        return Manifest.load(path)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def check_readable(manifest: Manifest) -> None:
    """Refuse a store the reader (standard library and boto3 only) has no table class for."""
    kind = manifest.store.get("type")
    if kind not in TABLES:
        raise ConfigError(
            f"target {manifest.target!r} uses the {kind} online store, which the reader cannot read "
            f"(it reads {', '.join(TABLES)}): serve or package a target whose store is one of those"
        )
