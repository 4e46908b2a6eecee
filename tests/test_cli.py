"""The `featuresql` CLI end to end on the example project (in process and as a subprocess).

Every test works on a copy of the example project under tmp_path with small demo
data, and checks real outcomes: the tables in the DuckDB file after the command
exited, the files `compile` wrote, the JSON `ls` printed.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import sqlglot
from click.testing import CliRunner
from projects import USER_TRANSACTIONS_FEATURES
from sqlglot import exp

pytestmark = pytest.mark.duckdb

MODELS = (
    "advance_labels",
    "merchant_transactions",
    "user_balances",
    "user_profile",
    "user_transactions",
    "user_spend_ratios",
    "advance_training",
)
EXPECTED_COLUMNS = {
    "advance_labels": ["user_id", "ts", "advance_amount", "repaid_14d"],
    "advance_training": [
        "user_id",
        "ts",
        "advance_amount",
        "repaid_14d",
        *(f"user_transactions__{c}" for c in USER_TRANSACTIONS_FEATURES),
        "user_balances__balance",
        "user_profile__plan",
        "user_profile__state",
        "user_profile__credit_limit",
    ],
    "merchant_transactions": [
        "merchant_id",
        "ts",
        "count_1d",
        "count_7d",
        "amount_sum_7d",
        "user_id_count_distinct_7d",
        "declined_count_7d",
    ],
    "user_balances": ["user_id", "ts", "balance", "last_event_type", "event_seq"],
    "user_profile": ["user_id", "ts", "plan", "state", "credit_limit"],
    "user_transactions": ["user_id", "ts", *USER_TRANSACTIONS_FEATURES],
    "user_spend_ratios": [
        "user_id",
        "ts",
        "spend_share_1d_of_30d",
        "transactions_per_day_7d",
        "max_to_avg_amount",
    ],
}
DATABASE = Path("target") / "cash_advance.duckdb"


def read_tables(project: Path, schema: str = "main") -> dict[str, list[str]]:
    """Tables of ``schema`` in the project's DuckDB file and their columns (read after the CLI)."""
    with duckdb.connect(str(project / DATABASE), read_only=True) as connection:
        rows = connection.execute(
            "select table_name, column_name from information_schema.columns "
            "where table_schema = ? order by table_name, ordinal_position",
            [schema],
        ).fetchall()
    tables: dict[str, list[str]] = {}
    for table, column in rows:
        tables.setdefault(table, []).append(column)
    return tables


def scalar(project: Path, sql: str) -> object:
    with duckdb.connect(str(project / DATABASE), read_only=True) as connection:
        connection.execute("set TimeZone = 'UTC'")
        row = connection.execute(sql).fetchone()
    assert row is not None
    return row[0]


def fingerprint(project: Path, model: str) -> tuple[object, ...]:
    """Row count and an order-independent hash of a table (doubles rounded: parallel sums may differ
    in the last bits)."""
    with duckdb.connect(str(project / DATABASE), read_only=True) as connection:
        types = connection.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'main' and table_name = ? order by ordinal_position",
            [model],
        ).fetchall()
        values = [f"round({c}, 6)" if kind in ("DOUBLE", "FLOAT") else c for c, kind in types]
        row = connection.execute(f"select count(*), bit_xor(hash({', '.join(values)})) from main.{model}").fetchone()
    assert row is not None
    return tuple(row)


# -- run ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory, copy_example_to, small_vars):
    """The example project after one `featuresql run` (in process), and that run's output."""
    from featuresql.cli.main import cli as command

    project = copy_example_to(tmp_path_factory.mktemp("built") / "cash_advance")
    with contextlib.chdir(project):
        result = CliRunner().invoke(command, ["--vars", small_vars, "run"], prog_name="featuresql")
    return project, result


