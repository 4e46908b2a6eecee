"""SQL unit tests (featuresql.testing.unit.cases): the YAML format, its errors, and what a test proves.

Every kind of check here is shown both passing and failing on purpose-built
fixtures. Unit tests run on DuckDB in memory; tests/test_unit_conformance.py
runs the example project's unit tests on Snowflake and BigQuery as well.
"""

from __future__ import annotations

import re
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from projects import REPO_ROOT, copy_example

import featuresql.testing.unit.cases as unit
from featuresql.errors import CompileError, ConfigError, ExecutionError
from featuresql.project.loader import load_project
from featuresql.testing.cases import Outcome, TestCase, TestEnv
from featuresql.testing.unit.cases import unit_test_cases

NO_HOOK = ("project.yml", 'on_run_start:\n  - "{{ create_demo_data() }}"', "on_run_start: []")


def cases_of(project: Path, variables: dict[str, Any] | None = None) -> dict[str, TestCase]:
    return {case.name: case for case in unit_test_cases(load_project(project), variables)}


def outcome_of(case: TestCase) -> Outcome:
    # The target in the environment is never used: unit tests run on DuckDB in memory.
    return case.check(TestEnv(context=None, now=datetime.now(UTC)))  # type: ignore[arg-type]


def with_tests(tmp_path: Path, yaml_text: str, *edits: tuple[str, str | None, str]) -> Path:
    """A copy of the example project with ``yaml_text`` as features/tests/unit/extra.yml."""
    return copy_example(
        tmp_path / "project", [*edits, ("features/tests/unit/extra.yml", None, textwrap.dedent(yaml_text))]
    )


def run_one(tmp_path: Path, yaml_text: str, *edits: tuple[str, str | None, str], **kwargs: Any) -> Outcome:
    """Run the single test in ``yaml_text`` (the project's other unit tests are not run)."""
    project = with_tests(tmp_path, yaml_text, *edits)
    name = re.search(r"^\s*- name:\s*(\S+)", textwrap.dedent(yaml_text), re.MULTILINE).group(1)  # type: ignore[union-attr]
    return outcome_of(cases_of(project, **kwargs)[name])


def config_error(tmp_path: Path, yaml_text: str, *edits: tuple[str, str | None, str]) -> str:
    """The one-line error building the cases of a project with ``yaml_text`` raises."""
    project = with_tests(tmp_path, yaml_text, *edits)
    with pytest.raises(ConfigError) as caught:
        for case in cases_of(project).values():
            outcome_of(case)
    return str(caught.value)


ONE_PURCHASE = """\
unit_tests:
  - name: one_purchase
    model: user_transactions
    given:
      - input: source('bank', 'transactions')
        rows:
          - {transaction_id: 1, user_id: 7, amount: 12.00, status: settled, ts: 2026-01-01 10:00:00}
    now: 2026-03-01
"""


# -- the example project ------------------------------------------------------------


def test_the_example_unit_tests_pass_quickly(monkeypatch):
    compiles = []
    real = unit.compile_project
    monkeypatch.setattr(unit, "compile_project", lambda *a, **k: compiles.append(k) or real(*a, **k))
    started = time.perf_counter()
    cases = unit_test_cases(load_project(REPO_ROOT))
    outcomes = {case.name: outcome_of(case) for case in cases}
    seconds = time.perf_counter() - started
    assert {name: o.message for name, o in outcomes.items() if o.failures} == {}
    assert len(cases) >= 7
    assert all(case.kind == "unit" and case.test_type == "unit" and case.models for case in cases)
    # The project is compiled once for all of them: that is what keeps a run short.
    assert len(compiles) == 1 and compiles[0]["target_type"] == "duckdb"
    print(f"{len(cases)} example unit tests in {seconds:.2f} s")


def test_a_case_carries_its_place_and_description():
    cases = {case.name: case for case in unit_test_cases(load_project(REPO_ROOT))}
    case = cases["user_transactions_change_points"]
    assert case.models == ("user_transactions",)
    assert case.path == REPO_ROOT / "features/tests/unit/user_transactions.yml"
    assert case.line and case.path.read_text().splitlines()[case.line - 1].strip().startswith("- name:")
    assert case.description.startswith("One purchase gives a row")


