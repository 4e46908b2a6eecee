"""Freshness (dbt's source freshness): is the newest row of a source or model recent enough?

``freshness: {warn_after: 2h, error_after: 1d, loaded_at_field: ..., filter: ...}``
on a source (or one of its tables: the table's block replaces the source's) or in
a model's config gives one test each, ``freshness_<source>_<table>`` or
``freshness_<model>``. ``featuresql freshness`` runs just these cases through the
test runner (``only_kind="freshness"``), so ``featuresql test`` and it print,
time and record them the same way (run_results.json, exit code 1 on an error).

Semantics:

- The age is ``now - newest``, ``newest`` being ``max(loaded_at_field)`` over the
  rows ``filter`` keeps (a SQL condition in the project dialect, transpiled to
  the target's). ``loaded_at_field`` (a column or a SQL expression) defaults to
  the source table's, then the source's, then its ``event_time``; for a model, to
  its timestamp column.
- A window model with neither ``loaded_at_field`` nor ``filter`` is measured by
  the newest boundary its interval state records as computed, not by
  ``max(ts)``: its table only holds a row where some entity's value changed, so
  a quiet period leaves ``max(ts)`` behind a model that is up to date, while
  the state moves with every run. The newest computable boundary is
  ``now - data_delay`` rounded down to the grain, so limits should allow the
  grain, the delay and the run schedule.
- Older than ``error_after``: a failure of severity error; older than
  ``warn_after``: a warning; exactly at a limit passes (dbt's "older than").
  A block with neither limit checks nothing (so a table can opt out of its
  source's freshness with ``freshness: {}``).
- No row at all (an empty table, nothing through the filter, or only NULL
  times) is older than any limit: it fails at the highest severity configured.
- Times are UTC: zone-less values are read as UTC, zoned ones (BigQuery's
  TIMESTAMP) converted, a DATE is its midnight.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from featuresql.compile.models import CompiledModel, CompiledProject
from featuresql.errors import ConfigError, ExecutionError, closest
from featuresql.project.config import Freshness
from featuresql.project.loader import ModelFile, Project, Source
from featuresql.project.yamlfile import line_of
from featuresql.run import state
from featuresql.testing.cases import Check, Outcome, Severity, TestCase, TestEnv
from featuresql.times import utc

_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_NEWEST = "newest"
_ROWS = "row_count"


@dataclass(frozen=True)
class _Measured:
    """What one freshness test reads, and its limits."""

    what: str  # "source bank.transactions" or "model user_balances", for messages
    relation: exp.Table
    limits: Freshness
    field: exp.Expr | None  # None: the newest computed boundary from the interval state
    condition: exp.Expr | None = None
    field_text: str = ""  # as written, for messages
    filter_text: str = ""
    project: str = ""  # the state's project name (state-measured window models)
    model: str = ""
    grain: int = 0

    @property
    def is_model(self) -> bool:
        return self.what.startswith("model ")


def freshness_cases(project: Project, compiled: CompiledProject) -> list[TestCase]:
    """One case per source table and per compiled model whose freshness sets a limit.

    Raises ConfigError (file:line) for a freshness with nothing to measure, an
    unknown loaded_at_field column, or a filter that does not parse.
    """
    cases = [_source_case(project, source) for source in project.sources.values() if _limited(source.freshness)]
    for name, model in compiled.models.items():
        found = _model_freshness(project.models[name], model)
        if found is not None and _limited(found[0]):
            cases.append(_model_case(project, model, *found))
    return cases


def _limited(freshness: Freshness | None) -> bool:
    return freshness is not None and (freshness.warn_after is not None or freshness.error_after is not None)


# -- building the cases ---------------------------------------------------------------------


def _source_case(project: Project, source: Source) -> TestCase:
    limits = source.freshness
    assert limits is not None
    table_level = source.spec is not None and source.spec.freshness is not None
    line = line_of(source.raw, ("freshness",)) if table_level else source.line
    text = limits.loaded_at_field or source.loaded_at_field or source.event_time
    if text is None:
        opt_out = "" if table_level else ", or opt the table out of its source's freshness with freshness: {}"
        raise ConfigError(
            f"source {source.key} has freshness but no time to measure it by: set loaded_at_field "
            f"(on the table, the source or the freshness block) or event_time{opt_out}",
            path=source.path,
            line=line,
        )
    dialect = project.config.dialect
    field = _parse(text, dialect, f"source {source.key}: loaded_at_field", source.path, line)
    _check_column(field, list(source.columns), f"source {source.key}: loaded_at_field", source.path, line)
    measured = _Measured(
        what=f"source {source.key}",
        relation=source.relation,
        limits=limits,
        field=field,
        condition=_condition(limits, dialect, f"source {source.key}", source.path, line),
        field_text=text,
        filter_text=limits.filter or "",
    )
    return TestCase(
        name=f"freshness_{source.source_name}_{source.name}",
        kind="freshness",
        test_type="data",
        check=_check(measured),
        sources=(source.key,),
        severity=_top_severity(limits),
        path=source.path,
        line=line,
        description=f"{measured.what} is fresh: {_limits_text(limits)}",
    )


def _model_freshness(file: ModelFile, model: CompiledModel) -> tuple[Freshness, Path, int | None] | None:
    """A model's freshness (``config()`` over its YAML) and where it was written, for errors."""
    freshness = model.settings.freshness
    if freshness is None:
        return None
    in_yaml = file.spec is not None and "freshness" in file.spec.config
    if in_yaml and file.spec_path is not None:
        return freshness, file.spec_path, line_of(file.spec_config, ("freshness",)) or file.spec_line
    return freshness, file.path, None


