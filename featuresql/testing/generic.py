"""Generic data tests declared in YAML, as dbt users write them.

Under a model, a source table or one of their columns::

    columns:
      - name: user_id
        tests:                       # or data_tests:
          - not_null
          - relationships: {to: source('bank', 'users'), field: user_id}
      - name: amount_sum_30d
        tests:
          - accepted_range: {min_value: 0, where: "count_30d > 0", severity: warn, limit: 5}
    tests:                           # on the model itself
      - unique: {columns: [user_id, ts]}
      - expression: {expression: "count_7d >= count_1d"}

Built in: ``not_null``, ``unique`` (a column, or ``columns:`` on the model),
``accepted_values`` (``values``, ``quote``), ``accepted_range`` (``min_value``,
``max_value``, ``inclusive`` default true), ``relationships`` (``to``: a ref()
or source(), ``field``), ``expression`` (a boolean SQL expression per row; on a
column it is appended to the column, as ``"> 0"``) and ``leakage`` (extract
models, ``featuresql.testing.leakage``). Any other name calls the project macro
``test_<name>(model, column_name, **arguments)`` (or a dbt ``{% test %}``
block), which returns a SELECT of the failing rows.

Every test also takes ``severity`` (``error`` or ``warn``), ``where`` (a SQL
filter on the tested rows), ``limit`` (failing rows shown, default 10) and
``name``, flat or under ``config:``. NULLs are left to ``not_null``: the other
tests pass a NULL value, as dbt's do, except ``unique`` on several columns,
where NULL counts as a value (as dbt_utils' unique_combination_of_columns).
``where:`` and ``expression:`` are rendered with Jinja (``var()``...) first. A failing row of ``expression`` is one
where the expression is false (NULL passes, as dbt_utils' expression_is_true).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from sqlglot import exp

from featuresql.errors import CompileError, ConfigError, closest
from featuresql.project.config import Strict, validate
from featuresql.sql import dialects
from featuresql.testing.cases import Check, Outcome, Severity, TestCase, TestEnv
from featuresql.testing.failing import failing_rows_check
from featuresql.testing.rendering import TestRenderer

BUILTIN = ("not_null", "unique", "accepted_values", "accepted_range", "relationships", "expression", "leakage")
CONFIG_KEYS = ("severity", "where", "limit", "name", "config", "tags", "description")
DEFAULT_LIMIT = 10
NOUNS = {"unique": "duplicated value", "accepted_values": "unaccepted value"}  # their failing rows are groups
_PLACEHOLDER = "__featuresql_tested_column"
_REF = re.compile(r"^\s*ref\(\s*['\"](\w+)['\"]\s*\)\s*$")
_SOURCE = re.compile(r"^\s*source\(\s*['\"](\w+)['\"]\s*,\s*['\"](\w+)['\"]\s*\)\s*$")


class TestConfig(Strict):
    severity: Literal["error", "warn"] = "error"
    where: str | None = None
    limit: int = Field(DEFAULT_LIMIT, ge=0)
    name: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    tags: list[str] = []
    description: str = ""


class NoArguments(Strict):
    pass


class UniqueArguments(Strict):
    columns: list[str] | None = Field(None, min_length=1)


class AcceptedValues(Strict):
    values: list[Any] = Field(min_length=1)
    quote: bool = True


class AcceptedRange(Strict):
    min_value: Any = None
    max_value: Any = None
    inclusive: bool = True


class Relationships(Strict):
    to: str
    field: str


class Expression(Strict):
    expression: str


ARGUMENTS: dict[str, type[Strict]] = {
    "not_null": NoArguments,
    "unique": UniqueArguments,
    "accepted_values": AcceptedValues,
    "accepted_range": AcceptedRange,
    "relationships": Relationships,
    "expression": Expression,
    "leakage": NoArguments,
}


@dataclass(frozen=True)
class Declared:
    """One test entry of a YAML file, parsed: which test, on what, with which arguments."""

    test: str
    arguments: dict[str, Any]
    config: TestConfig
    owner: str  # a model name, or a source key "bank.transactions"
    is_source: bool
    relation: exp.Table
    column: str | None
    columns: tuple[str, ...] | None  # the owner's known columns (None: unknown)
    path: Path
    line: int | None


def parse_entry(
    entry: Any, where: tuple[str, bool, exp.Table, str | None, tuple[str, ...] | None], path: Path, line: int | None
) -> Declared:
    """A YAML test entry (``not_null`` or ``{accepted_values: {...}}``) as a Declared test."""
    owner, is_source, relation, column, columns = where
    raw: Any
    if isinstance(entry, str):
        test, raw = entry, {}
    elif isinstance(entry, dict) and len(entry) == 1:
        test, raw = next(iter(entry.items()))
        raw = raw if raw is not None else {}
        if not isinstance(raw, dict):
            raise ConfigError(
                f"test {test!r}: expected a mapping of arguments, e.g. {{values: [a, b]}}", path=path, line=line
            )
    else:
        raise ConfigError(
            "a test is a name (- not_null) or a mapping with one key (- unique: {columns: [a, b]})",
            path=path,
            line=line,
        )
    settings = {k: raw[k] for k in raw if k in CONFIG_KEYS and k != "config"}
    nested = raw.get("config") or {}
    if not isinstance(nested, dict):
        raise ConfigError(f"test {test!r}: 'config' must be a mapping", path=path, line=line)
    config = validate(TestConfig, {**settings, **nested}, path, loc_prefix=(test,), line=line)
    arguments = {k: v for k, v in raw.items() if k not in CONFIG_KEYS}
    if test in ARGUMENTS:
        validate(ARGUMENTS[test], arguments, path, loc_prefix=(test,), line=line)
    return Declared(str(test), arguments, config, owner, is_source, relation, column, columns, path, line)


class GenericTests:
    """Turns Declared tests into TestCases for one project on one target."""

    def __init__(self, renderer: TestRenderer, leakage: Callable[[str], Check]):
        self.renderer = renderer
        self.leakage = leakage

    def case(self, declared: Declared) -> TestCase:
        self._check_columns(declared)
        check, related = self._check(declared)
        config = declared.config
        name = config.name or default_name(declared)
        owner_models = () if declared.is_source else (declared.owner,)
        owner_sources = (declared.owner,) if declared.is_source else ()
        models = tuple(r for r in related if "." not in r)
        sources = tuple(r for r in related if "." in r)
        return TestCase(
            name=name,
            kind=declared.test if declared.test in BUILTIN else f"custom:{declared.test}",
            test_type="data",
            check=check,
            models=tuple(dict.fromkeys((*owner_models, *models))),
            sources=tuple(dict.fromkeys((*owner_sources, *sources))),
            severity=config.severity,
            path=declared.path,
            line=declared.line,
            description=config.description,
            tags=tuple(config.tags),
        )

    def _check(self, declared: Declared) -> tuple[Check, tuple[str, ...]]:
        if declared.test == "leakage":
            if declared.is_source or declared.column is not None:
                raise ConfigError(
                    "the leakage test goes under a model's tests:, not a column or source",
                    path=declared.path,
                    line=declared.line,
                )
            try:
                return self.leakage(declared.owner), ()
            except ConfigError as exc:
                raise ConfigError(exc.message, path=declared.path, line=declared.line) from None
        query, related = self._query(declared)
        return failing_rows_check(query, declared.config.limit, NOUNS.get(declared.test, "failing row")), related

    def _query(self, declared: Declared) -> tuple[exp.Query, tuple[str, ...]]:
        builders = {
            "not_null": _not_null,
            "unique": _unique,
            "accepted_values": self._accepted_values,
            "accepted_range": _accepted_range,
            "expression": self._expression,
        }
        if declared.test == "relationships":
            return self._relationships(declared)
        if declared.test in builders:
            return builders[declared.test](declared, self._filtered(declared)), ()
        return self._custom(declared), ()

    def _accepted_values(self, declared: Declared, rows: exp.Select) -> exp.Query:
        return accepted_values(declared, rows, self.renderer.read_dialect)

    def _filtered(self, declared: Declared) -> exp.Select:
        """The tested rows: the relation, with the test's ``where``."""
        select = exp.select("*").from_(declared.relation.copy())
        if declared.config.where:
            select = select.where(self._condition(declared, declared.config.where, "where"))
        return select

    def _condition(self, declared: Declared, sql: str, what: str) -> exp.Expr:
        """A ``where:`` or ``expression:``: rendered with Jinja (``var()``...), then parsed in the project dialect."""
        context = self.renderer.context(declared.owner, declared.path, f"test {declared.test!r} {what}")
        try:
            rendered = self.renderer.render(sql, context)
        except CompileError as exc:
            raise CompileError(exc.message, path=declared.path, line=declared.line) from None
        return self.renderer.condition(rendered, declared.path, declared.line, f"test {declared.test!r} {what}")

    def _expression(self, declared: Declared, rows: exp.Select) -> exp.Query:
        text = str(declared.arguments["expression"])
        if declared.column is None:
            return rows.where(exp.Not(this=exp.paren(self._condition(declared, text, "expression"))))
        # On a column the expression continues it ("> 0"): parse it after a stand-in, then put the column there.
        condition = self._condition(declared, f"{_PLACEHOLDER} {text}", "expression")
        for stand_in in list(condition.find_all(exp.Column)):
            if stand_in.name == _PLACEHOLDER:
                stand_in.replace(exp.column(dialects.identifier(declared.column)))
        return rows.where(exp.Not(this=exp.paren(condition)))

    def _relationships(self, declared: Declared) -> tuple[exp.Query, tuple[str, ...]]:
        if declared.column is None:
            raise ConfigError("relationships goes under a column", path=declared.path, line=declared.line)
        parent, related, columns = self._target(declared, str(declared.arguments["to"]))
        field_name = str(declared.arguments["field"])
        if columns and field_name.lower() not in columns:
            raise ConfigError(
                f"relationships: {declared.arguments['to']} has no column {field_name!r}{closest(field_name, columns)}",
                path=declared.path,
                line=declared.line,
            )
        field = exp.column(field_name, "parent")
        child = exp.column(declared.column, "child")
        select = (
            exp.select(exp.alias_(child.copy(), "from_value"))
            .from_(exp.alias_(self._filtered(declared).subquery(), "child", table=True))
            .join(exp.alias_(parent, "parent", table=True), on=child.copy().eq(field.copy()), join_type="left")
            .where(exp.and_(child.copy().is_(exp.null()).not_(), field.copy().is_(exp.null())))
        )
        return select, related

    def _target(self, declared: Declared, to: str) -> tuple[exp.Table, tuple[str, ...], list[str]]:
        """The relation ``to`` names: ref('model') or source('name', 'table')."""
        compiled = self.renderer.compiled.models
        sources = self.renderer.project.sources
        if match := _REF.match(to):
            if match[1] not in compiled:
                raise ConfigError(
                    f"relationships: unknown model {match[1]!r}{closest(match[1], list(compiled))}",
                    path=declared.path,
                    line=declared.line,
                )
            columns = [c for c in compiled[match[1]].columns if c != "*"]
            return compiled[match[1]].relation.copy(), (match[1],), columns
        if match := _SOURCE.match(to):
            key = f"{match[1]}.{match[2]}"
            if key not in sources:
                raise ConfigError(
                    f"relationships: undeclared source {key!r}{closest(key, list(sources))}",
                    path=declared.path,
                    line=declared.line,
                )
            return sources[key].relation, (key,), list(sources[key].columns)
        raise ConfigError(
            f"relationships: 'to' must be ref('model') or source('source', 'table'), not {to!r}",
            path=declared.path,
            line=declared.line,
        )

    def _custom(self, declared: Declared) -> exp.Query:
        macro = f"test_{declared.test}"
        if macro not in self.renderer.macros.namespace:
            known = [*BUILTIN, *(m[5:] for m in self.renderer.macros.macro_names if m.startswith("test_"))]
            raise ConfigError(
                f"unknown test {declared.test!r}{closest(declared.test, known)}: built-in tests are "
                f"{', '.join(BUILTIN)}; a custom one is a macro test_{declared.test}(model, column_name) in macros/",
                path=declared.path,
                line=declared.line,
            )
        filtered = self._filtered(declared)
        model = filtered.subquery("tested") if declared.config.where else declared.relation.copy()
        context = self.renderer.context(declared.owner, declared.path, f"test {declared.test!r}")
        arguments = {"model": model.sql(self.renderer.read_dialect), **declared.arguments}
        if declared.column is not None:
            arguments["column_name"] = declared.column
        try:
            sql = self.renderer.call(macro, context, **arguments)
        except CompileError as exc:
            raise CompileError(exc.message, path=declared.path, line=declared.line) from None
        return self.renderer.query(sql, declared.path, f"test {declared.test!r}", line=declared.line)

    def _check_columns(self, declared: Declared) -> None:
        known = declared.columns
        if known is None or "*" in known:
            return
        named = [declared.column] if declared.column else []
        named += list(declared.arguments.get("columns") or []) if declared.test == "unique" else []
        for column in named:
            if column.lower() not in known:
                raise ConfigError(
                    f"test {declared.test!r}: {declared.owner} has no column {column!r}{closest(column, known)}",
                    path=declared.path,
                    line=declared.line,
                )


