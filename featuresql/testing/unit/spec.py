"""SQL unit tests as written in YAML: validated, with every error naming file and line.

``parse_unit_tests`` reads ``Project.unit_tests`` (entries of ``unit_tests:``
lists) into ``UnitTest`` objects. What can be checked without compiling is
checked here: unknown keys, the model and each input exist, column names of
sources that declare their columns, names unique across the project.
``check_compiled`` adds what needs the compiled project (inputs the model
really reads, expected columns, the run's time). The format is documented in
``featuresql.testing.unit.cases``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from featuresql.compile.models import CompiledProject
from featuresql.errors import ConfigError, closest
from featuresql.project.config import IDENTIFIER, Strict, UtcTimestamp, validate
from featuresql.project.loader import Project, YamlEntry
from featuresql.project.yamlfile import LineList, line_of

Format = Literal["dict", "csv"]


def _listed(value: Any) -> Any:
    """One timestamp where a list is expected reads as a list of one."""
    return value if isinstance(value, list) or value is None else [value]


class GivenSpec(Strict):
    input: str
    rows: Any = None  # a list of mappings (format: dict) or a CSV text with a header line (format: csv)
    format: Format = "dict"
    columns: dict[str, str] = {}  # column types, written in the project dialect


class LaterRunSpec(Strict):
    now: UtcTimestamp
    given: list[GivenSpec] = []


class ExpectSpec(Strict):
    rows: Any  # required: an empty table is written rows: []
    format: Format = "dict"
    at: Annotated[list[UtcTimestamp] | None, BeforeValidator(_listed)] = Field(None, min_length=1)


class UnitTestConfig(Strict):
    tags: list[str] = []
    enabled: bool = True
    meta: dict[str, Any] = {}


class UnitTestSpec(Strict):
    name: str
    model: str
    description: str = ""
    config: UnitTestConfig = UnitTestConfig()
    vars: dict[str, Any] = {}
    given: list[GivenSpec] = []
    now: UtcTimestamp | None = None
    then: list[LaterRunSpec] = []
    expect: ExpectSpec

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not IDENTIFIER.match(value):
            raise ValueError("must be an identifier: letters, digits and underscores")
        return value


class CsvText(str):
    """A value read from a CSV fixture: text whose type is decided by its column."""

    __slots__ = ()


@dataclass(frozen=True)
class Rows:
    """Fixture rows: lower-case column names in first-seen order; each row's YAML line."""

    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    lines: tuple[int | None, ...]


@dataclass(frozen=True)
class Given:
    """Rows for one input of the model: a source table or an upstream model."""

    kind: Literal["source", "ref"]
    name: str  # "bank.transactions" or a model name
    rows: Rows
    columns: dict[str, str]  # declared types (project dialect) overriding the inferred or declared ones
    line: int | None

    @property
    def label(self) -> str:
        return input_label(self.kind, self.name)


def input_label(kind: str, name: str) -> str:
    """An input as written in YAML: ``ref('model')`` or ``source('source', 'table')``."""
    if kind == "ref":
        return f"ref('{name}')"
    source, _, table = name.partition(".")
    return f"source('{source}', '{table}')"


@dataclass(frozen=True)
class Run:
    """One run of the test: its time (None: the default) and the rows that arrived before it."""

    now: datetime | None
    given: tuple[Given, ...]
    line: int | None


@dataclass(frozen=True)
class Expected:
    rows: Rows
    at: tuple[datetime, ...] | None  # naive UTC
    line: int | None


@dataclass(frozen=True)
class UnitTest:
    """One validated unit test."""

    name: str
    model: str
    description: str
    tags: tuple[str, ...]
    vars: dict[str, Any]
    runs: tuple[Run, ...]  # the first run, then each ``then:`` run
    expect: Expected
    path: Path
    line: int | None

    def error(self, message: str, line: int | None = None) -> ConfigError:
        return ConfigError(f"unit test {self.name!r}: {message}", path=self.path, line=line or self.line)

    @property
    def inputs(self) -> dict[tuple[str, str], list[Given]]:
        """Every given entry per input ``(kind, name)``, over all runs."""
        found: dict[tuple[str, str], list[Given]] = {}
        for run in self.runs:
            for given in run.given:
                found.setdefault((given.kind, given.name), []).append(given)
        return found