def test_run_builds_every_model(built):
    example_project, result = built

    assert result.exit_code == 0, result.stdout + result.stderr
    assert "Finished 7 models" in result.stdout
    assert "7 ok, 0 error, 0 skipped" in result.stdout
    assert read_tables(example_project) == EXPECTED_COLUMNS
    # --vars reached the on_run_start hook that generates the demo data
    assert scalar(example_project, "select count(*) from raw.transactions") == 20000
    assert scalar(example_project, "select count(*) from raw.users") == 500
    assert scalar(example_project, "select count(*) from main.user_profile") == 500
    assert scalar(example_project, "select count(*) from main.user_balances") == 2000
    rows = scalar(example_project, "select count(*) from main.user_transactions")
    assert 10_000 < rows < 200_000  # a handful of change points per active user
    assert scalar(example_project, "select count(*) from main.user_spend_ratios") == rows


def test_run_window_tables_are_plausible(built):
    example_project, result = built
    assert result.exit_code == 0

    # every event lands in exactly one 1-day tile, read at the boundary just after it
    settled = scalar(
        example_project,
        "select count(*) from raw.transactions where status = 'settled' and amount > 0",
    )
    assert scalar(example_project, "select sum(count_1d) from main.user_transactions") == settled
    assert scalar(example_project, "select sum(count_1d) from main.merchant_transactions") == 20000
    # boundaries are whole days, one row per entity and boundary
    assert (
        scalar(
            example_project,
            "select count(*) from main.user_transactions where ts <> date_trunc('day', ts)",
        )
        == 0
    )
    assert (
        scalar(
            example_project,
            "select count(*) - count(distinct (user_id, ts)) from main.user_transactions",
        )
        == 0
    )
    # windows nest, and empty windows follow the semantics (0 counts, NULL sums)
    broken = scalar(
        example_project,
        """
        select count(*) from main.user_transactions
        where not (count_1d <= count_7d and count_7d <= count_30d)
           or (count_7d = 0 and amount_sum_7d is not null)
           or (count_7d > 0 and amount_max_7d > amount_sum_7d)
           or merchant_category_count_distinct_30d > count_30d
        """,
    )
    assert broken == 0


def test_run_select_with_descendants_as_subprocess(example_project, cli_process, small_vars):
    result = cli_process(
        example_project,
        "--vars",
        small_vars,
        "run",
        "--select",
        "user_transactions+",
        "--exclude",
        "tag:training",
    )

    assert result.exit_code == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert set(read_tables(example_project)) == {"user_transactions", "user_spend_ratios"}
    assert "2 ok, 0 error, 0 skipped" in result.stdout


def test_run_exclude(example_project, cli, small_vars):
    result = cli(example_project, "--vars", small_vars, "run", "--exclude", "user_transactions+")

    assert result.exit_code == 0, result.stdout + result.stderr
    assert set(read_tables(example_project)) == {
        "advance_labels",
        "merchant_transactions",
        "user_balances",
        "user_profile",
    }


def test_run_exclude_by_tag_with_select(example_project, cli, small_vars):
    selection = ["--select", "tag:spend,tag:profile", "--exclude", "user_spend_ratios"]
    excluded = ["--exclude", "tag:merchant tag:balance"]
    result = cli(example_project, "--vars", small_vars, "run", *selection, *excluded)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert set(read_tables(example_project)) == {"user_transactions", "user_profile"}


def test_run_with_two_threads_matches_one_thread(make_project, cli, small_vars):
    serial = make_project(name="serial")
    parallel = make_project(name="parallel")

    assert cli(serial, "--vars", small_vars, "run").exit_code == 0
    result = cli(parallel, "--vars", small_vars, "run", "--threads", "2")

    assert result.exit_code == 0, result.stdout + result.stderr
    assert "7 ok, 0 error, 0 skipped" in result.stdout
    assert read_tables(parallel) == EXPECTED_COLUMNS
    for model in MODELS:
        assert fingerprint(serial, model) == fingerprint(parallel, model), model