def _not_null(declared: Declared, rows: exp.Select) -> exp.Query:
    return rows.where(exp.column(_column(declared)).is_(exp.null()))


def _unique(declared: Declared, rows: exp.Select) -> exp.Query:
    columns = declared.arguments.get("columns") or ([declared.column] if declared.column else None)
    if not columns:
        raise ConfigError("unique on a model needs columns: [a, b]", path=declared.path, line=declared.line)
    keys = [exp.column(c) for c in columns]
    not_null = [k.copy().is_(exp.null()).not_() for k in keys] if len(keys) == 1 else []
    grouped = exp.select(*keys, exp.alias_(exp.Count(this=exp.Star()), "n_records")).from_(rows.subquery("tested"))
    if not_null:
        grouped = grouped.where(*not_null)
    return grouped.group_by(*(k.copy() for k in keys)).having(exp.Count(this=exp.Star()) > 1)


def accepted_values(declared: Declared, rows: exp.Select, dialect: str) -> exp.Query:
    column = exp.column(_column(declared))
    quote = declared.arguments.get("quote", True)
    values = [_accepted(v, quote, declared, dialect) for v in declared.arguments["values"]]
    outside = exp.Not(this=exp.In(this=column.copy(), expressions=values))
    return (
        exp.select(exp.alias_(column.copy(), "value"), exp.alias_(exp.Count(this=exp.Star()), "n_records"))
        .from_(rows.subquery("tested"))
        .where(exp.and_(column.copy().is_(exp.null()).not_(), outside))
        .group_by(column.copy())
    )


