"""`featuresql sync` to the local store: latest available values, changed rows only, never older over newer.

The example project runs once per module (small demo data) with
``user_transactions`` delayed by 2 hours and ``user_balances`` (a snapshot
model with a 30-day ttl and a tie-break column) online as well. Online values
are checked against the point-in-time extract at the same time, the offline
definition of "the value at t".
"""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from conftest import SMALL_VARS, SMALL_VARS_ARG, copy_example

from featuresql.context import Context
from featuresql.errors import ConfigError
from featuresql.online.stores import open_store, read_manifest
from featuresql.online.sync import run_sync
from featuresql.serving.handler import reader_for
from featuresql.serving.items import FEATURE_TS, VERSION, partition_key

pytestmark = pytest.mark.duckdb

NOW = datetime(2026, 6, 30, 5, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=2)
ONLINE = ("user_transactions", "user_spend_ratios", "user_balances")
EDITS = [
    ("features/user_transactions.sql", "online=true", "online=true, data_delay='2h'"),
    ("features/user_balances.sql", "ttl='30d',", "ttl='30d', online=true,"),
]
DATABASE = Path("target") / "cash_advance.duckdb"
STORE = Path("target") / "online" / "dev.sqlite"


def context(project: Path) -> Context:
    return Context(project, variables=SMALL_VARS)


def built(path: Path) -> Path:
    project = copy_example(path, EDITS)
    with context(project) as ctx:
        assert ctx.run(now=LATER).ok
    return project


def sync(project: Path, now: datetime = NOW, select: tuple[str, ...] = ()) -> dict[str, tuple[int, int, int]]:
    with context(project) as ctx:
        result = run_sync(ctx, select, now=now)
    return {m.model: (m.changed, m.written, m.skipped) for m in result.models}


def items(project: Path) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(project / STORE) as connection:
        return {pk: json.loads(item) for pk, item in connection.execute("select pk, item from items")}