def test_the_documented_example_passes(tmp_path):
    example = unit.__doc__.split("::\n\n")[1].split("\n\n\n")[0].split("\nWhat runs")[0]  # type: ignore[union-attr]
    project = with_tests(tmp_path, example)
    outcomes = {name: outcome_of(case) for name, case in cases_of(project).items()}
    assert outcomes["user_spend_ratios_of_one_day"].failures == 0
    assert outcomes["user_transactions_counts_settled_spend"].failures == 0


def test_columns_type_source_inputs_only(tmp_path):
    text = """\
    unit_tests:
      - name: ratios
        model: user_spend_ratios
        given:
          - input: ref('user_transactions')
            columns: {count_7d: double}
        expect: {rows: []}
    """
    assert config_error(tmp_path, text).endswith(
        "extra.yml:6: unit test 'ratios': ref('user_transactions'): columns: types source inputs only; "
        "a model's table has the types its query gives"
    )


# -- window models ------------------------------------------------------------------


def test_a_window_model_test_fails_with_a_readable_diff(tmp_path):
    outcome = run_one(
        tmp_path,
        ONE_PURCHASE
        + """\
    expect:
      rows:
        - {user_id: 7, ts: 2026-01-02, count_1d: 1}
        - {user_id: 7, ts: 2026-01-03, count_1d: 1}
        - {user_id: 7, ts: 2026-01-09, count_1d: 0}
    """,
    )
    assert outcome.failures == 3
    assert outcome.message == "3 rows differ (1 expected not found, 2 unexpected)"
    assert outcome.details == textwrap.dedent("""\
          user_id | ts                  | count_1d
          --------+---------------------+---------
          7       | 2026-01-02 00:00:00 | 1
        + 7       | 2026-01-03 00:00:00 | 0
        - 7       | 2026-01-03 00:00:00 | 1
          7       | 2026-01-09 00:00:00 | 0
        + 7       | 2026-02-01 00:00:00 | 0
        - expected, not found   + found, not expected""")


def test_the_same_window_test_passes_with_the_right_rows(tmp_path):
    outcome = run_one(
        tmp_path,
        ONE_PURCHASE
        + """\
    expect:
      rows:
        - {user_id: 7, ts: 2026-01-02, count_1d: 1, amount_sum_1d: 12}
        - {user_id: 7, ts: 2026-01-03, count_1d: 0, amount_sum_1d: null}
        - {user_id: 7, ts: 2026-01-09, count_1d: 0, amount_sum_1d: null}
        - {user_id: 7, ts: 2026-02-01, count_1d: 0, amount_sum_1d: null}
    """,
    )
    assert (outcome.failures, outcome.message) == (0, "4 rows as expected")


def test_expect_at_takes_each_entitys_row_as_of_each_time(tmp_path):
    at = (
        ONE_PURCHASE.replace("    now: 2026-03-01\n", "")
        + """\
    expect:
      at: [2026-01-01, 2026-01-02 12:00:00, 2026-01-20]
      rows:
        - {user_id: 7, ts: 2026-01-02 12:00:00, count_1d: 1, count_7d: 1}
        - {user_id: 7, ts: 2026-01-20, count_1d: 0, count_7d: 0}
    """
    )
    assert run_one(tmp_path / "pass", at).failures == 0
    # No row by 1 January (the first is at the end of that day): expecting one fails.
    wrong = at.replace(
        "2026-01-20]\n      rows:\n",
        "2026-01-20]\n      rows:\n        - {user_id: 7, ts: 2026-01-01, count_1d: 0, count_7d: 0}\n",
    )
    outcome = run_one(tmp_path / "fail", wrong)
    assert (outcome.failures, outcome.message) == (1, "1 row differs (1 expected not found, 0 unexpected)")
    assert "- 7       | 2026-01-01 00:00:00 | 0" in outcome.details


def test_the_default_time_is_the_last_at_plus_the_data_delay(tmp_path):
    # data_delay 2h: the run at 2026-01-02 + 2h computes the 2 January boundary, and no later one.
    delayed = ("features/user_transactions.sql", "grain='1 day',", "grain='1 day', data_delay='2h',")
    text = (
        ONE_PURCHASE.replace("    now: 2026-03-01\n", "")
        + """\
    expect:
      at: 2026-01-02
      rows: [{user_id: 7, ts: 2026-01-02, count_1d: 1}]
    """
    )
    assert run_one(tmp_path, text, delayed).failures == 0


