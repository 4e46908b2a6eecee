"""Column-level lineage (featuresql.compile.lineage): every column of the example project traced to its sources."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import pytest
from projects import REPO_ROOT, copy_example

from featuresql.compile.compiler import compile_project
from featuresql.compile.lineage import Lineage, column_lineage
from featuresql.compile.models import CompiledProject
from featuresql.project.loader import Project, load_project

T = "bank.transactions."
B = "bank.balance_events."
U = "bank.users."

USER_TRANSACTIONS = {
    "user_id": {T + "user_id"},
    "ts": {T + "ts"},
    # window_count() counts rows: which rows fall in the window is decided by the timestamp
    "count_1d": {T + "ts"},
    "count_7d": {T + "ts"},
    "count_30d": {T + "ts"},
    # the WHERE (status = 'settled' and amount > 0) is a filter, not lineage
    "amount_sum_1d": {T + "amount"},
    "amount_sum_7d": {T + "amount"},
    "amount_sum_30d": {T + "amount"},
    "amount_avg_7d": {T + "amount"},
    "amount_avg_30d": {T + "amount"},
    "amount_max_7d": {T + "amount"},
    "amount_stddev_30d": {T + "amount"},
    "merchant_category_count_distinct_30d": {T + "merchant_category"},
    "amount_last_7d": {T + "amount", T + "transaction_id", T + "ts"},  # the latest by ts, then tie_break
}

# The hand-written expectation: the source columns of every column of every model.
EXPECTED: dict[str, dict[str, set[str]]] = {
    "user_transactions": USER_TRANSACTIONS,
    "merchant_transactions": {
        "merchant_id": {T + "merchant_id"},
        "ts": {T + "ts"},
        "count_1d": {T + "ts"},
        "count_7d": {T + "ts"},
        "amount_sum_7d": {T + "amount"},
        "user_id_count_distinct_7d": {T + "user_id"},
        "declined_count_7d": {T + "status"},  # case when status = 'declined' then 1 else 0 end
    },
    "user_profile": {
        "user_id": {U + "user_id"},
        "ts": {U + "signup_at"},
        "plan": {U + "plan"},
        "state": {U + "state"},
        "credit_limit": {U + "credit_limit"},
    },
    "user_balances": {
        "user_id": {B + "user_id"},
        "ts": {B + "ts"},
        "balance": {B + "balance"},
        "last_event_type": {B + "event_type"},
        # row_number() over (partition by user_id order by ts, event_type): its PARTITION BY
        # and ORDER BY columns are its value
        "event_seq": {B + "user_id", B + "ts", B + "event_type"},
    },
    "user_spend_ratios": {
        "user_id": {T + "user_id"},
        "ts": {T + "ts"},
        "spend_share_1d_of_30d": {T + "amount"},
        "transactions_per_day_7d": {T + "ts"},
        "max_to_avg_amount": {T + "amount"},
    },
    "advance_labels": {
        "user_id": {B + "user_id"},
        "ts": {B + "ts"},
        "advance_amount": {B + "amount"},
        # exists (select 1 from balance_events as repayment where repayment.user_id = advance.user_id
        # and repayment.event_type = 'repayment' and repayment.ts > advance.ts ...): its conditions
        "repaid_14d": {B + "user_id", B + "event_type", B + "ts"},
    },
    "advance_training": {
        # the spine's columns (advance_labels), then each joined model's as <model>__<feature>
        "user_id": {B + "user_id"},
        "ts": {B + "ts"},
        "advance_amount": {B + "amount"},
        "repaid_14d": {B + "user_id", B + "event_type", B + "ts"},
        **{f"user_transactions__{c}": s for c, s in USER_TRANSACTIONS.items() if c not in ("user_id", "ts")},
        "user_balances__balance": {B + "balance"},
        "user_profile__plan": {U + "plan"},
        "user_profile__state": {U + "state"},
        "user_profile__credit_limit": {U + "credit_limit"},
    },
}


@functools.cache
def example(dialect: str) -> tuple[Project, CompiledProject]:
    project = load_project(REPO_ROOT)  # reads the example project, writes nothing
    return project, compile_project(project, target_type=dialect, schema="features")


@functools.cache
def example_lineage(dialect: str = "duckdb") -> Lineage:
    return column_lineage(*reversed(example(dialect)))


def model_columns(lineage: Lineage, model: str) -> set[str]:
    prefix = f"model:{model}."
    return {node.removeprefix(prefix) for node in lineage.edges if node.startswith(prefix)}


# -- the example project ----------------------------------------------------------------------


def test_expectation_covers_every_model_and_column():
    _, compiled = example("duckdb")
    assert set(EXPECTED) == set(compiled.models)
    for name, model in compiled.models.items():
        if model.columns != ("*",):  # advance_training selects * from its as_of_join
            assert set(EXPECTED[name]) == set(model.columns), name


@pytest.mark.parametrize("dialect", ["duckdb", "snowflake", "bigquery"])
def test_source_columns_of_every_column_match_the_expectation(dialect):
    lineage = example_lineage(dialect)
    for model, columns in EXPECTED.items():
        assert model_columns(lineage, model) == set(columns), model
        actual = {column: lineage.source_columns(model, column) for column in columns}
        assert actual == columns, model


def test_chained_feature_edges_go_through_the_window_model():
    lineage = example_lineage()
    assert lineage.edges["model:user_spend_ratios.spend_share_1d_of_30d"] == (
        "model:user_transactions.amount_sum_1d",
        "model:user_transactions.amount_sum_30d",
    )
    assert lineage.edges["model:user_transactions.amount_sum_1d"] == ("source:bank.transactions.amount",)
    assert lineage.edges["model:user_transactions.amount_sum_30d"] == ("source:bank.transactions.amount",)
    assert lineage.edges["source:bank.transactions.amount"] == ()


def test_as_of_join_columns_come_from_the_joined_models_and_the_spine():
    edges = example_lineage().edges
    assert edges["model:advance_training.user_transactions__count_7d"] == ("model:user_transactions.count_7d",)
    assert edges["model:advance_training.user_balances__balance"] == ("model:user_balances.balance",)
    assert edges["model:advance_training.repaid_14d"] == ("model:advance_labels.repaid_14d",)


def test_upstream_is_every_ancestor():
    lineage = example_lineage()
    assert lineage.upstream("model:user_spend_ratios.spend_share_1d_of_30d") == {
        "model:user_transactions.amount_sum_1d",
        "model:user_transactions.amount_sum_30d",
        "source:bank.transactions.amount",
    }
    assert lineage.upstream("model:advance_training.user_transactions__amount_last_7d") == {
        "model:user_transactions.amount_last_7d",
        "source:bank.transactions.amount",
        "source:bank.transactions.transaction_id",
        "source:bank.transactions.ts",
    }
    assert lineage.upstream("source:bank.transactions.amount") == set()
    assert lineage.upstream("model:nope.nothing") == set()


def test_every_edge_is_sorted_and_every_node_is_listed():
    lineage = example_lineage()
    for node, upstream in lineage.edges.items():
        assert list(upstream) == sorted(upstream), node
        assert all(parent in lineage.edges for parent in upstream), node
    sources = {n for n in lineage.edges if n.startswith("source:")}
    assert "source:bank.transactions.status" in sources
    assert "source:bank.users.signup_at" in sources


def test_source_columns_names_its_model_column_case_insensitively():
    lineage = example_lineage()
    assert lineage.source_columns("user_transactions", "AMOUNT_SUM_7D") == {T + "amount"}
    with pytest.raises(KeyError, match=r"user_transactions\.amount_sum_2d"):
        lineage.source_columns("user_transactions", "amount_sum_2d")


def test_timing():
    project, compiled = example("duckdb")
    started = time.perf_counter()
    lineage = column_lineage(compiled, project)
    elapsed = time.perf_counter() - started
    print(f"column_lineage of the example project: {len(lineage.edges)} nodes in {elapsed * 1000:.0f} ms")


# -- dialects and constructs ------------------------------------------------------------------

SNOWFLAKE_MODEL = """{{ config(entity='user', timestamp='ts') }}
select
    u.user_id,
    u.signup_at as ts,
    iff(u.plan = 'pro', u.credit_limit, 0) as pro_credit_limit,
    div0(r.amount_sum_30d, u.credit_limit) as utilisation_30d,
    zeroifnull(r.count_30d) as Count_30d