def without_sync_marks(stored: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {pk: {k: v for k, v in item.items() if k not in (VERSION, "_run")} for pk, item in stored.items()}


def assert_same_items(actual: dict[str, dict[str, Any]], expected: dict[str, dict[str, Any]]) -> None:
    """Equal but for the sync's marks; numbers within 1e-9 relative (the two builds summed doubles in
    different orders: DuckDB sums in parallel)."""
    actual, expected = without_sync_marks(actual), without_sync_marks(expected)
    assert actual.keys() == expected.keys()
    for pk, item in expected.items():
        assert actual[pk].keys() == item.keys(), pk
        for name, value in item.items():
            got = actual[pk][name]
            if "N" in value and "N" in got:
                assert math.isclose(float(got["N"]), float(value["N"]), rel_tol=1e-9, abs_tol=1e-9), (pk, name)
            else:
                assert got == value, (pk, name)


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = built(tmp_path_factory.mktemp("sync") / "p")
    sync(project)
    return project


def test_online_values_equal_the_extract_at_the_same_time(synced: Path) -> None:
    with duckdb.connect(str(synced / DATABASE), read_only=True) as connection:
        rows = connection.execute("select distinct user_id from main.user_profile order by 1").fetchall()
    users = [row[0] for row in rows]
    users.append(987654321)  # no rows anywhere: defaults online, no match offline
    spine = pa.table({"user_id": users, "ts": [NOW.replace(tzinfo=None)] * len(users)})
    with context(synced) as ctx:
        extract = ctx.extract(spine, list(ONLINE)).table
        reader = reader_for(read_manifest(ctx))
    assert extract is not None
    reader.clock = NOW.timestamp
    offline = extract.to_pylist()
    compared = 0
    for start in range(0, len(users), 100):
        chunk = users[start : start + 100]
        status, body = reader.answer({"entities": {"user_id": chunk}, "features": list(ONLINE)})
        assert status == 200, body
        for result, row in zip(json.loads(body)["results"], offline[start : start + 100], strict=True):
            assert result["entity"] == {"user_id": row["user_id"]}
            for name, online_value in result["features"].items():
                assert same_value(online_value, row[name]), (row["user_id"], name, online_value, row[name])
                compared += 1
    assert compared == len(users) * len(offline[0]) - 2 * len(users)  # every feature column of every user


def same_value(online: Any, offline: Any) -> bool:
    if isinstance(offline, float) and isinstance(online, int | float):
        return math.isclose(online, offline, rel_tol=1e-12, abs_tol=1e-12)
    if isinstance(offline, Decimal):
        return Decimal(str(online)) == offline
    if isinstance(offline, datetime):
        return online == offline.strftime("%Y-%m-%dT%H:%M:%S") + "Z"
    return bool(online == offline)


def test_items_carry_the_row_time_and_expire_when_the_value_would(synced: Path) -> None:
    stored = items(synced)
    windows = [item for pk, item in stored.items() if pk.startswith("user_transactions#")]
    widest, delay = 30 * 86400, 2 * 3600
    for item in windows:
        seconds = int(item[FEATURE_TS]["N"]) // 1_000_000
        empty = item["count_30d"] == {"N": "0"}
        assert int(item["_ttl"]["N"]) == seconds + delay + (0 if empty else widest)
        assert seconds * 1_000_000 <= (NOW - timedelta(hours=2)).timestamp() * 1_000_000
    balances = [item for pk, item in stored.items() if pk.startswith("user_balances#")]
    assert balances and all(
        int(item["_ttl"]["N"]) == -(-int(item[FEATURE_TS]["N"]) // 1_000_000) + 30 * 86400 for item in balances
    )
    assert all("_ttl" not in item for pk, item in stored.items() if pk.startswith("user_spend_ratios#"))


def test_a_second_sync_writes_nothing(tmp_path: Path) -> None:
    project = built(tmp_path / "p")
    first = sync(project)
    assert all(written == changed > 0 for changed, written, _ in first.values())
    before = items(project)
    assert sync(project) == dict.fromkeys(ONLINE, (0, 0, 0))
    assert items(project) == before


def test_only_changed_entities_are_written(tmp_path: Path) -> None:
    project = built(tmp_path / "p")
    sync(project)
    with duckdb.connect(str(project / DATABASE)) as connection:
        latest = connection.execute(
            "select user_id, max(ts) from main.user_spend_ratios where ts <= ? group by 1 order by 1 limit 3",
            [NOW.replace(tzinfo=None)],
        ).fetchall()
        for user_id, ts in latest:
            connection.execute(
                "update main.user_spend_ratios set transactions_per_day_7d = 123.5 where user_id = ? and ts = ?",
                [user_id, ts],
            )
    assert sync(project)["user_spend_ratios"] == (3, 3, 0)
    stored = items(project)
    for user_id, _ in latest:
        assert stored[partition_key("user_spend_ratios", [user_id])]["transactions_per_day_7d"] == {"N": "123.5"}


def test_a_later_sync_moves_values_forward_and_an_older_one_is_never_written(tmp_path: Path) -> None:
    project = built(tmp_path / "p")
    sync(project, NOW - timedelta(days=10))
    forward = sync(project, NOW)
    assert forward["user_transactions"][1] > 0
    newer = items(project)
    assert sync(project, NOW - timedelta(days=10)) == dict.fromkeys(ONLINE, (0, 0, 0))  # the mirror knows better
    with duckdb.connect(str(project / DATABASE)) as connection:  # a sync whose mirror read predates ours
        connection.execute("drop table featuresql.online_user_transactions")
    stale = sync(project, NOW - timedelta(days=10), select=("user_transactions",))
    changed, written, kept = stale["user_transactions"]
    assert kept > 0 and written + kept == changed  # older items refused by the store; the same rows re-sent
    assert without_sync_marks(items(project)) == without_sync_marks(newer)


def test_the_store_orders_writes_by_feature_time_then_sync_version(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "p")
    with context(project) as ctx:
        store = open_store(ctx)
    store.ensure_table()

    def item(ts: int, version: int, value: str) -> dict[str, Any]:
        return {"pk": {"S": "m#[1]"}, FEATURE_TS: {"N": str(ts)}, VERSION: {"N": str(version)}, "f": {"N": value}}

    assert store.write_batch([item(10, 1, "1")]).written == 1
    assert store.write_batch([item(9, 5, "2")]).skipped == 1  # older row, later sync
    assert store.write_batch([item(10, 1, "3")]).skipped == 1  # the same write again
    assert store.write_batch([item(10, 2, "4")]).written == 1  # same row time, later sync: a recomputed value
    assert store.read_batch(["m#[1]"], ["f"])["m#[1]"]["f"] == {"N": "4"}
    assert store.write_batch([item(11, 0, "5")]).written == 1
    assert store.read_batch(["m#[1]", "m#[2]"], ["f"]) == {"m#[1]": {"pk": {"S": "m#[1]"}, "f": {"N": "5"}}}


@pytest.mark.parametrize("point", ["sync_before_mirror", "sync_written"])
def test_a_killed_sync_is_finished_by_the_next(tmp_path: Path, point: str) -> None:
    reference = built(tmp_path / "reference")
    sync(reference)
    project = built(tmp_path / "p")
    command = [
        sys.executable,
        "-c",
        "from featuresql.cli.main import main; main()",
        "--vars",
        SMALL_VARS_ARG,
        "sync",
        "--now",
        NOW.strftime("%Y-%m-%dT%H:%M:%S"),
    ]
    process = subprocess.Popen(
        command,
        cwd=project,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "FEATURESQL_PAUSE_AT": point},
    )
    assert process.stderr is not None
    assert f"paused at {point}" in process.stderr.readline()
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    resumed = sync(project)
    assert resumed["user_transactions"][1] == resumed["user_transactions"][0] > 0  # sent again, idempotently
    assert sync(project) == dict.fromkeys(ONLINE, (0, 0, 0))
    assert_same_items(items(project), items(reference))


def test_changed_model_columns_resend_every_entity(tmp_path: Path) -> None:
    project = built(tmp_path / "p")
    sync(project)
    path = project / "features" / "user_spend_ratios.sql"
    path.write_text(path.read_text().replace("as max_to_avg_amount", "as max_to_avg_amount,\n    1 as one"))
    with context(project) as ctx:
        assert ctx.run(now=LATER, select=("user_spend_ratios",)).ok
    changed, written, _ = sync(project)["user_spend_ratios"]
    assert written == changed > 100
    assert all(item["one"] == {"N": "1"} for pk, item in items(project).items() if pk.startswith("user_spend_ratios#"))


def test_sync_before_run_names_the_model_and_the_fix(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "p")
    with context(project) as ctx, pytest.raises(ConfigError, match=r"has no table on target 'dev'.*featuresql run"):
        run_sync(ctx, now=NOW)
    assert not (project / STORE).exists()


def test_selecting_no_online_model_is_an_error(synced: Path) -> None:
    with context(synced) as ctx, pytest.raises(ConfigError, match=r"no online model selected.*user_transactions"):
        run_sync(ctx, ("user_profile",), now=NOW)


def test_reserved_attribute_names_are_refused(tmp_path: Path) -> None:
    project = copy_example(
        tmp_path / "p", [("features/user_spend_ratios.sql", "as max_to_avg_amount", "as max_to_avg_amount, 1 as pk")]
    )
    with context(project) as ctx, pytest.raises(ConfigError, match=r"column named 'pk'.*rename it"):
        run_sync(ctx, now=NOW)