def _accepted_range(declared: Declared, rows: exp.Select) -> exp.Query:
    column = exp.column(_column(declared))
    low, high = declared.arguments.get("min_value"), declared.arguments.get("max_value")
    if low is None and high is None:
        raise ConfigError("accepted_range needs min_value, max_value or both", path=declared.path, line=declared.line)
    if low is not None and high is not None and _is_number(low) and _is_number(high) and low > high:
        raise ConfigError(
            f"accepted_range: min_value {low} is above max_value {high}", path=declared.path, line=declared.line
        )
    inclusive = declared.arguments.get("inclusive", True)
    bounds: list[exp.Expr] = []
    if low is not None:
        bounds.append((column.copy() >= _literal(low)) if inclusive else (column.copy() > _literal(low)))
    if high is not None:
        bounds.append((column.copy() <= _literal(high)) if inclusive else (column.copy() < _literal(high)))
    return rows.where(exp.Not(this=exp.paren(exp.and_(*bounds))))


def _accepted(value: Any, quote: bool, declared: Declared, dialect: str) -> exp.Expr:
    """A YAML value as SQL: numbers and booleans typed; strings quoted, or with ``quote: false`` SQL as written."""
    if not isinstance(value, str):
        return _literal(value)
    if quote:
        return exp.Literal.string(value)
    import sqlglot

    try:
        return sqlglot.parse_one(value, read=dialect)
    except Exception:
        raise ConfigError(
            f"accepted_values: cannot parse {value!r} as SQL (quote: false)", path=declared.path, line=declared.line
        ) from None


