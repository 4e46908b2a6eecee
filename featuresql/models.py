"""Compiled models: what the compiler produces and everything downstream reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sqlglot import exp

from featuresql.config import Freshness
from featuresql.window_query import WindowModel
from featuresql.windows import WindowFeature

if TYPE_CHECKING:
    from featuresql.as_of_join import AsOfJoin

Kind = Literal["window", "snapshot"]


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

    def start_boundary(self) -> int | None:
        """The first boundary index computed: ``start`` rounded up to the grain."""
        if self.start is None:
            return None
        return -(-int(self.start.timestamp()) // self.grain)


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
