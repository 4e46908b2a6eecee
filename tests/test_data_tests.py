"""Generic data tests (YAML), custom generic tests (macros) and singular tests (SQL files).

Each test kind runs on the example project built on DuckDB: it passes on the
data as built, and fails, with the exact number of failing rows counted here in
plain Python, once rows are broken on purpose. Broken rows live in a
transaction rolled back after the check, so every test sees the built data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from projects import SMALL_VARS, copy_example

from featuresql.context import Context
from featuresql.errors import CompileError, ConfigError
from featuresql.run.results import TestResult
from featuresql.testing.cases import TestCase, TestEnv
from featuresql.testing.generic import GenericTests, parse_entry
from featuresql.testing.rendering import TestRenderer
from featuresql.testing.runner import run_one, run_tests
from featuresql.testing.singular import singular_case

NOW = datetime(2026, 7, 1, tzinfo=UTC)
YAML = Path("features/models.yml")


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    project = copy_example(tmp_path_factory.mktemp("data_tests") / "project")
    with Context(project, variables=SMALL_VARS) as context:
        result = context.run(now=NOW)
        assert result.ok, [(r.model, r.message) for r in result.results if r.status != "success"]
        yield context


@contextmanager
def broken(context: Context, *statements: str) -> Iterator[None]:
    """Run ``statements`` in a transaction rolled back afterwards."""
    connection = context.adapter.connection
    connection.execute("begin")
    try:
        for statement in statements:
            connection.execute(statement)
        yield
    finally:
        connection.execute("rollback")


def rows(context: Context, sql: str) -> list[dict[str, Any]]:
    return context.query(sql).to_pylist()  # type: ignore[no-any-return]


def case(context: Context, owner: str, entry: Any, column: str | None = None, **renderer_vars: Any) -> TestCase:
    renderer = TestRenderer(context.project, context.compiled, "main", renderer_vars)
    generic = GenericTests(renderer, leakage=lambda model: pytest.fail("not a leakage test"))
    if "." in owner:
        source = context.project.sources[owner]
        where = (owner, True, source.relation, column, tuple(source.columns))
    else:
        model = context.compiled.models[owner]
        where = (owner, False, model.relation, column, model.columns)
    return generic.case(parse_entry(entry, where, YAML, 7))


def run(context: Context, owner: str, entry: Any, column: str | None = None) -> TestResult:
    return run_one(case(context, owner, entry, column), TestEnv(context, NOW))


def assert_fails(result: TestResult, failures: int) -> None:
    assert (result.status, result.failures) == ("fail", failures), result
    assert failures > 0


# -- built-in generic tests --------------------------------------------------------------


def test_not_null(context: Context) -> None:
    assert run(context, "user_profile", "not_null", "plan").status == "pass"
    with broken(context, "update main.user_profile set plan = null where user_id in (3, 5, 8)"):
        result = run(context, "user_profile", "not_null", "plan")
    assert_fails(result, 3)
    assert result.message == "3 failing rows"
    assert "NULL" in result.details and "user_id" in result.details


def test_unique_on_a_column_and_on_a_column_set(context: Context) -> None:
    assert run(context, "user_profile", "unique", "user_id").status == "pass"
    assert run(context, "user_transactions", {"unique": {"columns": ["user_id", "ts"]}}).status == "pass"
    some = rows(context, "select user_id, ts from main.user_transactions order by user_id, ts limit 2")
    duplicate = (
        "insert into main.user_transactions select * from main.user_transactions where user_id = {} and ts = '{}'"
    )
    with broken(context, *(duplicate.format(r["user_id"], r["ts"]) for r in some)):
        result = run(context, "user_transactions", {"unique": {"columns": ["user_id", "ts"]}})
        by_user = run(context, "user_transactions", "unique", "user_id")
    assert_fails(result, 2)  # two duplicated (user_id, ts) groups
    assert "n_records" in result.details
    users = rows(context, "select count(distinct user_id) as n from main.user_transactions")[0]["n"]
    assert by_user.failures == users  # every user has several rows: user_id alone is not unique


def test_unique_ignores_nulls_in_a_single_column(context: Context) -> None:
    with broken(context, "update main.user_profile set plan = null", "update main.user_profile set state = null"):
        assert run(context, "user_profile", "unique", "plan").status == "pass"


def test_accepted_values(context: Context) -> None:
    entry = {"accepted_values": {"values": ["free", "plus", "pro"]}}
    assert run(context, "user_profile", entry, "plan").status == "pass"
    with broken(
        context,
        "update main.user_profile set plan = 'gold' where user_id <= 4",
        "update main.user_profile set plan = 'trial' where user_id = 9",
    ):
        result = run(context, "user_profile", entry, "plan")
    assert_fails(result, 2)  # failing rows are the distinct unaccepted values, with their counts
    assert "gold" in result.details and "trial" in result.details
    numbers = {"accepted_values": {"values": list(range(1, 501)), "quote": False}}
    assert run(context, "user_profile", numbers, "user_id").status == "pass"
    assert_fails(run(context, "user_profile", {"accepted_values": {"values": [1, 2], "quote": False}}, "user_id"), 498)


def test_accepted_range_inclusive_and_exclusive(context: Context) -> None:
    limits = [r["credit_limit"] for r in rows(context, "select credit_limit from main.user_profile")]
    low, high = min(limits), max(limits)
    inclusive = {"accepted_range": {"min_value": float(low), "max_value": float(high)}}
    assert run(context, "user_profile", inclusive, "credit_limit").status == "pass"
    exclusive = {"accepted_range": {"min_value": float(low), "max_value": float(high), "inclusive": False}}
    at_the_edges = sum(1 for value in limits if value in (low, high))
    assert_fails(run(context, "user_profile", exclusive, "credit_limit"), at_the_edges)
    only_max = {"accepted_range": {"max_value": float(high) - 1}}
    assert_fails(run(context, "user_profile", only_max, "credit_limit"), sum(1 for v in limits if v > high - 1))


def test_where_filters_the_tested_rows(context: Context) -> None:
    positive = {"accepted_range": {"min_value": 0, "inclusive": False}}
    empty_windows = rows(context, "select count(*) as n from main.user_transactions where count_30d = 0")[0]["n"]
    assert empty_windows > 0  # expiry rows: their amount_sum_30d is NULL, which the range test leaves alone
    with broken(context, "update main.user_transactions set amount_sum_30d = 0 where count_30d = 0"):
        assert_fails(run(context, "user_transactions", positive, "amount_sum_30d"), empty_windows)
        filtered = {"accepted_range": {**positive["accepted_range"], "where": "count_30d > 0"}}
        assert run(context, "user_transactions", filtered, "amount_sum_30d").status == "pass"


def test_relationships_to_a_source_and_to_a_model(context: Context) -> None:
    to_users = {"relationships": {"to": "source('bank', 'users')", "field": "user_id"}}
    assert run(context, "user_transactions", to_users, "user_id").status == "pass"
    orphan_rows = rows(context, "select count(*) as n from main.user_transactions where user_id = 1")[0]["n"]
    assert orphan_rows > 0
    with broken(context, "delete from raw.users where user_id = 1"):
        result = run(context, "user_transactions", to_users, "user_id")
    assert_fails(result, orphan_rows)
    to_model = {"relationships": {"to": "ref('user_profile')", "field": "user_id"}}
    test = case(context, "user_spend_ratios", to_model, "user_id")
    assert test.models == ("user_spend_ratios", "user_profile")  # selected with either model
    assert run_one(test, TestEnv(context, NOW)).status == "pass"


def test_expression_on_a_model_and_on_a_column(context: Context) -> None:
    nested = {"expression": {"expression": "count_1d <= count_7d and count_7d <= count_30d"}}
    assert run(context, "user_transactions", nested).status == "pass"
    row = rows(context, "select user_id, ts from main.user_transactions where count_7d > 0 limit 1")[0]
    with broken(
        context,
        f"update main.user_transactions set count_1d = count_7d + 1 "
        f"where user_id = {row['user_id']} and ts = '{row['ts']}'",
    ):
        assert_fails(run(context, "user_transactions", nested), 1)
    assert run(context, "user_profile", {"expression": {"expression": "> 0"}}, "credit_limit").status == "pass"
    small = sum(1 for r in rows(context, "select credit_limit from main.user_profile") if r["credit_limit"] <= 500)
    assert_fails(run(context, "user_profile", {"expression": {"expression": "> 500"}}, "credit_limit"), small)


def test_severity_warn_and_limit(context: Context) -> None:
    entry = {"accepted_values": {"values": ["free"], "config": {"severity": "warn", "limit": 1}}}
    result = run(context, "user_profile", entry, "plan")
    assert (result.status, result.failures) == ("warn", 2)
    assert result.message == "2 unaccepted values (first 1 shown)"  # the failing rows are groups
    assert len(result.details.splitlines()) == 3  # header, rule, one row
    flat = run(context, "user_profile", {"not_null": {"severity": "warn"}}, "plan")
    assert flat.status == "pass"


def test_a_run_with_a_warning_is_ok_and_one_with_a_failure_is_not(context: Context) -> None:
    warn = case(context, "user_profile", {"accepted_values": {"values": ["free"], "severity": "warn"}}, "plan")
    fail = case(context, "user_profile", {"accepted_values": {"values": ["free"]}}, "plan")
    good = case(context, "user_profile", "not_null", "plan")
    assert run_tests([warn, good], TestEnv(context, NOW)).ok
    both = run_tests([fail, good], TestEnv(context, NOW))
    assert not both.ok and [r.status for r in both.results] == ["fail", "pass"]
    fast = run_tests([fail, good], TestEnv(context, NOW), fail_fast=True)
    assert [r.status for r in fast.results] == ["fail", "skipped"]


def test_tests_on_sources(context: Context) -> None:
    assert run(context, "bank.transactions", "unique", "transaction_id").status == "pass"
    with broken(context, "insert into raw.transactions select * from raw.transactions where transaction_id <= 3"):
        assert_fails(run(context, "bank.transactions", "unique", "transaction_id"), 3)


# -- custom generic tests ---------------------------------------------------------------------


def test_custom_generic_test_from_a_test_block(context: Context) -> None:
    at_most = {"at_most": {"other": "count_7d"}}
    assert run(context, "merchant_transactions", at_most, "declined_count_7d").status == "pass"
    with broken(
        context, "update main.merchant_transactions set declined_count_7d = count_7d + 1 where merchant_id = 2"
    ):
        expected = rows(context, "select count(*) as n from main.merchant_transactions where merchant_id = 2")[0]["n"]
        result = run(context, "merchant_transactions", at_most, "declined_count_7d")
    assert_fails(result, expected)
    assert result.sql is not None and "declined_count_7d > count_7d" in result.sql


def test_custom_generic_test_as_a_macro_with_where(make_project: Callable[..., Path]) -> None:
    macro = (
        "macros/more_tests.sql",
        None,
        "{% macro test_is_even(model, column_name) %}\n"
        "select * from {{ model }} where mod({{ column_name }}, 2) <> 0\n{% endmacro %}\n",
    )
    project = make_project([macro])
    with Context(project, variables=SMALL_VARS) as context:
        assert context.run(now=NOW, select=("+user_profile",)).ok
        odd = sum(1 for r in rows(context, "select user_id from main.user_profile") if r["user_id"] % 2)
        assert_fails(run(context, "user_profile", "is_even", "user_id"), odd)
        filtered = {"is_even": {"where": "user_id <= 10"}}
        assert_fails(run(context, "user_profile", filtered, "user_id"), 5)


# -- singular tests ------------------------------------------------------------------------------


def test_singular_tests_of_the_example_pass_and_fail_on_bad_rows(context: Context) -> None:
    renderer = TestRenderer(context.project, context.compiled, "main", {})
    tests = {path.stem: singular_case(path, renderer) for path in context.project.test_files}
    assert set(tests) == {"spend_ratios_match_windows", "one_training_row_per_advance"}
    ratios = tests["spend_ratios_match_windows"]
    assert ratios.models == ("user_spend_ratios", "user_transactions")
    assert run_one(ratios, TestEnv(context, NOW)).status == "pass"
    with broken(context, "update main.user_spend_ratios set transactions_per_day_7d = 99 where user_id = 1"):
        expected = rows(context, "select count(*) as n from main.user_spend_ratios where user_id = 1")[0]["n"]
        assert_fails(run_one(ratios, TestEnv(context, NOW)), expected)
    training = tests["one_training_row_per_advance"]
    assert training.tags == ("training",)
    assert run_one(training, TestEnv(context, NOW)).status == "pass"
    with broken(
        context, "delete from main.advance_training where user_id in (select min(user_id) from main.advance_training)"
    ):
        assert run_one(training, TestEnv(context, NOW)).failures >= 1


def test_singular_test_config_and_errors(context: Context, tmp_path: Path) -> None:
    renderer = TestRenderer(context.project, context.compiled, "main", {})
    warn = tmp_path / "plans_are_free.sql"
    warn.write_text("{{ config(severity='warn') }}\nselect * from {{ ref('user_profile') }} where plan <> 'free'\n")
    result = run_one(singular_case(warn, renderer), TestEnv(context, NOW))
    paid = rows(context, "select count(*) as n from main.user_profile where plan <> 'free'")[0]["n"]
    assert (result.status, result.failures) == ("warn", paid)
    two = tmp_path / "two.sql"
    two.write_text("select 1; select 2")
    with pytest.raises(CompileError, match="exactly one SELECT returning the failing rows"):
        singular_case(two, renderer)
    unknown = tmp_path / "unknown.sql"
    unknown.write_text("select * from {{ ref('user_profiles') }}")
    with pytest.raises(CompileError, match=r"refs unknown model 'user_profiles' \(did you mean user_profile\?\)"):
        singular_case(unknown, renderer)


# -- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "column", "message"),
    [
        ("not_nul", "plan", r"unknown test 'not_nul' \(did you mean not_null\?\)"),
        ("not_null", "plna", r"user_profile has no column 'plna' \(did you mean plan\?\)"),
        (
            {"accepted_values": {"valeus": ["a"]}},
            "plan",
            r"unknown key 'accepted_values.valeus' \(did you mean values\?\)",
        ),
        ({"accepted_values": {}}, "plan", r"missing required key 'accepted_values.values'"),
        ({"not_null": {"severity": "fatal"}}, "plan", r"invalid value for 'not_null.severity'"),
        ({"unique": {"columns": ["user_id", "plann"]}}, None, r"no column 'plann' \(did you mean plan\?\)"),
        ({"relationships": {"to": "users", "field": "user_id"}}, "user_id", r"'to' must be ref\('model'\)"),
        ({"relationships": {"to": "ref('user_profil')", "field": "user_id"}}, "user_id", r"did you mean user_profile"),
        ({"accepted_range": {"inclusive": True}}, "credit_limit", "needs min_value, max_value or both"),
        ({"not_null": 3}, "plan", "expected a mapping of arguments"),
        (["not_null"], "plan", "a test is a name"),
        ("unique", None, "unique on a model needs columns"),
        ("not_null", None, "not_null goes under a column"),
        ({"expression": {"expression": "credit_limit >"}}, None, "cannot parse 'credit_limit >'"),
    ],
)
def test_declaration_errors_name_the_file_and_line(
    context: Context, entry: Any, column: str | None, message: str
) -> None:
    with pytest.raises((ConfigError, CompileError), match=message) as raised:
        run(context, "user_profile", entry, column)
    assert raised.value.path == YAML and raised.value.line == 7


def test_a_missing_table_is_an_error_saying_what_to_build(make_project: Callable[..., Path]) -> None:
    with Context(make_project(), variables=SMALL_VARS) as context:
        result = run(context, "user_profile", "not_null", "plan")
    assert result.status == "error"
    assert "table main.user_profile does not exist on target 'dev': build it first with `featuresql run`" in (
        result.message
    )


# -- review fixes: typed accepted values, errors with their place and SQL, crashes, selection -----


def test_accepted_values_keep_numbers_and_booleans_typed(context: Context) -> None:
    booleans = case(context, "advance_labels", {"accepted_values": {"values": [True, False]}}, "repaid_14d")
    result = run_one(booleans, TestEnv(context, NOW))
    assert result.status == "pass" and result.sql is not None
    assert "IN (TRUE, FALSE)" in " ".join(result.sql.split())
    numbers = run(context, "user_profile", {"accepted_values": {"values": [1, 2]}}, "user_id")
    assert numbers.failures == 498 and numbers.sql is not None and "IN (1, 2)" in " ".join(numbers.sql.split())


def test_where_and_expression_render_jinja_and_columns_are_spliced_not_concatenated(context: Context) -> None:
    with_var = {"not_null": {"where": "user_id <= {{ var('demo_users') }}"}}
    assert run(context, "user_profile", with_var, "plan").status == "pass"
    result = run(
        context, "user_profile", {"expression": {"expression": "between 100 and {{ 2 * 550 }}"}}, "credit_limit"
    )
    assert result.status == "pass" and result.sql is not None
    flat = " ".join(result.sql.split()).replace("( ", "(").replace(" )", ")")
    assert "NOT (credit_limit BETWEEN 100 AND 1100)" in flat


def test_a_query_error_names_the_yaml_line_and_keeps_the_sql(context: Context) -> None:
    result = run(context, "user_profile", {"not_null": {"where": "nosuch = 'x'"}}, "plan")
    assert result.status == "error"
    assert result.message.startswith("features/models.yml:7: ")
    assert "nosuch" in result.message and result.sql is not None and "nosuch = 'x'" in result.sql


def test_a_crashing_check_is_an_error_result_not_a_crash(context: Context) -> None:
    def crash(env: TestEnv) -> Any:
        raise ZeroDivisionError("division by zero")

    broken_case = TestCase("crashes", "custom:crash", "data", crash, path=YAML, line=3)
    good = case(context, "user_profile", "not_null", "plan")
    quiet = run_tests([broken_case, good], TestEnv(context, NOW))
    assert [r.status for r in quiet.results] == ["error", "pass"]
    assert quiet.results[0].message.startswith("internal error: ZeroDivisionError: division by zero")
    assert quiet.results[0].details == ""
    loud = run_tests([broken_case], TestEnv(context, NOW, debug=True))
    assert "Traceback" in loud.results[0].details


def test_relationships_check_the_field_and_belong_to_the_source(context: Context) -> None:
    to_users = {"relationships": {"to": "source('bank', 'users')", "field": "user_id"}}
    assert case(context, "user_transactions", to_users, "user_id").sources == ("bank.users",)
    typo = {"relationships": {"to": "source('bank', 'users')", "field": "usr_id"}}
    with pytest.raises(ConfigError, match=r"has no column 'usr_id' \(did you mean user_id\?\)"):
        case(context, "user_transactions", typo, "user_id")
    with pytest.raises(ConfigError, match="min_value 10 is above max_value 1"):
        case(context, "user_profile", {"accepted_range": {"min_value": 10, "max_value": 1}}, "credit_limit")


def test_a_missing_source_says_to_load_it(make_project: Callable[..., Path]) -> None:
    with Context(make_project(), variables=SMALL_VARS) as context:
        result = run(context, "bank.users", "not_null", "user_id")
    assert result.status == "error"
    assert "table raw.users does not exist on target 'dev': load source bank.users" in result.message