# -- parsing ------------------------------------------------------------------


def parse_unit_tests(project: Project) -> list[UnitTest]:
    """Every enabled unit test of the project; raises ConfigError on the first problem."""
    tests: list[UnitTest] = []
    seen: dict[str, tuple[Path, int | None]] = {}
    for entry in project.unit_tests:
        test, enabled = _parse(entry, project)
        if test.name in seen:
            path, line = seen[test.name]
            raise test.error(f"the name is used twice (also at {path.name}:{line}): unit test names are unique")
        seen[test.name] = (test.path, test.line)
        if enabled:
            tests.append(test)
    return tests


def _parse(entry: YamlEntry, project: Project) -> tuple[UnitTest, bool]:
    data = entry.data
    if not isinstance(data, dict):
        raise ConfigError(
            "a unit test is a mapping with name, model, given and expect", path=entry.path, line=entry.line
        )
    name = data.get("name")
    who = f"unit test {name!r}" if isinstance(name, str) else "unit test"
    try:
        spec = validate(UnitTestSpec, data, entry.path, line=entry.line)
    except ConfigError as exc:
        raise ConfigError(f"{who}: {exc.message}", path=exc.path, line=exc.line) from None
    if spec.model not in project.models:
        line = line_of(data, ("model",))
        raise ConfigError(
            f"{who}: unknown model {spec.model!r}{closest(spec.model, list(project.models))}",
            path=entry.path,
            line=line,
        )
    # The test without its runs and expectation yet: what errors about them name.
    test = UnitTest(
        name=spec.name,
        model=spec.model,
        description=spec.description.strip(),
        tags=tuple(spec.config.tags),
        vars=dict(spec.vars),
        runs=(),
        expect=Expected(Rows((), (), ()), None, None),
        path=entry.path,
        line=entry.line,
    )
    first = None if spec.now is None else _naive(spec.now)
    runs = [Run(first, _givens(test, project, spec.given, data, ("given",)), line_of(data, ("now",)))]
    for index, later in enumerate(spec.then):
        loc = ("then", index)
        runs.append(
            Run(_naive(later.now), _givens(test, project, later.given, data, (*loc, "given")), line_of(data, loc))
        )
    expect = _expected(test, spec.expect, data)
    test = replace(test, runs=tuple(runs), expect=expect)
    _check_times(test)
    return test, spec.config.enabled


def _naive(moment: datetime) -> datetime:
    """A UTC time as the naive datetime the engines return."""
    return moment.astimezone(UTC).replace(tzinfo=None)


_INPUT = re.compile(
    r"""^\s*(?:ref\(\s*(['"])(?P<model>\w+)\1\s*\)|"""
    r"""source\(\s*(['"])(?P<source>\w+)\3\s*,\s*(['"])(?P<table>\w+)\5\s*\))\s*$"""
)


def _givens(
    test: UnitTest, project: Project, specs: list[GivenSpec], data: Any, loc: tuple[Any, ...]
) -> tuple[Given, ...]:
    givens: list[Given] = []
    for index, spec in enumerate(specs):
        here = (*loc, index)
        given = _given(test, project, spec, data, here)
        if any(g.kind == given.kind and g.name == given.name for g in givens):
            raise test.error(f"{given.label} is given twice in one run: merge its rows", line_of(data, here))
        givens.append(given)
    return tuple(givens)


