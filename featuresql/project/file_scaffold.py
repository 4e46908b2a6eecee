"""`featuresql init NAME --from FILE`: a project over one's own events file that runs as is.

The file is read once here, with DuckDB, for its columns and types; the project
reads it in place (a file source, ``external:`` in sources.yml) at a path relative
to the project folder. The first model counts the events and sums and averages
each numeric column per entity over ``windows``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from featuresql.durations import parse_duration
from featuresql.errors import ConfigError
from featuresql.project.config import IDENTIFIER
from featuresql.project.scaffold import new_project_folder
from featuresql.sql.file_readers import format_of, reader_call
from featuresql.sql.types import key_kind, sql_family

_NUMERIC = {"integer", "float", "decimal"}


@dataclass(frozen=True)
class EventsFile:
    """What init reads from the file: its format and each column's DuckDB type."""

    path: Path
    format: str
    columns: dict[str, str]


def read_events_file(path: Path, label: str = "--from") -> EventsFile:
    """The file's format and columns, read with DuckDB; ``label`` names the file in errors."""
    import duckdb

    if not path.is_file():
        raise ConfigError(f"{label} {path}: no such file")
    kind = format_of(path.name)
    if kind is None:
        raise ConfigError(f"{label} {path}: not a .parquet, .csv or .json(l) file")
    connection = duckdb.connect()
    try:
        connection.execute("SET TimeZone = 'UTC'")
        reader = reader_call(str(path.absolute()), kind)
        rows = connection.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{label} {path}: cannot read it as {kind}: {first}") from None
    finally:
        connection.close()
    return EventsFile(path, kind, {str(row[0]): str(row[1]) for row in rows})


def create_project_from_file(
    folder: Path, events: EventsFile, entity_column: str, timestamp_column: str, windows: list[str], grain: str
) -> tuple[Path, str, str]:
    """Write the project; returns its path, its model's name and its source's (``files.<name>``)."""
    columns = {name.lower(): kind for name, kind in events.columns.items()}
    for name in events.columns:
        if not IDENTIFIER.match(name):
            raise ConfigError(
                f"--from {events.path}: column {name!r} is not a SQL identifier (letters, digits, underscores): "
                "rename it in the file, or declare the source by hand"
            )
    entity_type = _column(columns, entity_column, "--entity", events.path)
    if key_kind(entity_type, "duckdb") not in ("integer", "string"):
        raise ConfigError(
            f"--entity {entity_column}: its type is {entity_type}; an entity key is an integer or a string column"
        )
    time_type = _column(columns, timestamp_column, "--timestamp", events.path)
    if sql_family(time_type, "duckdb") not in ("timestamp", "timestamptz"):
        raise ConfigError(
            f"--timestamp {timestamp_column}: its type is {time_type}, not a timestamp: pick the event time column "
            "(a date or text column must be cast to a timestamp first)"
        )
    _check_windows(windows, grain)
    entity = entity_column.lower().removesuffix("_id") or entity_column.lower()
    source = events.path.stem.split(".")[0].lower()
    source = source if IDENTIFIER.match(source) else "events"
    model = f"{entity}_{source}"
    numeric = [
        name
        for name, kind in columns.items()
        if name not in (entity_column.lower(), timestamp_column.lower())
        and not name.endswith("_id")
        and sql_family(kind, "duckdb") in _NUMERIC
    ]
    path = new_project_folder(folder)
    location = os.path.relpath(events.path.absolute(), path)  # a symlink stays one: repointing it is seen
    files = {
        "project.yml": _project_yml(path.name, entity, entity_column.lower(), entity_type, grain),
        "profiles.yml": f"target: dev\ntargets:\n  dev:\n    type: duckdb\n    path: target/{path.name}.duckdb\n",
        "features/sources.yml": _sources_yml(source, events.format, location, timestamp_column.lower(), columns),
        f"features/{model}.sql": _model_sql(
            source, entity, timestamp_column.lower(), entity_column.lower(), numeric, windows
        ),
        "features/schema.yml": _schema_yml(model, entity_column.lower(), timestamp_column.lower(), source),
        ".gitignore": "target/\n",
    }
    for relative, text in files.items():
        target = path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return path, model, f"files.{source}"


def _check_windows(windows: list[str], grain: str) -> None:
    """Windows the first run accepts: at least one, each a whole number of grains (a bad spelling
    is an error now, not at the first run)."""
    try:
        size = parse_duration(grain)
        if not windows:
            raise ValueError("--windows is empty: give at least one, e.g. 7d,30d")
        for window in windows:
            if parse_duration(window) % size or parse_duration(window) == 0:
                raise ValueError(f"window {window!r} is not a whole number of grains ({grain}): use e.g. 7d with 1d")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _column(columns: dict[str, str], name: str, option: str, path: Path) -> str:
    kind = columns.get(name.lower())
    if kind is None:
        raise ConfigError(f"{option} {name}: {path.name} has no such column; its columns: {', '.join(columns)}")
    return kind


def declared_type(kind: str) -> str:
    """A DuckDB type as sources.yml spells it: DuckDB's own name, lower case."""
    return "timestamptz" if kind.upper() == "TIMESTAMP WITH TIME ZONE" else kind.lower()


def _project_yml(name: str, entity: str, key: str, key_type: str, grain: str) -> str:
    return yaml.safe_dump(
        {
            "name": name,
            "version": "0.1.0",
            "dialect": "duckdb",
            "defaults": {"grain": grain},
            "entities": {entity: {"keys": {key: declared_type(key_type)}}},
        },
        sort_keys=False,
    )


def _sources_yml(source: str, kind: str, location: str, event_time: str, columns: dict[str, str]) -> str:
    table = {
        "name": source,
        "description": f"Read in place from {location} (a path relative to this project's folder).",
        "external": {"location": location, "format": kind},
        "event_time": event_time,
        "columns": [{"name": name, "type": declared_type(kind_)} for name, kind_ in columns.items()],
    }
    return yaml.safe_dump(
        {"version": 1, "sources": [{"name": "files", "schema": "raw", "tables": [table]}]}, sort_keys=False
    )


def _model_sql(source: str, entity: str, timestamp: str, key: str, numeric: list[str], windows: list[str]) -> str:
    spelled = "[" + ", ".join(f"'{w}'" for w in windows) + "]"
    lines = [f"    {{{{ window_count(windows={spelled}) }}}}"]
    for column in numeric:
        lines.append(f"    {{{{ window_sum('{column}', windows={spelled}) }}}}")
        lines.append(f"    {{{{ window_avg('{column}', windows={spelled}) }}}}")
    return (
        f"{{{{ config(entity='{entity}', timestamp='{timestamp}', online=true) }}}}\n"
        f"select\n    {key},\n    {timestamp},\n"
        + ",\n".join(lines)
        + f"\nfrom {{{{ source('files', '{source}') }}}}\n"
    )


def _schema_yml(model: str, key: str, timestamp: str, source: str) -> str:
    spec = {
        "name": model,
        "description": f"Events per {key} from {source}: counts, sums and averages over windows.",
        "tests": [{"unique": {"columns": [key, timestamp]}}],
        "columns": [{"name": key, "tests": ["not_null"]}],
    }
    return yaml.safe_dump({"version": 1, "models": [spec]}, sort_keys=False)
