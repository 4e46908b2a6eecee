"""Configuration: project.yml, sources and model YAML, profiles.yml and durations (no warehouse)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from featuresql.durations import format_duration, parse_duration
from featuresql.errors import ConfigError
from featuresql.project.config import Defaults, ModelConfig, ProjectConfig, validate
from featuresql.project.loader import find_project_root, load_project
from featuresql.project.profiles import env_var, profiles_path, resolve_target
from featuresql.project.yamlfile import load_yaml

# -- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1d", 86400),
        ("7d", 7 * 86400),
        ("1 day", 86400),
        ("7 days", 7 * 86400),
        ("36h", 36 * 3600),
        ("2 hours", 7200),
        ("1 hour", 3600),
        ("1hr", 3600),
        ("15m", 900),
        ("90 minutes", 5400),
        ("30s", 30),
        ("45 seconds", 45),
        ("2w", 14 * 86400),
        ("1 week", 604800),
        (" 3D ", 3 * 86400),  # case and surrounding spaces
        ("0s", 0),
        (600, 600),  # a bare integer is seconds
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["7x", "d", "1.5h", "-1d", "", "1 d 2 h", "seven days", True, -5, "1 fortnight"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_parse_duration_error_shows_examples():
    with pytest.raises(ValueError) as raised:
        parse_duration("7x")
    assert "'7x'" in str(raised.value) and "1d" in str(raised.value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(86400, "1d"), (30 * 86400, "30d"), (36 * 3600, "36h"), (5400, "90m"), (45, "45s"), (0, "0s")],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


# -- pydantic models -------------------------------------------------------------------------


def test_project_config_defaults():
    config = ProjectConfig(name="shop")

    assert config.dialect == "duckdb"
    assert config.model_paths == ["features"]
    assert config.defaults.grain == 86400
    assert config.defaults.data_delay == 0


def test_durations_are_parsed_in_config():
    defaults = validate(Defaults, {"grain": "6h", "data_delay": "30 minutes"}, None)

    assert (defaults.grain, defaults.data_delay) == (21600, 1800)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-01", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-01-01T02:00:00+02:00", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-01-01T00:00:00Z", datetime(2024, 1, 1, tzinfo=UTC)),
        (datetime(2024, 1, 1).date(), datetime(2024, 1, 1, tzinfo=UTC)),  # a YAML date
    ],
)
def test_model_start_is_utc(value, expected):
    assert validate(ModelConfig, {"start": value}, None).start == expected


def test_config_models_forbid_unknown_keys():
    with pytest.raises(ConfigError) as raised:
        validate(ModelConfig, {"grian": "1d"}, Path("features/m.sql"))

    assert "unknown key 'grian'" in raised.value.message
    assert "did you mean grain?" in raised.value.message
    assert "allowed keys:" in raised.value.message


def test_invalid_value_names_the_key():
    with pytest.raises(ConfigError, match=r"invalid value for 'lookback'"):
        validate(ModelConfig, {"lookback": -1}, None)


# -- project.yml and schema files, with line numbers ---------------------------------------------


def load_error(project: Path) -> ConfigError:
    with pytest.raises(ConfigError) as raised:
        load_project(project)
    return raised.value


def line_of(path: Path, text: str) -> int:
    content = path.read_text()
    return content.count("\n", 0, content.index(text)) + 1


def test_example_project_loads(example_project):
    project = load_project(example_project)

    assert project.name == "cash_advance"
    assert set(project.models) == {
        "advance_labels",
        "advance_request",
        "advance_training",
        "merchant_transactions",
        "user_balances",
        "user_profile",
        "user_transactions",
        "user_spend_ratios",
    }
    assert set(project.sources) == {"bank.users", "bank.transactions", "bank.balance_events"}
    transactions = project.sources["bank.transactions"]
    assert transactions.schema == "raw" and transactions.event_time == "ts"
    assert transactions.columns["amount"] == "decimal(12,2)"
    assert transactions.line == line_of(example_project / "features/sources.yml", "- name: transactions")
    assert project.config.entities["user"].keys == {"user_id": "bigint"}
    assert project.models["user_transactions"].spec is not None


@pytest.mark.parametrize(
    ("edit", "key", "suggestion"),
    [
        (("name: cash_advance", "nmae: cash_advance"), "nmae", "name"),
        (("  grain: 1d", "  grian: 1d"), "defaults.grian", "grain"),
        (
            ("    keys: {user_id: bigint}", "    kyes: {user_id: bigint}"),
            "entities.user.kyes",
            "keys",
        ),
        (("  store: local", "  stor: local"), "online.stor", "store"),
    ],
)
def test_unknown_project_key_names_line_and_closest_key(make_project, edit, key, suggestion):
    # a misspelled required key (name, entities.*.keys) must be reported as the unknown key
    # it is, with the suggestion, rather than as "missing required key"
    project = make_project([("project.yml", *edit)])

    error = load_error(project)

    assert error.path == project / "project.yml"
    assert error.line == line_of(project / "project.yml", edit[1].strip())
    assert f"unknown key '{key}'" in error.message
    assert f"did you mean {suggestion}?" in error.message


def test_unknown_key_in_sources_names_its_line(make_project):
    project = make_project([("features/sources.yml", "    schema: raw", "    schema: raw\n    freshnes: {}")])

    error = load_error(project)

    assert error.path == project / "features/sources.yml"
    assert error.line == line_of(project / "features/sources.yml", "freshnes")
    assert "freshnes" in error.message


def test_unknown_column_key_in_sources_names_its_line(make_project):
    edit = ("{name: plan, type: varchar,", "{name: plan, typ: varchar,")
    project = make_project([("features/sources.yml", *edit)])

    error = load_error(project)

    assert error.line == line_of(project / "features/sources.yml", "typ: varchar")
    assert "typ'" in error.message and "did you mean type?" in error.message


def test_unknown_key_in_model_yaml(make_project):
    edit = ("    description: Merchant activity", "    descripton: Merchant activity")
    project = make_project([("features/models.yml", *edit)])

    error = load_error(project)

    assert error.path == project / "features/models.yml"
    assert error.line == line_of(project / "features/models.yml", "descripton")
    assert "did you mean description?" in error.message


def test_missing_required_key(make_project):
    project = make_project([("project.yml", "name: cash_advance\n", "")])

    error = load_error(project)

    assert "missing required key 'name'" in error.message
    assert error.path == project / "project.yml"


def test_invalid_duration_in_project(make_project):
    project = make_project([("project.yml", "  grain: 1d", "  grain: 1x")])

    error = load_error(project)

    assert error.line == line_of(project / "project.yml", "grain: 1x")
    assert "defaults.grain" in error.message and "'1x'" in error.message


def test_duplicate_yaml_key(make_project):
    project = make_project([("project.yml", "dialect: duckdb", "dialect: duckdb\ndialect: snowflake")])

    error = load_error(project)

    assert error.line == line_of(project / "project.yml", "dialect: snowflake")
    assert "duplicate key 'dialect'" in error.message


def test_malformed_yaml_names_its_line(make_project):
    project = make_project([("features/sources.yml", "    schema: raw", "    schema: [raw")])

    error = load_error(project)

    assert error.path == project / "features/sources.yml"
    assert error.line is not None
    assert "invalid YAML" in error.message


def test_project_name_must_be_an_identifier(make_project):
    project = make_project([("project.yml", "name: cash_advance", "name: cash-advance")])

    error = load_error(project)

    assert error.line == 3
    assert "identifier" in error.message


def test_entity_key_must_be_an_identifier(make_project):
    project = make_project([("project.yml", "keys: {user_id: bigint}", "keys: {user id: bigint}")])

    error = load_error(project)

    assert "'user id'" in error.message
    assert error.line is not None


def test_source_declared_twice(make_project):
    extra = "version: 1\nsources:\n  - name: bank\n    schema: raw\n    tables:\n      - name: users\n"
    project = make_project([("features/more_sources.yml", None, extra)])

    error = load_error(project)

    assert "bank.users is declared twice" in error.message
    assert "more_sources.yml" in error.one_line() and "sources.yml" in error.one_line()


def test_event_time_must_be_a_declared_column(make_project):
    declared = "event_time: ts\n        # The demo data"
    project = make_project([("features/sources.yml", declared, declared.replace("ts", "tss", 1))])

    error = load_error(project)

    assert "event_time 'tss'" in error.message
    assert error.line == line_of(project / "features/sources.yml", "- name: transactions")


def test_find_project_root_from_a_subfolder(example_project):
    assert find_project_root(example_project / "features") == example_project.resolve()


def test_no_project_file(tmp_path):
    with pytest.raises(ConfigError, match=r"no project\.yml found"):
        find_project_root(tmp_path)


def test_yaml_lines_are_recorded(tmp_path):
    path = tmp_path / "x.yml"
    path.write_text("a: 1\nb:\n  c: [1, 2]\n  d:\n    - e: 3\n")

    data = load_yaml(path)

    assert data.lines == {"a": 1, "b": 2}
    assert data["b"].lines == {"c": 3, "d": 4}
    assert data["b"]["d"].lines == [5]


# -- model settings: config() over YAML over project defaults -----------------------------------


def test_model_settings_are_merged(example_project):
    from featuresql.compile.compiler import compile_project

    models = compile_project(load_project(example_project)).models

    spend = models["user_transactions"].settings
    assert (spend.entity, spend.keys, spend.timestamp, spend.grain) == (
        "user",
        ("user_id",),
        "ts",
        86400,
    )
    assert spend.online is True and spend.tags == ("spend",)
    assert spend.owner == "risk-analytics"  # from features/models.yml
    assert spend.description.startswith("Card spend per user")  # from the YAML description
    balances = models["user_balances"].settings
    assert balances.ttl == 30 * 86400 and balances.tie_break == "event_seq"
    assert models["user_profile"].settings.online is False


def test_config_call_overrides_yaml_config(make_project):
    from featuresql.compile.compiler import compile_project

    owner = "      owner: risk-analytics"
    project = make_project([("features/models.yml", owner, f"{owner}\n      online: false")])

    settings = compile_project(load_project(project)).models["user_transactions"].settings

    assert settings.online is True  # config(online=true) in the SQL file wins


def test_data_delay_is_inherited_from_sources(make_project):
    from featuresql.compile.compiler import compile_project

    project = make_project([("features/sources.yml", "    schema: raw", "    schema: raw\n    data_delay: 2h")])

    models = compile_project(load_project(project)).models

    assert models["user_transactions"].settings.data_delay == 7200
    assert models["user_spend_ratios"].settings.data_delay == 7200  # through ref()


# -- profiles.yml ---------------------------------------------------------------------------


PROFILE = """\
target: local
targets:
  local:
    type: duckdb
    path: {path}
    schema: {schema}
