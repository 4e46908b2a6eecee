"""Sources read from files (``external:`` in sources.yml): where the rows come from, per warehouse.

DuckDB reads the files in place: each file source becomes a view over DuckDB's
reader, replaced at each ``run`` and ``test``, so it reads the files as they are
then. Snowflake and BigQuery cannot read a file on this machine: a local file
source is read here with DuckDB and loaded into its table at the start of each
``featuresql run``: into a staging table first, then swapped in by one
``CREATE OR REPLACE ... AS SELECT``, so a reader sees the old rows or the new, never
a half-loaded table. ``test`` and ``source freshness`` read what the last run
loaded. A remote location (``s3://``, ``gs://``...) on those warehouses is refused:
declare the external table (a Snowflake stage, a BigQuery external table) in the
warehouse and point the source at it.

Before anything is read, the file's columns are checked against the declared
ones: each declared column must be in the file, and CSV and JSON columns (parsed
as the declared types) must hold what the type can read: text is refused for a
number or a time, a zoned time for a zone-less one (its offset would be dropped).
A value that then does not parse fails the model. A parquet file brings its own
types, checked against the declared ones as for any source.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlglot import exp

from featuresql.adapters.base import WarehouseAdapter
from featuresql.errors import ConfigError, ExecutionError, closest
from featuresql.project.loader import Source
from featuresql.sql.file_readers import duckdb_type, readable_as, reader_call

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

STAGING_SUFFIX = "__featuresql_load"


def is_url(location: str) -> bool:
    """A location the warehouse reads itself (``s3://``, ``https://``...), not a local path."""
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
        raise _error(
            source,
            f"no file matches {location!r} (looked for {path}); paths are relative to the project folder: "
            f"fix external.location in {source.path.name}",
        )
    return str(path)


def reader_sql(source: Source, root: Path, dialect: str) -> str:
    """The DuckDB table function reading a file source, once its columns are checked."""
    assert source.external is not None and source.external.format is not None
    kind, location = source.external.format, resolved_location(source, root)
    found = _file_columns(source, location)
    types: dict[str, str] = {}
    for column, declared in source.columns.items():
        if column not in found:
            raise _error(
                source,
                f"column {column!r} is declared but {source.external.location!r} has no such column"
                f"{closest(column, list(found))} (its columns: {', '.join(found)}): fix the name in "
                f"{source.path.name}",
            )
        if declared is not None and kind != "parquet":
            if not readable_as(found[column], declared, dialect):
                raise _error(
                    source,
                    f"column {column!r} is declared {declared} but reads from {source.external.location!r} as "
                    f"{found[column]}: declare the type its values have (or fix the file)",
                )
            types[column] = duckdb_type(declared, dialect)
    if kind == "json" and types:  # the JSON reader takes the types of every column or of none
        types = {column: types.get(column, kind_) for column, kind_ in found.items()}
    return reader_call(location, kind, types=types, options=source.external.options)


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
            _replace_view(adapter, source, reader_sql(source, root, dialect))
        elif load:
            if is_url(source.external.location):
                raise _error(
                    source,
                    f"{adapter.dialect} cannot read {source.external.location!r} through featuresql: create an "
                    "external table (or stage) for it in the warehouse and declare that table as the source, "
                    "without external:",
                )
            if relation.db:
                adapter.ensure_schema(relation.db)
            staging = exp.table_(f"{relation.name}{STAGING_SUFFIX}", db=relation.db, catalog=relation.catalog)
            adapter.load_table(staging, read_locally(source, root, dialect))
            adapter.execute(
                exp.Create(this=relation, kind="TABLE", replace=True, expression=exp.select("*").from_(staging))
            )
            adapter.execute(exp.Drop(tables=[staging], kind="TABLE", exists=True))


def read_locally(source: Source, root: Path, dialect: str) -> pa.Table:
    """The file source's rows as an Arrow table, read by an in-memory DuckDB."""
    import duckdb

    reader = reader_sql(source, root, dialect)
    with _local_duckdb() as connection:
        try:
            table: pa.Table = connection.sql(f"SELECT * FROM {reader}").to_arrow_table()
        except duckdb.Error as exc:
            raise _error(source, f"cannot read {_location(source)}: {_first_line(exc)}") from None
    return table


def _file_columns(source: Source, location: str) -> dict[str, str]:
    """The columns and DuckDB types of the files, as the reader finds them (a sample for CSV and JSON)."""
    import duckdb

    assert source.external is not None and source.external.format is not None
    reader = reader_call(location, source.external.format, options=source.external.options)
    with _local_duckdb() as connection:
        try:
            rows = connection.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
        except duckdb.Error as exc:
            raise _error(source, f"cannot read {_location(source)}: {_first_line(exc)}") from None
    return {str(name).lower(): str(kind) for name, kind, *_ in rows}


def _replace_view(adapter: WarehouseAdapter, source: Source, reader: str) -> None:
    relation = adapter.sql(source.relation)
    try:
        adapter.execute(f"CREATE OR REPLACE VIEW {relation} AS SELECT * FROM {reader}")
    except ExecutionError as exc:
        if "is of type Table" in exc.message:
            raise _error(
                source,
                f"{relation} already exists as a table (made by a hook or a load?): drop it, or remove "
                "external: to read the table",
            ) from None
        raise _error(source, f"cannot read {_location(source)}: {exc.message}") from None


class _local_duckdb:
    """An in-memory DuckDB in UTC, closed after use."""

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        import duckdb

        self.connection = duckdb.connect()
        self.connection.execute("SET TimeZone = 'UTC'")
        return self.connection

    def __exit__(self, *exc: object) -> None:
        self.connection.close()


def _location(source: Source) -> str:
    return source.external.location if source.external else ""


def _first_line(exc: BaseException) -> str:
    """DuckDB's first line: the lines after it may quote a row of the file, which is data."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _error(source: Source, message: str) -> ConfigError:
    return ConfigError(f"source {source.key}: {message}", path=source.path, line=source.line)
