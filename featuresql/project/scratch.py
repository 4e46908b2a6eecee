"""A throwaway project written from Python values, for quick experiments in a notebook
(``featuresql.Context.scratch``).

Models are SQL text, sources are files (read in place) or Arrow tables / pandas
DataFrames (written to parquet in the project folder), declared as file sources
with the columns and types DuckDB reads from them. Everything else is a project
like any other: the same compiler, runs, tests and extracts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from featuresql.errors import ConfigError
from featuresql.project.config import IDENTIFIER
from featuresql.project.file_scaffold import declared_type, read_events_file

SOURCE_NAME = "scratch"


def write_scratch_project(
    folder: Path,
    models: dict[str, str],
    sources: dict[str, Any],
    entities: dict[str, str | dict[str, str]],
    *,
    grain: str = "1d",
    event_times: dict[str, str] | None = None,
) -> Path:
    """Write the project into ``folder`` (empty); models read ``source('scratch', NAME)``."""
    for name in (*models, *sources, *entities):
        if not IDENTIFIER.match(name):
            raise ConfigError(f"{name!r} is not a SQL identifier (letters, digits, underscores): rename it")
    tables = []
    columns: dict[str, str] = {}
    for name, data in sources.items():
        location = _as_file(folder, name, data)
        events = read_events_file(location, f"source {name!r}:")
        columns |= {c.lower(): kind for c, kind in events.columns.items()}
        table: dict[str, Any] = {
            "name": name,
            "external": {"location": str(location), "format": events.format},
            "columns": [{"name": c, "type": declared_type(kind)} for c, kind in events.columns.items()],
        }
        if event_times and name in event_times:
            table["event_time"] = event_times[name]
        tables.append(table)
    project = {
        "name": "scratch",
        "dialect": "duckdb",
        "defaults": {"grain": grain},
        "entities": {name: {"keys": _keys(name, key, columns)} for name, key in entities.items()},
    }
    files = {
        "project.yml": yaml.safe_dump(project, sort_keys=False),
        "profiles.yml": "target: dev\ntargets:\n  dev:\n    type: duckdb\n    path: target/scratch.duckdb\n",
        "features/sources.yml": yaml.safe_dump(
            {"version": 1, "sources": [{"name": SOURCE_NAME, "schema": "raw", "tables": tables}]}, sort_keys=False
        ),
        **{f"features/{name}.sql": sql for name, sql in models.items()},
    }
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def _as_file(folder: Path, name: str, data: Any) -> Path:
    """A source given as a path stays where it is; a table or DataFrame is written to parquet."""
    if isinstance(data, str | Path):
        return Path(data).expanduser().resolve()
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not isinstance(data, pa.Table):
        try:
            data = pa.Table.from_pandas(data, preserve_index=False)
        except (TypeError, AttributeError):
            raise ConfigError(
                f"source {name!r}: give a file path, a pyarrow Table or a pandas DataFrame, not {type(data).__name__}"
            ) from None
    path = folder / "data" / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(data, path)
    return path


def _keys(entity: str, key: str | dict[str, str], columns: dict[str, str]) -> dict[str, str]:
    """An entity's keys: given with types, or a column name whose type the sources tell."""
    if isinstance(key, dict):
        return key
    kind = columns.get(key.lower())
    if kind is None:
        raise ConfigError(f"entity {entity!r}: no source has a column {key!r} to take its type from")
    return {key: declared_type(kind)}
