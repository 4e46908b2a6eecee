"""The online manifest: what the reader needs to know about the online models (stdlib only).

``featuresql sync`` writes it to ``target/online/<target>/manifest.json`` and
``featuresql package-lambda`` puts it in the zip as ``online_manifest.json``.
It names the store (type, table, region...), the TTL attribute, the request
limit, the feature services whose models are all online (each feature with its
output name), and per online model its entity key columns with their kinds, its
features with their kinds and the value a missing item reads as (0 for
count-like window features, an empty window; NULL otherwise), its ``start`` (before
it every feature reads NULL, as offline), its ``data_delay``, and its *schema
version*: a digest of its keys and features with their kinds and defaults. Every
item carries the schema version it was written under; the reader answers 409 for
an item of another version rather than read it with the wrong names or types.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featuresql.serving.items import DEFAULT_TTL_ATTRIBUTE
from featuresql.serving.partials import StreamFeature
from featuresql.serving.push_records import StreamRows
from featuresql.serving.stream_state import StreamShape

FORMAT_VERSION = 2
DEFAULT_MAX_ENTITIES = 100


@dataclass(frozen=True)
class OnlineFeature:
    name: str
    kind: str  # integer, float, decimal, string, boolean, timestamp or date
    default: Any = None
    # The warehouse type as DuckDB writes it (DECIMAL(38,2)): what on-demand programs are typed with.
    # Not part of the schema version: the kind decides how items are read.
    sql_type: str | None = None


@dataclass(frozen=True)
class OnlineStream:
    """A stream model's fresh windows (DESIGN.md section 11): how the reader merges its state
    (``shape``) and how push turns a source record into its events (``rows``)."""

    shape: StreamShape
    rows: StreamRows

    def to_json(self) -> dict[str, Any]:
        shape, rows = self.shape, self.rows
        return {
            "grain": shape.grain,
            "stream_grain": shape.stream_grain,
            "delay": shape.delay,
            "horizon": shape.horizon,
            "start": shape.start,
            "features": [[f.name, f.function, f.column, f.window, f.tie_break] for f in shape.features],
            "source": rows.source,
            "source_types": dict(rows.source_types),
            "keys": list(rows.keys),
            "timestamp": rows.timestamp,
            "where": rows.where,
            "columns": dict(rows.columns),
            "event_id": rows.event_id,
        }

    @classmethod
    def from_json(cls, name: str, spec: dict[str, Any]) -> OnlineStream:
        features = tuple(StreamFeature(str(n), str(f), c, int(w), t) for n, f, c, w, t in spec["features"])
        start = spec.get("start")
        shape = StreamShape(
            int(spec["grain"]),
            int(spec["stream_grain"]),
            int(spec["delay"]),
            int(spec["horizon"]),
            features,
            None if start is None else int(start),
        )
        rows = StreamRows(
            name,
            str(spec["source"]),
            dict(spec["source_types"]),
            tuple(spec["keys"]),
            str(spec["timestamp"]),
            spec.get("where"),
            dict(spec["columns"]),
            spec.get("event_id"),
        )
        return cls(shape, rows)


@dataclass(frozen=True)
class OnlineModel:
    name: str
    keys: tuple[tuple[str, str], ...]  # (column, kind) in project.yml's order; kind is integer or string
    features: dict[str, OnlineFeature]
    start: int | None = None  # epoch microseconds: before it, every feature is NULL
    data_delay: int = 0  # seconds: a row at ts answers from ts + data_delay
    stream: OnlineStream | None = None  # a stream model: its items are state and pushed events

    @property
    def key_columns(self) -> tuple[str, ...]:
        return tuple(column for column, _ in self.keys)

    @property
    def schema(self) -> str:
        """The schema version of this model's items (see the module docstring)."""
        shape: dict[str, Any] = {
            "keys": [list(key) for key in self.keys],
            "features": [[f.name, f.kind, f.default] for f in self.features.values()],
        }
        if self.stream is not None:  # its items hold partials of these windows, not values
            shape["stream"] = {k: v for k, v in self.stream.to_json().items() if k not in ("start", "delay")}
        text = json.dumps(shape, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def to_json(self) -> dict[str, Any]:
        return {
            "keys": [list(key) for key in self.keys],
            "features": {
                f.name: {"kind": f.kind, "default": f.default, "type": f.sql_type} for f in self.features.values()
            },
            "start": self.start,
            "data_delay": self.data_delay,
            "schema": self.schema,
            "stream": None if self.stream is None else self.stream.to_json(),
        }

    @classmethod
    def from_json(cls, name: str, spec: dict[str, Any]) -> OnlineModel:
        model = cls(
            name=name,
            keys=tuple((str(column), str(kind)) for column, kind in spec["keys"]),
            features={
                feature: OnlineFeature(feature, str(value["kind"]), value.get("default"), value.get("type"))
                for feature, value in spec["features"].items()
            },
            start=None if spec.get("start") is None else int(spec["start"]),
            data_delay=int(spec.get("data_delay", 0)),
            stream=None if spec.get("stream") is None else OnlineStream.from_json(name, spec["stream"]),
        )
        if spec.get("schema") not in (None, model.schema):
            raise ValueError(f"online model {name!r}: its schema version does not match its features")
        return model


@dataclass(frozen=True)
class OnlineService:
    """A feature service the reader answers: its features as (model, feature, output name)."""

    name: str
    version: int | None
    features: tuple[tuple[str, str, str], ...]

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "features": [list(feature) for feature in self.features]}

    @classmethod
    def from_json(cls, name: str, spec: dict[str, Any]) -> OnlineService:
        version = spec.get("version")
        features = tuple((str(m), str(f), str(o)) for m, f, o in spec["features"])
        return cls(name, None if version is None else int(version), features)


