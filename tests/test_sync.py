"""`featuresql sync`, one suite run unchanged on every online store: the local store and DynamoDB.

Latest available values, changed rows only, ordered by the store's sync sequence. The
example project is built once per module (small demo data) with
``user_transactions`` delayed by 2 hours and ``user_balances`` (a snapshot
model with a 30-day ttl and a tie-break column) online as well; each test syncs
a copy of it to a store of its own (``online_stores.py``). Online values are
checked against the point-in-time extract at the same time, the offline
definition of "the value at t". What only DynamoDB has (its table settings,
throttling, transactions) is in test_online_dynamodb.py.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import cli_process
import duckdb
import pyarrow as pa
import pytest
from featuresql.adapters.store import Deletion
from online_stores import NOW, VARS, OnlineStoreTarget, large_items, same_value, sync, sync_result
from projects import DATABASE, ONLINE_EDITS, built_example, copy_example

from featuresql.context import Context
from featuresql.errors import ConfigError, FeaturesqlError
from featuresql.online.stores import open_store, read_manifest
from featuresql.online.sync import run_sync
from featuresql.serving.handler import reader_for
from featuresql.serving.items import EXPIRES, FEATURE_TS, MARKER_KEY, VERSION, partition_key

pytestmark = pytest.mark.duckdb

LATER = NOW + timedelta(days=2)
ONLINE = ("user_transactions", "user_spend_ratios", "user_balances")
NOTHING = dict.fromkeys(ONLINE, (0, 0, 0))


def context(project: Path) -> Context:
    return Context(project, variables=VARS)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project, built and never synced."""
    return built_example(tmp_path_factory.mktemp("built") / "p", ONLINE_EDITS, variables=VARS, now=LATER)


def copy_to(online_store: OnlineStoreTarget, source: Path, destination: Path, label: str) -> Path:
    """A copy of ``source`` that syncs to a fresh table of ``online_store``."""
    project = Path(shutil.copytree(source, destination))
    online_store.use(project, label)
    return project


