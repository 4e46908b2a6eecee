"""The spine of a training extract: where it comes from and how the join reads it.

A spine is a warehouse table, a local ``.parquet`` or ``.csv`` file, a pandas
DataFrame or an Arrow table. Local spines are normalised in Arrow (a row number
for the spine's order, the time as a zone-less UTC timestamp) and loaded into a
temporary table of the target, so the join runs in the warehouse. A warehouse
table is read where it is; its order is the engine's scan order (DuckDB keeps
insertion order; Snowflake and BigQuery tables have none).

Key columns are matched to the entities' key names ignoring case; the time
column is ``timestamp_column`` when given, else the first of the requested
models' timestamp column names, ``event_timestamp``, ``timestamp`` and ``ts``
that the spine has. Timestamps without a zone are UTC; zoned ones are converted.
"""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from featuresql.adapters.base import WarehouseAdapter
from featuresql.compile.spine_columns import KeyColumn, check_keys, check_reserved, find_time_column
from featuresql.errors import ConfigError, ExecutionError
from featuresql.names import parse_table_name
from featuresql.sql import dialects
from featuresql.sql.point_in_time import SPINE_ROW, SPINE_TIME, SpineRelation
from featuresql.sql.types import arrow_family, sql_family

if TYPE_CHECKING:
    import pyarrow as pa

SpineInput = Any  # a table name, a path, a pandas DataFrame or a pyarrow Table
FILE_SUFFIXES = (".parquet", ".csv")


@dataclass(frozen=True)
class StagedSpine:
    """A spine ready to join, and the temporary table to drop afterwards (if any)."""

    relation: SpineRelation
    description: str
    keys: dict[str, str]  # entity key name -> the spine's column
    temporary: exp.Table | None = None


def stage_spine(
    source: SpineInput,
    adapter: WarehouseAdapter,
    keys: Sequence[KeyColumn],
    time_candidates: Sequence[str],
    *,
    timestamp_column: str | None = None,
) -> StagedSpine:
    """Load ``source`` (if local) and check it has the keys and a time column of the right types."""
    if _is_arrow(source) or _is_dataframe(source):
        return _stage_local(_as_arrow(source), "the spine DataFrame", adapter, keys, time_candidates, timestamp_column)
    if isinstance(source, Path) or (isinstance(source, str) and _looks_like_path(source)):
        path = Path(source)
        description = f"spine file {path}"
        if path.suffix.lower() == ".parquet" and path.is_file():
            name = exp.table_(f"__featuresql_spine_{uuid.uuid4().hex[:12]}")
            try:
                loaded = adapter.load_parquet(name, path.resolve(), SPINE_ROW)
            except ExecutionError as exc:
                if not _unreadable_file(exc.message):
                    raise  # out of memory, disk full, a lost connection: the run failed, not the file
                raise ConfigError(f"cannot read {description} as parquet: {exc.message.split(': ', 1)[-1]}") from None
            if loaded is not None:
                return _stage_loaded(loaded, description, adapter, keys, time_candidates, timestamp_column)
        data = read_spine_file(path)
        return _stage_local(data, description, adapter, keys, time_candidates, timestamp_column)
    if isinstance(source, str):
        return _stage_numbered(source, adapter, keys, time_candidates, timestamp_column)
    raise ConfigError(
        f"unsupported spine of type {type(source).__name__}: pass a table name, a .parquet/.csv path, "
        "a pandas DataFrame or a pyarrow Table"
    )


def read_spine_file(path: Path) -> pa.Table:
    """A local spine file as an Arrow table."""
    import pyarrow as pa

    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise ConfigError(f"spine file {path} must end in .parquet or .csv")
    if not path.is_file():
        raise ConfigError(f"spine file {path} does not exist")
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        import pyarrow.csv as pcsv

        data = pcsv.read_csv(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ConfigError(f"cannot read spine file {path}: {str(exc).splitlines()[0]}") from None
    for field in data.schema:
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):  # Arrow's type for non-UTF-8 text
            raise ConfigError(f"spine file {path}: column {field.name!r} is not UTF-8 text: save the file as UTF-8")
    return data


_NOT_PARQUET = re.compile(
    r"magic bytes|not a (valid )?parquet|too small to be a parquet|corrupt|invalid input error|"
    r"cannot open file|could not open file|no files found|no such file|permission denied",
    re.IGNORECASE,
)
_OUT_OF_RESOURCES = re.compile(r"out of memory|no space left|disk (is )?full|quota", re.IGNORECASE)


def _unreadable_file(message: str) -> bool:
    """Whether the engine's error says the file is not valid parquet or cannot be opened (a user's mistake)."""
    return bool(_NOT_PARQUET.search(message)) and not _OUT_OF_RESOURCES.search(message)


def _looks_like_path(text: str) -> bool:
    return text.lower().endswith(FILE_SUFFIXES) or "/" in text or "\\" in text or Path(text).is_file()


def _is_arrow(value: object) -> bool:
    pyarrow = sys.modules.get("pyarrow")  # not imported: the value cannot be an Arrow table
    return pyarrow is not None and isinstance(value, pyarrow.Table)


def _is_dataframe(value: object) -> bool:
    return type(value).__name__ == "DataFrame" and type(value).__module__.startswith("pandas")


def _as_arrow(data: Any) -> pa.Table:
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    return pa.Table.from_pandas(data, preserve_index=False)


# -- local spines ----------------------------------------------------------------


