"""Compiled models: what the compiler produces and everything downstream reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from sqlglot import exp

from featuresql.project.config import Freshness
from featuresql.sql import dialects
from featuresql.sql.expressions import Program
from featuresql.sql.point_in_time import JoinedModel, SpineRelation, point_in_time_query
from featuresql.sql.windows import WindowFeature, WindowModel
from featuresql.times import epoch_micros

Kind = Literal["window", "snapshot"]


@dataclass(frozen=True)
class StreamSettings:
    """A stream model's fresh windows (DESIGN.md section 11): a read or a spine row at ``t`` sees the
    windows ending at ``floor(t - delay, grain)``; the reader is exact up to ``horizon`` past the
    warehouse's last complete boundary."""

    grain: int
    delay: int
    horizon: int


@dataclass(frozen=True)
class RowPrograms:
    """A stream model's row-level SQL as the reader's programs: an event is a row of ``source``,
    whose columns have the expression types ``source_types``; ``where`` keeps it (None: every
    row); ``columns`` give its keys, timestamp and inputs; ``event_id`` is the source's column
    that identifies a record (None: a hash of the whole record)."""

    source: str  # 'source_name.table'
    source_types: dict[str, str]  # column -> expression type (int64, decimal(12,2), string, timestamp...)
    where: Program | None
    columns: dict[str, Program]
    event_id: str | None = None


@dataclass(frozen=True)
class ModelSettings:
    """A model's effective settings: its config() over its YAML over project defaults."""

    entity: str | None
    keys: tuple[str, ...]
    timestamp: str | None
    grain: int
    start: datetime | None
    data_delay: int
    lookback: int
    batch_size: int | None
    online: bool
    ttl: int | None
    tie_break: str | None
    tags: tuple[str, ...]
    description: str
    owner: str | None
    on_change: str = "fail"
    freshness: Freshness | None = None
    stream: StreamSettings | None = None  # a window model served fresh (featuresql.compile.streams)

    def start_boundary(self) -> int | None:
        """The first boundary index computed: ``start`` rounded up to the grain."""
        if self.start is None:
            return None
        return -(-epoch_micros(self.start) // (self.grain * 1_000_000))  # a fraction of a second rounds up too


@dataclass(frozen=True)
class CompiledModel:
    name: str
    path: Path
    kind: Kind
    settings: ModelSettings
    relation: exp.Table
    rendered_sql: str
    query: exp.Query  # snapshot: the model's query; window: its row-level events query
    columns: tuple[str, ...]
    refs: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    window: WindowModel | None = None
    as_of_joins: tuple[AsOfJoin, ...] = ()  # what each as_of_join in the query joins (an extract model)
    stream_rows: RowPrograms | None = field(default=None, repr=False)  # a stream model's row-level programs

    @property
    def features(self) -> tuple[WindowFeature, ...]:
        return self.window.features if self.window else ()

    @property
    def feature_columns(self) -> tuple[str, ...]:
        excluded = {*self.settings.keys, self.settings.timestamp}
        return tuple(c for c in self.columns if c not in excluded)


@dataclass(frozen=True)
class CompiledProject:
    name: str
    target: str
    dialect: str
    models: dict[str, CompiledModel]  # in dependency order
    children: dict[str, tuple[str, ...]] = field(default_factory=dict)
    hooks: dict[str, list[list[exp.Expr]]] = field(default_factory=dict)
    target_type: str = ""  # the profile's ``type``: ``target.type`` in Jinja, what macros dispatch on
    services: dict[str, Service] = field(default_factory=dict)  # resolved by a full compile only
    on_demand: dict[str, OnDemandModel] = field(default_factory=dict)  # no table: computed at request time


@dataclass(frozen=True)
class AsOfJoin:
    """What one ``as_of_join`` joins: its spine and each model's columns.

    Its output has every column of the spine, then each model's columns named
    ``<model>__<column>`` (``JoinedModel.output_name``).
    """

    spine: exp.Table
    spine_columns: tuple[str, ...]  # every column of the spine, in order
    time: str  # the spine's time column
    models: tuple[JoinedModel, ...]  # joined on the spine's key columns (``JoinedModel.spine_keys``)

    @property
    def spine_keys(self) -> tuple[str, ...]:
        """The spine's key columns, each once, in the order the models name them."""
        return tuple(dict.fromkeys(k for m in self.models for k in (m.spine_keys or m.keys)))

    def query(self, dialect: str) -> exp.Select:
        """The point-in-time join itself (``featuresql.sql.point_in_time``)."""
        spine = SpineRelation(
            self.spine.copy(), self.spine_columns, exp.column(dialects.identifier(self.time)), ordered=False
        )
        return point_in_time_query(spine, self.models, dialect)


@dataclass(frozen=True)
class ServiceFeature:
    model: str
    feature: str
    output: str  # the column (offline) and response key (online)


@dataclass(frozen=True)
class Service:
    """A feature service resolved against the models (``featuresql.compile.services``)."""

    name: str
    version: int | None
    description: str
    owner: str | None
    tags: tuple[str, ...]
    features: tuple[ServiceFeature, ...]

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(f.model for f in self.features))

    @property
    def requested(self) -> list[str]:
        """The features as ``model.feature`` items, grouped by model (the output order)."""
        return [f"{f.model}.{f.feature}" for model in self.models for f in self.features if f.model == model]

    @property
    def outputs(self) -> dict[tuple[str, str], str]:
        return {(f.model, f.feature): f.output for f in self.features}


@dataclass(frozen=True)
class OnDemandFeature:
    name: str
    expression: exp.Expr  # in the project dialect; columns are request.<column> and <model>.<feature>
    line: int | None
    inputs: tuple[tuple[str, str], ...] = ()  # the (model, feature) pairs it reads, in order


@dataclass(frozen=True)
class OnDemandModel:
    """An on-demand model (``featuresql.compile.on_demand``): no table, its features computed per request
    from the request's columns and the point-in-time features of the models it refs."""

    name: str
    path: Path
    request: dict[str, str]  # request column -> its SQL type, in the project dialect
    features: tuple[OnDemandFeature, ...]
    inputs: tuple[tuple[str, str], ...]  # the (model, feature) pairs the expressions read, in order
    refs: tuple[str, ...]
    keys: tuple[str, ...]  # every entity key column of the models it reads
    rendered_sql: str
    description: str = ""
    owner: str | None = None
    tags: tuple[str, ...] = ()
    request_line: int | None = None

    @property
    def feature_columns(self) -> tuple[str, ...]:
        return tuple(feature.name for feature in self.features)
