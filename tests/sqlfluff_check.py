"""sqlfluff's Snowflake parser as a check of the SQL featuresql sends to Snowflake.

fakesnow runs Snowflake SQL on DuckDB and accepts much that Snowflake would not
parse; sqlfluff's Snowflake dialect is an independent grammar of Snowflake's SQL.
It parses, it does not resolve names or types: what it catches is syntax.

By default sqlfluff skips a file over 20 KB (``large_file_skip_byte_limit``): ``sqlfluff
parse`` says so on stderr and exits 0. Strings given to ``Linter.parse_string`` are not
subject to it in sqlfluff 4.5, but the limit is turned off here all the same, and a
negative control over 20 KB keeps it so.
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlfluff.core import Linter

DIALECT = "snowflake"
# The Snowflake adapter's bulk insert is a template of the driver's (pyformat) parameters;
# the connector inlines each row's values as literals, one multi-row INSERT per chunk.
_PARAMETER_TEMPLATE = re.compile(r"INSERT INTO [\w.\"]+ VALUES \((%s, )*%s\)")


@cache
def linter() -> Linter:
    from sqlfluff.core import FluffConfig, Linter

    return Linter(config=FluffConfig(overrides={"dialect": DIALECT, "large_file_skip_byte_limit": 0}))


def bind_parameters(sql: str) -> str:
    """A bulk-insert template with a literal in each ``%s``, as the driver sends it; other SQL unchanged."""
    return sql.replace("%s", "NULL") if _PARAMETER_TEMPLATE.fullmatch(sql) else sql


def parse_errors(sql: str) -> list[str]:
    """What sqlfluff's Snowflake dialect cannot lex or parse in ``sql`` (empty: it parses)."""
    parsed = linter().parse_string(sql)
    errors = [violation.desc() for violation in parsed.violations]
    if not errors and not any(variant.tree for variant in parsed.parsed_variants):
        errors.append("sqlfluff returned no parse tree")
    return errors