def test_a_window_model_needs_a_time(tmp_path):
    text = ONE_PURCHASE.replace("    now: 2026-03-01\n", "") + "    expect: {rows: []}\n"
    project = with_tests(tmp_path, text)
    with pytest.raises(
        ConfigError,
        match=r"extra.yml:2: unit test 'one_purchase': set now: .*window model "
        r"'user_transactions'",
    ):
        outcome_of(cases_of(project)["one_purchase"])


# -- snapshot models and given models -------------------------------------------------


BALANCES = """\
unit_tests:
  - name: balances
    model: user_balances
    given:
      - input: source('bank', 'balance_events')
        rows:
          - {user_id: 1, event_type: deposit, balance: 100, ts: 2026-01-01 10:00:00}
          - {user_id: 1, event_type: advance, balance: 50, ts: 2026-01-01 10:00:00}
    expect:
      rows:
        - {user_id: 1, event_seq: 1, balance: 50, last_event_type: advance}
        - {user_id: 1, event_seq: 2, balance: 100, last_event_type: deposit}
"""


def test_a_snapshot_model_test_passes_and_fails(tmp_path):
    assert run_one(tmp_path / "pass", BALANCES).failures == 0
    swapped = BALANCES.replace("event_seq: 1, balance: 50", "event_seq: 1, balance: 100").replace(
        "event_seq: 2, balance: 100", "event_seq: 2, balance: 50"
    )
    outcome = run_one(tmp_path / "fail", swapped)
    assert outcome.message == "4 rows differ (2 expected not found, 2 unexpected)"


def test_a_given_model_replaces_its_build(tmp_path):
    text = """\
    unit_tests:
      - name: ratios
        model: user_spend_ratios
        given:
          - input: ref('user_transactions')
            rows:
              - {user_id: 1, ts: 2026-01-02, amount_sum_1d: 1, amount_sum_30d: 3, count_7d: 7}
        expect:
          rows: [{user_id: 1, spend_share_1d_of_30d: 0.3333333333333333, transactions_per_day_7d: 1}]
    """
    assert run_one(tmp_path / "pass", text).failures == 0
    # Its values are the given rows, not a build from the (empty) transactions.
    outcome = run_one(tmp_path / "fail", text.replace("0.3333333333333333", "0.333333"))
    assert outcome.failures == 2
    assert "+ 1       | 0.3333333333333333" in outcome.details


def test_a_given_model_keeps_its_real_column_types(tmp_path):
    text = """\
    unit_tests:
      - name: ratios
        model: user_spend_ratios
        given:
          - input: ref('user_transactions')
            rows: [{user_id: 1, ts: 2026-01-02, count_7d: 1.5}]
        expect: {rows: []}
    """
    # count_7d is a BIGINT column of user_transactions: 1.5 is not a value it can hold.
    message = config_error(tmp_path, text)
    assert message.endswith(
        "extra.yml:6: unit test 'ratios': ref('user_transactions'): column 'count_7d': '1.5' is not an integer"
    )


SPEND_FLAGS = (
    "features/spend_flags.sql",
    None,
    """{{ config(entity='user', timestamp='ts') }}
select r.user_id, r.ts, r.spend_share_1d_of_30d > 0.5 as big_day, t.count_1d
from {{ ref('user_spend_ratios') }} as r
join {{ ref('user_transactions') }} as t on t.user_id = r.user_id and t.ts = r.ts
""",
)


def test_a_given_model_between_built_ones(tmp_path):
    # user_transactions is built from the purchase, user_spend_ratios (which reads it) is given,
    # spend_flags reads both.
    text = """\
    unit_tests:
      - name: flags
        model: spend_flags
        given:
          - input: source('bank', 'transactions')
            rows: [{transaction_id: 1, user_id: 1, amount: 10, status: settled, ts: 2026-01-01 10:00:00}]
          - input: ref('user_spend_ratios')
            rows:
              - {user_id: 1, ts: 2026-01-02, spend_share_1d_of_30d: 0.9}
              - {user_id: 1, ts: 2026-01-03, spend_share_1d_of_30d: 0.1}
        now: 2026-01-05
        expect:
          rows:
            - {user_id: 1, ts: 2026-01-02, big_day: true, count_1d: 1}
            - {user_id: 1, ts: 2026-01-03, big_day: false, count_1d: 0}
    """
    assert run_one(tmp_path / "given", text, SPEND_FLAGS).failures == 0
    # Built from the purchase instead, the ratio of 3 January is NULL (no spend that day), not 0.1.
    built = (
        text.split("          - input: ref('user_spend_ratios')")[0] + "        now:" + text.split("        now:")[1]
    )
    outcome = run_one(tmp_path / "built", built, SPEND_FLAGS)
    assert outcome.message == "2 rows differ (1 expected not found, 1 unexpected)"
    assert "+ 1       | 2026-01-03 00:00:00 | NULL    | 0" in outcome.details