def _stage_local(
    data: pa.Table,
    description: str,
    adapter: WarehouseAdapter,
    keys: Sequence[KeyColumn],
    time_candidates: Sequence[str],
    timestamp_column: str | None,
) -> StagedSpine:
    import pyarrow as pa

    columns: dict[str, str | None] = {name: _family(data.schema.field(name).type) for name in data.column_names}
    _check_names(data.column_names, description)
    key_columns = check_keys(columns, keys, description)
    time_column = find_time_column(columns, time_candidates, timestamp_column, description)
    time = _floor_to_micros(data.column(time_column))
    staged = data.append_column(SPINE_ROW, pa.array(range(data.num_rows), pa.int64())).append_column(SPINE_TIME, time)
    table = adapter.load_table(exp.table_(f"__featuresql_spine_{uuid.uuid4().hex[:12]}"), staged, temporary=True)
    relation = SpineRelation(
        relation=table,
        columns=tuple(data.column_names),
        time=exp.column(SPINE_TIME),
        row=exp.column(SPINE_ROW),
    )
    return StagedSpine(relation, description, key_columns, temporary=table)


def _floor_to_micros(time: pa.ChunkedArray) -> pa.ChunkedArray:
    """Spine times as zone-less UTC microseconds, finer ones floored.

    A row at 23:59:59.9999995 happens before midnight: rounding it (Arrow's cast
    truncates toward 1970, so before 1970 it rounds up) would let it see what
    becomes available at midnight. Zoned values are stored as UTC: dropping the zone keeps them.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if time.type.unit in ("s", "ms", "us"):
        return time.cast(pa.timestamp("us"))
    return pc.floor_temporal(time, unit="microsecond").cast(pa.timestamp("us"))


def _family(kind: pa.DataType) -> str:
    return arrow_family(kind) or str(kind)  # a type of no family is named as it is, in errors


# -- warehouse tables ----------------------------------------------------------------


def _stage_loaded(
    table: exp.Table,
    description: str,
    adapter: WarehouseAdapter,
    keys: Sequence[KeyColumn],
    time_candidates: Sequence[str],
    timestamp_column: str | None,
) -> StagedSpine:
    """A spine file the engine loaded itself into ``table``, its order in ``SPINE_ROW``."""
    try:
        staged = _stage_table(
            table, adapter, keys, time_candidates, timestamp_column, description=description, exclude=SPINE_ROW
        )
    except BaseException:
        adapter.execute(exp.Drop(tables=[table], kind="TABLE", exists=True))
        raise
    relation = replace(staged.relation, row=exp.column(SPINE_ROW))
    return replace(staged, relation=relation, temporary=table)


def _stage_numbered(
    name: str,
    adapter: WarehouseAdapter,
    keys: Sequence[KeyColumn],
    time_candidates: Sequence[str],
    timestamp_column: str | None,
) -> StagedSpine:
    """A warehouse table, checked, then numbered once in its scan order into a temporary table.

    Numbering inside the join would not do: BigQuery evaluates a CTE once per
    reference, and ``ROW_NUMBER() OVER ()`` may number the rows differently each time.
    """
    table = parse_table_name(name, adapter.dialect, f"spine {name!r}")
    checked = _stage_table(table, adapter, keys, time_candidates, timestamp_column)
    numbered = exp.select("*", exp.alias_(exp.Window(this=exp.RowNumber()), SPINE_ROW))
    numbered = numbered.from_(checked.relation.relation.copy())
    table = adapter.create_temporary(f"__featuresql_spine_{uuid.uuid4().hex[:12]}", numbered)
    relation = replace(checked.relation, relation=table, row=exp.column(SPINE_ROW))
    return replace(checked, relation=relation, temporary=table)


def _stage_table(
    name: str | exp.Table,
    adapter: WarehouseAdapter,
    keys: Sequence[KeyColumn],
    time_candidates: Sequence[str],
    timestamp_column: str | None,
    *,
    description: str = "",
    exclude: str | None = None,
) -> StagedSpine:
    table = name if isinstance(name, exp.Table) else exp.to_table(name, dialect=adapter.dialect)
    if not table.db:
        table.set("db", exp.to_identifier(adapter.schema))
    description = description or f"spine table {table.sql(adapter.dialect)}"
    types = adapter.table_columns(table)
    if types is not None and exclude:
        types = {column: kind for column, kind in types.items() if column != exclude}
    if types is None:
        raise ConfigError(f"{description} does not exist on the target: check the name, or pass a .parquet/.csv path")
    check_reserved(types, description)
    columns: dict[str, str | None] = {column: sql_family(kind, adapter.dialect) for column, kind in types.items()}
    key_columns = check_keys(columns, keys, description)
    time_column = find_time_column(columns, time_candidates, timestamp_column, description)
    time: exp.Expr = exp.column(dialects.identifier(time_column))
    if columns[time_column] == "timestamptz":
        time = dialects.utc_timestamp(time, adapter.dialect)
    relation = SpineRelation(relation=table, columns=tuple(types), time=time)
    return StagedSpine(relation, description, key_columns)


# -- checks ----------------------------------------------------------------------


def _check_names(names: Iterable[str], description: str) -> None:
    seen: dict[str, str] = {}
    names = list(names)
    check_reserved(names, description)
    for name in names:
        if name.lower() in seen:  # keys and the time column are found ignoring case: which one would it be?
            raise ConfigError(
                f"{description} has two columns named {seen[name.lower()]!r} and {name!r} "
                "(column names are matched ignoring case): rename or drop one"
            )
        seen[name.lower()] = name
