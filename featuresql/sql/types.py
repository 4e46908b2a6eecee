"""One reading of SQL type names for every check: key kinds, event times, declared columns, spines.

A type is read in the project's (or target's) dialect first, then in the other
supported dialects, so a type written as the warehouse spells it (Snowflake's
``TIMESTAMP_TZ``, BigQuery's ``FLOAT64`` or ``BYTES``) is understood in a DuckDB
project too. Each reading returns a family (``integer``, ``decimal``, ``float``,
``string``, ``timestamp``, ``timestamptz``, ``date``, ``time``, ``boolean``; else
the type's own name), and the rules below are stated once in terms of families.
Arrow types (spines, query results) are read into the same families
(``arrow_family``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from featuresql.sql.engines import DIALECTS

if TYPE_CHECKING:
    import pyarrow as pa

_Type = exp.DataType.Type
_DATES = {_Type.DATE, _Type.DATE32}
_DECIMALS = {_Type.DECIMAL, _Type.BIGDECIMAL}
_ZONED = {_Type.TIMESTAMPTZ, _Type.TIMESTAMPLTZ}
_TIMES_OF_DAY = {_Type.TIME, _Type.TIMETZ}
_FAMILIES = (
    ("integer", exp.DataType.INTEGER_TYPES),
    ("float", exp.DataType.REAL_TYPES - _DECIMALS),
    ("decimal", _DECIMALS),
    ("string", exp.DataType.TEXT_TYPES),
    ("timestamptz", _ZONED),
    ("timestamp", exp.DataType.TEMPORAL_TYPES - _DATES - _ZONED - _TIMES_OF_DAY),
    ("date", _DATES),
    ("time", _TIMES_OF_DAY),
    ("boolean", {_Type.BOOLEAN}),
)
# What an event time can never be: text, numbers and booleans compare as such, not as instants,
# and a time of day is no instant.
_NOT_TIMES = {"string", "integer", "float", "decimal", "boolean", "time"}
# The families the online reader returns values as; any other is returned as a string.
_VALUE_FAMILIES = {"integer", "float", "decimal", "boolean", "timestamp", "date"}


def parse_type(kind: str, dialect: str) -> exp.DataType | None:
    """``kind`` read in ``dialect``, else in the first supported dialect that reads it (None: not a SQL type)."""
    for name in dict.fromkeys((dialect, *DIALECTS)):
        try:
            return exp.DataType.build(kind, dialect=name)
        except Exception:  # sqlglot raises ParseError or ValueError for what is not a type
            continue
    return None


def normalize_type(kind: str, dialect: str) -> str | None:
    """``kind`` as ``dialect`` spells it: unchanged if the dialect reads it, else converted (None: not a type)."""
    try:
        exp.DataType.build(kind, dialect=dialect)
        return kind
    except Exception:  # sqlglot raises ParseError or ValueError for what is not a type
        data_type = parse_type(kind, dialect)
    return None if data_type is None else data_type.sql(dialect)


def family_of(data_type: exp.DataType) -> str:
    """The family of a parsed type (its sqlglot name, lower case, if none of ours)."""
    return next((family for family, members in _FAMILIES if data_type.this in members), data_type.this.name.lower())


def is_exact_number(data_type: exp.DataType) -> bool:
    """An integer or decimal type: one whose sums are exact (DuckDB's BIT is a bit string, not a number)."""
    return data_type.this != _Type.BIT and family_of(data_type) in ("integer", "decimal")


def sql_family(kind: str, dialect: str) -> str:
    """The type family of a SQL type name (as a warehouse or project.yml spells it)."""
    spelled = kind.upper()
    if spelled.startswith("TIMESTAMP"):  # every precision, with or without a zone (TIMESTAMPTZ_NS, ...)
        zoned = "TIME ZONE" in spelled or spelled.startswith(("TIMESTAMPTZ", "TIMESTAMP_TZ", "TIMESTAMP_LTZ"))
        return "timestamptz" if zoned else "timestamp"
    data_type = parse_type(kind, dialect)
    return kind.lower() if data_type is None else family_of(data_type)


def key_kind(kind: str, dialect: str) -> str | None:
    """How the online store encodes an entity key of type ``kind``: ``integer`` or ``string``.

    Integers are the integer types and decimals of scale 0 (``NUMBER``, ``decimal(10)``,
    ``number(10, 0)``; a bare ``DECIMAL`` has the dialect's default scale: 0 in Snowflake,
    3 in DuckDB). Returns the type's family when it is neither, None when it is no SQL type.
    """
    data_type = parse_type(kind, dialect)
    if data_type is None:
        return None
    if data_type.this in _DECIMALS and data_type.expressions:  # precision given or defaulted by the dialect
        scale = data_type.expressions[1].name if len(data_type.expressions) > 1 else "0"
        return "integer" if scale == "0" else "decimal"
    return family_of(data_type)


def reader_key_kind(kind: str | None, dialect: str) -> str:
    """The kind the reader checks a key of type ``kind`` against: what project.yml's key check accepted."""
    return "integer" if kind is not None and key_kind(kind, dialect) == "integer" else "string"


def event_time_problem(data_type: exp.DataType | str, dialect: str, *, window: bool) -> str | None:
    """Why a column of this type cannot be an event time (None: it can, or its type is not known here).

    An event time is a timestamp, with or without a zone. A date is allowed for a snapshot
    model (a daily snapshot), refused for a window model: its events are tiled by instant.
    """
    family = sql_family(data_type, dialect) if isinstance(data_type, str) else family_of(data_type)
    if family in _NOT_TIMES or (window and family == "date"):
        return family
    return None


def value_family(kind: str, dialect: str) -> str:
    """The family of a warehouse column's values, read from the type name the warehouse reports.

    What the online reader returns them as: ``integer``, ``float``, ``decimal``,
    ``boolean``, ``timestamp`` (with or without a zone), ``date``, else ``string``.
    A decimal is an integer only when its name writes a scale of 0 (``NUMBER(38,0)``,
    ``DECIMAL(18, 0)``): Snowflake's information schema reports every NUMBER as a
    bare ``NUMBER``, whatever its scale.
    """
    data_type = parse_type(kind, dialect) if kind.strip() else None
    if data_type is None or data_type.this == _Type.BIT:  # DuckDB's BIT is a bit string, not a number
        return "string"
    family = family_of(data_type)
    if family == "decimal" and "," in kind and len(data_type.expressions) > 1:
        family = "integer" if data_type.expressions[1].name == "0" else family
    family = "timestamp" if family == "timestamptz" else family
    return family if family in _VALUE_FAMILIES else "string"


def arrow_family(kind: pa.DataType) -> str | None:
    """The family of an Arrow type (None: none of ours), as spines and query results are checked."""
    import pyarrow as pa

    checks = (
        ("integer", pa.types.is_integer),
        ("float", pa.types.is_floating),
        ("decimal", pa.types.is_decimal),
        ("string", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t)),
        ("timestamp", pa.types.is_timestamp),
        ("date", pa.types.is_date),
        ("boolean", pa.types.is_boolean),
    )
    return next((family for family, check in checks if check(kind)), None)