# -- incremental runs ----------------------------------------------------------------


LATE = """\
unit_tests:
  - name: late_purchase
    model: user_transactions
    given:
      - input: source('bank', 'transactions')
        rows:
          - {transaction_id: 1, user_id: 1, amount: 10.00, status: settled, ts: 2026-01-01 10:00:00}
    now: 2026-01-04 06:00:00
    then:
      - now: 2026-01-05 06:00:00
        given:
          - input: source('bank', 'transactions')
            rows:
              # arrived late: its day (3 January) was computed by the first run
              - {transaction_id: 2, user_id: 1, amount: 5.00, status: settled, ts: 2026-01-03 10:00:00}
    expect:
      rows:
        - {user_id: 1, ts: 2026-01-02, count_1d: 1, count_7d: 1}
        - {user_id: 1, ts: 2026-01-03, count_1d: 0, count_7d: 1}
        - {user_id: 1, ts: 2026-01-04, count_1d: 1, count_7d: 2}
        - {user_id: 1, ts: 2026-01-05, count_1d: 0, count_7d: 2}
"""
LOOKBACK = ("project.yml", "defaults:\n  grain: 1d\n", "defaults:\n  grain: 1d\n  lookback: 1\n")


def test_late_data_is_picked_up_by_the_lookback(tmp_path):
    assert run_one(tmp_path, LATE, LOOKBACK).failures == 0


def test_without_lookback_a_late_event_misses_the_computed_boundaries(tmp_path):
    # The second run is incremental: it does not recompute 4 January, so the late purchase is missing there.
    outcome = run_one(tmp_path, LATE)
    assert outcome.message == "1 row differs (1 expected not found, 0 unexpected)"
    assert "- 1       | 2026-01-04 00:00:00 | 1        | 2" in outcome.details


def test_a_later_run_appends_and_the_whole_table_is_compared(tmp_path):
    # Expecting only the rows the second run added fails: the expectation is the final table.
    only_new = LATE.replace(
        "        - {user_id: 1, ts: 2026-01-02, count_1d: 1, count_7d: 1}\n"
        "        - {user_id: 1, ts: 2026-01-03, count_1d: 0, count_7d: 1}\n"
        "        - {user_id: 1, ts: 2026-01-04, count_1d: 1, count_7d: 2}\n",
        "",
    )
    outcome = run_one(tmp_path, only_new, LOOKBACK)
    assert outcome.message == "3 rows differ (0 expected not found, 3 unexpected)"


def test_then_runs_need_a_first_time_and_go_forward(tmp_path):
    no_first = LATE.replace("    now: 2026-01-04 06:00:00\n", "")
    assert config_error(tmp_path / "a", no_first).endswith(
        "extra.yml:9: unit test 'late_purchase': with then:, set the first run's time with now:"
    )
    backwards = LATE.replace("now: 2026-01-05 06:00:00", "now: 2026-01-03 06:00:00")
    assert "then: runs go forward in time: 2026-01-03 06:00:00 is before 2026-01-04 06:00:00" in config_error(
        tmp_path / "b", backwards
    )


# -- vars, CSV, other dialects -----------------------------------------------------------


MIN_AMOUNT = [
    ("project.yml", "vars:\n", "vars:\n  min_amount: 0\n"),
    ("features/user_transactions.sql", "  and amount > 0", "  and amount > {{ var('min_amount') }}"),
]
SMALL_PURCHASES = """\
unit_tests:
  - name: small_purchases
    model: user_transactions
    given:
      - input: source('bank', 'transactions')
        rows:
          - {transaction_id: 1, user_id: 1, amount: 3.00, status: settled, ts: 2026-01-01 10:00:00}
          - {transaction_id: 2, user_id: 1, amount: 8.00, status: settled, ts: 2026-01-01 11:00:00}
    expect:
      at: 2026-01-02
      rows: [{user_id: 1, count_1d: 2}]
"""


