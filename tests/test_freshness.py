"""Freshness of sources and models (``featuresql.testing.freshness``): fresh, warn and error by ``now``.

A small project of its own (``shop``) with hand-made raw rows whose newest times
are known to the second: naive timestamps (``orders``), zoned ones behind a
filter (``shipments``), a DATE (``daily``), an empty table (``returns``), a
snapshot model with a filter and a window model measured by its interval state.
The same expectations run on DuckDB, Snowflake (fakesnow) and BigQuery (emulator).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from engines import Engine, write_profile
from sqlglot import exp

from featuresql.context import Context
from featuresql.errors import ConfigError
from featuresql.project.config import Freshness
from featuresql.testing.cases import Outcome, TestCase, TestEnv
from featuresql.testing.freshness import freshness_cases, judge

BUILT_AT = datetime(2026, 6, 30, 5, tzinfo=UTC)  # the models' run: the window model's newest boundary is 06-30 00:00

PROJECT_YML = """\
name: shop
entities:
  user:
    keys: {user_id: bigint}
"""
SOURCES_YML = """\
version: 1
sources:
  - name: shop
    schema: raw
    freshness: {warn_after: 2h, error_after: 1d}
    tables:
      - name: orders
        event_time: ts
        columns:
          - {name: order_id, type: bigint}
          - {name: user_id, type: bigint}
          - {name: amount, type: "decimal(12,2)"}
          - {name: ts, type: timestamp}
      - name: shipments
        loaded_at_field: loaded_at
        freshness: {warn_after: 12h, filter: "status = 'shipped'"}
      - name: daily
        freshness: {error_after: 2d, loaded_at_field: day}
      - name: returns
        event_time: ts
      - name: customers
        freshness: {}
"""
MODELS_YML = """\
version: 1
models:
  - name: user_orders
    config:
      freshness: {warn_after: 1d, filter: "amount > 100"}
  - name: user_order_windows
    config:
      freshness: {error_after: 2d}
