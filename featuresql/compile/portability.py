"""SQL constructs Snowflake and BigQuery reject, found in generated SQL.

Both emulators in the test suite run SQL through sqlglot onto DuckDB, so they
accept SQL the real services reject. This list catches, statically, DuckDB
spellings that leak through sqlglot's generators (each entry says why it is
invalid). The compiler runs it on every model compiled for those targets, so a
user's own SQL that does not transpile fails at compile time, and the golden-SQL
tests run it on everything featuresql generates.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Check = Callable[[str], str | None]  # the offending line, or None


def pattern(regex: str) -> Check:
    compiled = re.compile(regex, re.IGNORECASE)

    def check(sql: str) -> str | None:
        found = compiled.search(sql)
        if found is None:
            return None
        start = sql.rfind("\n", 0, found.start()) + 1
        end = sql.find("\n", found.end())
        return sql[start : end if end >= 0 else len(sql)].strip()

    return check


def asof_without_match_condition(sql: str) -> str | None:
    upper = sql.upper()
    return "ASOF JOIN" if "ASOF JOIN" in upper and "MATCH_CONDITION" not in upper else None


BOTH_INVALID: list[tuple[str, Check]] = [
    ("EPOCH_US/EPOCH_MS/EPOCH_NS() are DuckDB functions", pattern(r"\bEPOCH_(US|MS|NS)\s*\(")),
    ("EPOCH() is DuckDB's; use DATE_PART(EPOCH_...) / UNIX_SECONDS", pattern(r"\bEPOCH\s*\(")),
    ("MAKE_TIMESTAMP is DuckDB's", pattern(r"\bMAKE_TIMESTAMP\s*\(")),
    ("TIME_BUCKET is DuckDB's", pattern(r"\bTIME_BUCKET\s*\(")),
    (
        "TO_DAYS/TO_SECONDS/TO_MICROSECONDS build DuckDB intervals",
        pattern(r"\bTO_(DAYS|SECONDS|MICROSECONDS)\s*\("),
    ),
    ("GENERATE_SERIES is DuckDB/Postgres only", pattern(r"\bGENERATE_SERIES\s*\(")),
    ("INSERT OR REPLACE is DuckDB/SQLite only", pattern(r"\bINSERT\s+OR\s+REPLACE\b")),
    ("FILTER (WHERE ...) on aggregates is not supported", pattern(r"\bFILTER\s*\(\s*WHERE\b")),
    ("// is DuckDB's integer division (a comment in Snowflake)", pattern(r"//")),
    ("HUGEINT is a DuckDB type", pattern(r"\bHUGEINT\b")),
    ("DATE_BIN does not exist (sqlglot's spelling of DuckDB's time_bucket)", pattern(r"\bDATE_BIN\s*\(")),
    ("list_/struct_ functions are DuckDB's", pattern(r"\b(LIST|STRUCT)_[A-Z_]+\s*\(")),
]
INVALID: dict[str, list[tuple[str, Check]]] = {
    "snowflake": [
        *BOTH_INVALID,
        # Snowflake spells it ASOF JOIN ... MATCH_CONDITION (...); DuckDB's ASOF JOIN ... ON fails
        ("ASOF JOIN without MATCH_CONDITION", asof_without_match_condition),
        ("named WINDOW clauses are not supported", pattern(r"\bWINDOW\s+\w+\s+AS\s*\(")),
        (
            "DIV() does not exist (DIV0 is division by zero safe, not integer division)",
            pattern(r"\bDIV\s*\("),
        ),
        (
            "IGNORE NULLS goes after the parentheses: LAST_VALUE(x) IGNORE NULLS OVER",
            pattern(r"\bIGNORE\s+NULLS\s*\)"),
        ),
    ],  # `::` casts are valid Snowflake, so not listed
    "bigquery": [
        *BOTH_INVALID,
        ("ASOF JOIN does not exist", pattern(r"\bASOF\b")),
        (
            "TIME_TO_UNIX does not exist (sqlglot's spelling of DuckDB's epoch()); use UNIX_SECONDS",
            pattern(r"\bTIME_TO_UNIX\s*\("),
        ),
        (
            "a WEEK starts on Sunday in BigQuery, on Monday in DuckDB: truncate to WEEK(MONDAY)",
            pattern(r"TRUNC\s*\([^()]*,\s*WEEK\s*\)"),
        ),
        ("`::` casts are Postgres/DuckDB syntax", pattern(r"::")),
        (
            "RANGE frames need a numeric ORDER BY, not an INTERVAL offset",
            pattern(r"\bRANGE\s+BETWEEN\s+INTERVAL\b"),
        ),
        ("% is not an operator; use MOD()", pattern(r"%")),
        (
            "set operations need ALL or DISTINCT",
            pattern(r"\b(UNION|INTERSECT|EXCEPT)\b(?!\s+(ALL|DISTINCT)\b)"),
        ),
        ("DOUBLE is not a type; FLOAT64", pattern(r"\bAS\s+DOUBLE\b")),
        ("TRY_CAST does not exist; SAFE_CAST", pattern(r"\bTRY_CAST\s*\(")),
        (
            "IGNORE NULLS goes inside the parentheses: LAST_VALUE(x IGNORE NULLS)",
            pattern(r"\)\s*IGNORE\s+NULLS\b"),
        ),
        # Event times are TIMESTAMP (UNIX_MICROS takes TIMESTAMP only) and BigQuery has no
        # implicit TIMESTAMP/DATETIME comparison: `ts < CAST('...' AS DATETIME)` fails with
        # "No matching signature for operator <".
        (
            "a DATETIME literal compared with a TIMESTAMP event time",
            pattern(r"\bAS\s+DATETIME\s*\)"),
        ),
    ],
}
# QUALIFY is valid on both, and so are `IS NULL` expressions as ORDER BY keys.

_LITERALS = re.compile(r"'(?:[^'\\]|\\.|'')*'|/\*.*?\*/|--[^\n]*", re.DOTALL)


def code_only(sql: str) -> str:
    """The statement without string literals and comments (they may contain anything)."""
    return _LITERALS.sub("''", sql)


def unportable(sql: str, dialect: str) -> list[str]:
    """Why ``sql`` (generated for ``dialect``) would fail there: one line per construct found."""
    code = code_only(sql)
    return [
        f"{reason}: {found}" for reason, invalid in INVALID.get(dialect, []) if (found := invalid(code)) is not None
    ]
