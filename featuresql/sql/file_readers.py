"""DuckDB's readers of data files: which reader a file takes, the call reading it, and what the
declared type of each column may be, given what the file holds.

One place for the file formats featuresql reads (file sources, ``init --from``,
``Context.scratch``): parquet, CSV (``.csv``, ``.tsv``, ``.txt``) and JSON
(``.json``, ``.jsonl``, ``.ndjson``), optionally compressed (``.gz``, ``.zst``).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp

from featuresql.sql.types import parse_type, sql_family

READERS = {"parquet": "read_parquet", "csv": "read_csv", "json": "read_json"}
_EXTENSIONS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "csv", ".txt": "csv"}
_EXTENSIONS |= {".json": "json", ".jsonl": "json", ".ndjson": "json"}
# A file column of the first family may be read as a declared column of the second (text is parsed
# as the declared type; a number as a wider number). Reading a zoned time as a zone-less one would
# drop its offset, and text as anything but text may not parse: those are refused before any read.
_NUMBERS = {"integer", "decimal", "float"}
_READABLE_AS = {
    "integer": _NUMBERS,
    "decimal": {"decimal", "float"},
    "float": {"decimal", "float"},
    "timestamp": {"timestamp", "timestamptz"},
    "timestamptz": {"timestamptz"},
    "date": {"date", "timestamp", "timestamptz"},
}
# A bare DECIMAL means the dialect's default precision and scale; DuckDB's own default is (18, 3).
_BARE_DECIMALS = {"bigquery": (38, 9), "snowflake": (38, 0)}


def format_of(location: str) -> str | None:
    """The format a location's extension names (None: unknown)."""
    stem = location.lower().removesuffix(".gz").removesuffix(".zst")
    return next((kind for suffix, kind in _EXTENSIONS.items() if stem.endswith(suffix)), None)


def literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def reader_call(
    location: str, kind: str, *, types: Mapping[str, str] | None = None, options: Mapping[str, object] = {}
) -> str:
    """``read_parquet('...', union_by_name = true, ...)``: every file of a glob read by column name.

    ``types`` (DuckDB type names) are the column types CSV and JSON are parsed as: for
    JSON they must cover every column (its reader takes all or none).
    """
    arguments = [literal(location), "union_by_name = true"]
    if types and kind == "csv":
        arguments.append(f"types = {_struct(types)}")
    elif types and kind == "json":
        arguments.append(f"columns = {_struct(types)}")
    arguments += [f"{name} = {literal(value)}" for name, value in options.items()]
    return f"{READERS[kind]}({', '.join(arguments)})"


def duckdb_type(kind: str, dialect: str) -> str:
    """A declared type (in the project dialect) as DuckDB spells it, a bare decimal with its dialect's
    precision and scale (BigQuery's NUMERIC is (38, 9), not DuckDB's (18, 3))."""
    data_type = parse_type(kind, dialect)
    if data_type is None:
        return kind
    if data_type.this == exp.DataType.Type.DECIMAL and not data_type.expressions and dialect in _BARE_DECIMALS:
        precision, scale = _BARE_DECIMALS[dialect]
        return f"DECIMAL({precision}, {scale})"
    return data_type.sql("duckdb")


def readable_as(found: str, declared: str, dialect: str) -> bool:
    """Whether a file column DuckDB reads as ``found`` may be declared ``declared``."""
    have, want = sql_family(found, "duckdb"), sql_family(declared, dialect)
    if want == "string" or have == want:
        return True
    return want in _READABLE_AS.get(have, set())


def _struct(types: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{literal(name)}: {literal(kind)}" for name, kind in types.items()) + "}"