def test_vars_of_the_test_override_the_runs_and_the_projects(tmp_path):
    project = with_tests(tmp_path, SMALL_PURCHASES, *MIN_AMOUNT)
    assert outcome_of(cases_of(project)["small_purchases"]).failures == 0
    # --vars reaches the model: the 3.00 purchase no longer counts, and the test fails.
    failing = outcome_of(cases_of(project, {"min_amount": 5})["small_purchases"])
    assert failing.message == "2 rows differ (1 expected not found, 1 unexpected)"
    # The test's own vars win over --vars.
    text = SMALL_PURCHASES.replace("    expect:", "    vars: {min_amount: 1}\n    expect:")
    project = with_tests(tmp_path / "own", text, *MIN_AMOUNT)
    assert outcome_of(cases_of(project, {"min_amount": 5})["small_purchases"]).failures == 0


CSV_USERS = """\
unit_tests:
  - name: users_in_csv
    model: user_profile
    given:
      - input: source('bank', 'users')
        format: csv
        rows: |
          user_id,signup_at,plan,state,credit_limit
          1,2025-03-01 08:30:00,pro,,1000.00
    expect:
      format: csv
      rows: |
        user_id,ts,plan,state,credit_limit
        1,2025-03-01T08:30:00,pro,,1000
"""


def test_csv_fixtures_and_expectations(tmp_path):
    assert run_one(tmp_path / "pass", CSV_USERS).failures == 0
    outcome = run_one(tmp_path / "fail", CSV_USERS.replace(",pro,,1000\n", ",pro,,1000.01\n"))
    assert outcome.failures == 2
    assert "- 1       | 2025-03-01 08:30:00 | pro  | NULL  | 1000.01" in outcome.details


def test_a_csv_row_of_the_wrong_width_names_its_line(tmp_path):
    text = CSV_USERS.replace("1,2025-03-01 08:30:00,pro,,1000.00", "1,2025-03-01 08:30:00,pro")
    assert config_error(tmp_path, text).endswith(
        "extra.yml:9: unit test 'users_in_csv': source('bank', 'users'): CSV row has 3 values for 5 columns"
    )


SNOWFLAKE_LABELS = """\
{{ config(tags=['training']) }}
-- Snowflake syntax: dateadd, iff and :: casts; unit tests still run it on DuckDB.
select
    advance.user_id,
    dateadd(minute, -1, advance.ts) as ts,
    advance.amount::number(12, 2) as advance_amount,
    iff(exists (
        select 1
        from {{ source('bank', 'balance_events') }} as repayment
        where repayment.user_id = advance.user_id
          and repayment.event_type = 'repayment'
          and repayment.ts > advance.ts
          and repayment.ts <= dateadd(day, 14, advance.ts)
    ), true, false) as repaid_14d
from {{ source('bank', 'balance_events') }} as advance
where advance.event_type = 'advance'
"""


def test_a_snowflake_project_runs_its_unit_tests_on_duckdb(tmp_path):
    project = copy_example(
        tmp_path / "snowflake",
        [
            NO_HOOK,  # the demo-data hook is DuckDB SQL
            ("project.yml", "dialect: duckdb", "dialect: snowflake"),
            ("features/advance_labels.sql", None, SNOWFLAKE_LABELS),
        ],
    )
    outcomes = {name: outcome_of(case) for name, case in cases_of(project).items()}
    assert {name: o.message for name, o in outcomes.items() if o.failures} == {}
    assert "advance_labels_repaid_within_14_days" in outcomes
    # Read as DuckDB SQL, the same model is wrong: the project dialect is what the compiler reads.
    duckdb = copy_example(tmp_path / "duckdb", [NO_HOOK, ("features/advance_labels.sql", None, SNOWFLAKE_LABELS)])
    with pytest.raises(CompileError, match=r"advance_labels\.sql:5: model 'advance_labels': unknown column 'minute'"):
        outcome_of(cases_of(duckdb)["advance_labels_repaid_within_14_days"])


# -- errors: every one names the file and line ----------------------------------------------


def test_an_unknown_key_suggests_the_right_one(tmp_path):
    text = BALANCES.replace("    given:", "    givn:")
    assert config_error(tmp_path, text).endswith(
        "extra.yml:4: unit test 'balances': unknown key 'givn' (did you mean given?); allowed keys: config, "
        "description, expect, given, model, name, now, then, vars"
    )
    text = BALANCES.replace(
        "        rows:\n          - {user_id: 1, event_type: deposit",
        "        row:\n          - {user_id: 1, event_type: deposit",
    )
    assert "extra.yml:6: unit test 'balances': unknown key 'given.0.row' (did you mean rows?)" in config_error(
        tmp_path / "b", text
    )


