"""The built-in point-in-time checks of `featuresql test`: availability and leakage.

Each check passes on the example project as built and fails, with exact counts,
on purpose-built bad data: rows off the grain or outside every computed
interval, intervals computed before their boundaries + data_delay were complete,
and extract rows holding a future, a stale or a missing value. The example's
``user_transactions`` gets a data_delay of 2h and a start here, so both checks
are seen to use them. The last test runs both checks on every engine.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from engines import Engine, write_profile
from projects import SMALL_VARS, built_example, copy_example
from sqlglot import exp

from featuresql.context import Context
from featuresql.errors import ConfigError
from featuresql.run.intervals import BEGINNING
from featuresql.testing.availability import (
    EARLY,
    NOT_COMPUTED,
    OFF_GRAIN,
    ComputedInterval,
    availability_cases,
    early_intervals,
)
from featuresql.testing.cases import Outcome, TestEnv
from featuresql.testing.leakage import leakage_check

NOW = datetime(2026, 7, 1, 6, tzinfo=UTC)
DAY, HOUR = 86400, 3600
DELAY = (
    "features/user_transactions.sql",
    "grain='1 day', online=true",
    "grain='1 day', data_delay='2h', start='2026-03-04', online=true",
)
START = "2026-03-04 00:00:00"
FEATURE = "user_transactions__count_7d"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project (user_transactions delayed 2h, from START), built at NOW on DuckDB."""
    return built_example(tmp_path_factory.mktemp("pit") / "cash_advance", [DELAY], now=NOW)


@pytest.fixture
def context(built: Path, tmp_path: Path) -> Iterator[Context]:
    """A copy of the built project (its DuckDB file included), for one test to spoil."""
    project = tmp_path / "cash_advance"
    shutil.copytree(built, project)
    with Context(project, variables=SMALL_VARS) as opened:
        yield opened


def availability(context: Context, model: str) -> Outcome:
    case = next(c for c in availability_cases(context.compiled, context.project.name) if c.models == (model,))
    return case.check(TestEnv(context, datetime.now(UTC)))


def leakage(context: Context, model: str = "advance_training") -> Outcome:
    return leakage_check(context.compiled.models[model], context.compiled)(TestEnv(context, datetime.now(UTC)))


def scalar(context: Context, sql: str | exp.Expr) -> Any:
    return context.query(sql).column(0)[0].as_py()


def detail_rows(outcome: Outcome) -> list[list[str]]:
    """The cells of each row of the table in an outcome's details (header and rule left out)."""
    lines = [line for line in outcome.details.splitlines() if " | " in line][1:]
    return [[cell.strip() for cell in line.split("|")] for line in lines]


# -- availability ---------------------------------------------------------------------------


def test_availability_cases_are_one_per_window_model(context: Context) -> None:
    cases = availability_cases(context.compiled, context.project.name)
    names = sorted(c.name for c in cases)
    assert names == ["availability_merchant_transactions", "availability_user_transactions"]
    for case in cases:
        assert (case.kind, case.test_type, case.severity, len(case.models)) == ("availability", "data", "error", 1)


def test_availability_passes_on_the_built_example(context: Context) -> None:
    for model in ("user_transactions", "merchant_transactions"):
        outcome = availability(context, model)
        assert outcome.failures == 0, outcome.details
        assert "data_delay" in outcome.message and outcome.sql and outcome.details == ""
    assert "(2h)" in availability(context, "user_transactions").message


def test_rows_off_the_grain_fail(context: Context) -> None:
    context.adapter.execute(
        "insert into main.user_transactions select * replace (ts + interval 1 hour as ts) "
        "from main.user_transactions where user_id = 7 order by ts limit 1"
    )
    context.adapter.execute(
        "insert into main.user_transactions select * replace (null as ts) from main.user_transactions "
        "where user_id = 7 limit 1"
    )
    first = scalar(context, "select min(ts) + interval 1 hour from main.user_transactions where user_id = 7")
    outcome = availability(context, "user_transactions")
    assert outcome.failures == 2
    assert outcome.message == f"user_transactions: 2 rows: {OFF_GRAIN}"
    assert sorted(detail_rows(outcome)) == [["7", str(first), OFF_GRAIN], ["7", "NULL", OFF_GRAIN]]


