"""``featuresql test --online`` (``featuresql.testing.online_check``): the store against the warehouse.

The example project is built and synced once (local store, as in test_sync.py);
each test tampers with a copy: a value changed in the store (mismatch), newer
warehouse rows not synced (stale), an item deleted (missing), an item moved
forward in time (unexpected). Once more against DynamoDB Local.
"""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import online_stores
import pytest
from online_stores import sync
from projects import DATABASE, ONLINE_EDITS, SMALL_VARS, built_example, copy_example

from featuresql.compile.features import joined_model
from featuresql.context import Context
from featuresql.errors import ConfigError
from featuresql.online.sync import run_sync
from featuresql.serving.items import FEATURE_TS
from featuresql.testing.cases import Outcome, TestEnv
from featuresql.testing.failing import format_table
from featuresql.testing.online_check import online_cases, sample_query

NOW = datetime(2026, 6, 30, 5, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=2)
STORE = Path("target") / "online" / "dev.sqlite"
RATIOS = "user_spend_ratios"
ALL = 10**6  # a sample larger than the data: every entity


def check(project: Path, model: str, *, now: datetime = NOW, sample: int = ALL, variables: Any = None) -> Outcome:
    with Context(project, variables=variables or SMALL_VARS) as context:
        case = next(case for case in online_cases(context.compiled) if case.models == (model,))
        return case.check(TestEnv(context, now, online_sample=sample))


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = built_example(tmp_path_factory.mktemp("online_check") / "p", ONLINE_EDITS, now=LATER)
    sync(project, NOW, variables=SMALL_VARS)
    return project


@pytest.fixture
def project(synced: Path, tmp_path: Path) -> Path:
    """A copy of the synced project to tamper with."""
    return Path(shutil.copytree(synced, tmp_path / "p"))


# Availability at NOW per online model: (data_delay, ttl, tie-break column).
AVAILABILITY = {
    "user_transactions": (timedelta(hours=2), None, None),
    RATIOS: (timedelta(hours=2), None, None),  # its ref's delay
    "user_balances": (timedelta(0), timedelta(days=30), "event_seq"),
}


