"""Pydantic models for everything users write in YAML or in ``config()``.

Each model forbids unknown keys, so a misspelled key is an error naming the
file and line (see ``validate``), never a silently ignored setting.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from featuresql.durations import parse_duration
from featuresql.errors import ConfigError, closest
from featuresql.project.yamlfile import line_of
from featuresql.sql.engines import DEFAULT_ENGINE, DIALECTS
from featuresql.times import utc

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _duration(value: Any) -> int:
    return parse_duration(value)


def _utc(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"{value!r} is not a date or timestamp: write a UTC time such as '2024-01-01' or "
                "'2024-01-01T06:00:00' (an offset such as +02:00 is converted; zone names are not read)"
            ) from None
    elif not isinstance(value, datetime) and hasattr(value, "isoformat"):  # a YAML date
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise ValueError("expected a date or timestamp such as '2024-01-01'")
    return utc(value)


def _grain(value: Any) -> int:
    seconds = parse_duration(value)
    if seconds <= 0 or seconds % 60:
        raise ValueError(f"grain {value!r} must be a whole number of minutes, hours or days, e.g. '15m', '1h', '1d'")
    return seconds


Duration = Annotated[int, BeforeValidator(_duration)]
Grain = Annotated[int, BeforeValidator(_grain)]
UtcTimestamp = Annotated[datetime, BeforeValidator(_utc)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class EntityConfig(Strict):
    keys: dict[str, str] = Field(min_length=1)  # types checked in the project's dialect: project._check_key_type
    description: str = ""


class Defaults(Strict):
    grain: Grain = 86400
    lookback: int = Field(0, ge=0)
    data_delay: Duration = 0
    batch_size: int | None = Field(None, gt=0)


class ProjectConfig(Strict):
    name: str
    version: str = "0.1.0"
    dialect: str = DEFAULT_ENGINE
    model_paths: list[str] = ["features"]
    macro_paths: list[str] = ["macros"]
    test_paths: list[str] = ["tests"]
    target_path: str = "target"
    vars: dict[str, Any] = {}
    defaults: Defaults = Defaults()
    entities: dict[str, EntityConfig] = {}
    online: Any = None  # the online store's settings: validated by the store's own model (profiles.store_settings)
    on_run_start: list[str] = []
    on_run_end: list[str] = []

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not IDENTIFIER.match(value):
            raise ValueError("must be a SQL identifier: letters, digits and underscores")
        return value

    @field_validator("dialect", mode="before")
    @classmethod
    def _known_dialect(cls, value: Any) -> Any:
        if value not in DIALECTS:
            *first, last = (repr(d) for d in DIALECTS)
            raise ValueError(f"Input should be {', '.join(first)} or {last}")
        return value


class Freshness(Strict):
    """How old a source's (or model's) newest row may be, as dbt's source freshness.

    The age is ``now - max(loaded_at_field)``; the field defaults to the source's
    ``event_time`` (a model's timestamp). Past ``warn_after`` the check warns, past
    ``error_after`` it fails; ``filter`` is a SQL condition limiting the rows read.
    """

    warn_after: Duration | None = None
    error_after: Duration | None = None
    loaded_at_field: str | None = None
    filter: str | None = None


class ModelConfig(Strict):
    """Settings of one model; ``None`` means 'inherit from the project defaults'."""

    entity: str | None = None
    timestamp: str | None = None
    grain: Grain | None = None
    start: UtcTimestamp | None = None
    data_delay: Duration | None = None
    lookback: int | None = Field(None, ge=0)
    batch_size: int | None = Field(None, gt=0)
    online: bool = False
    ttl: Duration | None = None
    tie_break: str | None = None
    tags: list[str] = []
    description: str = ""
    owner: str | None = None
    enabled: bool = True
    on_change: Literal["fail", "rebuild"] = "fail"  # a changed window model: refuse, or rebuild from start
    freshness: Freshness | None = None
    # 'on_demand': scalar expressions over request columns and other models' features, computed at
    # request time (featuresql.compile.on_demand); window and snapshot are told apart by their SQL
    kind: Literal["on_demand"] | None = None
    request: dict[str, str] = {}  # on-demand models: request column -> SQL type
    # Fresh windows (featuresql.compile.streams): window ends follow the request time at this grain
    stream_grain: Grain | None = None
    stream_delay: Duration | None = None  # default 0
    stream_horizon: Duration | None = None  # default twice the model grain

    @field_validator("request")
    @classmethod
    def _request_columns(cls, value: dict[str, str]) -> dict[str, str]:
        lowered: dict[str, str] = {}
        for name, kind in value.items():
            if not IDENTIFIER.match(name):
                raise ValueError(f"request column {name!r} must be a SQL identifier: letters, digits and underscores")
            if name.lower() in lowered:
                raise ValueError(f"request column {name!r} is listed twice (names are case-insensitive)")
            lowered[name.lower()] = kind
        return lowered


class ColumnSpec(Strict):
    name: str
    type: str | None = None
    description: str = ""
    tests: list[Any] = []  # data tests (see featuresql.testing.generic); dbt's newer spelling data_tests works too
    data_tests: list[Any] = []


class ModelSpec(Strict):
    name: str
    description: str = ""
    config: dict[str, Any] = {}
    columns: list[ColumnSpec] = []
    tests: list[Any] = []
    data_tests: list[Any] = []


class ExternalFiles(Strict):
    """Files read as a source table: a path or glob, relative to the project folder, or a URL
    the warehouse reads (``s3://``, ``https://``... on DuckDB).

    ``format`` defaults to the location's extension; ``options`` are passed to DuckDB's
    reader as named parameters (``delim: ';'``, ``header: false``...).
    """

    location: str = Field(min_length=1)
    format: Literal["parquet", "csv", "json"] | None = None
    options: dict[str, str | int | float | bool] = {}

    @field_validator("options")
    @classmethod
    def _option_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not IDENTIFIER.match(name):
                raise ValueError(f"option {name!r} is not a reader parameter name (letters, digits, underscores)")
        return value


def _external(value: Any) -> Any:
    return {"location": value} if isinstance(value, str) else value


class SourceTable(Strict):
    name: str
    identifier: str | None = None
    description: str = ""
    event_time: str | None = None
    event_id: str | None = None  # a pushed record's id (stream models): a record sent twice counts once
    data_delay: Duration | None = None
    columns: list[ColumnSpec] = []
    freshness: Freshness | None = None  # default: the source's freshness
    loaded_at_field: str | None = None
    tests: list[Any] = []
    data_tests: list[Any] = []
    external: Annotated[ExternalFiles | None, BeforeValidator(_external)] = None
    meta: dict[str, Any] = {}  # dbt-duckdb's spelling: meta: {external_location: ...}


class SourceSpec(Strict):
    name: str
    database: str | None = None
    schema_: str | None = Field(None, alias="schema")
    description: str = ""
    data_delay: Duration = 0
    freshness: Freshness | None = None
    loaded_at_field: str | None = None
    meta: dict[str, Any] = {}  # dbt-duckdb's meta: {external_location: 'data/{name}.parquet'} for every table
    tables: list[SourceTable] = Field(min_length=1)


class ServiceSpec(Strict):
    """A feature service: the named set of features one consumer reads, offline and online.

    ``features`` items are ``model`` (all its features), ``model.feature`` or
    ``model.feature as alias``; ``version`` is bumped by the author when the set changes
    (a request naming another version is refused).
    """

    name: str
    description: str = ""
    owner: str | None = None
    tags: list[str] = []
    version: int | None = Field(None, ge=1)
    features: list[str] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not IDENTIFIER.match(value):
            raise ValueError("must be a SQL identifier: letters, digits and underscores")
        return value.lower()  # like every name here, case-insensitive: SpendRisk is spendrisk


class SchemaFile(Strict):
    version: int | None = None
    sources: list[SourceSpec] = []
    models: list[ModelSpec] = []
    services: list[ServiceSpec] = []
    unit_tests: list[Any] = []  # read by featuresql.testing.unit.cases


M = TypeVar("M", bound=BaseModel)


def validate(
    model: type[M], data: Any, path: Path | None, *, loc_prefix: tuple[Any, ...] = (), line: int | None = None
) -> M:
    """Validate ``data`` against ``model``; the first problem becomes a one-line ConfigError.

    Unknown keys are reported before missing ones, so a misspelled required key
    reads as "unknown key 'nmae' (did you mean name?)". ``line`` is the fallback
    when ``data`` carries no line numbers of its own.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        loc = tuple(error["loc"])
        raise ConfigError(
            _describe(model, error, loc, loc_prefix),
            path=path,
            line=(line_of(data, loc) or line) if path else None,
        ) from None


def _describe(model: type[BaseModel], error: Any, loc: tuple[Any, ...], prefix: tuple[Any, ...]) -> str:
    key = ".".join(str(part) for part in prefix + loc) or "(top level)"
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        return f"unknown key {key!r}{closest(str(loc[-1]), allowed)}; allowed keys: {', '.join(allowed)}"
    if error["type"] == "missing":
        return f"missing required key {key!r}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"invalid value for {key!r}: {message}"


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in loc:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        field = current.model_fields.get(part) or next(
            (f for f in current.model_fields.values() if f.alias == part), None
        )
        if field is None:
            continue  # a key of a dict-valued field (an entity or target name)
        current = _inner_model(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(f.alias or name for name, f in current.model_fields.items())
    return []


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None