def test_rows_no_computed_interval_holds_fail(context: Context) -> None:
    context.adapter.execute(
        "insert into main.user_transactions select * replace (timestamp '2026-08-01' as ts) "
        "from main.user_transactions where user_id = 7 order by ts limit 1"
    )
    outcome = availability(context, "user_transactions")
    assert outcome.failures == 1
    assert outcome.message == f"user_transactions: 1 row: {NOT_COMPUTED}"
    assert detail_rows(outcome) == [["7", "2026-08-01 00:00:00", NOT_COMPUTED]]
    # Without any state, no run vouches for any row.
    rows = scalar(context, "select count(*) from main.user_transactions")
    context.adapter.execute("delete from featuresql.intervals where model = 'user_transactions'")
    assert availability(context, "user_transactions").failures == rows


def test_an_interval_computed_before_boundary_plus_data_delay_fails(context: Context) -> None:
    """Computed at 01:00 on June 21, the boundary of June 21 (available at 02:00) was early; at 02:00 it was not."""
    expected = {}
    for computed_at, first_early in (("2026-06-21 01:00:00", "2026-06-21"), ("2026-06-21 02:00:00", "2026-06-22")):
        context.adapter.execute(
            f"update featuresql.intervals set computed_at = timestamp '{computed_at}' where model = 'user_transactions'"
        )
        early_rows = scalar(context, f"select count(*) from main.user_transactions where ts >= '{first_early}'")
        outcome = availability(context, "user_transactions")
        assert outcome.failures == early_rows + 1, outcome.details
        assert f"{early_rows} rows: {EARLY}" in outcome.message
        assert outcome.message.endswith("; 1 interval computed too early, before boundary + data_delay")
        assert f"interval [{START}, 2026-07-02 00:00:00) computed at {computed_at}" in outcome.details
        assert f"boundaries [{first_early} 00:00:00, 2026-07-02 00:00:00)" in outcome.details
        expected[computed_at] = early_rows
    on_june_21 = scalar(context, "select count(*) from main.user_transactions where ts = '2026-06-21'")
    assert expected["2026-06-21 01:00:00"] - expected["2026-06-21 02:00:00"] == on_june_21 > 0
    assert availability(context, "merchant_transactions").failures == 0  # its state is untouched


def test_a_run_ahead_of_the_clock_fails(context: Context) -> None:
    """A run told it is 3 days later computes boundaries whose data cannot be complete yet."""
    ahead = datetime.now(UTC) + timedelta(days=3)
    yesterday = f"{datetime.now(UTC) - timedelta(days=1):%F}"
    assert scalar(context, f"select count(*) from main.user_transactions where ts >= '{yesterday}'") == 0
    assert context.run(("user_transactions",), now=ahead).ok
    run_id = scalar(
        context, "select run_id from featuresql.intervals where model = 'user_transactions' order by computed_at desc"
    )
    outcome = availability(context, "user_transactions")
    assert outcome.failures == 1, outcome.details  # the interval; the demo data ended long before the clock
    assert f"by run {run_id}:" in outcome.details


def test_a_missing_table_is_an_error_naming_the_run_to_do(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "cash_advance")
    with Context(project, variables=SMALL_VARS) as context:
        with pytest.raises(ConfigError, match=r"build it first with `featuresql run --select user_transactions`"):
            availability(context, "user_transactions")
        with pytest.raises(ConfigError, match=r"`featuresql run --select advance_training`"):
            leakage(context)


def test_early_intervals_are_forgiven_where_a_later_batch_computed_again() -> None:
    first = ComputedInterval(BEGINNING, 10 * DAY, computed_at=5 * DAY + HOUR, run_id="a")
    assert early_intervals([first], DAY, 2 * HOUR) == [(first, [(5 * DAY, 10 * DAY)])]  # 5d was complete at 5d + 2h
    assert early_intervals([first], DAY, HOUR) == [(first, [(6 * DAY, 10 * DAY)])]  # and at 5d + 1h with 1h
    assert early_intervals([first], DAY, 0) == [(first, [(6 * DAY, 10 * DAY)])]
    redone = ComputedInterval(7 * DAY, 10 * DAY, computed_at=20 * DAY, run_id="b")
    assert early_intervals([first, redone], DAY, 2 * HOUR) == [(first, [(5 * DAY, 7 * DAY)])]
    everything = ComputedInterval(0, 12 * DAY, computed_at=20 * DAY, run_id="c")
    assert early_intervals([first, redone, everything], DAY, 2 * HOUR) == []
    # An earlier computation never excuses a later one.
    assert early_intervals([ComputedInterval(0, 8 * DAY, 0, "d"), redone], DAY, 0) == [
        (ComputedInterval(0, 8 * DAY, 0, "d"), [(DAY, 7 * DAY)])
    ]