from {{ source('bank', 'users') }} as u
left join {{ ref('user_transactions') }} as r
  on r.user_id = u.user_id
qualify row_number() over (partition by u.user_id order by r.ts desc) = 1
"""


@pytest.mark.parametrize("target", ["snowflake", "duckdb"])
def test_a_model_written_in_snowflake_sql(tmp_path: Path, target: str):
    root = copy_example(
        tmp_path / "snowflake",
        [("project.yml", "dialect: duckdb", "dialect: snowflake"), ("features/user_credit.sql", None, SNOWFLAKE_MODEL)],
    )
    project = load_project(root)
    lineage = column_lineage(compile_project(project, target_type=target, schema="features"), project)
    columns = model_columns(lineage, "user_credit")
    assert {column: lineage.source_columns("user_credit", column) for column in columns} == {
        "user_id": {U + "user_id"},
        "ts": {U + "signup_at"},
        "pro_credit_limit": {U + "plan", U + "credit_limit"},
        "utilisation_30d": {T + "amount", U + "credit_limit"},
        "Count_30d": {T + "ts"},  # a model's column keeps its spelling
    }
    assert lineage.edges["model:user_credit.utilisation_30d"] == (
        "model:user_transactions.amount_sum_30d",
        "source:bank.users.credit_limit",
    )
    for model, columns in EXPECTED.items():  # Snowflake's upper-case folding changes no name
        assert {column: lineage.source_columns(model, column) for column in columns} == columns


CONSTRUCTS = [
    # a CTE, an unknown table (the trace ends at its columns), an EXISTS in the WHERE (a filter)
    (
        "features/user_fx.sql",
        None,
        """{{ config(entity='user', timestamp='ts') }}
