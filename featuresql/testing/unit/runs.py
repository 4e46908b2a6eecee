"""One unit test's tables and runs on one adapter (see ``featuresql.testing.unit.cases``).

``FixtureRun`` creates the fixture tables of the sources, then goes through
the models the tested one reads in dependency order: those built from the
fixtures go through ``run_models`` with interval state, as in ``featuresql
run``; a model whose rows the test gives gets an empty table from its own
query (its real column types), then those rows. Each ``then:`` run appends its
rows and runs the built models again, incrementally.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlglot import exp

from featuresql.adapters.base import WarehouseAdapter
from featuresql.compile.models import CompiledModel, CompiledProject
from featuresql.errors import ExecutionError, FeaturesqlError
from featuresql.project.loader import Project, Source
from featuresql.run import state
from featuresql.run.intervals import BEGINNING
from featuresql.run.planning import RunOptions, RunState
from featuresql.run.runner import run_models
from featuresql.run.statements import batch_query, create_table
from featuresql.testing.unit.diff import Row, as_of, table_rows
from featuresql.testing.unit.fixtures import create_table as create_fixture
from featuresql.testing.unit.fixtures import declared_type, family, infer_type, insert_rows
from featuresql.testing.unit.spec import Given, UnitTest, ancestors, check_columns, input_label, run_times

if TYPE_CHECKING:
    import pyarrow as pa


def fixture_name(source: Source) -> str:
    """The fixture table of a source: ``<source>__<table>`` in the scratch schema."""
    return f"{source.source_name}__{source.name}"


@dataclass(frozen=True)
class Plan:
    """Which tables a test needs, in dependency order, and how each is filled."""

    order: list[str]  # every model needing a table
    built: list[str]  # built from the fixtures by run_models
    given: set[str]  # models whose rows the test gives
    sources: list[str]  # sources read by any of them


def plan_tables(test: UnitTest, compiled: CompiledProject) -> Plan:
    """Every model the tested one reads gets a table: built from the fixtures unless a given model is
    in the way; models read only by given ones get empty tables (a given model's query reads them)."""
    given = {name for kind, name in test.inputs if kind == "ref"}
    built: set[str] = set()
    pending = [test.model]
    while pending:
        name = pending.pop()
        if name not in built and name not in given:
            built.add(name)
            pending.extend(compiled.models[name].refs)
    needed = ancestors(compiled, test.model)
    order = [name for name in compiled.models if name in needed]
    sources = sorted({s for name in needed for s in compiled.models[name].sources})
    return Plan(order, [name for name in order if name in built], given, sources)


ALL_TIME = (BEGINNING, 253402214400)  # to 9999-12-31, the latest day every engine's timestamps hold


def state_project(schema: str) -> str:
    """The project name a unit test's interval state is kept under (its ``as_of_join`` reads it)."""
    return f"unit__{schema}"


class FixtureRun:
    """One test's tables and runs on one adapter."""

    def __init__(
        self, test: UnitTest, project: Project, compiled: CompiledProject, adapter: WarehouseAdapter, schema: str
    ):
        self.test = test
        self.project = project
        self.compiled = compiled
        self.adapter = adapter
        self.schema = schema
        self.state_project = state_project(schema)
        self.plan = plan_tables(test, compiled)
        self.families: dict[tuple[str, str], dict[str, str | None]] = {}  # each input's column families

    def run(self) -> tuple[list[Row], dict[str, str | None]]:
        """Build the model through every run; its final rows (as of ``at``) and column families."""
        times = run_times(self.test, self.compiled, self.plan.built)
        self.adapter.ensure_schema(self.schema)
        state.ensure_tables(self.adapter)
        for key in self.plan.sources:
            self._create_source(key)
        segment: list[str] = []
        run = self._run_state(times[0], first=True)
        for name in self.plan.order:
            if name in self.plan.built:
                segment.append(name)
                continue
            self._build(segment, run)  # a given model may read models built before it
            segment = []
            self._create_empty(self.compiled.models[name])
        self._build(segment, run)
        for later, now in zip(self.test.runs[1:], times[1:], strict=True):
            for given in later.given:
                self._insert(given)
            self._build(self.plan.built, self._run_state(now, first=False))
        return self._result()

    def _create_source(self, key: str) -> None:
        source = self.project.sources[key]
        entries = self.test.inputs.get(("source", key), [])
        types = self._source_types(source, entries)
        self.adapter.execute(create_fixture(self._source_table(source), types))
        self.families[("source", key)] = {name: family(kind) for name, kind in types.items()}
        for given in self.test.runs[0].given:
            if given.kind == "source" and given.name == key:
                self._insert(given)

    def _source_types(self, source: Source, entries: list[Given]) -> dict[str, exp.DataType]:
        """Declared types, then types named under ``columns:``, else types inferred from the values."""
        label = input_label("source", source.key)
        named = {name: kind for given in entries for name, kind in given.columns.items()}
        columns = list(source.columns) or list(dict.fromkeys([*(c for g in entries for c in g.rows.columns), *named]))
        if not columns:
            raise self.test.error(
                f"{label} declares no columns in sources.yml, so an empty fixture of it has "
                "none: give it rows or columns: under given:"
            )
        types = {}
        for name in columns:
            line = next((g.line for g in entries if name in g.columns or name in g.rows.columns), None)
            kind = named.get(name) or source.columns.get(name)
            try:
                if kind:
                    types[name] = declared_type(kind, self.project.config.dialect, self.adapter.dialect)
                else:
                    values = [row.get(name) for given in entries for row in given.rows.rows]
                    types[name] = infer_type(values, self.adapter.dialect)
            except ValueError as exc:
                raise self.test.error(f"{label} column {name!r}: {exc}", line) from None
        return types

    def _source_table(self, source: Source) -> exp.Table:
        return exp.table_(fixture_name(source), db=self.schema)

    def _create_empty(self, model: CompiledModel) -> None:
        """A model's table with its real column types and no rows; then its given rows."""
        dialect = self.adapter.dialect
        if model.window is not None:
            query: exp.Query = batch_query(model, (0, 0), dialect)  # no boundary: no row
        else:
            query = exp.select("*").from_(model.query.subquery("__rows")).limit(0)
        self.adapter.execute(create_table(model, query))
        if model.name in self.plan.given:
            columns = self.adapter.table_columns(model.relation) or {}
            self.families[("ref", model.name)] = {name: family(kind, dialect) for name, kind in columns.items()}
            for given in self.test.runs[0].given:
                if given.kind == "ref" and given.name == model.name:
                    self._insert(given)
            # Given rows are the whole truth: computed for all time, for an as_of_join that reads the state.
            everything = state.record_interval(self.state_project, model.name, ALL_TIME, "unit", None, "", dialect)
            self.adapter.execute(everything)

    def _insert(self, given: Given) -> None:
        families = self.families[(given.kind, given.name)]
        if given.kind == "ref":
            check_columns(self.test, given.rows, list(families), f"{given.label} has no column")
            table = self.compiled.models[given.name].relation
        else:
            table = self._source_table(self.project.sources[given.name])

        def error(message: str, line: int | None) -> Exception:
            return self.test.error(f"{given.label}: {message}", line)

        for statement in insert_rows(table, families, given.rows, self.adapter.dialect, error):
            self.adapter.execute(statement)

    def _run_state(self, now: datetime, *, first: bool) -> RunState:
        models = self.compiled.models
        windows = [name for name in self.plan.built if models[name].window is not None]
        if first:
            states = {name: state.ModelState([], frozenset()) for name in windows}
        else:
            states = state.read_states(self.adapter, self.state_project, windows)
        return RunState(
            project=self.state_project,
            run_id=uuid.uuid4().hex[:12],
            dialect=self.adapter.dialect,
            now=now,
            options=RunOptions(),
            states=states,
            existing=set() if first else set(windows),
            definitions=state.definition_hashes(self.compiled, self._declared_sources(), self.plan.built),
        )

    def _declared_sources(self) -> dict[str, state.SourceColumns]:
        """The sources' declared columns: the fixtures are made from them, and nothing is compared."""
        return {key: state.SourceColumns(source.columns) for key, source in self.project.sources.items()}

    def _build(self, models: list[str], run: RunState) -> None:
        if not models:
            return
        result = run_models(self.compiled, self.adapter, models, run=run)
        for outcome in result.results:
            if outcome.status == "error":
                raise ExecutionError(
                    f"unit test {self.test.name!r}: model {outcome.model!r} failed: {outcome.message}",
                    path=self.test.path,
                    line=self.test.line,
                )

    def _result(self) -> tuple[list[Row], dict[str, str | None]]:
        model = self.compiled.models[self.test.model]
        table: pa.Table = self.adapter.fetch_arrow(exp.select("*").from_(model.relation.copy()))
        rows, families = table_rows(table)
        check_columns(self.test, self.test.expect.rows, list(families), f"model {model.name!r} has no column")
        at = self.test.expect.at
        if at is None:
            return rows, families
        settings = model.settings
        assert settings.timestamp is not None  # check_compiled: ``at`` needs an entity and a timestamp
        named = [settings.tie_break] if model.kind == "snapshot" and settings.tie_break else []
        rest = [c for c in families if c not in {*settings.keys, settings.timestamp, *named}]
        tie_break = [*named, *rest] if model.kind == "snapshot" else []
        ttl = settings.ttl if model.kind == "snapshot" else None
        return as_of(rows, settings.keys, settings.timestamp, tie_break, at, ttl), families

    def drop(self) -> None:
        """Remove the scratch schema and the test's state rows (errors here never hide the outcome)."""
        schema = exp.Table(db=exp.to_identifier(self.schema))  # how sqlglot holds a schema's name
        statements: list[exp.Expr] = [exp.Drop(tables=[schema], kind="SCHEMA", exists=True, cascade=True)]
        mine = exp.column("project").eq(exp.Literal.string(self.state_project))
        statements += [exp.delete(state.table(name), where=mine) for name in ("intervals", "definitions", "run_log")]
        for statement in statements:
            with contextlib.suppress(FeaturesqlError):
                self.adapter.execute(statement)