def test_rerun_yields_identical_tables(example_project, cli, small_vars):
    assert cli(example_project, "--vars", small_vars, "run").exit_code == 0
    before = {model: fingerprint(example_project, model) for model in MODELS}

    result = cli(example_project, "--vars", small_vars, "run")

    assert result.exit_code == 0, result.stdout + result.stderr
    assert {model: fingerprint(example_project, model) for model in MODELS} == before


def test_model_failure_exits_1_and_skips_descendants(make_project, cli, small_vars):
    # compiles (the column exists) but fails in DuckDB: 'settled' is not an integer
    failing = "and amount > 0 and cast(status as integer) > 0"
    project = make_project([("features/user_transactions.sql", "and amount > 0", failing)])

    result = cli(project, "--vars", small_vars, "run")

    assert result.exit_code == 1
    assert "ERROR user_transactions" in result.stdout
    assert "SKIP user_spend_ratios" in result.stdout
    assert "4 ok, 1 error, 2 skipped" in result.stdout
    assert set(read_tables(project)) == {"advance_labels", "merchant_transactions", "user_balances", "user_profile"}
    assert result.exception is None or isinstance(result.exception, SystemExit)


# -- compile ------------------------------------------------------------------------------


def test_compile_writes_every_model_without_a_database(example_project, cli):
    result = cli(example_project, "compile")

    assert result.exit_code == 0, result.stdout + result.stderr
    folder = example_project / "target" / "compiled" / "dev"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{m}.sql" for m in MODELS)
    for model in MODELS:
        assert f"target/compiled/dev/{model}.sql" in result.stdout
        statements = sqlglot.parse((folder / f"{model}.sql").read_text(), read="duckdb")
        create = statements[-1]
        assert isinstance(create, exp.Create)
        assert create.this.sql() == f"main.{model}"
    assert "Compiled 7 models for target dev (duckdb)" in result.stdout
    assert not (example_project / DATABASE).exists(), "compile must not need or create a database"


def test_compile_select_writes_only_selected(example_project, cli_process):
    result = cli_process(example_project, "compile", "--select", "+user_spend_ratios")

    assert result.exit_code == 0, result.stdout + result.stderr
    folder = example_project / "target" / "compiled" / "dev"
    assert sorted(p.name for p in folder.iterdir()) == [
        "user_spend_ratios.sql",
        "user_transactions.sql",
    ]


def test_compiled_sql_runs_in_duckdb(example_project, cli, small_vars):
    assert cli(example_project, "--vars", small_vars, "run", "--select", "user_profile").exit_code == 0
    assert cli(example_project, "compile").exit_code == 0
    folder = example_project / "target" / "compiled" / "dev"

    with duckdb.connect(str(example_project / DATABASE)) as connection:
        connection.execute("set TimeZone = 'UTC'")
        for model in MODELS:  # in dependency order
            connection.execute((folder / f"{model}.sql").read_text())
        counts = {m: connection.execute(f"select count(*) from main.{m}").fetchone()[0] for m in MODELS}
    assert all(count > 0 for count in counts.values()), counts


# -- ls -----------------------------------------------------------------------------------


def test_ls_text(example_project, cli):
    result = cli(example_project, "ls")

    assert result.exit_code == 0, result.stdout + result.stderr
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert "user_transactions window entity=user(user_id) grain=1d online" in lines
    assert "user_profile snapshot entity=user(user_id)" in lines
    assert "amount_sum_7d sum(amount) over 7d" in lines
    assert "count_30d count(*) over 30d" in lines
    assert "merchant_category_count_distinct_30d count_distinct(merchant_category) over 30d" in lines
    assert "amount_last_7d last(amount) over 7d" in lines
    assert "sources" in lines
    assert "bank.transactions raw.transactions (event time: ts)" in lines
    assert "bank.users raw.users" in lines