"""
USER_ORDERS = """\
{{ config(entity='user', timestamp='ts') }}
select user_id, ts, amount from {{ source('shop', 'orders') }}
"""
USER_ORDER_WINDOWS = """\
{{ config(entity='user', timestamp='ts', grain='1 day') }}
select user_id, ts, {{ window_count(windows=['1d']) }} from {{ source('shop', 'orders') }}
"""


def write_project(folder: Path, sources: str = SOURCES_YML, models: str = MODELS_YML) -> Path:
    (folder / "features").mkdir(parents=True)
    (folder / "project.yml").write_text(PROJECT_YML)
    (folder / "features" / "sources.yml").write_text(sources)
    (folder / "features" / "models.yml").write_text(models)
    (folder / "features" / "user_orders.sql").write_text(USER_ORDERS)
    (folder / "features" / "user_order_windows.sql").write_text(USER_ORDER_WINDOWS)
    return folder


def raw_tables() -> dict[str, pa.Table]:
    naive = pa.timestamp("us")
    berlin = pa.timestamp("us", tz="Europe/Berlin")
    return {
        "orders": pa.table(
            {
                "order_id": pa.array([1, 2, 3], pa.int64()),
                "user_id": pa.array([7, 7, 8], pa.int64()),
                "amount": pa.array([Decimal("150.00"), Decimal("20.00"), Decimal("99.99")], pa.decimal128(12, 2)),
                "ts": pa.array([datetime(2026, 6, 29, 12), datetime(2026, 6, 30), datetime(2026, 6, 28)], naive),
            }
        ),
        # 02:00 in Berlin (summer: +02:00) is 00:00 UTC; the newer row is filtered out.
        "shipments": pa.table(
            {
                "status": ["shipped", "pending"],
                "loaded_at": pa.array(
                    [datetime(2026, 6, 30, 2, tzinfo=UTC) - timedelta(hours=2), datetime(2026, 6, 30, 4, tzinfo=UTC)],
                    berlin,
                ),
            }
        ),
        "daily": pa.table({"day": pa.array([date(2026, 6, 27), date(2026, 6, 29)], pa.date32())}),
        "returns": pa.table({"ts": pa.array([], naive), "amount": pa.array([], pa.float64())}),
        "customers": pa.table({"user_id": pa.array([7, 8], pa.int64())}),
    }


def load_raw(context: Context, tables: dict[str, pa.Table]) -> None:
    adapter = context.adapter
    adapter.ensure_schema("raw")
    for name, data in tables.items():
        adapter.load_table(exp.table_(name, db="raw"), data)


def by_name(context: Context) -> dict[str, TestCase]:
    return {case.name: case for case in freshness_cases(context.project, context.compiled)}


def outcome(context: Context, case: TestCase, now: datetime) -> tuple[int, str | None, str]:
    result = case.check(TestEnv(context, now))
    return result.failures, result.severity, result.message


# (test, now) -> (failures, severity, message): the same on every engine.
EXPECTED: dict[tuple[str, datetime], tuple[int, str | None, str]] = {
    ("freshness_shop_orders", datetime(2026, 6, 30, 1, tzinfo=UTC)): (
        0,
        None,
        "newest row 1h old (2026-06-30 00:00), warn after 2h, error after 1d",
    ),
    ("freshness_shop_orders", datetime(2026, 6, 30, 13, tzinfo=UTC)): (
        1,
        "warn",
        "newest row 13h old (2026-06-30 00:00), warn after 2h",
    ),
    ("freshness_shop_orders", datetime(2026, 7, 2, 0, 0, 1, tzinfo=UTC)): (
        1,
        "error",
        "newest row 2d 1s old (2026-06-30 00:00), error after 1d",
    ),
    ("freshness_shop_shipments", datetime(2026, 6, 30, 11, tzinfo=UTC)): (
        0,
        None,
        "newest row 11h old (2026-06-30 00:00), warn after 12h",
    ),
    ("freshness_shop_shipments", datetime(2026, 6, 30, 13, tzinfo=UTC)):  # unfiltered, or read as Berlin time: 9h
    (1, "warn", "newest row 13h old (2026-06-30 00:00), warn after 12h"),
    ("freshness_shop_daily", datetime(2026, 6, 30, 13, tzinfo=UTC)): (
        0,
        None,
        "newest row 1d 13h old (2026-06-29 00:00), error after 2d",
    ),
    ("freshness_shop_daily", datetime(2026, 7, 2, tzinfo=UTC)): (
        1,
        "error",
        "newest row 3d old (2026-06-29 00:00), error after 2d",
    ),
    ("freshness_shop_returns", datetime(2026, 6, 30, 1, tzinfo=UTC)): (
        1,
        "error",
        "source shop.returns: no rows, error after 1d",
    ),
    ("freshness_user_orders", datetime(2026, 6, 30, 13, tzinfo=UTC)):  # amount > 100: 06-29 12:00, not 06-30
    (1, "warn", "newest row 1d 1h old (2026-06-29 12:00), warn after 1d"),
    ("freshness_user_orders", datetime(2026, 6, 30, 11, tzinfo=UTC)): (
        0,
        None,
        "newest row 23h old (2026-06-29 12:00), warn after 1d",
    ),
    ("freshness_user_order_windows", datetime(2026, 7, 1, 23, tzinfo=UTC)): (
        0,
        None,
        "newest computed boundary 1d 23h old (2026-06-30 00:00), error after 2d",
    ),
    ("freshness_user_order_windows", datetime(2026, 7, 2, 0, 0, 1, tzinfo=UTC)): (
        1,
        "error",
        "newest computed boundary 2d 1s old (2026-06-30 00:00), error after 2d",
    ),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shop project on DuckDB: raw rows loaded, models built at BUILT_AT."""
    folder = tmp_path_factory.mktemp("freshness")
    project = write_project(folder / "shop")
    write_profile(project, {"type": "duckdb", "path": str(folder / "shop.duckdb"), "schema": "features"})
    with Context(project) as context:
        load_raw(context, raw_tables())
        assert context.run(now=BUILT_AT).ok
    return project


def check_expectations(context: Context) -> None:
    cases = by_name(context)
    assert sorted(cases) == sorted({name for name, _ in EXPECTED})  # customers opted out with freshness: {}
    for (name, now), expected in EXPECTED.items():
        assert outcome(context, cases[name], now) == expected, (name, now)


@pytest.mark.duckdb
def test_sources_and_models_are_fresh_warn_or_error_by_now(built: Path) -> None:
    with Context(built) as context:
        check_expectations(context)


def test_the_same_outcomes_on_every_engine(engine: Engine, tmp_path: Path) -> None:
    project = write_project(tmp_path / "shop")
    write_profile(project, engine.target(tmp_path))
    with Context(project) as context:
        load_raw(context, raw_tables())
        assert context.run(now=BUILT_AT).ok
        check_expectations(context)


@pytest.mark.duckdb
def test_cases_name_what_they_test_for_selection(built: Path) -> None:
    with Context(built) as context:
        cases = by_name(context)
    orders, model = cases["freshness_shop_orders"], cases["freshness_user_orders"]
    assert (orders.kind, orders.test_type, orders.sources, orders.models) == ("freshness", "data", ("shop.orders",), ())
    assert (model.sources, model.models) == ((), ("user_orders",))
    assert orders.severity == "error" and cases["freshness_shop_shipments"].severity == "warn"  # the highest limit
    assert orders.path is not None and orders.path.name == "sources.yml"
    assert (orders.path.name, orders.line) == ("sources.yml", line_of_text(SOURCES_YML, "- name: orders"))
    assert (model.path and model.path.name, model.line) == ("models.yml", line_of_text(MODELS_YML, "freshness:"))
    assert "warn after 1d" in model.description


