"""The types of on-demand expressions and DuckDB's rules for them (``featuresql.sql.expressions``).

A type is ``int32``/``int64``, ``decimal(p,s)``, ``float``, ``boolean``, ``string``,
``timestamp``, ``date`` or ``null``; an operation's type follows DuckDB's rules, which the
evaluator's overflow checks depend on.
"""

from __future__ import annotations

from sqlglot import exp

# TINYINT and SMALLINT are left out: DuckDB narrows integer literals to them (j + 1 is a TINYINT),
# which the types here do not follow yet; FLOAT (32 bits) likewise.
_INTEGER_BITS = {exp.DataType.Type.INT: 32, exp.DataType.Type.BIGINT: 64}
_INTEGER_DIGITS = {8: 3, 16: 5, 32: 10, 64: 19}


def kind_of(type_name: str) -> str:
    """The expression type of a DuckDB column type (``BIGINT`` -> ``int64``); ``other`` if unsupported."""
    try:
        data_type = exp.DataType.build(type_name, dialect="duckdb")
    except Exception:  # sqlglot raises ParseError or ValueError for what is not a type
        return "other"
    if data_type.this in _INTEGER_BITS:
        return f"int{_INTEGER_BITS[data_type.this]}"
    if data_type.this == exp.DataType.Type.DECIMAL:
        numbers = [int(e.name) for e in data_type.expressions] or [18, 3]
        return decimal_type(numbers[0], numbers[1] if len(numbers) > 1 else 0)
    if data_type.this == exp.DataType.Type.DOUBLE:
        return "float"
    if data_type.this in exp.DataType.TEXT_TYPES:
        return "string"
    if data_type.this == exp.DataType.Type.BOOLEAN:
        return "boolean"
    if data_type.this in (exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPNTZ, exp.DataType.Type.DATETIME):
        return "timestamp"
    if data_type.this == exp.DataType.Type.DATE:
        return "date"
    return "other"


def is_number(kind: str) -> bool:
    return kind.startswith(("int", "decimal")) or kind == "float"


def decimal_type(precision: int, scale: int) -> str:
    return f"decimal({min(precision, 38)},{scale})"


def precision_scale(kind: str) -> tuple[int, int]:
    """A decimal's (precision, scale); an integer as the decimal DuckDB converts it to."""
    if kind.startswith("int"):
        return _INTEGER_DIGITS[int(kind[3:])], 0
    precision, scale = kind[8:-1].split(",")
    return int(precision), int(scale)


def arithmetic_type(op: str, left: str, right: str) -> str:
    if "float" in (left, right):
        return "float"
    if left.startswith("int") and right.startswith("int"):
        return f"int{max(int(left[3:]), int(right[3:]))}"
    (p1, s1), (p2, s2) = precision_scale(left), precision_scale(right)
    if op in ("add", "sub"):
        scale = max(s1, s2)
        return decimal_type(max(p1 - s1, p2 - s2) + scale + 1, scale)
    if op == "mul":
        scale, width = s1 + s2, p1 + p2
        if width > 18 and p1 <= 18 and p2 <= 18 and scale <= 18:
            width = 18  # computed in 64 bits, with an overflow check at 18 digits
        return decimal_type(width, scale)
    if max(p1 - s1, p2 - s2) + max(s1, s2) > 38:
        return "float"  # DuckDB's % of decimals that fit no common DECIMAL is a double
    return supertype([left, right])  # %


def supertype(kinds: list[str]) -> str:
    """The one type of several numbers: a float wins, then a decimal wide enough for each."""
    if "float" in kinds:
        return "float"
    if all(kind.startswith("int") for kind in kinds):
        return f"int{max(int(kind[3:]) for kind in kinds)}"
    pairs = [precision_scale(kind) for kind in kinds]
    digits, scale = max(p - s for p, s in pairs), max(s for _, s in pairs)
    if digits + scale > 38:  # DuckDB keeps the integer digits and gives up scale
        scale = max(0, 38 - digits)
    return decimal_type(digits + scale, scale)