def test_ls_json(example_project, cli):
    result = cli(example_project, "ls", "--output", "json")

    assert result.exit_code == 0, result.stderr
    listing = json.loads(result.stdout)  # stdout is the JSON document and nothing else
    models = {m["name"]: m for m in listing["models"]}
    assert set(models) == {*MODELS, "advance_request"}
    assert models["advance_request"]["kind"] == "on_demand"
    assert models["advance_request"]["request"] == {"advance_amount": "DECIMAL(12, 2)"}
    assert [f["input"] for f in models["advance_request"]["features"]] == [
        "request.advance_amount / NULLIF(user_transactions.amount_avg_30d, 0)",
        "request.advance_amount > COALESCE(user_transactions.amount_max_7d, 0)",
    ]
    spend = models["user_transactions"]
    assert spend["kind"] == "window"
    assert spend["entity"] == "user" and spend["keys"] == ["user_id"]
    assert spend["grain"] == "1d"
    features = {f["name"]: f for f in spend["features"]}
    assert list(features) == EXPECTED_COLUMNS["user_transactions"][2:]
    assert features["amount_sum_7d"] == {
        "name": "amount_sum_7d",
        "function": "sum",
        "input": "amount",
        "window": "7d",
    }
    assert (features["count_1d"]["function"], features["count_1d"]["window"]) == ("count", "1d")
    assert features["amount_stddev_30d"]["function"] == "stddev"
    declined = {f["name"]: f for f in models["merchant_transactions"]["features"]}["declined_count_7d"]
    assert declined["function"] == "sum" and declined["window"] == "7d"
    assert models["user_spend_ratios"]["depends_on"] == ["user_transactions"]
    profile = {f["name"]: f for f in models["user_profile"]["features"]}
    assert set(profile) == {"plan", "state", "credit_limit"}
    assert profile["plan"]["window"] is None
    sources = {s["name"]: s for s in listing["sources"]}
    assert set(sources) == {"bank.users", "bank.transactions", "bank.balance_events"}
    assert sources["bank.transactions"]["relation"] == "raw.transactions"
    assert sources["bank.transactions"]["event_time"] == "ts"
    assert "merchant_category" in sources["bank.transactions"]["columns"]


def test_ls_json_with_selection(example_project, cli):
    result = cli(example_project, "ls", "--output", "json", "-s", "tag:spend")

    assert result.exit_code == 0, result.stderr
    names = [m["name"] for m in json.loads(result.stdout)["models"]]
    assert names == ["user_transactions", "user_spend_ratios"]


def test_select_takes_several_unquoted_selectors(example_project, cli):
    """`-s a b` works as in dbt: the option consumes values up to the next option."""
    result = cli(example_project, "ls", "-s", "user_profile", "tag:merchant", "--output", "json")

    assert result.exit_code == 0, result.stderr
    names = [m["name"] for m in json.loads(result.stdout)["models"]]
    assert sorted(names) == ["merchant_transactions", "user_profile"]


# -- debug ----------------------------------------------------------------------------------


def test_debug_reports_connection_ok(example_project, cli):
    result = cli(example_project, "debug")

    assert result.exit_code == 0, result.stdout + result.stderr
    assert "cash_advance" in result.stdout
    assert re.search(r"models:\s+7\b", result.stdout)
    assert re.search(r"sources:\s+3\b", result.stdout)
    assert "target:   dev (duckdb" in result.stdout
    assert "Connection OK." in result.stdout