# -- leakage --------------------------------------------------------------------------------


def test_leakage_passes_on_the_built_extract_model(context: Context) -> None:
    outcome = leakage(context)
    assert outcome.failures == 0, outcome.details
    assert outcome.message == "every row of advance_training holds the features available at its time"
    assert outcome.sql and "MAX(__f.ts)" in outcome.sql


def _single_rows(condition: str) -> str:
    """Rows of advance_training alone with their user and time, joined to user_transactions rows ``f``."""
    return (
        "select a.user_id, a.ts, a.user_transactions__count_7d as current, f.count_7d as other, f.ts as other_ts "
        "from (select * from main.advance_training qualify count(*) over (partition by user_id, ts) = 1) as a "
        f"join main.user_transactions as f on f.user_id = a.user_id and {condition} "
        "where f.count_7d <> a.user_transactions__count_7d order by a.ts, a.user_id, f.ts limit 1"
    )


def _spoil(context: Context, condition: str) -> dict[str, Any]:
    """Give one row of advance_training the count_7d of another user_transactions row; return what changed."""
    row = context.query(_single_rows(condition)).to_pylist()[0]
    context.adapter.execute(
        f"update main.advance_training set {FEATURE} = {row['other']} "
        f"where user_id = {row['user_id']} and ts = '{row['ts']}'"
    )
    return row


def _assert_names(outcome: Outcome, row: dict[str, Any]) -> None:
    assert outcome.failures == 1, outcome.details
    assert detail_rows(outcome) == [
        [str(row["user_id"]), str(row["ts"]), FEATURE, str(row["other"]), str(row["current"])]
    ]


def test_a_future_value_is_a_leak(context: Context) -> None:
    row = _spoil(context, "f.ts > a.ts")
    outcome = leakage(context)
    _assert_names(outcome, row)
    assert outcome.message.startswith("advance_training: 1 row holds features other than those available")


def test_a_value_inside_the_data_delay_is_a_leak(context: Context) -> None:
    """The boundary just before a row, less than 2h before it, is not available yet (data_delay 2h)."""
    row = _spoil(context, "f.ts <= a.ts and f.ts > a.ts - interval 2 hour")
    assert row["ts"] - row["other_ts"] < timedelta(hours=2)
    _assert_names(leakage(context), row)


def test_a_stale_value_fails(context: Context) -> None:
    row = _spoil(context, "f.ts < a.ts - interval 2 day")
    _assert_names(leakage(context), row)


def test_missing_and_made_up_values_fail(context: Context) -> None:
    """No user_transactions row available: counts are 0 from START + 2h, NULL before; no recent balance: NULL."""
    unmatched = (
        "select user_id, ts from main.advance_training as a where not exists (select 1 from main.user_transactions "
        "as f where f.user_id = a.user_id and f.ts <= a.ts - interval 2 hour) and {} order by ts, user_id limit 1"
    )
    started = context.query(unmatched.format(f"ts >= timestamp '{START}' + interval 2 hour")).to_pylist()[0]
    before = context.query(unmatched.format(f"ts < timestamp '{START}' + interval 2 hour")).to_pylist()[0]
    no_balance = context.query(
        "select user_id, ts from main.advance_training where user_balances__balance is null "
        "order by ts desc, user_id limit 1"
    ).to_pylist()[0]
    assert len({tuple(row.values()) for row in (started, before, no_balance)}) == 3
    where = "where user_id = {user_id} and ts = '{ts}'"
    for change, row in (
        (f"{FEATURE} = null", started),
        (f"{FEATURE} = 0", before),
        ("user_balances__balance = 123", no_balance),
    ):
        context.adapter.execute(f"update main.advance_training set {change} " + where.format(**row))
    outcome = leakage(context)
    assert outcome.failures == 3, outcome.details
    assert sorted(detail_rows(outcome)) == sorted(
        [
            [str(started["user_id"]), str(started["ts"]), FEATURE, "NULL", "0"],
            [str(before["user_id"]), str(before["ts"]), FEATURE, "0", "NULL"],
            [str(no_balance["user_id"]), str(no_balance["ts"]), "user_balances__balance", "123.00", "NULL"],
        ]
    )


