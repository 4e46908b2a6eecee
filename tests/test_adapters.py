"""Snowflake and BigQuery targets without a warehouse: profiles, offline compile, portability, errors.

What needs a running engine is in tests/test_conformance.py; this file pins what
must work with no connection at all, and the errors users see.
"""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner
from featuresql.adapters.base import import_driver, redact
from featuresql.adapters.bigquery import BigQueryTarget
from featuresql.adapters.snowflake import SnowflakeAdapter, SnowflakeTarget

from featuresql.cli.main import cli
from featuresql.errors import ConfigError, ExecutionError

SECRET_ENV = ("SNOWFLAKE_ACCOUNT", "SNOWFLAKE_USER", "SNOWFLAKE_PASSWORD", "BIGQUERY_PROJECT")


@pytest.fixture
def no_secrets(monkeypatch):
    for name in SECRET_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(("target", "dialect"), [("prod_snowflake", "snowflake"), ("prod_bigquery", "bigquery")])
def test_compile_for_a_warehouse_needs_no_connection_and_no_secrets(example_project, no_secrets, target, dialect):
    result = CliRunner().invoke(cli, ["--project-dir", str(example_project), "compile", "--target", target])
    assert result.exit_code == 0, result.output
    assert f"Compiled 7 models for target {target} ({dialect})" in result.output
    compiled = (example_project / "target" / "compiled" / target / "user_transactions.sql").read_text()
    assert "features.user_transactions" in compiled
    assert ("UNIX_MICROS" if dialect == "bigquery" else "EPOCH_MICROSECOND") in compiled


def test_running_without_the_secret_names_the_variable(example_project, no_secrets):
    result = CliRunner().invoke(cli, ["--project-dir", str(example_project), "run", "--target", "prod_snowflake"])
    assert result.exit_code == 2
    assert "environment variable SNOWFLAKE_ACCOUNT is not set" in result.output


UNPORTABLE = [
    ("bigquery", "time_bucket(interval '1 day', ts) as day", "DATE_BIN does not exist"),
    ("snowflake", "time_bucket(interval '1 day', ts) as day", "DATE_BIN does not exist"),
    ("snowflake", "epoch_us(ts) as micros", "EPOCH_US/EPOCH_MS/EPOCH_NS() are DuckDB functions"),
    ("bigquery", "epoch(ts) as seconds", "TIME_TO_UNIX does not exist"),
    ("bigquery", "date_trunc('week', ts) as week", "a WEEK starts on Sunday in BigQuery"),
    ("bigquery", "list_sum([amount, 1]) as s", "list_/struct_ functions are DuckDB's"),
]


@pytest.mark.parametrize(("dialect", "expression", "message"), UNPORTABLE)
def test_a_model_that_does_not_transpile_fails_at_compile_time(make_project, no_secrets, dialect, expression, message):
    model = f"select user_id, ts, {expression} from {{{{ source('bank', 'transactions') }}}}\n"
    project = make_project([("features/odd.sql", None, model)])
    result = CliRunner().invoke(cli, ["--project-dir", str(project), "compile", "--target", f"prod_{dialect}"])
    assert result.exit_code == 2, result.output
    assert "model 'odd'" in result.output and message in result.output
    assert "features/odd.sql" in result.output and "Traceback" not in result.output
    on_duckdb = CliRunner().invoke(cli, ["--project-dir", str(project), "compile"])
    assert on_duckdb.exit_code == 0, on_duckdb.output  # valid where it was written


def test_a_missing_driver_names_the_extra_to_install():
    with pytest.raises(ConfigError, match=r"pip install 'featuresql\[bigquery\]'"):
        import_driver("featuresql_no_such_driver", "bigquery")


def test_driver_errors_lose_secrets_and_row_values():
    error = RuntimeError("login failed for hunter2: value 'alice@example.com' rejected\nsecond line")
    assert redact(error, ["hunter2"]) == "login failed for ***: value '...' rejected"