def test_a_missing_expectation(tmp_path):
    text = BALANCES.split("    expect:")[0]
    assert config_error(tmp_path, text).endswith("extra.yml:2: unit test 'balances': missing required key 'expect'")


def test_an_unknown_model_or_input(tmp_path):
    assert config_error(tmp_path / "a", BALANCES.replace("model: user_balances", "model: user_balance")).endswith(
        "extra.yml:3: unit test 'balances': unknown model 'user_balance' (did you mean user_balances?)"
    )
    text = BALANCES.replace("source('bank', 'balance_events')", "source('bank', 'balance_event')")
    assert config_error(tmp_path / "b", text).endswith(
        "extra.yml:5: unit test 'balances': input source 'bank.balance_event' is not declared "
        "(did you mean bank.balance_events?)"
    )
    text = BALANCES.replace("source('bank', 'balance_events')", "ref('user_profil')")
    assert config_error(tmp_path / "c", text).endswith(
        "extra.yml:5: unit test 'balances': input ref('user_profil'): unknown model (did you mean user_profile?)"
    )
    text = BALANCES.replace("source('bank', 'balance_events')", "bank.balance_events")
    assert config_error(tmp_path / "d", text).endswith(
        "extra.yml:5: unit test 'balances': input 'bank.balance_events' must be ref('model') or "
        "source('source', 'table')"
    )


def test_an_input_the_model_does_not_read(tmp_path):
    text = (
        BALANCES.replace("source('bank', 'balance_events')", "source('bank', 'users')")
        .replace("{user_id: 1, event_type: deposit, balance: 100, ts: 2026-01-01 10:00:00}", "{user_id: 1}")
        .replace("{user_id: 1, event_type: advance, balance: 50, ts: 2026-01-01 10:00:00}", "{user_id: 2}")
    )
    assert config_error(tmp_path, text).endswith(
        "extra.yml:5: unit test 'balances': model 'user_balances' does not read source('bank', 'users'); "
        "it reads source('bank', 'balance_events')"
    )


def test_a_column_the_source_does_not_declare(tmp_path):
    text = BALANCES.replace("event_type: advance, balance: 50", "event_type: advance, balanse: 50")
    assert config_error(tmp_path, text).endswith(
        "extra.yml:8: unit test 'balances': source('bank', 'balance_events') has no column 'balanse' "
        "(did you mean balance?)"
    )


def test_an_expected_column_the_model_does_not_have(tmp_path):
    text = BALANCES.replace("event_seq: 2, balance: 100", "event_seq: 2, balanse: 100")
    assert config_error(tmp_path, text).endswith(
        "extra.yml:12: unit test 'balances': model 'user_balances' has no column 'balanse' (did you mean balance?)"
    )


def test_an_expected_column_of_a_select_star_model_is_checked_after_the_run(tmp_path):
    text = """\
    unit_tests:
      - name: training
        model: advance_training
        now: 2026-01-10
        expect:
          rows: [{user_id: 1, user_transactions__count_7: 1}]
    """
    assert config_error(tmp_path, text).endswith(
        "extra.yml:6: unit test 'training': model 'advance_training' has no column 'user_transactions__count_7' "
        "(did you mean user_transactions__count_7d?)"
    )


def test_a_bad_value_names_its_row(tmp_path):
    text = BALANCES.replace("balance: 100, ts", "balance: lots, ts")
    assert config_error(tmp_path, text).endswith(
        "extra.yml:7: unit test 'balances': source('bank', 'balance_events'): column 'balance': "
        "'lots' is not a decimal number"
    )


def test_names_are_identifiers_and_unique(tmp_path):
    assert "invalid value for 'name': must be an identifier" in config_error(
        tmp_path / "a", BALANCES.replace("name: balances", "name: my balances")
    )
    twice = BALANCES + BALANCES.split("unit_tests:\n")[1]
    assert config_error(tmp_path / "b", twice).endswith(
        "extra.yml:13: unit test 'balances': the name is used twice (also at extra.yml:2): unit test names are unique"
    )