def _model_case(project: Project, model: CompiledModel, limits: Freshness, path: Path, line: int | None) -> TestCase:
    what = f"model {model.name}"
    dialect = project.config.dialect
    text = limits.loaded_at_field or model.settings.timestamp
    measured: _Measured
    if model.window is not None and limits.loaded_at_field is None and limits.filter is None:
        measured = _Measured(
            what, model.relation, limits, None, project=project.name, model=model.name, grain=model.settings.grain
        )
    elif text is None:
        raise ConfigError(
            f"{what} has freshness but no time to measure it by: set freshness.loaded_at_field "
            "or config(timestamp=...)",
            path=path,
            line=line,
        )
    else:
        field = _parse(text, dialect, f"{what}: loaded_at_field", path, line)
        columns = [] if "*" in model.columns else list(model.columns)
        _check_column(field, columns, f"{what}: loaded_at_field", path, line)
        condition = _condition(limits, dialect, what, path, line)
        measured = _Measured(what, model.relation, limits, field, condition, text, limits.filter or "")
    return TestCase(
        name=f"freshness_{model.name}",
        kind="freshness",
        test_type="data",
        check=_check(measured),
        models=(model.name,),
        severity=_top_severity(limits),
        path=path,
        line=line,
        description=f"{what} is fresh: {_limits_text(limits)}",
    )


def _condition(limits: Freshness, dialect: str, what: str, path: Path, line: int | None) -> exp.Expr | None:
    if limits.filter is None:
        return None
    return _parse(limits.filter, dialect, f"{what}: freshness filter", path, line)


def _parse(text: str, dialect: str, what: str, path: Path, line: int | None) -> exp.Expr:
    try:
        parsed = sqlglot.parse_one(text, read=dialect)
    except (ParseError, TokenError):
        parsed = None
    if parsed is None or isinstance(parsed, exp.Query):
        raise ConfigError(f"{what}: cannot parse {text!r} as a {dialect} SQL expression", path=path, line=line)
    return parsed


def _check_column(field: exp.Expr, columns: list[str], what: str, path: Path, line: int | None) -> None:
    """A bare column name must be one of ``columns`` (when they are known)."""
    if not columns or not isinstance(field, exp.Column) or field.table:
        return
    if field.name.lower() not in columns:
        raise ConfigError(f"{what}: unknown column {field.name!r}{closest(field.name, columns)}", path=path, line=line)


def _top_severity(limits: Freshness) -> Severity:
    return "error" if limits.error_after is not None else "warn"


# -- running them ---------------------------------------------------------------------------


def _check(measured: _Measured) -> Check:
    def check(env: TestEnv) -> Outcome:
        query = _state_query(measured) if measured.field is None else _newest_query(measured)
        sql = query.sql(env.context.dialect, pretty=True)
        row = _fetch_one(env, query, measured)
        newest = _newest_time(row[_NEWEST], measured)
        if newest is None:
            return _never(measured, row.get(_ROWS), sql)
        return judge(measured.limits, env.now, newest, sql, subject=_subject(measured))

    return check


def _newest_query(measured: _Measured) -> exp.Select:
    assert measured.field is not None
    query = exp.select(
        exp.alias_(exp.Max(this=measured.field.copy()), _NEWEST), exp.alias_(exp.Count(this=exp.Star()), _ROWS)
    ).from_(measured.relation.copy())
    return query.where(measured.condition.copy()) if measured.condition is not None else query