def _given(test: UnitTest, project: Project, spec: GivenSpec, data: Any, loc: tuple[Any, ...]) -> Given:
    line = line_of(data, (*loc, "input"))
    match = _INPUT.match(spec.input)
    if match is None:
        raise test.error(f"input {spec.input!r} must be ref('model') or source('source', 'table')", line)
    if match.group("model"):
        name = match.group("model")
        if name not in project.models:
            raise test.error(f"input ref({name!r}): unknown model{closest(name, list(project.models))}", line)
        kind: Literal["source", "ref"] = "ref"
    else:
        name = f"{match.group('source')}.{match.group('table')}"
        if name not in project.sources:
            raise test.error(f"input source {name!r} is not declared{closest(name, list(project.sources))}", line)
        kind = "source"
    if kind == "ref" and spec.columns:
        raise test.error(
            f"{input_label(kind, name)}: columns: types source inputs only; a model's table has "
            "the types its query gives",
            line_of(data, (*loc, "columns")),
        )
    rows = parse_rows(test, spec.rows, spec.format, data, (*loc, "rows"), what=spec.input)
    given = Given(kind, name, rows, {k.lower(): v for k, v in spec.columns.items()}, line)
    if kind == "source":
        _check_source_columns(test, given, project.sources[name].columns, data, loc)
    return given


def _check_source_columns(
    test: UnitTest, given: Given, declared: Mapping[str, Any], data: Any, loc: tuple[Any, ...]
) -> None:
    """A source that declares its columns has exactly those: a misspelled one is an error."""
    if not declared:
        return
    for column in given.columns:
        if column not in declared:
            raise test.error(
                f"{given.label} has no column {column!r}{closest(column, list(declared))}",
                line_of(data, (*loc, "columns", column)),
            )
    for column in given.rows.columns:
        if column not in declared:
            line = next((ln for row, ln in zip(given.rows.rows, given.rows.lines, strict=True) if column in row), None)
            raise test.error(f"{given.label} has no column {column!r}{closest(column, list(declared))}", line)


def _expected(test: UnitTest, spec: ExpectSpec, data: Any) -> Expected:
    rows = parse_rows(test, spec.rows, spec.format, data, ("expect", "rows"), what="expect")
    at = tuple(_naive(moment) for moment in spec.at) if spec.at else None
    return Expected(rows, at, line_of(data, ("expect",)))


def parse_rows(test: UnitTest, rows: Any, form: str, data: Any, loc: tuple[Any, ...], *, what: str) -> Rows:
    """Rows of a fixture: a list of mappings, or (format: csv) a CSV text with a header line."""
    line = line_of(data, loc)
    if rows is None:
        return Rows((), (), ())
    if form == "csv":
        if not isinstance(rows, str):
            raise test.error(f"{what}: with format: csv, rows is a CSV text (rows: |, then a header line)", line)
        return _csv_rows(test, rows, line, what)
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise test.error(
            f"{what}: rows must be a list of mappings such as {{user_id: 1, amount: 2.5}} "
            "(or a CSV text with format: csv)",
            line,
        )
    lines = rows.lines if isinstance(rows, LineList) else [line] * len(rows)
    parsed = [{str(k).lower(): v for k, v in row.items()} for row in rows]
    return Rows(_column_order(parsed), tuple(parsed), tuple(lines))


def _csv_rows(test: UnitTest, text: str, line: int | None, what: str) -> Rows:
    # A block scalar (rows: |) starts on the line after the key: header there, data after.
    records = [record for record in csv.reader(io.StringIO(text.strip("\n"))) if record]
    if not records:
        return Rows((), (), ())
    header = [name.strip().lower() for name in records[0]]
    rows, lines = [], []
    for number, record in enumerate(records[1:], start=2):
        row_line = line + number if line else None
        if len(record) != len(header):
            raise test.error(f"{what}: CSV row has {len(record)} values for {len(header)} columns", row_line)
        rows.append(
            {
                name: None if cell.strip() == "" else CsvText(cell.strip())
                for name, cell in zip(header, record, strict=True)
            }
        )
        lines.append(row_line)
    return Rows(tuple(header), tuple(rows), tuple(lines))