def latest(project: Path, model: str = RATIOS) -> list[dict[str, Any]]:
    """Each user's latest available row at NOW, by user (the oracle of ``latest_rows``, in plain SQL)."""
    delay, ttl, tie_break = AVAILABILITY[model]
    since = "and ts >= ?" if ttl else ""
    times = [(NOW - delay).replace(tzinfo=None), *([(NOW - ttl).replace(tzinfo=None)] if ttl else [])]
    order = f"ts desc{', ' + tie_break + ' desc' if tie_break else ''}"
    with duckdb.connect(str(project / DATABASE), read_only=True) as connection:
        cursor = connection.execute(
            f"select * from main.{model} where ts <= ? {since} "
            f"qualify row_number() over (partition by user_id order by {order}) = 1 order by user_id",
            times,
        )
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def edit_item(project: Path, key: str, change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> None:
    """Rewrite (or, when ``change`` returns None, delete) one item of the local store."""
    with sqlite3.connect(project / STORE) as connection:
        (text,) = connection.execute("select item from items where pk = ?", [key]).fetchone()
        item = change(json.loads(text))
        if item is None:
            connection.execute("delete from items where pk = ?", [key])
        else:
            connection.execute("update items set item = ? where pk = ?", [json.dumps(item), key])


def with_attribute(name: str, value: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda item: {**item, name: value}


def detail_rows(details: str) -> list[tuple[str, ...]]:
    """The cells of the details table, without its header and rule."""
    return [tuple(cell.strip() for cell in line.split(" | ")) for line in details.splitlines()[2:]]


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def test_a_synced_store_agrees_with_the_warehouse(synced: Path) -> None:
    for model in ("user_transactions", RATIOS, "user_balances"):
        result = check(synced, model)
        entities = len(latest(synced, model))
        assert result == Outcome(
            0, f"{entities} sampled entities of {model}: all agree with the warehouse", sql=result.sql
        )
        assert check(synced, model, sample=100).message.startswith(f"100 sampled entities of {model}: all agree")


def test_checking_before_the_sync_time_says_the_store_is_ahead(synced: Path) -> None:
    earlier = check(synced, "user_transactions", now=NOW - timedelta(days=10))
    assert earlier.failures > 0 and "unexpected" in earlier.message
    assert earlier.message.endswith(
        "(the store holds newer values than the warehouse at this time: was it synced with a later --now? "
        "If not, `featuresql sync --full` rewrites it)"
    )


def test_mismatched_stale_missing_and_unexpected_items_are_counted_and_shown(project: Path) -> None:
    rows = latest(project)
    newest = max(row["ts"] for row in rows)
    a, b, d = rows[10], rows[20], rows[30]
    c = next(row for row in rows[40:] if row["ts"] == newest)
    edit_item(project, f"{RATIOS}#[{a['user_id']}]", with_attribute("transactions_per_day_7d", {"N": "9.5"}))
    edit_item(project, f"{RATIOS}#[{b['user_id']}]", lambda item: None)
    later = int((d["ts"].replace(tzinfo=UTC) + timedelta(days=1)).timestamp() * 1_000_000)
    edit_item(project, f"{RATIOS}#[{d['user_id']}]", with_attribute(FEATURE_TS, {"N": str(later)}))
    with duckdb.connect(str(project / DATABASE)) as connection:  # a newer row, not synced
        connection.execute(
            f"insert into main.{RATIOS} select user_id, ts + interval 1 hour, spend_share_1d_of_30d, "
            f"transactions_per_day_7d, max_to_avg_amount from main.{RATIOS} "
            "where user_id = ? and ts = ?",
            [c["user_id"], c["ts"]],
        )

    result = check(project, RATIOS)

    assert result.failures == 4
    assert result.message == (
        f"{len(rows)} sampled entities of {RATIOS}: 1 mismatch, 1 stale, 1 missing, 1 unexpected, "
        f"{len(rows) - 4} ok (the sync is behind: run `featuresql sync`; "
        "if it writes nothing, `featuresql sync --repair`)"
    )
    shown = {
        a["user_id"]: ("mismatch", "transactions_per_day_7d", 9.5, a["transactions_per_day_7d"]),
        b["user_id"]: ("missing", "(item)", "no item", f"row at {iso(b['ts'])}"),
        c["user_id"]: ("stale", "ts", iso(c["ts"]), iso(c["ts"] + timedelta(hours=1))),
        d["user_id"]: ("unexpected", "ts", iso(d["ts"] + timedelta(days=1)), iso(d["ts"])),
    }
    expected = [
        dict(zip(("entity", "class", "column", "online", "warehouse"), (f"user_id={user}", *shown[user]), strict=True))
        for user in sorted(shown)
    ]
    assert result.details == format_table(["entity", "class", "column", "online", "warehouse"], expected)


def test_the_sample_takes_the_latest_changes_then_spreads_over_the_keys(project: Path) -> None:
    rows = latest(project)
    by_recency = sorted(rows, key=lambda row: (-row["ts"].timestamp(), row["user_id"]))
    recent = [row["user_id"] for row in by_recency[:3]]
    rest = sorted(row["user_id"] for row in by_recency[3:])
    spread = [user for n, user in enumerate(rest) if n * 3 % len(rest) < 3]
    assert len(spread) == 3 and spread[0] == rest[0]
    with Context(project, variables=SMALL_VARS) as context:
        joined = joined_model(context.compiled.models[RATIOS], ())
        sampled = context.query(sample_query(joined, NOW, 6, context.dialect)).column("user_id").to_pylist()
    assert sampled == sorted(recent + spread)

    # A user whose row changed last is in even the smallest sample: the sync is behind on it.
    newest = max(row["ts"] for row in rows)
    late = next(row for row in reversed(rows) if row["ts"] == newest)
    with duckdb.connect(str(project / DATABASE)) as connection:
        connection.execute(
            f"update main.{RATIOS} set ts = ts + interval 90 minute where user_id = ? and ts = ?",
            [late["user_id"], late["ts"]],
        )
    result = check(project, RATIOS, sample=2)
    behind = "(the sync is behind: run `featuresql sync`; if it writes nothing, `featuresql sync --repair`)"
    assert result.message == f"2 sampled entities of {RATIOS}: 1 stale, 1 ok {behind}"
    assert detail_rows(result.details) == [
        (f"user_id={late['user_id']}", "stale", "ts", iso(late["ts"]), iso(late["ts"] + timedelta(minutes=90)))
    ]


def test_numbers_compare_exactly_whatever_their_spelling(project: Path) -> None:
    balance = next(row for row in latest(project, "user_balances") if row["balance"] is not None)
    key = f"user_balances#[{balance['user_id']}]"
    digits = str(balance["balance"])
    edit_item(project, key, with_attribute("balance", {"N": digits + "000"}))  # 12.50 as 12.50000: the same number
    assert check(project, "user_balances").failures == 0
    edit_item(project, key, with_attribute("balance", {"N": str(balance["balance"] + Decimal("0.01"))}))
    result = check(project, "user_balances")
    assert result.failures == 1
    assert detail_rows(result.details) == [
        (f"user_id={balance['user_id']}", "mismatch", "balance", str(balance["balance"] + Decimal("0.01")), digits)
    ]

    ratio = next(row for row in latest(project) if row["max_to_avg_amount"] is not None)
    value = ratio["max_to_avg_amount"]
    edit_item(
        project,
        f"{RATIOS}#[{ratio['user_id']}]",
        with_attribute("max_to_avg_amount", {"N": repr(math.nextafter(value, math.inf))}),
    )
    assert check(project, RATIOS).failures == 1  # one ulp off is a different double


def test_an_expired_item_is_missing_unless_the_row_reads_as_the_defaults(project: Path) -> None:
    rows = latest(project, "user_transactions")
    active = next(row for row in rows if row["count_30d"] > 0)
    edit_item(project, f"user_transactions#[{active['user_id']}]", with_attribute("_exp", {"N": "1"}))
    result = check(project, "user_transactions")
    assert result.failures == 1
    assert detail_rows(result.details) == [
        (f"user_id={active['user_id']}", "missing", "(item)", "expired", f"row at {iso(active['ts'])}")
    ]

    # An entity whose windows are all empty reads the same with no item (sync lets its item expire at once).
    empty = {"count_1d": 0, "count_7d": 0, "count_30d": 0, "merchant_category_count_distinct_30d": 0}
    with duckdb.connect(str(project / DATABASE)) as connection:
        columns = [c for c in joined_columns(project, "user_transactions") if c not in empty]
        assignments = ", ".join([*(f"{c} = {v}" for c, v in empty.items()), *(f"{c} = null" for c in columns)])
        connection.execute(
            f"update main.user_transactions set {assignments} where user_id = ? and ts = ?",
            [active["user_id"], active["ts"]],
        )
    assert check(project, "user_transactions").failures == 0


def test_items_of_entities_the_warehouse_no_longer_has_are_strays(project: Path) -> None:
    """The store's side is read too: a sample of warehouse entities can never see a deleted one."""
    rows = latest(project, RATIOS)
    gone = rows[7]["user_id"]
    with duckdb.connect(str(project / DATABASE)) as connection:
        connection.execute(f"delete from main.{RATIOS} where user_id = ?", [gone])
    result = check(project, RATIOS)
    assert result.failures == 1 and "1 stray" in result.message, result.message
    assert "`featuresql sync`" in result.message
    assert detail_rows(result.details)[0][:3] == (f"user_id={gone}", "stray", "(item)")
    sync(project, NOW, variables=SMALL_VARS)
    assert check(project, RATIOS).failures == 0


def joined_columns(project: Path, model: str) -> tuple[str, ...]:
    with Context(project, variables=SMALL_VARS) as context:
        return context.compiled.models[model].feature_columns


def test_a_project_never_synced_or_without_its_store_is_told_to_sync(synced: Path, tmp_path: Path) -> None:
    never = Path(shutil.copytree(synced, tmp_path / "never"))
    shutil.rmtree(never / "target" / "online")
    with pytest.raises(ConfigError, match=r"no online manifest for target 'dev'.*run `featuresql sync` first"):
        check(never, RATIOS)
    gone = Path(shutil.copytree(synced, tmp_path / "gone"))
    (gone / STORE).unlink()
    with pytest.raises(ConfigError, match=r"the local online store .*dev.sqlite does not exist: run `featuresql sync`"):
        check(gone, RATIOS)
    assert not (gone / STORE).exists()  # checking created nothing


def test_one_case_per_online_model(synced: Path) -> None:
    with Context(synced, variables=SMALL_VARS) as context:
        cases = online_cases(context.compiled)
    assert [(c.name, c.kind, c.test_type, c.models) for c in cases] == [
        ("online_user_transactions", "online", "data", ("user_transactions",)),
        ("online_user_balances", "online", "data", ("user_balances",)),
        ("online_user_spend_ratios", "online", "data", (RATIOS,)),
    ]


# -- DynamoDB Local ---------------------------------------------------------------------------

# DynamoDB Local deletes expired items by the wall clock: its clock and demo data (online_stores.py).
DYNAMO_NOW, DYNAMO_VARS = online_stores.NOW, online_stores.VARS


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from dynamodb_server import dynamodb_local_with_credentials

    with dynamodb_local_with_credentials(tmp_path_factory.mktemp("dynamodb")) as running:
        yield running


@pytest.mark.dynamodb
def test_the_check_on_dynamodb_local(endpoint: Any, tmp_path: Path) -> None:
    from dynamodb_server import dynamodb_client

    project = copy_example(tmp_path / "p")
    online_stores.use_dynamodb(project, endpoint.endpoint_url, "online_check")
    with Context(project, variables=DYNAMO_VARS) as context:
        assert context.run(now=DYNAMO_NOW).ok
        with pytest.raises(ConfigError, match="run `featuresql sync` first"):
            online_cases(context.compiled)[0].check(TestEnv(context, DYNAMO_NOW))
        run_sync(context, now=DYNAMO_NOW)
    assert check(project, RATIOS, now=DYNAMO_NOW, variables=DYNAMO_VARS).failures == 0

    rows = latest_at(project, DYNAMO_NOW)
    a, b, d = rows[5], rows[15], rows[25]
    client = dynamodb_client(endpoint)
    client.update_item(
        TableName="online_check",
        Key={"pk": {"S": f"{RATIOS}#[{a['user_id']}]"}},
        UpdateExpression="SET transactions_per_day_7d = :v",
        ExpressionAttributeValues={":v": {"N": "9.5"}},
    )
    client.delete_item(TableName="online_check", Key={"pk": {"S": f"{RATIOS}#[{b['user_id']}]"}})
    later = int((d["ts"].replace(tzinfo=UTC) + timedelta(days=1)).timestamp() * 1_000_000)
    client.update_item(
        TableName="online_check",
        Key={"pk": {"S": f"{RATIOS}#[{d['user_id']}]"}},
        UpdateExpression="SET #ts = :ts",
        ExpressionAttributeNames={"#ts": FEATURE_TS},
        ExpressionAttributeValues={":ts": {"N": str(later)}},
    )
    newest = max(row["ts"] for row in rows)
    c = next(row for row in rows[30:] if row["ts"] < newest)  # moved an hour later, it is still available now
    with duckdb.connect(str(project / DATABASE)) as connection:
        connection.execute(
            f"update main.{RATIOS} set ts = ts + interval 1 hour where user_id = ? and ts = ?", [c["user_id"], c["ts"]]
        )

    result = check(project, RATIOS, now=DYNAMO_NOW, variables=DYNAMO_VARS)
    assert result.failures == 4, result.details
    assert f": 1 mismatch, 1 stale, 1 missing, 1 unexpected, {len(rows) - 4} ok " in result.message
    shown = {row[0]: row[1:] for row in detail_rows(result.details)}
    assert shown[f"user_id={a['user_id']}"][:3] == ("mismatch", "transactions_per_day_7d", "9.5")
    assert shown[f"user_id={b['user_id']}"][:3] == ("missing", "(item)", "no item")
    assert shown[f"user_id={c['user_id']}"] == ("stale", "ts", iso(c["ts"]), iso(c["ts"] + timedelta(hours=1)))
    assert shown[f"user_id={d['user_id']}"][:2] == ("unexpected", "ts")


def latest_at(project: Path, now: datetime) -> list[dict[str, Any]]:
    with duckdb.connect(str(project / DATABASE), read_only=True) as connection:
        cursor = connection.execute(
            f"select user_id, ts from main.{RATIOS} where ts <= ? qualify row_number() over (partition by user_id "
            "order by ts desc) = 1 order by user_id",
            [now.replace(tzinfo=None)],
        )
        return [{"user_id": user, "ts": ts} for user, ts in cursor.fetchall()]
