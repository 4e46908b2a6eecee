"""Arrow data into SQL tables: column types and rows, for adapters without a native bulk load.

DuckDB reads Arrow directly; Snowflake and BigQuery adapters use these to
create a table for local rows (a spine file) and to insert them in chunks.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from featuresql.errors import ConfigError
from featuresql.sql.dialects import event_time_type, identifier

if TYPE_CHECKING:
    import pyarrow as pa


def sql_type(arrow_type: pa.DataType, dialect: str) -> exp.DataType | None:
    """The SQL type that holds an Arrow type's values exactly, or None if there is none."""
    import pyarrow as pa

    types = pa.types
    if types.is_integer(arrow_type):
        return exp.DataType.build("BIGINT")
    if types.is_floating(arrow_type):
        return exp.DataType.build("DOUBLE")
    if types.is_decimal(arrow_type):
        return exp.DataType.build(f"DECIMAL({arrow_type.precision}, {arrow_type.scale})")
    if types.is_string(arrow_type) or types.is_large_string(arrow_type):
        return exp.DataType.build("VARCHAR")
    if types.is_boolean(arrow_type):
        return exp.DataType.build("BOOLEAN")
    if types.is_date(arrow_type):
        return exp.DataType.build("DATE")
    if types.is_timestamp(arrow_type):
        # Zoned times keep their zone (the spine converts them to UTC); naive ones are UTC.
        return exp.DataType.build("TIMESTAMPTZ") if arrow_type.tz else event_time_type(dialect)
    if types.is_null(arrow_type):
        return exp.DataType.build("VARCHAR")
    return None


def column_definitions(schema: pa.Schema, dialect: str) -> list[exp.ColumnDef]:
    definitions = []
    for field in schema:
        kind = sql_type(field.type, dialect)
        if kind is None:
            raise ConfigError(
                f"column {field.name!r} has type {field.type}, which featuresql cannot load into {dialect}: "
                "cast it to a number, string, boolean, date or timestamp"
            )
        definitions.append(exp.ColumnDef(this=identifier(field.name), kind=kind))
    return definitions


def python_rows(data: pa.Table, chunk: int) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of ``data`` as tuples of Python values, ``chunk`` rows at a time.

    Zoned datetimes become naive UTC ones: drivers render naive values without a
    zone suffix, which every engine reads in the session's zone (UTC).
    """
    for batch in data.to_batches(max_chunksize=chunk):
        columns = [_plain(column.to_pylist()) for column in batch.columns]
        yield list(zip(*columns, strict=True))


def _plain(values: list[Any]) -> list[Any]:
    if not any(isinstance(v, datetime) and v.tzinfo is not None for v in values):
        return values
    return [v.astimezone(UTC).replace(tzinfo=None) if isinstance(v, datetime) and v.tzinfo else v for v in values]


def instants(data: pa.Table) -> pa.Table:
    """``data`` with naive timestamp columns marked UTC (loaded as instants, not wall times)."""
    import pyarrow as pa

    for index, field in enumerate(data.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is None:
            zoned = data.column(index).cast(pa.timestamp(field.type.unit, tz="UTC"))
            data = data.set_column(index, field.with_type(zoned.type), zoned)
    return data
