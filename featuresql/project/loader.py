"""Load a project folder: project.yml, sources and model YAML, model SQL files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlglot import exp

from featuresql.errors import ConfigError, closest
from featuresql.names import check_identifier
from featuresql.project.config import (
    IDENTIFIER,
    ExternalFiles,
    Freshness,
    ModelSpec,
    ProjectConfig,
    SchemaFile,
    ServiceSpec,
    SourceSpec,
    SourceTable,
    validate,
)
from featuresql.project.profiles import store_settings
from featuresql.project.yamlfile import line_of, load_yaml, read_text
from featuresql.sql.engines import DIALECTS
from featuresql.sql.file_readers import format_of
from featuresql.sql.types import event_time_problem, key_kind, normalize_type

PROJECT_FILE = "project.yml"


@dataclass(frozen=True)
class Source:
    """One declared source table."""

    source_name: str
    name: str
    database: str | None
    schema: str | None
    identifier: str
    event_time: str | None
    data_delay: int
    columns: dict[str, str | None]
    description: str
    path: Path
    line: int | None
    freshness: Freshness | None = None
    loaded_at_field: str | None = None  # freshness: default event_time
    spec: SourceTable | None = None  # the YAML entry (its tests)
    raw: Any = None  # the YAML mapping of the table, with line numbers
    external: ExternalFiles | None = None  # files read as this table (its format always set)
    event_id: str | None = None  # the column that identifies a pushed record (stream models)

    @property
    def key(self) -> str:
        return f"{self.source_name}.{self.name}"

    @property
    def relation(self) -> exp.Table:
        """The table ``source()`` renders to."""
        return exp.table_(self.identifier, db=self.schema, catalog=self.database)


@dataclass(frozen=True)
class ModelFile:
    """A model's SQL file and, if any, its YAML entry."""

    name: str
    path: Path
    sql: str
    spec: ModelSpec | None = None
    spec_path: Path | None = None
    spec_line: int | None = None
    spec_config: Any = None  # the YAML mapping under config:, with line numbers
    spec_raw: Any = None  # the model's whole YAML mapping, with line numbers


@dataclass(frozen=True)
class ServiceFile:
    """A feature service as declared, with where each feature item is written."""

    spec: ServiceSpec
    path: Path
    line: int | None
    feature_lines: tuple[int | None, ...]  # the line of each item of ``spec.features``

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class YamlEntry:
    """One item of a YAML list (a unit test...), with the file it came from; its lines are in ``data``."""

    data: Any
    path: Path
    line: int | None


@dataclass(frozen=True)
class Project:
    root: Path
    config: ProjectConfig
    sources: dict[str, Source]
    models: dict[str, ModelFile]
    macro_files: tuple[Path, ...] = field(default=())
    unit_tests: tuple[YamlEntry, ...] = field(default=())  # from schema files and test_paths YAML
    test_files: tuple[Path, ...] = field(default=())  # singular tests: test_paths/**/*.sql
    hook_lines: dict[str, tuple[int | None, ...]] = field(default_factory=dict)  # project.yml line of each hook
    services: dict[str, ServiceFile] = field(default_factory=dict)  # feature services, from any schema file

    @property
    def test_dirs(self) -> list[Path]:
        return [self.root / p for p in self.config.test_paths]

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def target_dir(self) -> Path:
        return self.root / self.config.target_path


