"""One rule for names (featuresql.names) and one reading of types (featuresql.sql.types).

Legitimate names and types as warehouses spell them are accepted; what could end a
quoted name or add a statement is still refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlglot import exp

from featuresql.compile.checks import node_line
from featuresql.compile.compiler import compile_project, parse_sql
from featuresql.errors import ConfigError, ExecutionError
from featuresql.extracts.spine import _unreadable_file
from featuresql.extracts.training_set import Destination
from featuresql.names import COLUMN_NAME, check_identifier, parse_table_name
from featuresql.project.loader import load_project
from featuresql.sql.types import event_time_problem, key_kind, normalize_type, sql_family

# -- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "dialect", "parts"),
    [
        ("advance_labels", "duckdb", ["advance_labels"]),
        ("main.advance_labels", "duckdb", ["main", "advance_labels"]),
        ('"My Spine"', "duckdb", ["My Spine"]),
        ("`my-project.ds.spine`", "bigquery", ["my-project", "ds", "spine"]),
        ('db."Mixed Case".spine', "snowflake", ["db", "Mixed Case", "spine"]),
        ("größe", "duckdb", ["größe"]),
    ],
)
def test_table_names_that_parse_as_a_bare_table_are_accepted(name, dialect, parts):
    assert [part.name for part in parse_table_name(name, dialect, "spine").parts] == parts


@pytest.mark.parametrize(
    "name",
    [
        "x; drop table y",
        "advance_labels; drop table main.user_profile",
        "t where 1=0",
        "t as x",
        "t x",
        "a.b.c.d",
        "read_parquet('x')",
        "(select 1)",
        "t -- comment",
        '"a""b"',  # a quote inside a quoted name
        "",
    ],
)
def test_table_names_with_anything_but_a_table_are_refused(name):
    with pytest.raises(ConfigError, match="is not a table name"):
        parse_table_name(name, "duckdb", f"spine {name!r}")


def test_out_table_is_parsed_in_the_target_dialect():
    assert Destination.parse("table:`my-project.ds.out`", "bigquery").table == "`my-project.ds.out`"
    assert Destination.parse('table:"My Out"', "duckdb").kind == "table"
    with pytest.raises(ConfigError, match="is not a table name"):
        Destination.parse("table:x; drop table y", "duckdb")


@pytest.mark.parametrize("name", ["users_*", "users.v2", "Raw Data", "my-project", "größe", "$x"])
def test_identifiers_that_can_be_quoted_are_accepted(name):
    check_identifier(name, "schema")


@pytest.mark.parametrize("name", ['raw"; drop table x; --', "raw`x", "raw'x", "a\\b", "a;b", "a\nb", "a\x00b"])
def test_identifiers_that_cannot_be_quoted_safely_are_refused(name):
    with pytest.raises(ConfigError, match="which a name cannot hold"):
        check_identifier(name, "schema")


def test_feature_names_may_use_any_alphabet():
    assert COLUMN_NAME.match("größter_betrag_7d") and COLUMN_NAME.match("_x")
    assert not COLUMN_NAME.match("7d_sum") and not COLUMN_NAME.match('x" from t; --')


# -- types ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "dialect", "expected"),
    [
        ("int8", "duckdb", "integer"),
        ("INT64", "bigquery", "integer"),
        ("hugeint", "duckdb", "integer"),
        ("number", "snowflake", "integer"),  # Snowflake's NUMBER is NUMBER(38, 0)
        ("decimal(10)", "snowflake", "integer"),
        ("number(10)", "snowflake", "integer"),
        ("number(10, 0)", "duckdb", "integer"),
        ("number", "duckdb", "decimal"),  # DuckDB's is DECIMAL(18, 3)
        ("decimal(12,2)", "snowflake", "decimal"),
        ("varchar", "duckdb", "string"),
        ("string", "bigquery", "string"),
        ("double", "duckdb", "float"),
        ("bigintt", "duckdb", None),
    ],
)
def test_key_kind(kind, dialect, expected):
    assert key_kind(kind, dialect) == expected


@pytest.mark.parametrize(
    "kind", ["INT64", "FLOAT64", "SMALLINT", "TINYINT", "HUGEINT", "REAL", "BIGNUMERIC", "varchar"]
)
def test_numbers_and_text_are_never_event_times(kind):
    assert event_time_problem(kind, "duckdb", window=False) is not None


@pytest.mark.parametrize("kind", ["timestamp", "TIMESTAMP_TZ", "timestamptz", "datetime", "timestamp_ntz"])
def test_timestamps_are_event_times(kind):
    assert event_time_problem(kind, "duckdb", window=True) is None


def test_a_date_is_an_event_time_for_snapshot_models_only():
    assert event_time_problem("date", "duckdb", window=False) is None
    assert event_time_problem("date", "duckdb", window=True) == "date"


def test_types_spelled_by_another_warehouse_are_read_and_converted():
    assert normalize_type("TIMESTAMP_TZ", "duckdb") == "TIMESTAMPTZ"
    assert normalize_type("float64", "duckdb") == "DOUBLE"
    assert normalize_type("bytes", "duckdb") == "BLOB"
    assert normalize_type("decimal(12,2)", "duckdb") == "decimal(12,2)"  # the project's own spelling is kept
    assert normalize_type("decimal(12,", "duckdb") is None
    assert sql_family("float64", "duckdb") == "float"


# -- projects ------------------------------------------------------------------------------


SOURCES_USERS = "      - name: users\n"


def test_source_names_are_quoted_not_refused(make_project):
    root = make_project(
        [
            ("features/sources.yml", "    schema: raw", '    schema: "Raw Data"'),
            ("features/sources.yml", SOURCES_USERS, SOURCES_USERS + "        identifier: users.v2\n"),
        ]
    )
    source = load_project(root).sources["bank.users"]
    assert source.relation.sql("duckdb") == '"Raw Data"."users.v2"'  # one identifier, as exp.table_ made it


def test_source_identifier_with_a_quote_is_refused(make_project):
    root = make_project(
        [("features/sources.yml", SOURCES_USERS, SOURCES_USERS + "        identifier: 'users\"; drop table x; --'\n")]
    )
    with pytest.raises(ConfigError, match="which a name cannot hold"):
        load_project(root)


def test_declared_types_of_any_supported_dialect_are_accepted(make_project):
    ts = "          - {name: ts, type: timestamp}\n      - name: balance_events"
    root = make_project([("features/sources.yml", ts, ts.replace("type: timestamp", "type: TIMESTAMP_TZ"))])
    assert load_project(root).sources["bank.transactions"].columns["ts"] == "TIMESTAMPTZ"


def test_event_time_declared_as_a_date_is_accepted_for_snapshots(make_project):
    ts = "          - {name: ts, type: timestamp}\n      - name: balance_events"
    root = make_project([("features/sources.yml", ts, ts.replace("type: timestamp", "type: date"))])
    project = load_project(root)
    assert project.sources["bank.transactions"].columns["ts"] == "date"
    with pytest.raises(Exception, match="the timestamp column 'ts' is DATE, not a timestamp"):
        compile_project(project)  # the window models over it are refused, by the same rule


@pytest.mark.parametrize("kind", ["INT64", "FLOAT64", "smallint"])
def test_event_time_declared_as_a_number_is_refused(make_project, kind):
    ts = "          - {name: ts, type: timestamp}\n      - name: balance_events"
    root = make_project([("features/sources.yml", ts, ts.replace("type: timestamp", f"type: {kind}"))])
    with pytest.raises(ConfigError, match="not a timestamp"):
        load_project(root)


def test_snowflake_number_keys_are_integer_keys(make_project):
    root = make_project(
        [
            ("project.yml", "keys: {user_id: bigint}", "keys: {user_id: number}"),
            ("project.yml", "keys: {merchant_id: bigint}", "keys: {merchant_id: number(10)}"),
            ("project.yml", "dialect: duckdb", "dialect: snowflake"),
        ]
    )
    assert load_project(root).config.entities["user"].keys == {"user_id": "number"}


# -- SQL -----------------------------------------------------------------------------------


@pytest.mark.parametrize("tail", [";", ";\n-- end", "; -- end\n", ";\n/* end */"])
def test_a_trailing_semicolon_and_comment_is_one_statement(tail):
    statements = parse_sql("select 1 as x" + tail, "duckdb", Path("m.sql"), "model 'm'")
    assert len(statements) == 1 and isinstance(statements[0], exp.Select)


def test_a_second_statement_after_the_semicolon_is_still_two():
    assert len(parse_sql("select 1;\ndelete from t", "duckdb", Path("m.sql"), "model 'm'")) == 2


def test_node_line():
    [statement] = parse_sql("select\n  1 as x", "duckdb", Path("m.sql"), "model 'm'")
    assert node_line(statement.selects[0]) == 2


# -- spine files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        "Invalid Input Error: No magic bytes found at end of file 'x.parquet'",
        'IO Error: Cannot open file "x.parquet": Permission denied',
    ],
)
def test_a_file_that_is_not_parquet_is_the_users_to_fix(message):
    assert _unreadable_file(message)


@pytest.mark.parametrize(
    "message",
    [
        "Out of Memory Error: could not allocate block of size 256.0 KiB (1.0 GiB/1.0 GiB used)",
        'IO Error: Could not write file "/tmp/x.tmp": No space left on device',
    ],
)
def test_running_out_of_memory_or_disk_stays_an_execution_error(message):
    assert not _unreadable_file(message)


def test_load_parquet_failures_other_than_the_file_stay_execution_errors(tmp_path, monkeypatch):
    from featuresql.extracts.spine import stage_spine

    class Failing:
        dialect = "duckdb"

        def load_parquet(self, *args):
            raise ExecutionError("Out of Memory Error: could not allocate block")

    path = tmp_path / "labels.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(ExecutionError, match="Out of Memory"):
        stage_spine(path, Failing(), [], [])  # type: ignore[arg-type]


# -- end to end: an int8 key is an integer key online -----------------------------------------


@pytest.mark.duckdb
def test_an_int8_key_reads_back_real_values(make_project, cli, small_vars):
    root = make_project([("project.yml", "keys: {user_id: bigint}", "keys: {user_id: int8}")])
    now = "2026-06-30"
    for args in (("--vars", small_vars, "run", "--now", now), ("sync", "--now", now)):
        result = cli(root, *args)
        assert result.exit_code == 0, result.stderr
    manifest = json.loads((root / "target/online/dev/manifest.json").read_text())
    assert dict(manifest["models"]["user_transactions"]["keys"]) == {"user_id": "integer"}
    result = cli(root, "read", "user_id=42", "-f", "user_transactions", "--now", now)
    assert result.exit_code == 0, result.stderr
    values = json.loads(result.stdout)["results"][0]["features"]
    assert any(value not in (None, 0) for value in values.values()), values


def test_a_unicode_feature_name_compiles(make_project):
    root = make_project(
        [("features/merchant_transactions.sql", "name='declined_count_{window}'", "name='größter_betrag_{window}'")]
    )
    compiled = compile_project(load_project(root))
    assert "größter_betrag_7d" in compiled.models["merchant_transactions"].columns


def test_a_model_ending_in_a_semicolon_and_a_comment_compiles(make_project):
    model = "features/user_profile.sql"
    root = make_project([(model, "from {{ source('bank', 'users') }}", "from {{ source('bank', 'users') }};\n-- end")])
    assert compile_project(load_project(root)).models["user_profile"].kind == "snapshot"


def test_a_time_of_day_is_its_own_family_and_never_an_event_time() -> None:
    """TIME read as a timestamp would let a time of day tile events; the reader returns it as a string."""
    from featuresql.sql.types import event_time_problem, sql_family, value_family

    assert sql_family("TIME", "duckdb") == "time"
    assert event_time_problem("TIME", "snowflake", window=False) == "time"
    assert event_time_problem("TIMESTAMP", "duckdb", window=True) is None
    assert value_family("TIME", "duckdb") == "string"
    assert value_family("NUMBER(38,0)", "snowflake") == "integer"
    assert value_family("NUMBER", "snowflake") == "decimal"  # Snowflake reports every NUMBER bare
    assert value_family("BIT", "duckdb") == "string"