def test_an_input_given_twice_in_one_run(tmp_path):
    given = BALANCES.split("    given:\n")[1].split("    expect:")[0]
    text = BALANCES.replace("    expect:", given + "    expect:")
    assert config_error(tmp_path, text).endswith(
        "extra.yml:9: unit test 'balances': source('bank', 'balance_events') is given twice in one run: merge its rows"
    )


def test_rows_in_the_wrong_shape(tmp_path):
    text = BALANCES.replace("    expect:\n      rows:", "    expect:\n      format: csv\n      rows:")
    assert "extra.yml:11: unit test 'balances': expect: with format: csv, rows is a CSV text" in config_error(
        tmp_path / "a", text
    )
    text = BALANCES.replace(
        "        rows:\n          - {user_id: 1, event_type: deposit",
        "        rows: |\n          - {user_id: 1, event_type: deposit",
    )
    assert "extra.yml:6: unit test 'balances': source('bank', 'balance_events'): rows must be a list of mappings" in (
        config_error(tmp_path / "b", text)
    )


def test_expect_at_needs_an_entity(tmp_path):
    text = """\
    unit_tests:
      - name: labels
        model: advance_labels
        expect:
          at: 2026-01-01
          rows: []
    """
    assert config_error(tmp_path, text).endswith(
        "extra.yml:4: unit test 'labels': expect.at needs a model with an entity and a timestamp; "
        "'advance_labels' has none"
    )


CRM = [  # a source that declares no columns, and a model reading it
    ("features/crm.yml", None, "sources:\n  - name: crm\n    tables:\n      - name: signups\n"),
    (
        "features/crm_profile.sql",
        None,
        "{{ config(entity='user', timestamp='ts') }}\n"
        "select user_id, signed_up as ts, credit_limit from {{ source('crm', 'signups') }}\n",
    ),
]
SIGNUPS = """\
unit_tests:
  - name: profile
    model: crm_profile
    given:
      - input: source('crm', 'signups')
        rows:
          - {user_id: 7, signed_up: 2026-01-01, credit_limit: 10}
    expect:
      rows: [{user_id: 7, ts: 2026-01-01 00:00:00, credit_limit: 10}]
"""


def test_undeclared_columns_take_the_type_of_their_values(tmp_path):
    assert run_one(tmp_path / "a", SIGNUPS, *CRM).failures == 0
    # The inferred types are real: the date is a DATE, so a time of day cannot be expected of it.
    text = SIGNUPS.replace("ts: 2026-01-01 00:00:00", "ts: 2026-01-01 00:00:01")
    assert config_error(tmp_path / "b", text, *CRM).endswith(
        "extra.yml:9: unit test 'profile': expected column 'ts': '2026-01-01 00:00:01' is not a date such as 2026-01-31"
    )
    outcome = run_one(tmp_path / "c", SIGNUPS.replace("credit_limit: 10}]", "credit_limit: 10.5}]"), *CRM)
    assert outcome.message == "2 rows differ (1 expected not found, 1 unexpected)"


def test_mixed_values_need_a_declared_type(tmp_path):
    mixed = SIGNUPS.replace(
        "          - {user_id: 7, signed_up", "          - {user_id: x}\n          - {user_id: 7, signed_up"
    )
    assert config_error(tmp_path / "a", mixed, *CRM).endswith(
        "extra.yml:5: unit test 'profile': source('crm', 'signups') column 'user_id': values of mixed types "
        "(integer and string): give its type with columns: under given:"
    )
    # columns: gives the type (in the project dialect); the expected 7 is then the string '7'.
    typed = mixed.replace(
        "        rows:\n          - {user_id: x}",
        "        columns: {user_id: varchar}\n        rows:\n          - {user_id: x}",
    )
    typed = typed.replace("rows: [{user_id: 7, ts", "rows: [{user_id: x}, {user_id: '7', ts")
    assert run_one(tmp_path / "b", typed, *CRM).failures == 0


def test_a_source_without_declared_columns_must_be_given(tmp_path):
    text = "unit_tests:\n  - name: profile\n    model: crm_profile\n    expect: {rows: []}\n"
    assert config_error(tmp_path, text, *CRM).endswith(
        "extra.yml:2: unit test 'profile': source('crm', 'signups') declares no columns in sources.yml, so an empty "
        "fixture of it has none: give it rows or columns: under given:"
    )


