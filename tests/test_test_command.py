"""``featuresql test`` and ``featuresql freshness`` end to end on the example project."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CliResult
from projects import SMALL_VARS_ARG, copy_example

NOW = "2026-06-30"  # the demo data ends that day


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from click.testing import CliRunner

    from featuresql.cli.main import cli

    project = copy_example(tmp_path_factory.mktemp("test_command") / "project")
    result = CliRunner().invoke(cli, ["--project-dir", str(project), "--vars", SMALL_VARS_ARG, "run", "--now", NOW])
    assert result.exit_code == 0, result.output
    return project


def results(project: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((project / "target" / "run_results.json").read_text())  # type: ignore[no-any-return]


def test_every_test_of_the_example_passes(built: Path, cli: Callable[..., CliResult]) -> None:
    result = cli(built, "--vars", SMALL_VARS_ARG, "test", "--now", NOW)
    assert result.exit_code == 0, result.stdout + result.stderr
    document = results(built)
    statuses = {r["test"]: r["status"] for r in document["results"]}
    assert set(statuses.values()) == {"pass"}, {k: v for k, v in statuses.items() if v != "pass"}
    kinds = {r["kind"] for r in document["results"]}
    assert {
        "not_null",
        "unique",
        "accepted_values",
        "accepted_range",
        "relationships",
        "expression",
        "leakage",
        "custom:at_most",
        "singular",
        "unit",
        "freshness",
        "availability",
    } <= kinds
    unit_models = {r["models"][0] for r in document["results"] if r["kind"] == "unit"}
    assert unit_models == {
        "user_transactions",
        "merchant_transactions",
        "user_profile",
        "user_balances",
        "user_spend_ratios",
        "advance_labels",
        "advance_training",
    }
    assert document["command"] == "test" and document["status"] == "success"
    assert document["counts"]["pass"] == len(document["results"])
    assert f"Finished {len(document['results'])} tests" in result.stdout


def test_a_failing_test_exits_1_and_shows_its_rows(built: Path, cli: Callable[..., CliResult]) -> None:
    singular = built / "features" / "tests" / "no_pro_users.sql"
    singular.write_text("select user_id, plan from {{ ref('user_profile') }} where plan = 'pro'\n")
    try:
        result = cli(built, "--vars", SMALL_VARS_ARG, "test", "-s", "no_pro_users", "user_profile")
        fast = cli(built, "--vars", SMALL_VARS_ARG, "test", "-s", "no_pro_users", "user_profile", "--fail-fast")
    finally:
        singular.unlink()
    assert result.exit_code == 1
    assert "FAIL" in result.stdout and "no_pro_users" in result.stdout and "user_id | plan" in result.stdout
    document = results(built)
    assert document["status"] == "error"
    assert fast.exit_code == 1 and "SKIP" in fast.stdout and "skipped by --fail-fast" not in fast.stdout


def test_a_warning_does_not_fail_the_run(built: Path, cli: Callable[..., CliResult]) -> None:
    singular = built / "features" / "tests" / "pro_users_warn.sql"
    singular.write_text("{{ config(severity='warn') }}\nselect * from {{ ref('user_profile') }} where plan = 'pro'\n")
    try:
        result = cli(built, "--vars", SMALL_VARS_ARG, "test", "-s", "pro_users_warn")
    finally:
        singular.unlink()
    assert result.exit_code == 0 and "WARN" in result.stdout
    assert results(built)["results"][0]["status"] == "warn"


def test_unit_tests_need_no_warehouse(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    project = copy_example(tmp_path / "fresh")
    result = cli(project, "test", "-s", "test_type:unit")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert not (project / "target" / "cash_advance.duckdb").exists()
    assert {r["kind"] for r in results(project)["results"]} == {"unit"}


def test_freshness_command(built: Path, cli: Callable[..., CliResult]) -> None:
    fresh = cli(built, "--vars", SMALL_VARS_ARG, "freshness", "-s", "source:bank", "--now", NOW)
    assert fresh.exit_code == 0, fresh.stdout + fresh.stderr
    assert {r["kind"] for r in results(built)["results"]} == {"freshness"}
    late = cli(built, "--vars", SMALL_VARS_ARG, "freshness", "-s", "source:bank", "--now", "2026-07-10")
    assert late.exit_code == 1 and "FAIL" in late.stdout
    assert results(built)["command"] == "freshness"


def test_selection_errors_are_one_line(built: Path, cli: Callable[..., CliResult]) -> None:
    result = cli(built, "test", "-s", "test_type:units")
    assert result.exit_code == 2
    assert result.stderr_lines == [
        "Error: unknown test_type 'units' (did you mean unit?): one of unit, data, "
        "generic, singular, freshness, point_in_time, online"
    ]


def test_freshness_runs_whatever_state_the_other_tests_are_in(built: Path, cli: Callable[..., CliResult]) -> None:
    broken = built / "features" / "tests" / "unit" / "broken.yml"
    broken.write_text(
        "unit_tests:\n  - name: broken\n    model: user_profile\n    given:\n"
        "      - input: source('bank', 'users')\n        rows: [{user_id: 1, nosuch: 2}]\n"
        "    expect: {rows: []}\n"
    )
    try:
        fresh = cli(built, "--vars", SMALL_VARS_ARG, "freshness", "--now", NOW)
        tested = cli(built, "--vars", SMALL_VARS_ARG, "test", "--now", NOW)
    finally:
        broken.unlink()
    assert fresh.exit_code == 0, fresh.stdout + fresh.stderr
    assert tested.exit_code == 2 and "broken.yml:6" in tested.stderr and "nosuch" in tested.stderr


def test_selecting_online_tests_implies_online(built: Path, cli: Callable[..., CliResult]) -> None:
    result = cli(built, "--vars", SMALL_VARS_ARG, "test", "-s", "test_type:online", "--now", NOW)
    assert result.exit_code == 1  # nothing was synced: the online checks say so
    assert "run `featuresql sync` first" in result.stdout
    assert {r["kind"] for r in results(built)["results"]} == {"online"}