with recent as (select user_id, ts, amount from {{ source('bank', 'transactions') }} where amount > 0)
select r.user_id, r.ts, r.amount * f.rate as amount_usd, f.currency, 1 as one
from recent as r join fx.rates as f on f.day = cast(r.ts as date)
where exists (select 1 from {{ source('bank', 'users') }} as u where u.user_id = r.user_id)
""",
    ),
    ("features/users_all.sql", None, "select * from {{ source('bank', 'users') }}"),
    (
        "features/events_union.sql",
        None,
        """{{ config(entity='user', timestamp='ts') }}
select user_id, ts, amount as value from {{ source('bank', 'transactions') }}
union all
select user_id, ts, balance as value from {{ source('bank', 'balance_events') }}
""",
    ),
    # a window model whose events query joins two models, with an input over both
    (
        "features/user_events.sql",
        None,
        """{{ config(entity='user', timestamp='ts', grain='1 day') }}
with e as (select * from {{ ref('events_union') }})
select e.user_id, e.ts, {{ window_sum('e.value * u.credit_limit', windows=['7d'], name='weighted_{window}') }}
from e join {{ ref('users_all') }} as u on u.user_id = e.user_id
""",
    ),
]


def test_ctes_unions_stars_and_unknown_tables(tmp_path: Path):
    project = load_project(copy_example(tmp_path / "constructs", CONSTRUCTS))
    lineage = column_lineage(compile_project(project), project)
    edges = lineage.edges
    assert edges["model:user_fx.amount_usd"] == ("source:bank.transactions.amount", "table:fx.rates.rate")
    assert edges["model:user_fx.currency"] == ("table:fx.rates.currency",)
    assert edges["model:user_fx.user_id"] == ("source:bank.transactions.user_id",)
    assert edges["model:user_fx.one"] == ()
    assert edges["table:fx.rates.rate"] == ()
    assert lineage.source_columns("user_fx", "currency") == set()
    assert model_columns(lineage, "users_all") == {"user_id", "signup_at", "plan", "state", "credit_limit"}
    assert edges["model:events_union.value"] == (
        "source:bank.balance_events.balance",
        "source:bank.transactions.amount",
    )
    assert edges["model:user_events.weighted_7d"] == ("model:events_union.value", "model:users_all.credit_limit")
    assert edges["model:user_events.user_id"] == ("model:events_union.user_id",)