@pytest.mark.duckdb
def test_exactly_at_a_limit_passes_and_a_second_more_fails(built: Path) -> None:
    with Context(built) as context:
        case = by_name(context)["freshness_shop_orders"]
        at_limit = outcome(context, case, datetime(2026, 7, 1, tzinfo=UTC))
        past = outcome(context, case, datetime(2026, 7, 1, 0, 0, 1, tzinfo=UTC))
    assert at_limit == (1, "warn", "newest row 1d old (2026-06-30 00:00), warn after 2h")
    assert past == (1, "error", "newest row 1d 1s old (2026-06-30 00:00), error after 1d")


@pytest.mark.duckdb
def test_rows_from_the_future_are_fresh(built: Path) -> None:
    with Context(built) as context:
        case = by_name(context)["freshness_shop_orders"]
        assert outcome(context, case, datetime(2026, 6, 29, 22, tzinfo=UTC)) == (
            0,
            None,
            "newest row 2h in the future (2026-06-30 00:00), warn after 2h, error after 1d",
        )


@pytest.mark.duckdb
def test_no_row_through_the_filter_or_only_null_times_fail_at_the_highest_severity(tmp_path: Path) -> None:
    sources = SOURCES_YML.replace("status = 'shipped'", "status = 'lost'")
    project = write_project(tmp_path / "shop", sources=sources)
    write_profile(project, {"type": "duckdb", "path": str(tmp_path / "shop.duckdb")})
    tables = raw_tables()
    tables["orders"] = tables["orders"].set_column(3, "ts", pa.array([None] * 3, pa.timestamp("us")))
    with Context(project) as context:
        load_raw(context, tables)
        cases = by_name(context)
        now = datetime(2026, 6, 30, tzinfo=UTC)
        shipments = outcome(context, cases["freshness_shop_shipments"], now)
        orders = outcome(context, cases["freshness_shop_orders"], now)
    assert shipments == (1, "warn", "source shop.shipments: no rows where status = 'lost', warn after 12h")
    assert orders == (1, "error", "source shop.orders: ts is NULL in all 3 rows, error after 1d")


@pytest.mark.duckdb
def test_a_window_model_never_run_fails_and_a_missing_table_is_an_error(tmp_path: Path) -> None:
    project = write_project(tmp_path / "shop")
    write_profile(project, {"type": "duckdb", "path": str(tmp_path / "shop.duckdb")})
    now = datetime(2026, 6, 30, tzinfo=UTC)
    with Context(project) as context:
        cases = by_name(context)
        with pytest.raises(ConfigError, match=r"source shop.orders: table raw.orders does not exist on target"):
            cases["freshness_shop_orders"].check(TestEnv(context, now))
        with pytest.raises(ConfigError, match=r"model user_order_windows has not been built.*featuresql run"):
            cases["freshness_user_order_windows"].check(TestEnv(context, now))
        load_raw(context, raw_tables())
        assert context.run(select=("user_orders",), now=BUILT_AT).ok  # the state tables exist, no interval of ours
        assert outcome(context, cases["freshness_user_order_windows"], now) == (
            1,
            "error",
            "model user_order_windows: no computed interval: run `featuresql run --select "
            "user_order_windows`, error after 2d",
        )


@pytest.mark.duckdb
def test_the_query_is_given_to_rerun_by_hand(built: Path) -> None:
    with Context(built) as context:
        cases = by_name(context)
        result = cases["freshness_shop_shipments"].check(TestEnv(context, datetime(2026, 6, 30, tzinfo=UTC)))
        state = cases["freshness_user_order_windows"].check(TestEnv(context, datetime(2026, 6, 30, tzinfo=UTC)))
        assert result.sql is not None and state.sql is not None
        rows = context.query(result.sql).to_pylist()
    assert "WHERE" in result.sql and "status = 'shipped'" in result.sql
    assert rows[0]["row_count"] == 1
    assert "featuresql.intervals" in state.sql


def test_judge_words_ages_and_limits() -> None:
    limits = Freshness(warn_after=7200, error_after=86400)
    newest = datetime(2026, 6, 30, tzinfo=UTC)
    assert judge(limits, newest + timedelta(days=3, hours=4, minutes=59), newest, subject="newest row") == Outcome(
        1, "newest row 3d 4h old (2026-06-30 00:00), error after 1d", severity="error"
    )
    assert judge(limits, newest + timedelta(minutes=90), newest, subject="s").message.startswith("s 1h 30m old")
    assert judge(limits, newest + timedelta(seconds=45), newest, subject="s").message.startswith("s 45s old")
    assert judge(limits, newest, newest, subject="s").message.startswith("s 0s old (2026-06-30 00:00)")
    moment = newest.replace(second=7)
    assert "(2026-06-30 00:00:07)" in judge(limits, moment, moment, subject="s").message
    only_warn = judge(Freshness(warn_after=60), newest + timedelta(days=9), newest, subject="s")
    assert (only_warn.failures, only_warn.severity) == (1, "warn")