def test_tests_next_to_the_models_and_disabled_ones(tmp_path):
    schema_test = ("features/models.yml", "version: 1\nmodels:\n", "version: 1\n" + BALANCES + "models:\n")
    disabled = BALANCES.replace("name: balances", "name: disabled_balances\n    config: {enabled: false}")
    project = with_tests(tmp_path, disabled, schema_test)
    cases = cases_of(project)
    assert "balances" in cases and "disabled_balances" not in cases
    assert cases["balances"].path == project / "features/models.yml"
    assert outcome_of(cases["balances"]).failures == 0


# -- a model that does not compile or run ---------------------------------------------------


def test_a_model_that_fails_to_run_is_an_execution_error(tmp_path):
    broken = (
        "features/user_profile.sql",
        "    credit_limit\n",
        "    credit_limit,\n    cast(state as integer) as code\n",
    )
    text = """\
    unit_tests:
      - name: profile
        model: user_profile
        given:
          - input: source('bank', 'users')
            rows: [{user_id: 1, state: CA}]
        expect: {rows: []}
    """
    project = with_tests(tmp_path, text, broken)
    with pytest.raises(ExecutionError) as caught:
        outcome_of(cases_of(project)["profile"])
    message = str(caught.value)
    assert "\n" not in message
    assert "extra.yml:2: unit test 'profile': model 'user_profile' failed: DuckDB rejected a statement: " in message
    assert "'CA'" not in message  # row values are redacted from driver errors


def test_a_model_that_does_not_compile_is_the_tests_error(tmp_path):
    broken = ("features/user_profile.sql", "    credit_limit\n", "    credit_limit +\n")
    project = with_tests(tmp_path, BALANCES, broken)
    cases = cases_of(project)  # building the cases does not fail: each test reports it
    with pytest.raises(CompileError, match="user_profile"):
        outcome_of(cases["balances"])


def test_an_unexpected_row_count_is_not_a_pass(tmp_path):
    # Expecting nothing of a model that has rows fails; expecting rows of an empty one fails.
    given, expect = BALANCES.split("    expect:")
    assert run_one(tmp_path / "a", given + "    expect: {rows: []}\n").message == (
        "2 rows differ (0 expected not found, 2 unexpected)"
    )
    no_input = given.split("    given:")[0] + "    expect:" + expect
    assert run_one(tmp_path / "b", no_input).message == "2 rows differ (2 expected not found, 0 unexpected)"


# -- as of a time: ttl, DATE timestamps; diffs of empty expectations ----------------------------

BALANCE_AT = """\
unit_tests:
  - name: balance_as_of
    model: user_balances
    given:
      - input: source('bank', 'balance_events')
        rows:
          - {user_id: 1, event_type: deposit, amount: 5, balance: 50, ts: 2026-01-01 08:00:00}
    expect:
      at: [2026-01-20, 2026-06-01]
      rows:
        - {user_id: 1, ts: 2026-01-20, balance: 50}
"""


def test_expect_at_drops_rows_older_than_the_ttl(tmp_path):
    # user_balances has ttl 30d: on 1 June the January balance is stale, as an extract would read it
    assert run_one(tmp_path / "ttl", BALANCE_AT).failures == 0
    stale = BALANCE_AT + "        - {user_id: 1, ts: 2026-06-01, balance: 50}\n"
    assert run_one(tmp_path / "stale", stale).message == "1 row differs (1 expected not found, 0 unexpected)"


def test_expect_at_on_a_date_timestamp(tmp_path):
    model = (
        "features/signup_days.sql",
        None,
        "{{ config(entity='user', timestamp='d') }}\n"
        "select user_id, cast(signup_at as date) as d, plan from {{ source('bank', 'users') }}\n",
    )
    text = """\
    unit_tests:
      - name: plan_by_day
        model: signup_days
        given:
          - input: source('bank', 'users')
            rows: [{user_id: 1, signup_at: 2025-12-31 23:00:00, plan: free}]
        expect:
          at: [2026-01-01]
          rows: [{user_id: 1, d: 2026-01-01, plan: free}]
    """
    assert run_one(tmp_path, text, model).failures == 0


def test_an_empty_expectation_shows_the_rows_that_came(tmp_path):
    text = ONE_PURCHASE + "    expect:\n      rows: []\n"
    outcome = run_one(tmp_path, text)
    assert outcome.message == "4 rows differ (0 expected not found, 4 unexpected)"
    header = outcome.details.splitlines()[0]
    assert "user_id" in header and "count_7d" in header and "amount_sum_30d" in header