def test_project_dir_option_from_elsewhere(example_project, cli_process, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    result = cli_process(elsewhere, "--project-dir", str(example_project), "debug")

    assert result.exit_code == 0, result.stdout + result.stderr
    assert "Connection OK." in result.stdout
    assert str(example_project / DATABASE) in result.stdout


def test_console_script_is_installed(example_project):
    script = shutil.which("featuresql")
    assert script is not None, "the featuresql console script is not on PATH"
    completed = subprocess.run([script, "ls"], cwd=example_project, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert "user_transactions" in completed.stdout


def test_version_and_help(example_project, cli):
    assert cli(example_project, "--version").exit_code == 0
    result = cli(example_project, "--help")
    assert result.exit_code == 0
    for command in ("init", "compile", "run", "test", "freshness", "ls", "debug"):
        assert command in result.stdout


# -- init -------------------------------------------------------------------------------------


def test_init_scaffolds_a_project_that_runs(tmp_path, cli, cli_process):
    result = cli(tmp_path, "init", "shop_features")

    assert result.exit_code == 0, result.stdout + result.stderr
    project = tmp_path / "shop_features"
    assert (project / "project.yml").is_file()
    assert (project / "profiles.yml").is_file()
    assert any((project / "features").glob("*.sql"))

    run = cli_process(project, "run")

    assert run.exit_code == 0, run.stdout + run.stderr
    with duckdb.connect(str(project / "target" / "shop_features.duckdb"), read_only=True) as connection:
        tables = connection.execute(
            "select table_name from information_schema.tables where table_schema = 'main'"
        ).fetchall()
        assert tables, "init's project built no table"
        for (table,) in tables:
            rows = connection.execute(f"select count(*) from main.{table}").fetchone()[0]
            assert rows > 0, f"{table} is empty"
    assert cli_process(project, "debug").exit_code == 0
    tested = cli_process(project, "test")
    assert tested.exit_code == 0, tested.stdout + tested.stderr
    assert "6 passed" in tested.stdout  # its data tests, its unit test, the availability and null_keys checks


def test_init_refuses_a_non_empty_folder(tmp_path, cli):
    existing = tmp_path / "taken"
    existing.mkdir()
    (existing / "notes.txt").write_text("keep me")

    result = cli(tmp_path, "init", "taken")

    assert result.exit_code == 2
    assert len(result.stderr_lines) == 1
    assert "taken" in result.stderr and "not empty" in result.stderr
    assert sorted(p.name for p in existing.iterdir()) == ["notes.txt"]
    assert (existing / "notes.txt").read_text() == "keep me"


def test_init_accepts_an_empty_folder(tmp_path, cli):
    (tmp_path / "empty").mkdir()

    result = cli(tmp_path, "init", "empty")

    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "empty" / "project.yml").is_file()


def test_init_rejects_a_name_that_is_not_an_identifier(tmp_path, cli):
    result = cli(tmp_path, "init", "my-features")

    assert result.exit_code == 2
    assert len(result.stderr_lines) == 1
    assert "my-features" in result.stderr
    assert not (tmp_path / "my-features").exists()


def test_ls_lists_an_as_of_join_models_columns(example_project, cli):
    """``select * from as_of_join(...)``: the spine's columns and each joined feature, not ``*``."""
    result = cli(example_project, "ls", "-s", "advance_training")

    assert result.exit_code == 0, result.stdout + result.stderr
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert "advance_training as_of_join" in lines
    assert "advance_amount spine(advance_amount)" in lines
    assert "user_transactions__count_7d as_of(user_transactions.count_7d)" in lines
    assert "user_profile__plan as_of(user_profile.plan)" in lines
    assert not any("*" in line for line in lines), lines


def test_dry_run_says_a_snapshot_model_is_rebuilt_whole(example_project, cli, small_vars):
    result = cli(example_project, "--vars", small_vars, "run", "--dry-run", "-s", "user_profile")

    assert result.exit_code == 0, result.stdout + result.stderr
    assert "-- user_profile: rebuild (a snapshot model is rebuilt whole at each run)" in result.stdout
    assert "batches" not in result.stdout and "nothing new" not in result.stdout


def test_a_dynamodb_store_without_boto3_says_which_extra(tmp_path, monkeypatch):
    from featuresql.adapters.dynamodb import DynamoDBStore, DynamoDBStoreConfig

    from featuresql.errors import ConfigError

    monkeypatch.setitem(sys.modules, "boto3", None)  # as on a plain install
    store = DynamoDBStore(DynamoDBStoreConfig(store="dynamodb"), "featuresql_t_dev", tmp_path)
    with pytest.raises(
        ConfigError, match=r"^the dynamodb online store needs boto3: pip install 'featuresql\[dynamodb\]'$"
    ):
        store.ensure_table()