# -- configuration errors, with file and line -------------------------------------------------


def line_of_text(text: str, needle: str, after: str = "") -> int:
    """The 1-based line of ``needle`` in ``text`` (the first one after ``after``)."""
    start = text.index(after) if after else 0
    return text[: text.index(needle, start)].count("\n") + 1


def cases_of(folder: Path, sources: str = SOURCES_YML, models: str = MODELS_YML, sql: dict[str, str] | None = None):
    project = write_project(folder, sources, models)
    for name, text in (sql or {}).items():
        (project / "features" / f"{name}.sql").write_text(text)
    with Context(project, offline=True) as context:
        return freshness_cases(context.project, context.compiled)


def config_error(folder: Path, **changes: Any) -> ConfigError:
    with pytest.raises(ConfigError) as raised:
        cases_of(folder, **changes)
    return raised.value


@pytest.mark.duckdb
def test_a_table_with_freshness_and_no_time_is_an_error_at_its_freshness(tmp_path: Path) -> None:
    sources = SOURCES_YML.replace("freshness: {}", "freshness: {warn_after: 1h}")
    error = config_error(tmp_path / "shop", sources=sources)
    assert error.path is not None and error.path.name == "sources.yml"
    assert error.line == line_of_text(sources, "freshness: {warn_after: 1h}")
    assert re.search(
        r"source shop.customers has freshness but no time to measure it by: set loaded_at_field "
        r"\(on the table, the source or the freshness block\) or event_time$",
        error.message,
    )


@pytest.mark.duckdb
def test_a_table_inheriting_its_source_freshness_without_a_time_may_opt_out(tmp_path: Path) -> None:
    sources = SOURCES_YML.replace("        freshness: {}\n", "")
    error = config_error(tmp_path / "shop", sources=sources)
    assert error.line == line_of_text(sources, "- name: customers")
    assert "shop.customers has freshness" in error.message and "freshness: {}" in error.message


@pytest.mark.duckdb
def test_a_filter_that_does_not_parse_is_an_error_at_its_line(tmp_path: Path) -> None:
    sources = SOURCES_YML.replace("status = 'shipped'", "status = = 'shipped'")
    error = config_error(tmp_path / "shop", sources=sources)
    assert error.line == line_of_text(sources, "filter:")
    assert "source shop.shipments: freshness filter: cannot parse \"status = = 'shipped'\"" in error.message


@pytest.mark.duckdb
def test_an_unknown_loaded_at_column_suggests_the_closest(tmp_path: Path) -> None:
    own = "        event_time: ts\n        freshness: {warn_after: 1h, loaded_at_field: tss}\n        columns:"
    sources = SOURCES_YML.replace("        event_time: ts\n        columns:", own, 1)
    error = config_error(tmp_path / "shop", sources=sources)
    assert error.line == line_of_text(sources, "loaded_at_field: tss")
    assert "source shop.orders: loaded_at_field: unknown column 'tss' (did you mean ts?)" in error.message


@pytest.mark.duckdb
def test_a_model_with_freshness_and_no_time_is_an_error_at_its_yaml(tmp_path: Path) -> None:
    models = MODELS_YML + "  - name: plans\n    config:\n      freshness: {warn_after: 1d}\n"
    plans = "{{ config(entity='user') }}\nselect user_id from {{ source('shop', 'customers') }}\n"
    error = config_error(tmp_path / "shop", models=models, sql={"plans": plans})
    assert error.path is not None and error.path.name == "models.yml"
    assert error.line == line_of_text(models, "freshness:", after="name: plans")
    assert "model plans has freshness but no time to measure it by" in error.message


@pytest.mark.duckdb
def test_a_model_loaded_at_field_must_be_one_of_its_columns(tmp_path: Path) -> None:
    models = MODELS_YML.replace("{warn_after: 1d, filter", "{warn_after: 1d, loaded_at_field: amout, filter")
    error = config_error(tmp_path / "shop", models=models)
    assert "model user_orders: loaded_at_field: unknown column 'amout' (did you mean amount?)" in error.message


@pytest.mark.duckdb
def test_no_freshness_no_case(tmp_path: Path) -> None:
    sources = SOURCES_YML.replace("    freshness: {warn_after: 2h, error_after: 1d}\n", "")
    sources = sources.replace("{warn_after: 12h, filter", "{filter")  # a block without limits checks nothing
    cases = cases_of(tmp_path / "shop", sources=sources, models="version: 1\n")
    assert [case.name for case in cases] == ["freshness_shop_daily"]