def test_a_failed_snowflake_login_is_one_line_without_the_password(tmp_path):
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    config = SnowflakeTarget.model_validate(
        {
            "account": "acme",
            "user": "bob",
            "password": "hunter2-secret",
            "database": "db",
            "host": "127.0.0.1",
            "port": port,
            "protocol": "http",
            "login_timeout": 3,
            "connect_args": {"network_timeout": 1},
        }
    )
    with pytest.raises(ExecutionError) as raised:
        SnowflakeAdapter(config, tmp_path).execute("select 1")
    message = raised.value.one_line()
    assert "cannot connect to Snowflake account 'acme'" in message
    assert "hunter2" not in message and "\n" not in message


def test_secrets_are_hidden_in_the_target_config():
    config = SnowflakeTarget.model_validate({"account": "a", "user": "u", "password": "pw-123", "database": "d"})
    assert "pw-123" not in repr(config) and "pw-123" not in str(config.model_dump())


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"type": "snowflake", "account": "a", "user": "u", "database": "d"}, "give one way to log in"),
        ({"type": "bigquery", "project": "p", "dataset": "d", "method": "service-account"}, "needs keyfile"),
        ({"type": "bigquery", "project": "p"}, "dataset"),
        ({"type": "bigquery", "project": "p", "dataset": "d", "warehouse": "x"}, "warehouse"),
    ],
)
def test_target_settings_are_validated(make_project, settings, message):
    import yaml

    profile = yaml.safe_dump({"target": "t", "targets": {"t": settings}})
    project = make_project([("profiles.yml", None, profile)])
    result = CliRunner().invoke(cli, ["--project-dir", str(project), "compile"])
    assert result.exit_code == 2
    assert "profiles.yml" in result.output and message in result.output and "Traceback" not in result.output


def test_bigquery_accepts_dataset_or_schema():
    for key in ("dataset", "schema"):
        config = BigQueryTarget.model_validate({"project": "p", key: "features"})
        assert config.schema_ == "features"


@pytest.mark.parametrize(("dialect", "double"), [("snowflake", "DOUBLE"), ("bigquery", "FLOAT64")])
def test_duckdb_division_stays_double_on_the_warehouse(example_project, no_secrets, dialect, double):
    """sqlglot copies DuckDB's '/' as is, but it is fixed-point on Snowflake and BigQuery NUMERIC.

    tests/test_conformance.py proves the values equal (the ratios of user_spend_ratios).
    """
    result = CliRunner().invoke(cli, ["--project-dir", str(example_project), "compile", "-t", f"prod_{dialect}"])
    assert result.exit_code == 0, result.output
    compiled = (example_project / "target" / "compiled" / f"prod_{dialect}" / "user_spend_ratios.sql").read_text()
    assert f"CAST(amount_sum_1d AS {double}) / NULLIF(amount_sum_30d, 0)" in compiled
    on_duckdb = CliRunner().invoke(cli, ["--project-dir", str(example_project), "compile"])
    assert on_duckdb.exit_code == 0
    assert "amount_sum_1d / NULLIF" in (example_project / "target/compiled/dev/user_spend_ratios.sql").read_text()


@pytest.mark.snowflake
def test_snowflake_key_pair_login_and_a_wrong_passphrase(fakesnow_server, tmp_path):
    """The connector reads and decrypts the key and signs its JWT (fakesnow accepts any signature)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encryption = serialization.BestAvailableEncryption(b"right-passphrase")
    path = tmp_path / "rsa_key.p8"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    settings = {
        "account": "acme",
        "user": "svc_features",
        "private_key_path": str(path),
        "database": "KEYPAIR",
        "host": fakesnow_server.host,
        "port": fakesnow_server.port,
        "protocol": "http",
        "connect_args": {"session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False}, "network_timeout": 1},
    }
    good = SnowflakeAdapter(
        SnowflakeTarget.model_validate({**settings, "private_key_passphrase": "right-passphrase"}), tmp_path
    )
    try:
        assert good.fetch_arrow("select 1 as one").column("one").to_pylist() == [1]
    finally:
        good.close()
    wrong = SnowflakeTarget.model_validate({**settings, "private_key_passphrase": "wrong-passphrase"})
    with pytest.raises(ExecutionError) as raised:
        SnowflakeAdapter(wrong, tmp_path).execute("select 1")
    assert "cannot connect to Snowflake account 'acme'" in raised.value.message
    assert "wrong-passphrase" not in raised.value.message