def test_leakage_is_for_extract_models_only(context: Context) -> None:
    for model in ("user_transactions", "advance_labels"):
        with pytest.raises(ConfigError, match=rf"`leakage` tests extract models: {model} has no as_of_join"):
            leakage_check(context.compiled.models[model], context.compiled)


def test_leakage_needs_the_spine_keys_and_time_in_the_table(context: Context) -> None:
    context.adapter.execute(
        f"create or replace table main.advance_training as select user_id, {FEATURE} from main.advance_training"
    )
    with pytest.raises(ConfigError, match=r"its table has no column 'ts'; select the spine's keys and time column"):
        leakage(context)
    context.adapter.execute(
        "create or replace table main.advance_training as select user_id, ts from main.advance_labels"
    )
    with pytest.raises(ConfigError, match=r"its table has none of the joined columns"):
        leakage(context)


def test_the_compiled_extract_model_records_its_join(context: Context) -> None:
    (join,) = context.compiled.models["advance_training"].as_of_joins
    assert join.spine.sql() == "main.advance_labels" and join.time == "ts" and join.spine_keys == ("user_id",)
    assert [m.name for m in join.models] == ["user_transactions", "user_balances", "user_profile"]
    assert join.models[0].data_delay == 2 * HOUR and join.models[1].columns == ("balance",)
    assert context.compiled.models["advance_labels"].as_of_joins == ()


# -- every engine ---------------------------------------------------------------------------

TINY = {"demo_users": 40, "demo_merchants": 10, "demo_transactions": 600, "demo_balance_events": 200}
NO_HOOK = ("project.yml", 'on_run_start:\n  - "{{ create_demo_data() }}"', "on_run_start: []")
TRAINING = ("+advance_training",)


@pytest.fixture(scope="module")
def tiny_raw(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The example's raw tables, tiny, generated once on DuckDB by the project's own hook."""
    project = copy_example(tmp_path_factory.mktemp("tiny") / "cash_advance")
    with Context(project, variables=TINY) as context:
        context.run(("advance_labels",), now=NOW)
        return {
            name: context.query(f"select * from raw.{name}") for name in ("users", "transactions", "balance_events")
        }


def test_the_checks_on_every_engine(engine: Engine, tmp_path: Path, tiny_raw: dict[str, Any]) -> None:
    project = copy_example(tmp_path / "project", [NO_HOOK, DELAY])
    write_profile(project, engine.target(tmp_path))
    with Context(project, variables=TINY) as context:
        context.adapter.ensure_schema("raw")
        for name, data in tiny_raw.items():
            context.adapter.load_table(exp.table_(name, db="raw"), data)
        assert context.run(TRAINING, now=NOW).ok
        assert (availability(context, "user_transactions").failures, leakage(context).failures) == (0, 0)
        dialect, models = context.dialect, context.compiled.models
        context.adapter.execute(_off_grain_row(models["user_transactions"].relation, dialect))
        user = scalar(context, exp.select(exp.func("MIN", exp.column("user_id"))).from_(_training(context)))
        rows = scalar(context, exp.select("COUNT(*)").from_(_training(context)).where(f"user_id = {user}"))
        change = exp.update(_training(context), {FEATURE: exp.column(FEATURE) + 1000}, where=f"user_id = {user}")
        context.adapter.execute(change)
        off_grain = availability(context, "user_transactions")
        assert off_grain.failures == 1 and OFF_GRAIN in off_grain.message, off_grain.details
        leaked = leakage(context)
        assert leaked.failures == rows > 0, leaked.details
        assert FEATURE in leaked.details


def _training(context: Context) -> exp.Table:
    return context.compiled.models["advance_training"].relation.copy()


def _off_grain_row(table: exp.Table, dialect: str) -> exp.Insert:
    """A copy of the table's first row, an hour after its boundary."""
    columns = ["user_id", "ts", "count_1d", "count_7d", "count_30d"]
    later = exp.TimestampAdd(this=exp.column("ts"), expression=exp.Literal.number(HOUR), unit=exp.var("SECOND"))
    select = exp.select(*(later if c == "ts" else exp.column(c) for c in columns)).from_(table.copy())
    select = select.order_by("ts", "user_id").limit(1)
    return exp.insert(select, table.copy(), columns=columns)