@pytest.fixture
def project(built: Path, online_store: OnlineStoreTarget, tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A copy of the built project whose store is its own and empty."""
    return copy_to(online_store, built, tmp_path / "p", request.node.name)


@pytest.fixture(scope="module")
def synced(built: Path, online_store: OnlineStoreTarget, tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = copy_to(online_store, built, tmp_path_factory.mktemp("synced") / "p", "synced")
    sync(project)
    return project


# -- what a sync writes ---------------------------------------------------------------------


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
        results = json.loads(body, parse_float=Decimal)["results"]  # decimals compare exactly
        for result, row in zip(results, offline[start : start + 100], strict=True):
            assert result["entity"] == {"user_id": row["user_id"]}
            for name, online_value in result["features"].items():
                assert same_value(online_value, row[name]), (row["user_id"], name, online_value, row[name])
                compared += 1
    assert compared == len(users) * len(offline[0]) - 2 * len(users)  # every feature column of every user


def test_items_carry_the_row_time_and_expire_when_the_value_would(
    synced: Path, online_store: OnlineStoreTarget
) -> None:
    """``_exp`` is the first instant the item no longer answers, to the microsecond; the store's TTL
    attribute is it rounded up to seconds. An empty window is no item at all."""
    stored = online_store.items(synced)
    windows = [item for pk, item in stored.items() if pk.startswith("user_transactions#")]
    widest, delay = 30 * 86400, 2 * 3600
    assert windows
    for item in windows:
        ts = int(item[FEATURE_TS]["N"])
        assert item["count_30d"] != {"N": "0"}
        assert int(item[EXPIRES]["N"]) == ts + (widest + delay) * 1_000_000
        assert int(item["_ttl"]["N"]) == -(-int(item[EXPIRES]["N"]) // 1_000_000)
        assert ts <= (NOW - timedelta(hours=2)).timestamp() * 1_000_000
    balances = [item for pk, item in stored.items() if pk.startswith("user_balances#")]
    assert balances and all(
        int(item[EXPIRES]["N"]) == int(item[FEATURE_TS]["N"]) + 30 * 86400 * 1_000_000 + 1 for item in balances
    )
    ratios = [item for pk, item in stored.items() if pk.startswith("user_spend_ratios#")]
    assert ratios and all("_ttl" not in item and EXPIRES not in item for item in ratios)


def test_the_store_holds_exactly_the_mirror(project: Path, online_store: OnlineStoreTarget) -> None:
    first = sync(project)
    assert all(written == changed > 100 for changed, written, _ in first.values()), first
    with context(project) as ctx:
        identity = open_store(ctx).identity()
    with duckdb.connect(str(project / DATABASE), read_only=True) as connection:
        mirrored = {
            partition_key(model, [user])
            for model in ONLINE
            for (user,) in connection.execute(f"select user_id from featuresql.online_{identity}_{model}").fetchall()
        }
    assert len(mirrored) == sum(written for _, written, _ in first.values())
    assert set(online_store.items(project)) == mirrored


def test_a_second_sync_writes_nothing(project: Path, online_store: OnlineStoreTarget) -> None:
    first = sync(project)
    assert all(written == changed > 0 for changed, written, _ in first.values())
    before = online_store.items(project)
    assert sync(project) == NOTHING
    online_store.assert_same_items(online_store.items(project), before)
    assert online_store.items(project).items() <= before.items()  # not even the sync marks were rewritten


def test_only_changed_entities_are_written(project: Path, online_store: OnlineStoreTarget) -> None:
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
    stored = online_store.items(project)
    for user_id, _ in latest:
        assert stored[partition_key("user_spend_ratios", [user_id])]["transactions_per_day_7d"] == {"N": "123.5"}


def test_changed_model_columns_resend_every_entity(project: Path, online_store: OnlineStoreTarget) -> None:
    sync(project)
    path = project / "features" / "user_spend_ratios.sql"
    path.write_text(path.read_text().replace("as max_to_avg_amount", "as max_to_avg_amount,\n    1 as one"))
    with context(project) as ctx:
        assert ctx.run(now=LATER, select=("user_spend_ratios",)).ok
    changed, written, _ = sync(project)["user_spend_ratios"]
    assert written == changed > 100
    ratios = [item for pk, item in online_store.items(project).items() if pk.startswith("user_spend_ratios#")]
    assert len(ratios) == written and all(item["one"] == {"N": "1"} for item in ratios)


# -- ordered by the store's sync sequence ------------------------------------------------------


def test_versions_are_the_stores_sequence(project: Path, online_store: OnlineStoreTarget) -> None:
    assert [sync_result(project, NOW + timedelta(hours=n)).version for n in range(3)] == [1, 2, 3]
    assert {int(item[VERSION]["N"]) for item in online_store.items(project).values()} <= {1, 2, 3}
    assert int(online_store.all_items(project)[MARKER_KEY][VERSION]["N"]) == 3


def test_a_sync_as_of_an_earlier_time_is_refused_unless_full(project: Path, online_store: OnlineStoreTarget) -> None:
    """An old backfill's sync job must not roll the store back; ``--full`` rewinds it on purpose."""
    earlier = NOW - timedelta(days=10)
    sync(project)
    with pytest.raises(ConfigError, match=r"holds values as of .* later than --now.*--full"):
        sync(project, earlier)
    sync(project, earlier, full=True)
    reference = copy_to(online_store, project, project.parent / "reference", "rewind_reference")
    online_store.wipe(reference)
    sync(reference, earlier, full=True)
    online_store.assert_same_items(online_store.items(project), online_store.items(reference))


def test_the_store_orders_changes_by_sync_version(project: Path) -> None:
    """A change applies only over an item of an earlier sync, whatever the feature times."""
    with context(project) as ctx:
        store = open_store(ctx)
    store.ensure_table()

    def item(ts: int, version: int, value: str) -> dict[str, Any]:
        return {"pk": {"S": "m#[1]"}, FEATURE_TS: {"N": str(ts)}, VERSION: {"N": str(version)}, "f": {"N": value}}

    assert store.write_batch([item(10, 1, "1")]).written == 1
    assert store.write_batch([item(11, 1, "2")]).skipped == 1  # the same sync again
    assert store.write_batch([item(9, 2, "3")]).written == 1  # a later sync: an earlier row time (a deletion)
    assert store.read_batch(["m#[1]"], ["f", FEATURE_TS])["m#[1]"]["f"] == {"N": "3"}
    assert store.write_batch([Deletion("m#[1]", 2)]).skipped == 1  # not over the same sync's item
    assert store.write_batch([Deletion("m#[2]", 5)]).skipped == 1  # nothing to delete
    assert store.write_batch([Deletion("m#[1]", 3)]).deleted == 1
    assert store.read_batch(["m#[1]", "m#[2]"], ["f"]) == {}


def test_an_earlier_syncs_change_is_refused_item_by_item(project: Path, online_store: OnlineStoreTarget) -> None:
    """One batch, one change of a later sync and two not: only the later one applies (on DynamoDB
    the transaction is cancelled, then the later change goes alone)."""
    sync(project)
    live = sorted(pk for pk in online_store.items(project) if pk.startswith("user_transactions#"))
    key, other = live[:2]
    with context(project) as ctx:
        store = open_store(ctx)
    current = store.read_batch([key], [FEATURE_TS, VERSION, "count_7d"])[key]
    ts, version = int(current[FEATURE_TS]["N"]), int(current[VERSION]["N"])

    def item(pk: str, ts: int, version: int, count: str) -> dict[str, Any]:
        return {"pk": {"S": pk}, FEATURE_TS: {"N": str(ts)}, VERSION: {"N": str(version)}, "count_7d": {"N": count}}

    new = "user_transactions#[999999]"
    result = store.write_batch([item(key, ts + 1, version, "111"), Deletion(other, version), item(new, ts, 9, "333")])
    assert (result.written, result.deleted, result.skipped) == (1, 0, 2)
    after = store.read_batch([key, new, other], ["count_7d"])
    assert after[key]["count_7d"] == current["count_7d"] and other in after
    assert after[new]["count_7d"]["N"] == "333"
    assert store.write_batch([item(key, ts - 1, version + 1, "444")]).written == 1


def test_large_items_are_written_whole(project: Path) -> None:
    """100 items of 50 KB: over a DynamoDB transaction's 4 MB, so there the batch goes as several
    (test_online_dynamodb.py counts them)."""
    with context(project) as ctx:
        store = open_store(ctx)
    store.ensure_table()
    batch = large_items()
    assert len(batch) == 100 and store.write_batch(batch).written == 100
    stored = store.read_batch([item["pk"]["S"] for item in batch], ["note"])
    assert stored == {item["pk"]["S"]: {"pk": item["pk"], "note": item["note"]} for item in batch}


@pytest.mark.parametrize("point", ["sync_before_mirror", "sync_written"])
def test_a_killed_sync_is_finished_by_the_next(
    built: Path, online_store: OnlineStoreTarget, tmp_path: Path, request: pytest.FixtureRequest, point: str
) -> None:
    reference = copy_to(online_store, built, tmp_path / "reference", f"{request.node.name}_reference")
    sync(reference)
    project = copy_to(online_store, built, tmp_path / "p", request.node.name)
    now = NOW.strftime("%Y-%m-%dT%H:%M:%S")
    cli_process.kill(cli_process.pause_at(project, point, "sync", "--now", now, variables=json.dumps(VARS)))
    resumed = sync(project)
    assert resumed["user_transactions"][1] == resumed["user_transactions"][0] > 0  # sent again, idempotently
    assert sync(project) == NOTHING
    online_store.assert_same_items(online_store.items(project), online_store.items(reference))


# -- mistakes ---------------------------------------------------------------------------------


def test_sync_before_run_names_the_model_and_the_fix(online_store: OnlineStoreTarget, tmp_path: Path) -> None:
    project = copy_example(tmp_path / "p")
    online_store.use(project, "never_run")
    with context(project) as ctx, pytest.raises(ConfigError, match=r"has no table on target 'dev'.*featuresql run"):
        run_sync(ctx, now=NOW)
    assert not online_store.has_table(project)


def test_selecting_no_online_model_is_an_error(synced: Path) -> None:
    with context(synced) as ctx, pytest.raises(ConfigError, match=r"no online model selected.*user_transactions"):
        run_sync(ctx, ("user_profile",), now=NOW)


@pytest.mark.parametrize("name", ["pk", "_ts", "_v", "_exp", "_sv", "_ttl"])
def test_reserved_attribute_names_are_refused(online_store: OnlineStoreTarget, tmp_path: Path, name: str) -> None:
    edit = ("features/user_spend_ratios.sql", "as max_to_avg_amount", f"as max_to_avg_amount, 1 as {name}")
    project = copy_example(tmp_path / "p", [edit])
    online_store.use(project, "reserved")
    match = rf"user_spend_ratios.*column named '{name}'.*rename it"
    with pytest.raises(FeaturesqlError, match=match), context(project) as ctx:
        run_sync(ctx, now=NOW)
    assert not online_store.has_table(project)
