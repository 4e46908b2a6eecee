"""SQL unit tests: fixture rows in, a model's expected rows out, on DuckDB in memory.

Unit tests live in YAML under ``unit_tests:``, in any file under the project's
``test_paths`` (``features/tests/unit/*.yml`` in the example) or next to the
models in their schema files, as dbt users write them::

    unit_tests:
      - name: user_spend_ratios_of_one_day        # unique in the project
        model: user_spend_ratios
        description: A ratio of two windows.
        vars: {min_amount: 0}                 # optional: overrides project and --vars values
        config: {tags: [spend], enabled: true}
        given:                                # rows of the model's inputs; an input not given is empty
          - input: ref('user_transactions')   # an upstream model: these rows replace its build
            rows:                             # dbt's dict format: columns not listed are NULL
              - {user_id: 7, ts: 2026-01-02, amount_sum_1d: 10.50, amount_sum_30d: 42.00}
        expect:
          rows:                               # only these columns are compared; order is ignored
            - {user_id: 7, ts: 2026-01-02, spend_share_1d_of_30d: 0.25}

      - name: user_transactions_counts_settled_spend
        model: user_transactions
        given:
          - input: source('bank', 'transactions')
            format: csv                       # rows as CSV text with a header line (empty cell: NULL)
            rows: |
              transaction_id,user_id,amount,status,ts
              1,7,10.50,settled,2026-01-01 10:00:00
            columns: {amount: "decimal(12,2)"}  # optional: column types (project dialect)
        now: 2026-01-08                       # the run's time (window models are computed up to it)
        then:                                 # optional: later incremental runs on the state left behind
          - now: 2026-01-10
            given:                            # rows that arrived since: appended to the inputs
              - input: source('bank', 'transactions')
                rows: [{transaction_id: 2, user_id: 7, amount: 5, status: settled, ts: 2026-01-09 08:00:00}]
        expect:                               # the model's whole table after the last run...
          at: [2026-01-02, 2026-01-10]        # ...or, with at, each entity's values as of each time
          rows:
            - {user_id: 7, ts: 2026-01-02, count_1d: 1, amount_sum_1d: 10.50}
            - {user_id: 7, ts: 2026-01-10, count_1d: 1, amount_sum_1d: 5}

What runs is featuresql's own code, as ``featuresql run`` runs it: the project
is compiled with every source mapped to a fixture table in a scratch schema
(``<source>__<table>``) and every model there too, from the project dialect to
DuckDB (or, through ``run_unit_test``, any adapter's engine); models build
through ``run_models`` with interval state, so a ``then:`` run plans its
batches, lookback and expiry as production does. Project hooks do not run.

- Fixture tables are typed: a source has the column types sources.yml declares,
  and a value for a column it does not declare is an error; a source without
  declared columns takes each column's type from its values (integer: BIGINT,
  float: DOUBLE, CSV decimal text: DECIMAL, true/false: BOOLEAN, date: DATE,
  date and time: TIMESTAMP, else VARCHAR) unless ``columns:`` gives it. A given
  model's table is created by the model's own query over empty inputs, so its
  rows take the model's real output types.
- Every model between the inputs and the tested model is built from the
  fixtures; an upstream model given as ``ref()`` is not (its rows are given).
- ``now`` defaults to the last ``expect.at`` plus the model's data_delay; a
  test building a window model without either is an error.
- ``expect.at``: for each entity and each time ``E``, its latest row with
  ``ts <= E`` (ties broken as the point-in-time join breaks them), reported
  with ``ts = E``; an entity without a row by then is absent. The availability
  delay is not applied: these are the values as of ``E``.
- A failure reports how many rows differ and a diff table of the compared
  columns (see ``featuresql.testing.unit.diff`` for how values compare).

Modules of ``featuresql.testing.unit``: ``spec`` (the YAML), ``fixtures`` (fixture
tables and values), ``runs`` (building the tables through the runs), ``diff``
(comparison and diff); this module is the entry point.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from functools import partial
from typing import Any

from featuresql.adapters.base import WarehouseAdapter
from featuresql.compile.compiler import compile_project
from featuresql.compile.models import CompiledProject
from featuresql.errors import ConfigError, FeaturesqlError
from featuresql.project.loader import Project
from featuresql.testing.cases import Outcome, TestCase, TestEnv
from featuresql.testing.unit.diff import compare
from featuresql.testing.unit.runs import FixtureRun, fixture_name, state_project
from featuresql.testing.unit.spec import UnitTest, check_compiled, parse_unit_tests

SCRATCH = "unit"  # the schema of fixtures and models in the in-memory database


def unit_test_cases(project: Project, variables: dict[str, Any] | None = None) -> list[TestCase]:
    """One test case per unit test of ``project``; ConfigError (file:line) on an invalid test.

    ``variables`` are the run's --vars; a test's own ``vars:`` override them.
    """
    tests = parse_unit_tests(project)
    compiler = UnitCompiler(project, variables or {})
    for test in tests:
        _check_early(test, compiler)
    return [
        TestCase(
            name=test.name,
            kind="unit",
            test_type="unit",
            check=partial(_check, test, compiler),
            models=(test.model,),
            path=test.path,
            line=test.line,
            description=test.description,
            tags=test.tags,
        )
        for test in tests
    ]


def _check_early(test: UnitTest, compiler: UnitCompiler) -> None:
    """Report a test that does not fit its model now, rather than when it runs."""
    try:
        compiled = compiler.compiled("duckdb", SCRATCH, test.vars)
    except FeaturesqlError:
        return  # a model that does not compile: the test's run reports it as its error
    check_compiled(test, compiled)


def _check(test: UnitTest, compiler: UnitCompiler, env: TestEnv) -> Outcome:
    """Run ``test`` on a fresh in-memory DuckDB (the target in ``env`` is not used)."""
    from featuresql.adapters.duckdb import DuckDBAdapter, DuckDBTarget

    adapter = DuckDBAdapter(DuckDBTarget(path=":memory:", schema_=SCRATCH), compiler.project.root)
    try:
        return run_unit_test(test, compiler.project, adapter, schema=SCRATCH, compiler=compiler, cleanup=False)
    finally:
        adapter.close()


def run_unit_test(
    test: UnitTest,
    project: Project,
    adapter: WarehouseAdapter,
    *,
    schema: str,
    variables: dict[str, Any] | None = None,
    compiler: UnitCompiler | None = None,
    cleanup: bool = True,
) -> Outcome:
    """Run ``test`` through ``adapter``, with fixtures and models in ``schema``.

    With ``cleanup`` (for a shared warehouse) the schema is dropped and the test's
    state rows (project ``unit__<name>``) deleted afterwards. Raises ConfigError for
    a test that does not fit the model, CompileError or ExecutionError when the
    model does not compile or run.
    """
    compiler = compiler or UnitCompiler(project, variables or {})
    compiled = compiler.compiled(adapter.dialect, schema, test.vars)
    check_compiled(test, compiled)
    fixture = FixtureRun(test, project, compiled, adapter, schema)
    try:
        rows, families = fixture.run()
    finally:
        if cleanup:
            fixture.drop()
    return compare(test, rows, families)


# -- compiling --------------------------------------------------------------------


class UnitCompiler:
    """The project compiled for unit tests: once per engine, schema and vars (thread-safe)."""

    def __init__(self, project: Project, variables: dict[str, Any]):
        self.project = project
        self.variables = variables
        self._cache: dict[str, CompiledProject | FeaturesqlError] = {}
        self._lock = threading.Lock()

    def compiled(self, dialect: str, schema: str, test_vars: dict[str, Any]) -> CompiledProject:
        """The project for ``dialect`` with fixtures and models in ``schema``; a compile error is raised again."""
        variables = {**self.variables, **test_vars}
        key = json.dumps([dialect, schema, variables], sort_keys=True, default=str)
        with self._lock:
            if key not in self._cache:
                try:
                    self._cache[key] = compile_project(
                        fixture_project(self.project, schema),
                        target="unit",
                        target_type=dialect,
                        schema=schema,
                        variables=variables,
                        state_project=state_project(schema),
                    )
                except FeaturesqlError as exc:
                    self._cache[key] = exc
            found = self._cache[key]
        if isinstance(found, FeaturesqlError):
            raise found
        return found


def fixture_project(project: Project, schema: str) -> Project:
    """``project`` with every source read from its fixture table in ``schema``."""
    sources = {
        key: replace(s, schema=schema, identifier=fixture_name(s), database=None) for key, s in project.sources.items()
    }
    clash = sorted({fixture_name(s) for s in project.sources.values()} & set(project.models))
    if clash:
        raise ConfigError(f"unit tests name the fixture of a source {clash[0]!r}, which is also a model: rename it")
    return replace(project, sources=sources)


__all__ = ["SCRATCH", "UnitCompiler", "UnitTest", "parse_unit_tests", "run_unit_test", "unit_test_cases"]
