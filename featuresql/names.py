"""One rule for the names users give featuresql: schemas, source tables, spine and output tables.

Names are never spliced into SQL as text: sqlglot quotes every identifier that
needs it, so ``users_*``, ``Raw Data`` or ``users.v2`` are safe as written. What
is refused is what a quoted name cannot hold safely (a quote of any supported
dialect, a backslash, a control character such as a newline or NUL) and ``;``,
which no table name needs and every injected statement does. A table name given
as text (``--spine``, ``--out table:NAME``) must parse as a table reference of
at most three parts in the target's dialect, and nothing more.
"""

from __future__ import annotations

import re
from pathlib import Path

import sqlglot
from sqlglot import exp

from featuresql.errors import ConfigError

COLUMN_NAME = re.compile(r"^[^\W\d]\w*$")  # a column featuresql names (a window feature): any letters, unquoted
_UNSAFE = re.compile(r"[\"`'\\;\x00-\x1f\x7f]")
_TABLE_PARTS = ("this", "db", "catalog")


def unsafe_character(name: str) -> str | None:
    """The first character of ``name`` that a quoted identifier cannot hold safely (None: it is safe)."""
    found = _UNSAFE.search(name)
    return found.group() if found else None


def check_identifier(name: str, what: str, *, path: Path | None = None, line: int | None = None) -> None:
    """Refuse a schema or table identifier (quoted by sqlglot when rendered) that is unsafe to quote."""
    char = unsafe_character(name)
    if char is not None:
        raise ConfigError(
            f"{what} {name!r} contains {char!r}, which a name cannot hold: quotes, backslashes, ';' and "
            "control characters are refused (other characters are quoted as needed)",
            path=path,
            line=line,
        )


def parse_table_name(name: str, dialect: str, what: str) -> exp.Table:
    """``name`` as ``[catalog.][schema.]table`` in ``dialect`` (quoted parts as the dialect quotes them).

    Refused unless it parses as a bare table reference: no alias, no clause, no second
    statement, no table function, at most three parts, and no part that is unsafe to quote.
    """
    table = _bare_table(name, dialect)
    if table is None:
        example = exp.to_identifier("My Table", quoted=True).sql(dialect)
        raise ConfigError(
            f"{what} is not a table name: write [catalog.][schema.]table, quoting a name with other characters "
            f"as {dialect} does (e.g. {example}), or give a .parquet/.csv path"
        )
    return table


def _bare_table(name: str, dialect: str) -> exp.Table | None:
    try:
        table = sqlglot.parse_one(name, into=exp.Table, dialect=dialect)
    except Exception:  # ParseError, TokenError: not a table name at all
        return None
    if not isinstance(table, exp.Table) or table.comments:
        return None
    given = {key: value for key, value in table.args.items() if value}
    if "this" not in given or not set(given) <= set(_TABLE_PARTS):
        return None  # an alias, a clause, a table function, a fourth part, ...
    safe = all(isinstance(part, exp.Identifier) and unsafe_character(part.name) is None for part in given.values())
    return table if safe else None