def _state_query(measured: _Measured) -> exp.Select:
    """The end of the newest interval the state records as computed (``hi``, epoch seconds)."""
    return (
        exp.select(exp.alias_(exp.Max(this=exp.column("hi")), _NEWEST))
        .from_(state.table("intervals"))
        .where(
            exp.and_(
                exp.column("project").eq(exp.Literal.string(measured.project)),
                exp.column("model").eq(exp.Literal.string(measured.model)),
            )
        )
    )


def _fetch_one(env: TestEnv, query: exp.Select, measured: _Measured) -> dict[str, Any]:
    adapter = env.context.adapter
    table = state.table("intervals") if measured.field is None else measured.relation
    try:
        rows = adapter.fetch_arrow(query).to_pylist()
    except ExecutionError:
        if adapter.table_columns(table) is None:
            raise _no_table(env, measured) from None
        raise
    return {key.lower(): value for key, value in rows[0].items()}


def _no_table(env: TestEnv, measured: _Measured) -> ConfigError:
    target = env.context.target_name
    if not measured.is_model:
        where = measured.relation.sql(env.context.dialect)
        return ConfigError(f"{measured.what}: table {where} does not exist on target {target!r}")
    return ConfigError(f"{measured.what} has not been built on target {target!r}: run `featuresql run` first")


def _never(measured: _Measured, rows: Any, sql: str) -> Outcome:
    """No newest time at all: older than any limit."""
    if measured.field is None:
        found = f"no computed interval: run `featuresql run --select {measured.model}`"
    elif rows:
        found = f"{measured.field_text} is NULL in all {rows:,} rows"
    elif measured.condition is not None:
        found = f"no rows where {measured.filter_text}"
    else:
        found = "no rows"
    limits = measured.limits
    severity = _top_severity(limits)
    limit = limits.error_after if severity == "error" else limits.warn_after
    return Outcome(1, f"{measured.what}: {found}, {severity} after {_words(limit or 0)}", sql=sql, severity=severity)


def judge(limits: Freshness, now: datetime, newest: datetime, sql: str | None = None, *, subject: str) -> Outcome:
    """The outcome for a ``newest`` time at ``now`` (both UTC).

    >>> judge(Freshness(error_after=86400), datetime(2026, 7, 3, 4, tzinfo=UTC),
    ...       datetime(2026, 6, 30, tzinfo=UTC), subject="newest row").message
    'newest row 3d 4h old (2026-06-30 00:00), error after 1d'
    """
    age = int((now - newest).total_seconds())
    seen = f"{subject} {_age_text(age)} ({_moment(newest)})"
    if limits.error_after is not None and age > limits.error_after:
        return Outcome(1, f"{seen}, error after {_words(limits.error_after)}", sql=sql, severity="error")
    if limits.warn_after is not None and age > limits.warn_after:
        return Outcome(1, f"{seen}, warn after {_words(limits.warn_after)}", sql=sql, severity="warn")
    return Outcome(0, f"{seen}, {_limits_text(limits)}", sql=sql)


def _subject(measured: _Measured) -> str:
    return "newest computed boundary" if measured.field is None else "newest row"


def _age_text(age: int) -> str:
    return f"{_words(-age)} in the future" if age < 0 else f"{_words(age)} old"


def _limits_text(limits: Freshness) -> str:
    parts = []
    if limits.warn_after is not None:
        parts.append(f"warn after {_words(limits.warn_after)}")
    if limits.error_after is not None:
        parts.append(f"error after {_words(limits.error_after)}")
    return ", ".join(parts)


def _words(seconds: int) -> str:
    """A duration in its two largest non-zero units, cut not rounded: 273600 -> '3d 4h', 86401 -> '1d 1s'."""
    parts = []
    for suffix, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{suffix}")
    return " ".join(parts[:2]) or "0s"


def _moment(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S").removesuffix(":00")


def _newest_time(value: Any, measured: _Measured) -> datetime | None:
    """The fetched ``newest`` as an aware UTC datetime (a state's ``hi`` is one grain past the boundary)."""
    if value is None:
        return None
    if measured.field is None:
        return datetime.fromtimestamp(int(value) - measured.grain, UTC)
    return _utc(value)


def _utc(value: Any) -> datetime:
    """A time as an aware UTC datetime: naive values are UTC, a DATE is its midnight."""
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise ExecutionError(f"freshness: expected a timestamp or a date, got {type(value).__name__} ({value!r})")
