"""Sources read from files (``external:`` in sources.yml): where the rows come from, per warehouse.

DuckDB reads the files in place: each file source becomes a view over DuckDB's
reader, replaced each time a command opens the target, so it reads the files as
they are now. Snowflake and BigQuery cannot read a file on this machine: a local
file source is read here with DuckDB and loaded into its table (replacing it) at the
start of each ``featuresql run``; ``test`` and ``source freshness`` read what the
last run loaded. A remote location (``s3://``, ``gs://``...) on those warehouses is
refused: declare the external table (a Snowflake stage, a BigQuery external table)
in the warehouse and point the source at it.

Declared column types are the reader's types for CSV and JSON (a value that does
not parse is an error naming it, never a silent cast); a parquet file brings its
own types, checked against the declared ones as for any source.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlglot import exp

from featuresql.adapters.base import WarehouseAdapter
from featuresql.errors import ConfigError, ExecutionError
from featuresql.project.loader import Source

if TYPE_CHECKING:
    import pyarrow as pa

_READERS = {"parquet": "read_parquet", "csv": "read_csv", "json": "read_json"}


def is_url(location: str) -> bool:
    return "://" in location


def resolved_location(source: Source, root: Path) -> str:
    """The location as the reader takes it: a URL as written, a local path made absolute
    against the project folder, and checked to match at least one file."""
    assert source.external is not None
    location = source.external.location
    if is_url(location):
        return location
    path = Path(location).expanduser()
    path = path if path.is_absolute() else root / path
    if not glob.glob(str(path), recursive=True):
        raise ConfigError(
            f"source {source.key}: no file matches {location!r} (looked for {path}); paths are relative "
            f"to the project folder: fix external.location in {source.path.name}",
            path=source.path,
            line=source.line,
        )
    return str(path)


def reader_sql(source: Source, root: Path, dialect: str) -> str:
    """The DuckDB table function reading a file source (declared types given to CSV and JSON)."""
    assert source.external is not None and source.external.format is not None
    arguments = [_literal(resolved_location(source, root))]
    types = {
        name: exp.DataType.build(kind, dialect=dialect).sql("duckdb")
        for name, kind in source.columns.items()
        if kind is not None
    }
    if source.external.format == "csv" and types:
        arguments.append(f"types = {_struct(types)}")
    elif source.external.format == "json" and types and len(types) == len(source.columns):
        arguments.append(f"columns = {_struct(types)}")  # JSON takes all columns or none
    arguments += [f"{name} = {_literal(value)}" for name, value in source.external.options.items()]
    return f"{_READERS[source.external.format]}({', '.join(arguments)})"


def register(adapter: WarehouseAdapter, sources: Iterable[Source], root: Path, dialect: str, *, load: bool) -> None:
    """Make each file source readable on the target: a view on DuckDB; on another warehouse
    (when ``load``, at the start of a run) its table replaced by the file's rows."""
    for source in sources:
        if source.external is None:
            continue
        relation = source.relation
        if adapter.dialect == "duckdb":
            if relation.db:
                adapter.ensure_schema(relation.db)
            reader = reader_sql(source, root, dialect)
            _execute(adapter, source, f"CREATE OR REPLACE VIEW {adapter.sql(relation)} AS SELECT * FROM {reader}")
        elif load:
            if is_url(source.external.location):
                raise ConfigError(
                    f"source {source.key}: {adapter.dialect} cannot read {source.external.location!r} through "
                    "featuresql: create an external table (or stage) for it in the warehouse and declare that "
                    "table as the source, without external:",
                    path=source.path,
                    line=source.line,
                )
            if relation.db:
                adapter.ensure_schema(relation.db)
            adapter.load_table(relation, read_locally(source, root, dialect))


def read_locally(source: Source, root: Path, dialect: str) -> pa.Table:
    """The file source's rows as an Arrow table, read by an in-memory DuckDB."""
    import duckdb

    connection = duckdb.connect()
    try:
        connection.execute("SET TimeZone = 'UTC'")
        table: pa.Table = connection.sql(f"SELECT * FROM {reader_sql(source, root, dialect)}").to_arrow_table()
        return table
    except duckdb.Error as exc:
        raise ExecutionError(
            f"source {source.key}: cannot read {source.external.location if source.external else ''}: {exc}",
            path=source.path,
        ) from None
    finally:
        connection.close()


def _execute(adapter: WarehouseAdapter, source: Source, sql: str) -> None:
    try:
        adapter.execute(sql)
    except ExecutionError as exc:
        location = source.external.location if source.external else ""
        raise ExecutionError(f"source {source.key}: cannot read {location}: {exc.message}", path=source.path) from None


def _struct(types: dict[str, str]) -> str:
    return "{" + ", ".join(f"{_literal(name)}: {_literal(kind)}" for name, kind in types.items()) + "}"


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"