def find_project_root(start: Path) -> Path:
    """The folder holding project.yml: ``start`` or its nearest parent."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / PROJECT_FILE).is_file():
            return folder
    raise ConfigError(
        f"no {PROJECT_FILE} found in {start} or its parents: run featuresql inside a project, "
        "pass --project-dir, or create one with `featuresql init NAME`"
    )


def load_project(root: Path) -> Project:
    """Read and validate the whole project folder (no warehouse needed)."""
    root = root.resolve()
    project_path = root / PROJECT_FILE
    if not project_path.is_file():
        raise ConfigError(f"{PROJECT_FILE} not found: create it or run `featuresql init NAME`", path=root)
    data = load_yaml(project_path)
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping of settings (name: ..., dialect: ...)", path=project_path)
    config = validate(ProjectConfig, data, project_path)
    block = data.get("online", {})  # no online: block is the default store; an empty one is an error
    online = store_settings(block, project_path, loc_prefix=("online",), line=line_of(data, ("online",)))
    config = config.model_copy(update={"online": online})
    _check_entities(config, data, project_path)
    sources: dict[str, Source] = {}
    specs: dict[str, tuple[ModelSpec, Path, int | None, Any]] = {}
    unit_tests: list[YamlEntry] = []
    services: dict[str, ServiceFile] = {}
    model_paths = [root / p for p in config.model_paths]
    test_paths = [root / p for p in config.test_paths]
    # Tests may live inside a model folder (features/tests/): they are not models.
    for yml in _files(model_paths, ("*.yml", "*.yaml"), skip=test_paths):
        _read_schema_file(yml, sources, specs, unit_tests, services, config.dialect)
    for yml in _files(test_paths, ("*.yml", "*.yaml")):
        _read_test_file(yml, unit_tests)
    models = _read_models(model_paths, specs, skip=test_paths)
    macro_files = tuple(_files([root / p for p in config.macro_paths], ("*.sql",)))
    test_files = tuple(_files(test_paths, ("*.sql",)))
    hook_lines = {
        hook: tuple(line_of(data, (hook, n)) for n in range(len(getattr(config, hook))))
        for hook in ("on_run_start", "on_run_end")
    }
    return Project(root, config, sources, models, macro_files, tuple(unit_tests), test_files, hook_lines, services)


def _check_entities(config: ProjectConfig, data: object, path: Path) -> None:
    for name, entity in config.entities.items():
        line = line_of(data, ("entities", name))
        for column in (name, *entity.keys):
            if not IDENTIFIER.match(column):
                raise ConfigError(f"entity {name!r}: {column!r} is not a valid identifier", path=path, line=line)
        keys_line = line_of(data, ("entities", name, "keys"))
        for column, kind in entity.keys.items():
            _check_key_type(column, kind, config.dialect, f"entities.{name}.keys", path, keys_line)


def _check_key_type(column: str, kind: str, dialect: str, key: str, path: Path, line: int | None) -> None:
    """An entity key is an integer or a string: the online store encodes only those, type-stably.

    The manifest records the same ``key_kind``, so a key accepted here is read back as it was written.
    """
    found = key_kind(kind, dialect)
    if found is None:
        problem = f"key {column!r} has type {kind!r}, which is not a SQL type: use e.g. bigint or varchar"
    elif found not in ("integer", "string"):
        problem = (
            f"key {column!r} has type {kind!r} ({found} in {dialect}): entity keys are integers or strings "
            "(e.g. bigint, varchar, number(10, 0)), which the online store encodes exactly"
        )
    else:
        return
    raise ConfigError(f"invalid value for {key!r}: {problem}", path=path, line=line)


def _files(folders: list[Path], patterns: tuple[str, ...], skip: Sequence[Path] = ()) -> list[Path]:
    found: set[Path] = set()
    for folder in folders:
        if folder.is_dir():
            for pattern in patterns:
                found.update(p for p in folder.rglob(pattern) if not any(p.is_relative_to(s) for s in skip))
    return sorted(found)


def _read_schema_file(
    path: Path,
    sources: dict[str, Source],
    specs: dict[str, tuple[ModelSpec, Path, int | None, Any]],
    unit_tests: list[YamlEntry],
    services: dict[str, ServiceFile],
    dialect: str,
) -> None:
    data = load_yaml(path)
    if data is None:
        return
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping with 'sources:', 'models:', 'services:' and/or 'unit_tests:'", path=path)
    schema = validate(SchemaFile, data, path)
    unit_tests.extend(_entries(data, "unit_tests", path))
    for index, spec in enumerate(schema.sources):
        for t_index, table in enumerate(spec.tables):
            line = line_of(data, ("sources", index, "tables", t_index))
            raw = data["sources"][index]["tables"][t_index]
            source = _make_source(spec, table, path, line, raw, dialect)
            if source.key in sources:
                other = sources[source.key]
                raise ConfigError(
                    f"source {source.key} is declared twice (also in {other.path.name}:{other.line})",
                    path=path,
                    line=line,
                )
            sources[source.key] = source
    for index, model in enumerate(schema.models):
        if model.name in specs:
            raise ConfigError(
                f"model {model.name!r} is described twice (also in {specs[model.name][1].name})",
                path=path,
                line=line_of(data, ("models", index)),
            )
        specs[model.name] = (model, path, line_of(data, ("models", index)), data["models"][index])
    for index, service in enumerate(schema.services):
        line = line_of(data, ("services", index))
        if service.name in services:
            earlier = services[service.name]
            raise ConfigError(
                f"service {service.name!r} is declared twice (also in {earlier.path.name}:{earlier.line})",
                path=path,
                line=line,
            )
        lines = tuple(line_of(data, ("services", index, "features", n)) for n in range(len(service.features)))
        services[service.name] = ServiceFile(service, path, line, lines)


def _read_test_file(path: Path, unit_tests: list[YamlEntry]) -> None:
    data = load_yaml(path)
    if data is None:
        return
    if not isinstance(data, dict) or set(data) - {"version", "unit_tests"}:
        raise ConfigError("a YAML file under test_paths holds 'unit_tests:' (and optionally 'version:')", path=path)
    unit_tests.extend(_entries(data, "unit_tests", path))


def _entries(data: Any, key: str, path: Path) -> list[YamlEntry]:
    items = data.get(key) or []
    if not isinstance(items, list):
        raise ConfigError(f"'{key}:' must be a list", path=path, line=line_of(data, (key,)))
    return [YamlEntry(item, path, line_of(data, (key, n))) for n, item in enumerate(items)]


def _make_source(spec: SourceSpec, table: SourceTable, path: Path, line: int | None, raw: Any, dialect: str) -> Source:
    types = _column_types(spec, table, dialect, path, raw)
    columns: dict[str, str | None] = {}
    for column in table.columns:
        if column.name.lower() in columns:
            raise ConfigError(
                f"source {spec.name}.{table.name}: column {column.name!r} is declared twice",
                path=path,
                line=line,
            )
        columns[column.name.lower()] = types[column.name]
    if table.event_time and columns and table.event_time.lower() not in columns:
        raise ConfigError(
            f"source {spec.name}.{table.name}: event_time {table.event_time!r} is not a declared column",
            path=path,
            line=line,
        )
    _check_event_time_type(spec, table, columns, dialect, path, line)
    if table.event_id and table.event_id.lower() not in columns:
        raise ConfigError(
            f"source {spec.name}.{table.name}: event_id {table.event_id!r} is not a declared column: declare it "
            "under columns:, or remove event_id (a pushed record is then known by a hash of all its values)",
            path=path,
            line=line,
        )
    for name, value in (("schema", spec.schema_), ("database", spec.database), ("identifier", table.identifier)):
        if value is not None:  # quoted by sqlglot when rendered (users_*, users.v2, Raw Data are one name each)
            check_identifier(value, f"source {spec.name}.{table.name}: {name}", path=path, line=line)
    delay = table.data_delay if table.data_delay is not None else spec.data_delay
    return Source(
        source_name=spec.name,
        name=table.name,
        database=spec.database,
        schema=spec.schema_,
        identifier=table.identifier or table.name,
        event_time=table.event_time,
        event_id=table.event_id.lower() if table.event_id else None,
        data_delay=delay,
        columns=columns,
        description=table.description,
        path=path,
        line=line,
        # an explicit `freshness: null` on a table opts out of its source's, as in dbt
        freshness=table.freshness if isinstance(raw, dict) and "freshness" in raw else spec.freshness,
        loaded_at_field=table.loaded_at_field or spec.loaded_at_field,
        spec=table,
        raw=raw,
        external=_external_files(spec, table, path, line),
    )


def _external_files(spec: SourceSpec, table: SourceTable, path: Path, line: int | None) -> ExternalFiles | None:
    """The files a source table reads, from ``external:`` or dbt-duckdb's ``meta.external_location``
    (on the table, or on the source with ``{name}`` standing for the table's name)."""
    external = table.external
    location = table.meta.get("external_location") or spec.meta.get("external_location")
    if external is None and location is not None:
        if not isinstance(location, str):
            raise ConfigError(
                f"source {spec.name}.{table.name}: meta.external_location must be a path or URL string",
                path=path,
                line=line,
            )
        name = table.identifier or table.name
        external = ExternalFiles(location=location.replace("{name}", name).replace("{identifier}", name))
    if external is None or external.format is not None:
        return external
    kind = format_of(external.location)
    if kind is None:
        raise ConfigError(
            f"source {spec.name}.{table.name}: cannot tell the format of {external.location!r} from its "
            "extension: add format: parquet, csv or json under external:",
            path=path,
            line=line,
        )
    return external.model_copy(update={"format": kind})


def _check_event_time_type(
    spec: SourceSpec, table: SourceTable, columns: dict[str, str | None], dialect: str, path: Path, line: int | None
) -> None:
    """An event time is a timestamp: a string or a number would be tiled as text or as a count.

    A date is allowed here: a snapshot model may be daily; a window model over it is refused at compile.
    """
    declared = columns.get(table.event_time.lower()) if table.event_time else None
    if declared is None or event_time_problem(declared, dialect, window=False) is None:
        return
    raise ConfigError(
        f"source {spec.name}.{table.name}: event_time {table.event_time!r} is declared {declared!r}, not a "
        "timestamp: declare (and store) it as a UTC timestamp, or cast it in a model",
        path=path,
        line=line,
    )


def _column_types(spec: SourceSpec, table: SourceTable, dialect: str, path: Path, raw: Any) -> dict[str, str | None]:
    """Each declared type as the project dialect spells it; a type of another supported dialect is converted."""
    types: dict[str, str | None] = {}
    for number, column in enumerate(table.columns):
        spelled = None if column.type is None else normalize_type(column.type, dialect)
        if column.type is not None and spelled is None:
            raise ConfigError(
                f"source {spec.name}.{table.name}: column {column.name!r} has type {column.type!r}, which is not a "
                f"SQL type of {dialect} (or {', '.join(d for d in DIALECTS if d != dialect)}): fix the spelling "
                "(e.g. bigint, varchar, timestamp, decimal(12,2))",
                path=path,
                line=line_of(raw, ("columns", number)),
            )
        types[column.name] = spelled
    return types


def _read_models(
    folders: list[Path], specs: dict[str, tuple[ModelSpec, Path, int | None, Any]], skip: list[Path]
) -> dict[str, ModelFile]:
    models: dict[str, ModelFile] = {}
    for path in _files(folders, ("*.sql",), skip=skip):
        name = path.stem
        if not IDENTIFIER.match(name):
            raise ConfigError("a model file name must be a SQL identifier (letters, digits, underscores)", path=path)
        if name in models:
            raise ConfigError(f"model {name!r} is defined twice (also {models[name].path})", path=path)
        spec, spec_path, spec_line, raw = specs.get(name, (None, None, None, None))
        spec_config = raw.get("config") if isinstance(raw, dict) else None
        text = read_text(path)
        models[name] = ModelFile(name, path, text, spec, spec_path, spec_line, spec_config, raw)
    for name, (_, spec_path, spec_line, _) in specs.items():
        if name not in models:
            raise ConfigError(
                f"model {name!r} is described but there is no {name}.sql{closest(name, list(models))}",
                path=spec_path,
                line=spec_line,
            )
    return models