"""


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty home folder, so the real ~/.featuresql never leaks into a test."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    return folder


def write_home_profile(home: Path, schema: str = "from_home") -> Path:
    path = home / ".featuresql" / "profiles.yml"
    path.parent.mkdir(parents=True)
    path.write_text(PROFILE.format(path="target/home.duckdb", schema=schema))
    return path


def test_profiles_in_the_project_folder_come_first(example_project, home):
    write_home_profile(home)

    assert profiles_path(example_project) == example_project / "profiles.yml"
    name, config = resolve_target(example_project, "cash_advance", None)
    assert (name, config.type, config.path, config.schema_) == (
        "dev",
        "duckdb",
        "target/cash_advance.duckdb",
        "main",
    )


def test_profiles_fall_back_to_the_home_folder(example_project, home):
    (example_project / "profiles.yml").unlink()
    home_profile = write_home_profile(home)

    assert profiles_path(example_project) == home_profile
    name, config = resolve_target(example_project, "cash_advance", None)
    assert (name, config.path, config.schema_) == ("local", "target/home.duckdb", "from_home")


def test_without_profiles_the_default_is_a_duckdb_file(example_project, home):
    (example_project / "profiles.yml").unlink()

    assert profiles_path(example_project) is None
    name, config = resolve_target(example_project, "cash_advance", None)
    assert (name, config.type, config.path) == ("dev", "duckdb", "target/cash_advance.duckdb")


def test_without_profiles_only_dev_exists(example_project, home):
    (example_project / "profiles.yml").unlink()

    with pytest.raises(ConfigError, match=r"target 'prod' not found"):
        resolve_target(example_project, "cash_advance", "prod")


def test_home_profile_is_used_by_the_cli(example_project, home, cli):
    (example_project / "profiles.yml").unlink()
    write_home_profile(home, schema="from_home")

    result = cli(example_project, "debug")

    assert result.exit_code == 0, result.stderr
    assert "target:   local" in result.stdout
    assert "schema=from_home" in result.stdout


def test_env_var_with_default_in_profiles(example_project, home, monkeypatch):
    monkeypatch.delenv("FEATURESQL_TEST_SCHEMA", raising=False)
    (example_project / "profiles.yml").write_text(
        PROFILE.format(path="target/x.duckdb", schema="\"{{ env_var('FEATURESQL_TEST_SCHEMA', 'fallback') }}\"")
    )

    assert resolve_target(example_project, "cash_advance", None)[1].schema_ == "fallback"

    monkeypatch.setenv("FEATURESQL_TEST_SCHEMA", "from_env")
    assert resolve_target(example_project, "cash_advance", None)[1].schema_ == "from_env"


def test_env_var_without_default(monkeypatch):
    monkeypatch.delenv("FEATURESQL_TEST_UNSET", raising=False)
    monkeypatch.setenv("FEATURESQL_TEST_SET", "value")

    assert env_var("FEATURESQL_TEST_SET") == "value"
    assert env_var("FEATURESQL_TEST_UNSET", "default") == "default"
    assert env_var("FEATURESQL_TEST_SET", "default") == "value"
    with pytest.raises(ConfigError, match="FEATURESQL_TEST_UNSET is not set"):
        env_var("FEATURESQL_TEST_UNSET")


def test_env_var_not_set_names_profiles_line(example_project, home, monkeypatch):
    monkeypatch.delenv("BIGQUERY_PROJECT", raising=False)

    with pytest.raises(ConfigError) as raised:
        resolve_target(example_project, "cash_advance", "prod_bigquery")

    assert raised.value.path == example_project / "profiles.yml"
    assert raised.value.line is not None
    assert "BIGQUERY_PROJECT" in raised.value.message


def test_unknown_top_level_key_in_profiles(example_project, home):
    path = example_project / "profiles.yml"
    path.write_text(path.read_text().replace("target: dev", "target: dev\ntragets: {}"))

    with pytest.raises(ConfigError) as raised:
        resolve_target(example_project, "cash_advance", None)

    assert raised.value.line == line_of(path, "tragets")
    assert "unknown key 'tragets'" in raised.value.message


def test_unknown_target_key_in_profiles(example_project, home):
    path = example_project / "profiles.yml"
    path.write_text(path.read_text().replace("    schema: main", "    shema: main"))

    with pytest.raises(ConfigError) as raised:
        resolve_target(example_project, "cash_advance", None)

    assert raised.value.line == line_of(path, "shema: main")
    assert "targets.dev.shema" in raised.value.message and "did you mean schema?" in raised.value.message


def test_target_without_type(example_project, home):
    path = example_project / "profiles.yml"
    path.write_text(path.read_text().replace("    type: duckdb\n", ""))

    with pytest.raises(ConfigError, match="needs a 'type'") as raised:
        resolve_target(example_project, "cash_advance", None)

    assert raised.value.line == line_of(path, "  dev:")
