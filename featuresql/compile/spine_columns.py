"""Which columns of a spine are the entity keys and the time: checked by name and type family.

A spine is any relation of keys, a time and other columns: a file or table given
to ``featuresql extract``, or an ``as_of_join`` spine known at compile time. Its
key columns are named as the entities' keys and its time column is chosen or
found by name; both are matched ignoring case, and their types are checked by
family (``featuresql.sql.types``) where they are known.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from featuresql.errors import ConfigError, closest
from featuresql.sql.point_in_time import RESERVED_PREFIX

TIME_COLUMNS = ("event_timestamp", "timestamp", "ts")


@dataclass(frozen=True)
class KeyColumn:
    """An entity key the spine must have, and the type family it must be of."""

    name: str
    family: str | None
    entity: str


def check_reserved(columns: Iterable[str], description: str) -> None:
    """Refuse spine columns named like the join's own (``__featuresql_...``): one would replace the other."""
    for name in columns:
        if name.lower().startswith(RESERVED_PREFIX):
            raise ConfigError(
                f"{description} has a column named {name!r}: names starting with {RESERVED_PREFIX!r} "
                "are reserved for featuresql's point-in-time join: rename it"
            )


def check_keys(columns: Mapping[str, str | None], keys: Sequence[KeyColumn], description: str) -> dict[str, str]:
    """The spine's column for each key (ignoring case); a family None is a type not known here."""
    by_lower = {name.lower(): name for name in columns}
    found = {}
    for key in keys:
        column = by_lower.get(key.name.lower())
        if column is None:
            raise ConfigError(
                f"{description} has no column {key.name!r}, the key of entity {key.entity!r}"
                f"{closest(key.name, list(columns))}: add it (the spine's key columns are named as the entity keys)"
            )
        family = columns[column]
        if (
            None not in (key.family, family)
            and family != key.family
            and not {family, key.family} <= {"integer", "decimal"}
        ):
            pandas_hint = " (pandas makes an integer column with missing values float: use dtype 'Int64')"
            raise ConfigError(
                f"{description}: column {column!r} is of type {family}, but entity {key.entity!r} keys "
                f"{key.name!r} as {key.family}: cast the column to {key.family}"
                + (pandas_hint if family == "float" and key.family == "integer" else "")
            )
        found[key.name] = column
    return found


def find_time_column(
    columns: Mapping[str, str | None], candidates: Sequence[str], chosen: str | None, description: str
) -> str:
    """The spine's time column: ``chosen``, else the first candidate name it has."""
    by_lower = {name.lower(): name for name in columns}
    if chosen is not None:
        column = by_lower.get(chosen.lower())
        if column is None:
            raise ConfigError(
                f"{description} has no column {chosen!r} (--timestamp-column){closest(chosen, list(columns))}"
            )
    else:
        names = dict.fromkeys([*candidates, *TIME_COLUMNS])
        column = next((by_lower[n] for n in names if n in by_lower), None)
        if column is None:
            raise ConfigError(
                f"{description} has no timestamp column (looked for {', '.join(names)}): "
                "name it with --timestamp-column (timestamp_column= in Python)"
            )
    family = columns[column]
    if family not in ("timestamp", "timestamptz", None):
        hint = "write ISO 8601 timestamps, all with or all without a zone" if family == "string" else "cast it"
        raise ConfigError(f"{description}: time column {column!r} is of type {family}, not a timestamp: {hint}")
    return column
