"""Checks of a model's query against the declared column types: unknown columns, the timestamp's type.

The compiler qualifies the query once (``qualify`` with the known tables' columns);
these checks read that qualified query and say what is wrong in one line.
"""

from __future__ import annotations

import re

from sqlglot import exp

from featuresql.errors import CompileError, closest
from featuresql.project.loader import ModelFile
from featuresql.sql.types import event_time_problem, reader_key_kind

Schema = dict[str, dict[str, dict[str, str]]]  # db -> table -> column -> type, as qualify() reads it


def column_error(model: ModelFile, message: str, schema: Schema) -> CompileError:
    """sqlglot's qualify error as a one-line error naming the column (and the closest known one)."""
    found = re.search(r"Column '([^']+)' could not be resolved", message)
    line = re.search(r"Line: (\d+)", message)
    if not found:
        return CompileError(
            f"model {model.name!r}: {message.split('. Line')[0]}",
            path=model.path,
            line=int(line.group(1)) if line else None,
        )
    name = found.group(1).split(".")[-1]
    columns = {c for tables in schema.values() for cols in tables.values() for c in cols}
    if name.lower() in columns:  # it exists, but not where it is used
        problem = f"column {name!r} cannot be resolved here: check the FROM clause and table aliases"
    else:
        problem = f"unknown column {name!r}{closest(name, columns)}"
    return CompileError(
        f"model {model.name!r}: {problem}",
        path=model.path,
        line=int(line.group(1)) if line else None,
    )


def check_timestamp_type(
    model: ModelFile,
    query: exp.Query,
    checked: tuple[exp.Query, Schema],
    timestamp: str,
    dialect: str,
    *,
    window: bool,
) -> None:
    """The timestamp is a timestamp where the declared types say what it is (a date: snapshot models only).

    A string compares as text and a number as a number: tiles and point-in-time joins would be
    wrong or fail mid-run. ``checked`` is the qualified query and the schema it was qualified with.
    """
    found = wrong_event_time(*checked, timestamp, dialect, window=window)
    if found is not None:
        item = next((s for s in query.selects if s.alias_or_name.lower() == timestamp), query)
        raise CompileError(
            f"model {model.name!r}: the timestamp column {timestamp!r} is {found.sql(dialect)}, not a "
            f"timestamp: cast it, e.g. cast(... as timestamp) as {timestamp}",
            path=model.path,
            line=node_line(item),
        )


def wrong_event_time(
    qualified: exp.Query, schema: Schema, column: str, dialect: str, *, window: bool
) -> exp.DataType | None:
    """The type of the selected ``column`` of a qualified query, if it cannot be an event time.

    The type is what sqlglot infers from the declared column types; None when it can be an
    event time or is not known (a best-effort check: the engine has the last word).
    """
    found = selected_type(qualified, schema, column, dialect)
    return found if found is not None and event_time_problem(found, dialect, window=window) else None


def selected_type(qualified: exp.Query, schema: Schema, column: str, dialect: str) -> exp.DataType | None:
    """The type sqlglot infers for the selected ``column`` of a qualified query (None: not known)."""
    from sqlglot.optimizer.annotate_types import annotate_types

    try:
        annotated = annotate_types(qualified, schema=dict(schema), dialect=dialect)
    except Exception:  # a query sqlglot cannot type is left to the engine
        return None
    for item in annotated.selects:
        if item.alias_or_name.lower() == column:
            found = item.type
            unknown = found is None or found.this in (exp.DataType.Type.UNKNOWN, exp.DataType.Type.NULL)
            return None if unknown else found
    return None


def node_line(node: exp.Expr) -> int | None:
    """The first source line recorded on ``node`` or below it (None: none recorded)."""
    for candidate in (node, *node.find_all(exp.Expr)):
        line = candidate.meta.get("line") if candidate.meta else None
        if line:
            return int(line)
    return None


def check_online_model(
    model: ModelFile,
    query: exp.Query,
    checked: tuple[exp.Query, Schema] | None,
    keys: dict[str, str],
    reserved: frozenset[str],
    dialect: str,
) -> None:
    """An online model's columns can be served right: named, not reserved, keys typed as the entity's.

    ``keys`` are the entity's key columns and their declared types; ``reserved`` the item
    attribute names no feature may take. A key whose inferred type encodes differently
    online (a string where the entity says integer) would be written under one key and
    looked up under another: every read a miss.
    """
    stars = (s for s in query.selects if isinstance(s, exp.Star) or (isinstance(s, exp.Column) and s.is_star))
    star = next(stars, None)
    if star is not None:
        raise CompileError(
            f"online model {model.name!r} selects *: list its columns (each one is published as a feature)",
            path=model.path,
            line=node_line(star),
        )
    for item in query.selects:
        if item.alias_or_name.lower() in reserved:
            raise CompileError(
                f"online model {model.name!r} has a column named {item.alias_or_name!r}, which online items "
                f"reserve ({', '.join(sorted(reserved))}): rename it",
                path=model.path,
                line=node_line(item),
            )
    if checked is None:
        return
    for column, declared in keys.items():
        found = selected_type(*checked, column, dialect)
        if found is None or declared is None:
            continue
        if reader_key_kind(found.sql(dialect), dialect) != reader_key_kind(declared, dialect):
            item = next((s for s in query.selects if s.alias_or_name.lower() == column), query)
            raise CompileError(
                f"online model {model.name!r}: key {column!r} is {found.sql(dialect)} but the entity declares "
                f"{declared}: cast it (cast({column} as {declared}) as {column}) or fix the entity's key type",
                path=model.path,
                line=node_line(item),
            )
