"""One test per class of user error: a copy of the example project with one change.

Each checks what a user sees: a non-zero exit code (2 for configuration and
compile errors), exactly one line of error output that names the file (and the
line, where there is one) and the problem, with the closest name suggested for
a misspelling, and no traceback unless --debug is given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

USER_PROFILE = "features/user_profile.sql"
USER_TRANSACTIONS = "features/user_transactions.sql"
USER_SPEND_RATIOS = "features/user_spend_ratios.sql"
USER_BALANCES = "features/user_balances.sql"
MAX_7D = "window_max('amount', windows=['7d'])"
EVENT_TIME = "event_time: ts\n        # The demo data"
HOOK = '  - "{{ create_demo_data() }}"'
SECRETS = ("SNOWFLAKE_ACCOUNT", "SNOWFLAKE_USER", "SNOWFLAKE_PASSWORD", "BIGQUERY_PROJECT")


@dataclass
class Case:
    """One broken project: its edits, the command, and what the error line must say."""

    edits: list[tuple[str, str | None, str]]
    file: str | None  # the file the error names (None: the error is not about a file)
    line_of: str | None  # text whose line the error names (None: no line expected)
    contains: list[str]
    args: list[str] = field(default_factory=lambda: ["compile"])
    exit_code: int = 2


CASES = {
    "unknown_project_key": Case(
        [("project.yml", "dialect: duckdb", "dialekt: duckdb")],
        "project.yml",
        "dialekt: duckdb",
        ["unknown key 'dialekt'", "did you mean dialect?"],
    ),
    "unknown_nested_project_key": Case(
        [("project.yml", "  grain: 1d", "  grian: 1d")],
        "project.yml",
        "grian: 1d",
        ["unknown key", "grian", "did you mean grain?"],
    ),
    "malformed_yaml": Case(
        [("project.yml", "dialect: duckdb", "dialect: duckdb: oops")],
        "project.yml",
        "dialect: duckdb: oops",
        ["invalid YAML"],
    ),
    "unknown_column": Case(
        [(USER_TRANSACTIONS, "and amount > 0", "and amout > 0")],
        USER_TRANSACTIONS,
        "and amout > 0",
        ["user_transactions", "unknown column 'amout'", "did you mean amount?"],
    ),
    "unknown_column_of_upstream_model": Case(
        [(USER_SPEND_RATIOS, "amount_sum_1d / nullif", "amout_sum_1d / nullif")],
        USER_SPEND_RATIOS,
        "amout_sum_1d",
        ["unknown column 'amout_sum_1d'", "did you mean amount_sum_1d?"],
    ),
    "unknown_ref": Case(
        [(USER_SPEND_RATIOS, "ref('user_transactions')", "ref('user_transaction')")],
        USER_SPEND_RATIOS,
        "ref('user_transaction')",
        ["unknown model 'user_transaction'", "did you mean user_transactions?"],
    ),
    "unknown_source": Case(
        [(USER_PROFILE, "source('bank', 'users')", "source('bank', 'user')")],
        USER_PROFILE,
        "source('bank', 'user')",
        ["bank.user", "did you mean bank.users?"],
    ),
    "cycle": Case(
        [
            (USER_PROFILE, "from {{ source('bank', 'users') }}", "from {{ ref('user_balances') }}"),
            (USER_BALANCES, "from {{ source('bank', 'balance_events') }}", "from {{ ref('user_profile') }}"),
        ],
        # which of the two files is named is up to the framework: see test_cycle_names_a_model_file
        None,
        None,
        ["cycle", "user_profile", "user_balances"],
    ),
    "bad_window_string": Case(
        [(USER_TRANSACTIONS, MAX_7D, MAX_7D.replace("7d", "7x"))],
        USER_TRANSACTIONS,
        "windows=['7x']",
        ["'7x'"],
    ),
    "window_not_a_multiple_of_the_grain": Case(
        [(USER_TRANSACTIONS, MAX_7D, MAX_7D.replace("7d", "36h"))],
        USER_TRANSACTIONS,
        "windows=['36h']",
        ["36h", "not a multiple of the grain 1d"],
    ),
    "unknown_macro": Case(
        [(USER_TRANSACTIONS, "{{ window_max(", "{{ window_maxx(")],
        USER_TRANSACTIONS,
        "window_maxx(",
        ["window_maxx", "undefined", "did you mean window_max?"],
    ),
    "undefined_var": Case(
        [(USER_PROFILE, "    plan,", "    {{ var('demo_userz') }} as n,\n    plan,")],
        USER_PROFILE,
        "var('demo_userz')",
        ["var 'demo_userz' is not defined", "did you mean demo_users?"],
    ),
    "unparseable_sql": Case(
        [(USER_PROFILE, "    state,", "    state state state,")],
        USER_PROFILE,
        "state state state",
        ["cannot parse", "user_profile"],
    ),
    "unterminated_string": Case(
        [(USER_PROFILE, "    state,", "    'unterminated,")],
        USER_PROFILE,
        "'unterminated",
        ["cannot parse", "user_profile"],
    ),
    "unknown_entity": Case(
        [(USER_PROFILE, "entity='user'", "entity='usr'")],
        USER_PROFILE,
        "entity='usr'",
        ["unknown entity 'usr'", "did you mean user?"],
    ),
    "duplicate_feature_name": Case(
        [
            (
                USER_TRANSACTIONS,
                "{{ window_max('amount', windows=['7d']) }},",
                "{{ window_max('amount', windows=['7d']) }},\n"
                "    {{ window_max('amount', windows=['7d'], name='amount_max_{window}') }},",
            )
        ],
        USER_TRANSACTIONS,
        "name='amount_max_{window}'",
        ["duplicate", "amount_max_7d"],
    ),
    "missing_profile_target": Case(
        [],
        "profiles.yml",
        None,
        ["target 'prod' not found", "dev", "prod_snowflake"],
        args=["compile", "--target", "prod"],
    ),
    "misspelled_profile_target": Case(
        [],
        "profiles.yml",
        None,
        ["target 'prod_snowflak' not found", "did you mean prod_snowflake?"],
        args=["compile", "--target", "prod_snowflak"],
    ),
    "unknown_target_type": Case(
        [("profiles.yml", "type: duckdb", "type: duckbd")],
        "profiles.yml",
        "type: duckbd",
        ["unknown target type 'duckbd'", "did you mean duckdb?"],
    ),
    "env_var_not_set": Case(
        # the line of the target (the message names the variable)
        [],
        "profiles.yml",
        "prod_snowflake:\n",
        ["SNOWFLAKE_ACCOUNT", "not set"],
        args=["run", "--target", "prod_snowflake"],  # compile works offline, without secrets
    ),
    "unknown_key_in_model_config_call": Case(
        [(USER_PROFILE, "tags=['profile']", "tags=['profile'], grian='1d'")],
        USER_PROFILE,
        "grian='1d'",
        ["unknown key 'grian'", "did you mean grain?"],
    ),
    "unknown_key_in_model_yaml_config": Case(
        [("features/models.yml", "      owner: risk-analytics", "      ownr: risk-analytics")],
        "features/models.yml",
        "ownr: risk-analytics",
        ["unknown key 'ownr'", "did you mean owner?"],
    ),
    "unknown_key_in_sources": Case(
        [("features/sources.yml", EVENT_TIME, EVENT_TIME.replace("event_time", "event_tme"))],
        "features/sources.yml",
        "event_tme: ts",
        ["event_tme", "did you mean event_time?"],
    ),
    "unknown_key_in_profile": Case(
        [("profiles.yml", "    schema: main", "    shema: main")],
        "profiles.yml",
        "shema: main",
        ["shema", "did you mean schema?"],
    ),
    "described_model_without_sql": Case(
        [("features/models.yml", "  - name: user_spend_ratios", "  - name: user_spend_ratio")],
        "features/models.yml",
        "name: user_spend_ratio",
        ["user_spend_ratio", "no user_spend_ratio.sql", "did you mean user_spend_ratios?"],
    ),
    "unknown_selector": Case(
        [],
        None,
        None,
        ["user_transaction", "did you mean user_transactions?"],
        args=["compile", "--select", "user_transaction+"],
    ),
    "failing_on_run_start_hook": Case(
        [("project.yml", HOOK, f"{HOOK}\n  - select * from nosuch")],
        "project.yml",
        None,
        ["on_run_start", "nosuch"],
        args=["--vars", "{demo_transactions: 100, demo_users: 10, demo_balance_events: 10}", "run"],
        exit_code=1,
    ),
}


def line_number(path: Path, text: str) -> int:
    """The 1-based line of ``path`` on which ``text`` starts."""
    content = path.read_text(encoding="utf-8")
    index = content.index(text)
    return content.count("\n", 0, index) + 1


def assert_one_error_line(result, case: Case, project: Path) -> str:
    assert result.exit_code == case.exit_code, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr_lines
    assert len(lines) == 1, f"expected one line of error output, got {lines}"
    message = lines[0]
    assert message.startswith("Error: "), message
    if case.file is not None:
        where = case.file
        if case.line_of is not None:
            where += f":{line_number(project / case.file, case.line_of)}"
        assert message.startswith(f"Error: {where}:"), f"should start with {where!r}: {message}"
    for text in case.contains:
        assert text in message, f"{text!r} missing from: {message}"
    return message


@pytest.fixture(autouse=True)
def _no_secrets(monkeypatch):
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("name", list(CASES))
def test_error_message(name, make_project, cli):
    case = CASES[name]
    project = make_project(case.edits)

    result = cli(project, *case.args)

    assert_one_error_line(result, case, project)


def test_cycle_names_a_model_file(make_project, cli):
    case = CASES["cycle"]
    project = make_project(case.edits)

    message = assert_one_error_line(cli(project, *case.args), case, project)

    assert re.match(r"Error: features/user_(profile|balances)\.sql:\d+: ", message), (
        f"a cycle error should point at the ref() that closes the cycle: {message}"
    )


def test_suggestion_is_never_the_unknown_name_itself(make_project, cli):
    # 'from from ...' parses (DuckDB's FROM-first syntax) into a subquery named 'from';
    # whatever the message, suggesting the very name that failed helps nobody.
    project = make_project([(USER_PROFILE, "from {{ source", "from from {{ source")])

    result = cli(project, "compile")

    assert result.exit_code == 2
    message = result.stderr_lines[-1]
    for unknown, suggested in re.findall(r"'(\w+)' \(did you mean (\w+)\?\)", message):
        assert unknown != suggested, message


def test_parse_error_does_not_leak_parser_internals(make_project, cli):
    project = make_project([(USER_PROFILE, "    state,", "    state +,")])

    result = cli(project, "compile")

    message = assert_one_error_line(result, Case([], USER_PROFILE, "state +", ["cannot parse"]), project)
    assert "<class" not in message and "sqlglot" not in message, message


@pytest.mark.parametrize("name", ["unknown_column", "unknown_project_key", "env_var_not_set", "cycle"])
def test_error_as_subprocess_has_no_traceback(name, make_project, cli_process):
    case = CASES[name]
    project = make_project(case.edits)

    result = cli_process(project, *case.args)

    assert result.exit_code == case.exit_code
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr_lines) == 1, result.stderr
    for text in case.contains:
        assert text in result.stderr


@pytest.mark.parametrize("name", ["unknown_column", "unknown_project_key", "undefined_var"])
def test_debug_prints_the_traceback(name, make_project, cli_process):
    case = CASES[name]
    project = make_project(case.edits)

    result = cli_process(project, "--debug", *case.args)

    assert result.exit_code == case.exit_code
    assert "Traceback (most recent call last)" in result.stderr
    assert "featuresql" in result.stderr  # frames of the framework, not just click's
    last = result.stderr_lines[-1]
    assert last.startswith("Error: "), last
    for text in case.contains:
        assert text in last


def test_run_reports_compile_errors_like_compile(make_project, cli):
    case = CASES["unknown_column"]
    project = make_project(case.edits)

    result = cli(project, "--vars", "{demo_transactions: 100}", "run")

    assert_one_error_line(result, case, project)
    assert "START" not in result.stdout


def test_model_failure_message_hides_row_values(make_project, cli):
    # STYLE: redact row values from driver errors; run logs end up in CI and schedulers
    failing = "and amount > 0 and cast(status as integer) > 0"
    project = make_project([(USER_TRANSACTIONS, "and amount > 0", failing)])

    result = cli(project, "--vars", "{demo_transactions: 500, demo_users: 20}", "run")

    assert result.exit_code == 1
    assert "ERROR user_transactions" in result.stdout
    assert "'settled'" not in result.stdout + result.stderr
    assert "'declined'" not in result.stdout + result.stderr


def test_no_project_here(tmp_path, cli):
    result = cli(tmp_path, "ls")

    assert result.exit_code == 2
    assert len(result.stderr_lines) == 1
    assert "no project.yml found" in result.stderr
    assert "featuresql init" in result.stderr
