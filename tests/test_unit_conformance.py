"""The example project's YAML unit tests pass unchanged on every engine.

``featuresql test`` runs unit tests on DuckDB in memory whatever the target;
here the same YAML (features/tests/unit/*.yml) runs through the Snowflake
adapter on fakesnow and the BigQuery adapter on the emulator too, with
``run_unit_test``, so a fixture or an expectation that only holds on DuckDB
shows up. Each test runs in a namespace of its own and drops its scratch
schema and state rows afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from engines import Engine, write_profile
from projects import REPO_ROOT, copy_example
from sqlglot import exp

from featuresql.compile.compiler import compile_project
from featuresql.context import Context
from featuresql.project.loader import load_project
from featuresql.testing.unit.cases import UnitCompiler, run_unit_test
from featuresql.testing.unit.spec import parse_unit_tests

EXAMPLE_TESTS = {test.name: test for test in parse_unit_tests(load_project(REPO_ROOT))}


def engine_context(engine: Engine, folder: Path) -> Context:
    """The example project on ``engine``, in a fresh namespace (its hooks never run in unit tests)."""
    project = copy_example(folder / "project")
    write_profile(project, engine.target(folder))
    return Context(project)


def test_every_example_model_has_a_unit_test():
    tested = {test.model for test in EXAMPLE_TESTS.values()}
    models = set(compile_project(load_project(REPO_ROOT)).models)  # with tables: on-demand models are not unit-tested
    assert tested == models, f"models without a unit test: {sorted(models - tested)}"
    assert any(len(test.runs) > 1 for test in EXAMPLE_TESTS.values()), "no incremental (then:) unit test"


@pytest.mark.parametrize("name", sorted(EXAMPLE_TESTS))
def test_example_unit_test_passes(engine, tmp_path, name):
    with engine_context(engine, tmp_path) as context:
        test = EXAMPLE_TESTS[name]
        compiler = UnitCompiler(context.project, {})
        outcome = run_unit_test(test, context.project, context.adapter, schema="unit_fixtures", compiler=compiler)
        assert outcome.failures == 0, f"{engine.name}: {outcome.message}\n{outcome.details}"
        # Nothing is left behind on a shared warehouse: no scratch tables, no state rows.
        leftover = context.adapter.table_columns(exp.table_("bank__transactions", db="unit_fixtures"))
        assert leftover is None
        intervals = context.query(
            exp.select(exp.Count(this=exp.Star()))
            .from_(exp.table_("intervals", db="featuresql"))
            .where(exp.column("project").eq(exp.Literal.string(f"unit__{name}")))
        )
        assert intervals.column(0)[0].as_py() == 0


def test_a_failing_unit_test_fails_on_every_engine(engine, tmp_path):
    """The comparison is the same on every engine: a wrong expectation is found, with its diff."""
    with engine_context(engine, tmp_path) as context:
        test = EXAMPLE_TESTS["user_spend_ratios_of_given_windows"]
        rows = list(test.expect.rows.rows)
        rows[0] = {**rows[0], "max_to_avg_amount": 2.4}
        wrong = _with_expected_rows(test, rows)
        outcome = run_unit_test(wrong, context.project, context.adapter, schema="unit_fixtures")
        assert outcome.failures == 2, outcome.message
        assert "- 1       | 2026-01-02 00:00:00 | 0.25" in outcome.details
        assert "| 2.4" in outcome.details and "| 2.5" in outcome.details


def _with_expected_rows(test, rows):
    from dataclasses import replace

    return replace(test, expect=replace(test.expect, rows=replace(test.expect.rows, rows=tuple(rows))))