@dataclass(frozen=True)
class OnlineOnDemand:
    """An on-demand model the reader computes: its request columns' types, the stored features it
    reads, and each feature's program (``featuresql.sql.expressions``)."""

    name: str
    request: dict[str, str]  # request column -> expression type (decimal(12,2), string...)
    inputs: tuple[tuple[str, str], ...]  # (model, feature) read from the store
    features: dict[str, list[Any]]  # feature -> program

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(model for model, _ in self.inputs))

    @property
    def digest(self) -> str:
        """Of what it computes: its programs, typed with its inputs' types. The sync marker records the
        digest of each on-demand model it computed, and the reader refuses one computed otherwise."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def to_json(self) -> dict[str, Any]:
        return {"request": self.request, "inputs": [list(i) for i in self.inputs], "features": self.features}

    @classmethod
    def from_json(cls, name: str, spec: dict[str, Any]) -> OnlineOnDemand:
        inputs = tuple((str(model), str(feature)) for model, feature in spec["inputs"])
        return cls(name, dict(spec["request"]), inputs, dict(spec["features"]))


@dataclass(frozen=True)
class Manifest:
    project: str
    target: str
    store: dict[str, Any]  # {"type": "dynamodb", "table": ..., "region": ..., "endpoint_url": ...} or local
    models: dict[str, OnlineModel]
    ttl_attribute: str = DEFAULT_TTL_ATTRIBUTE
    max_entities: int = DEFAULT_MAX_ENTITIES
    key_kinds: dict[str, str] = field(default_factory=dict)  # every entity key column -> its kind
    services: dict[str, OnlineService] = field(default_factory=dict)  # those whose models are all here
    only_service: str | None = None  # package-lambda --service: requests must name this service
    on_demand: dict[str, OnlineOnDemand] = field(default_factory=dict)  # those whose inputs are all here
    unserved: dict[str, str] = field(default_factory=dict)  # models left out (on-demand, stream) -> their 404

    def __post_init__(self) -> None:
        if not self.key_kinds:
            kinds = {column: kind for model in self.models.values() for column, kind in model.keys}
            object.__setattr__(self, "key_kinds", kinds)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "project": self.project,
            "target": self.target,
            "store": self.store,
            "ttl_attribute": self.ttl_attribute,
            "max_entities": self.max_entities,
            "models": {model.name: model.to_json() for model in self.models.values()},
            "services": {service.name: service.to_json() for service in self.services.values()},
            "only_service": self.only_service,
            "on_demand": {model.name: model.to_json() for model in self.on_demand.values()},
            "unserved": self.unserved,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(
                f"unsupported online manifest format {data.get('format')!r} (expected {FORMAT_VERSION}): "
                "run `featuresql sync` with this version of featuresql"
            )
        models = {name: OnlineModel.from_json(name, spec) for name, spec in data["models"].items()}
        return cls(
            project=str(data["project"]),
            target=str(data["target"]),
            store=dict(data["store"]),
            models=models,
            ttl_attribute=str(data.get("ttl_attribute", DEFAULT_TTL_ATTRIBUTE)),
            max_entities=int(data.get("max_entities", DEFAULT_MAX_ENTITIES)),
            services={name: OnlineService.from_json(name, spec) for name, spec in data.get("services", {}).items()},
            only_service=data.get("only_service"),
            on_demand={name: OnlineOnDemand.from_json(name, spec) for name, spec in data.get("on_demand", {}).items()},
            unserved=dict(data.get("unserved", {})),
        )

    @classmethod
    def load(cls, path: Path | str) -> Manifest:
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