def _column(declared: Declared) -> str:
    if declared.column is None:
        raise ConfigError(
            f"{declared.test} goes under a column (columns: - name: ... tests: [...])",
            path=declared.path,
            line=declared.line,
        )
    return declared.column


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _literal(value: Any) -> exp.Expr:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def default_name(declared: Declared) -> str:
    """dbt-like: ``<test>_<owner>[_<column>]``; sources as ``source_<test>_<source>_<table>``."""
    owner = declared.owner.replace(".", "_")
    parts = [declared.test, owner]
    if declared.column:
        parts.append(declared.column)
    elif declared.test == "unique" and declared.arguments.get("columns"):
        parts.append("__".join(declared.arguments["columns"]))
    name = "_".join(parts)
    return f"source_{name}" if declared.is_source else name


def declared_tests(spec: Any, raw: Any, key_path: tuple[Any, ...]) -> list[tuple[Any, tuple[Any, ...]]]:
    """(entry, location in ``raw``) of the tests under ``tests:`` and ``data_tests:`` of a YAML entry."""
    found = []
    for key in ("tests", "data_tests"):
        for index, entry in enumerate(getattr(spec, key)):
            found.append((entry, (*key_path, key, index)))
    return found


__all__ = ["BUILTIN", "Declared", "GenericTests", "Outcome", "Severity", "TestEnv", "parse_entry"]