def _column_order(rows: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(column for row in rows for column in row))


def _check_times(test: UnitTest) -> None:
    if len(test.runs) > 1 and test.runs[0].now is None:
        raise test.error("with then:, set the first run's time with now:", test.runs[1].line)
    for before, after in zip(test.runs, test.runs[1:], strict=False):
        if before.now is not None and after.now is not None and after.now < before.now:
            raise test.error(f"then: runs go forward in time: {after.now} is before {before.now}", after.line)


# -- checks against the compiled project ----------------------------------------------


def check_compiled(test: UnitTest, compiled: CompiledProject) -> None:
    """What needs the compiled project: the inputs the model reads, output columns, the run's time."""
    model = compiled.models.get(test.model)
    if model is None and test.model in compiled.on_demand:
        raise test.error(
            f"model {test.model!r} is on-demand: it has no table for a unit test to expect rows of; "
            "test the models it reads, and its expressions with `featuresql extract` on a small spine"
        )
    if model is None:
        raise test.error(f"model {test.model!r} is disabled (enabled: false): enable it or remove the test")
    upstream = ancestors(compiled, test.model)
    sources = {s for name in upstream for s in compiled.models[name].sources}
    for (kind, name), entries in test.inputs.items():
        if (kind == "ref" and name not in upstream - {test.model}) or (kind == "source" and name not in sources):
            reads = [input_label("ref", m) for m in sorted(upstream - {test.model})]
            reads += [input_label("source", s) for s in sorted(sources)]
            raise test.error(
                f"model {test.model!r} does not read {entries[0].label}; it reads {', '.join(reads)}", entries[0].line
            )
        if kind == "ref":
            for given in entries:
                check_columns(test, given.rows, compiled.models[name].columns, f"{given.label} has no column")
    check_columns(test, test.expect.rows, model.columns, f"model {test.model!r} has no column")
    if test.expect.at and (not model.settings.keys or not model.settings.timestamp):
        raise test.error(
            f"expect.at needs a model with an entity and a timestamp; {test.model!r} has none", test.expect.line
        )


def check_columns(test: UnitTest, rows: Rows, columns: Sequence[str], problem: str) -> None:
    """Every column of ``rows`` is one of ``columns`` (unknown when they hold ``*``)."""
    if "*" in columns:
        return
    for column in rows.columns:
        if column not in columns:
            line = next((ln for row, ln in zip(rows.rows, rows.lines, strict=True) if column in row), None)
            raise test.error(f"{problem} {column!r}{closest(column, list(columns))}", line)


def ancestors(compiled: CompiledProject, model: str) -> set[str]:
    """``model`` and every model it reads, transitively."""
    found: set[str] = set()
    pending = [model]
    while pending:
        name = pending.pop()
        if name not in found:
            found.add(name)
            pending.extend(compiled.models[name].refs)
    return found


def run_times(test: UnitTest, compiled: CompiledProject, built: Sequence[str]) -> list[datetime]:
    """The time of each run; the first defaults to the last ``expect.at`` plus the model's data_delay."""
    first = test.runs[0].now
    if first is None:
        if test.expect.at:
            delay = compiled.models[test.model].settings.data_delay
            first = max(test.expect.at) + timedelta(seconds=delay)
        else:
            windows = [name for name in built if compiled.models[name].window is not None]
            if windows:
                raise test.error(
                    f"set now: (the time of the run): window model {windows[0]!r} is computed up to "
                    "it; or give expect.at, the boundaries to compare"
                )
            first = datetime(2000, 1, 1)  # snapshot models only: the time changes nothing
    return [first, *(run.now or first for run in test.runs[1:])]


__all__ = ["CsvText", "Given", "Rows", "Run", "UnitTest", "check_compiled", "parse_unit_tests"]
